"""The outbox and feedback stores on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

from datetime import timedelta

from schoolsync.core.clock import utcnow
from schoolsync.core.db import Database
from schoolsync.core.stores import feedback, jobs
from schoolsync.core.stores import outbox as store
from schoolsync.core.stores.outbox import NewMessage


def message(key: str, lane: str = "chat:-1", *, later: bool = False) -> NewMessage:
    when = utcnow() + (timedelta(hours=9) if later else timedelta(0))
    return NewMessage(
        key=key, kind="test", lane=lane, text=key, parts=[f"{key} a", f"{key} b"], not_before=when
    )


def test_a_message_is_stored_once_and_goes_out_oldest_first_part_by_part(any_db: Database) -> None:
    with any_db.write() as conn:
        first = store.add(conn, "default", message("m1"))
        assert store.add(conn, "default", message("m1")) is None  # asked twice: one row
        store.add(conn, "default", message("m2"))
        store.add(conn, "other", message("m1"))  # another school's key space
    with any_db.write() as conn:
        due = store.next_due(conn, "default", "chat:-1", utcnow())
        assert due is not None and due.id == first and due.next_part == 0
        assert store.mark_inflight(conn, due.id, at=utcnow())
        ids = store.mark_part_sent(conn, due, 101)
        assert ids == [101]
    with any_db.write() as conn:
        due = store.next_due(conn, "default", "chat:-1", utcnow())
        assert due is not None and due.id == first and due.sent_ids == [101]
        assert due.inflight_at is None
        store.mark_part_sent(conn, due, 102)
        after = store.next_due(conn, "default", "chat:-1", utcnow())
        assert after is not None and after.key == "m2"
        assert sorted(store.due_lanes(conn, utcnow())) == [
            ("default", "chat:-1"),
            ("other", "chat:-1"),
        ]


def test_a_message_not_due_yet_holds_its_lane(any_db: Database) -> None:
    with any_db.write() as conn:
        store.add(conn, "default", message("night", "chat:7", later=True))
        store.add(conn, "default", message("after", "chat:7"))
        assert store.next_due(conn, "default", "chat:7", utcnow()) is None  # in order, always
        assert store.due_lanes(conn, utcnow()) == [("default", "chat:7")]
        assert store.cancel_lane(conn, "default", "chat:7", "blocked") == 2


def test_feedback_is_stored_once_and_linked_by_one_reply(any_db: Database) -> None:
    values = {"key": "telegram:1:2", "source": "content", "author_kind": "teacher", "text": "x",
              "data": {}}  # fmt: skip
    with any_db.write() as conn:
        row = feedback.add(conn, "default", values)
        again = feedback.add(conn, "default", {**values, "text": "changed"})
        assert again["id"] == row["id"] and again["text"] == "x"
        assert feedback.claim_for_linking(conn, int(row["id"]))
        assert not feedback.claim_for_linking(conn, int(row["id"]))  # the second reply loses
        assert feedback.known_keys(conn, "default", ["telegram:1:2", "nope"]) == {"telegram:1:2"}


def test_a_failure_recorded_outside_a_job_reopens_instead_of_multiplying(any_db: Database) -> None:
    with any_db.write() as conn:
        args = {"school": "default", "lane": "chat:-1"}
        first = jobs.fail_as_job(
            conn, school="default", actor="deliver_notifications", args=args, key="lane:1",
            error_class="AuthError", error="kicked",
        )  # fmt: skip
        second = jobs.fail_as_job(
            conn, school="default", actor="deliver_notifications", args=args, key="lane:1",
            error_class="AuthError", error="kicked again",
        )  # fmt: skip
        assert first == second
        row = jobs.get(conn, first)
        assert row is not None and row["status"] == jobs.FAILED
