"""The admin console's failure queries on SQLite and PostgreSQL: the platform derived from the
job (and from the stored webhook's source), entity search, cursor pages, root-cause groups."""

from __future__ import annotations

from datetime import timedelta

from schoolsync.core.clock import utcnow
from schoolsync.core.db import Database
from schoolsync.core.stores import failures, inbox, jobs
from schoolsync.core.stores.failures import FailureFilter, group_key, normalise
from schoolsync.core.stores.inbox import InboxRecord


def _fail(db: Database, actor: str, args: dict[str, object], key: str, message: str) -> None:
    with db.write() as conn:
        jobs.fail_as_job(
            conn,
            school="default",
            actor=actor,
            args=args,
            key=key,
            error_class="UnmappableError",
            error=message,
        )


def test_platform_entity_cursor_and_groups(any_db: Database) -> None:
    with any_db.write() as conn:
        ids = [
            inbox.insert(conn, InboxRecord(school="default", source=s, dedup_key=s, body=b"{}"))
            for s in ("getcourse", "yookassa", "payments-api")
        ]
    for inbox_id in ids:
        _fail(any_db, "process_inbox_event", {"inbox_id": inbox_id}, f"inbox:{inbox_id}", "bad")
    for number in ("501", "502"):
        _fail(
            any_db,
            "resend_order_to_crm",
            {"number": number},
            f"crm:{number}",
            f"order {number}: product 'Пакет VIP' is unknown",
        )
    _fail(any_db, "some_new_job", {}, "x", "manager 'anna@school.example' has no user")

    with any_db.read() as conn:

        def found(**given: object) -> list[int]:
            page = failures.search(conn, FailureFilter(**given), limit=100)  # type: ignore[arg-type]
            return sorted(int(r["id"]) for r in page.rows)

        assert found(platform="getcourse") == [1]
        assert found(platform="yookassa") == [2]
        assert found(platform="api") == [3]
        assert found(platform="amocrm") == [4, 5]
        assert found(platform="other") == [6]
        assert found(entity="502") == [5]
        assert found(entity="anna@school.example") == [6]
        assert found(entity="a***@school.example") == [6]  # as a viewer sees it
        assert found(entity="100%_") == []
        assert found(since=utcnow() + timedelta(hours=1)) == []
        assert found(status="open", actor="resend_order_to_crm") == [4, 5]

        seen: list[int] = []
        cursor = None
        while True:
            page = failures.search(conn, FailureFilter(), cursor=cursor, limit=4)
            seen += [int(r["id"]) for r in page.rows]
            if page.next_cursor is None:
                break
            cursor = page.next_cursor
        assert seen == [6, 5, 4, 3, 2, 1]

        groups = failures.groups(conn, FailureFilter())
        assert (groups[0].count, groups[0].actor) == (3, "process_inbox_event")
        vip = next(g for g in groups if g.actor == "resend_order_to_crm")
        assert vip.count == 2 and vip.pattern == "order N: product 'Пакет VIP' is unknown"
        assert found(group=vip.key) == [4, 5]
        assert failures.matching_ids(conn, FailureFilter(group=vip.key), limit=1) == [4]

        overview = failures.overview(conn, now=utcnow())
        assert overview.total == 6 and overview.open_total == 6
        assert overview.by_platform == {
            "getcourse": 1,
            "yookassa": 1,
            "api": 1,
            "amocrm": 2,
            "other": 1,
        }


def test_normalise_keeps_the_named_config_value_and_drops_people_and_numbers() -> None:
    assert normalise("order 17: product 'Пакет VIP' is unknown") == (
        "order N: product 'Пакет VIP' is unknown"
    )
    assert normalise("order 18: manager 'anna@school.example' has no amoCRM user") == (
        "order N: manager '<email>' has no amoCRM user"
    )
    assert normalise("lead 123 rejected (request_id=9f8e7d6c5b4a39281706f5e4d3c2b1a0)") == (
        "lead N rejected (request_id=<id>)"
    )
    assert group_key("a", "E", "order 1: x 'A'") == group_key("a", "E", "order 2: x 'A'")
    assert group_key("a", "E", "order 1: x 'A'") != group_key("a", "E", "order 1: x 'B'")
