"""The order mirror and each order's way to the CRM.

``crm_state``: ``none`` (nothing to send) -> ``pending`` -> ``sending`` (claimed by a push; the
CRM may or may not have it) -> ``synced``, or ``failed`` (a person must act). A change that
arrives while an order is being sent bumps ``version``; the push only marks ``synced`` the version
it sent, so the newer data goes out next time.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from schoolsync.core.clock import as_utc, utcnow
from schoolsync.core.db.tables import orders
from schoolsync.core.domain import Order

NONE, PENDING, SENDING, SYNCED, FAILED = "none", "pending", "sending", "synced", "failed"


@dataclass(frozen=True)
class StoredOrder:
    id: int
    order: Order
    version: int
    crm_state: str
    crm_tries: int
    # an earlier push that may have reached the CRM started then (a timeout, a 5xx, a crash):
    # the lead may exist without our link; look for leads created since
    maybe_sent_at: datetime | None = None


def _merge(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """New values win; a field the new source does not know (None) keeps what we had."""
    merged = dict(old)
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(old.get(key), dict):
            merged[key] = _merge(old[key], value)
        elif value is not None:
            merged[key] = value
    return merged


def lane_of(order: Order, lanes: int) -> int:
    """The push lane of ``order``: the same for every order of one person."""
    person = order.customer.email or order.customer.phone or order.number
    return zlib.crc32(person.encode()) % max(1, lanes)


def upsert_many(
    conn: Connection,
    school: str,
    batch: Sequence[Order],
    *,
    push: bool = True,
    lanes: int = 1,
    snapshot_at: datetime | None = None,
    origin: str = "platform",
) -> int:
    """Store ``batch`` (each merged into what we have; later entries win); returns how many
    orders changed.

    With ``push`` an order is queued for the CRM when it changed or was never synced; an
    unchanged, synced order is left alone (a duplicate callback does nothing). ``snapshot_at``:
    the data was read at that time (an export): an order we updated since is newer and kept.
    ``origin``: who changed a status that changes here (``platform``, or ``crm`` for a lead
    stage written to the platform by the status sync); the status sync's conflict rule reads it.
    On PostgreSQL the existing rows are locked (in id order) until the caller commits.
    """
    if not batch:
        return 0
    now = utcnow()
    existing: dict[tuple[str, str, str], dict[str, Any]] = {}
    for platform, account in {(o.platform, o.account) for o in batch}:
        numbers = [o.number for o in batch if (o.platform, o.account) == (platform, account)]
        for start in range(0, len(numbers), 500):
            stmt = (
                sa.select(orders)
                .where(
                    orders.c.school == school,
                    orders.c.platform == platform,
                    orders.c.account == account,
                    orders.c.number.in_(numbers[start : start + 500]),
                )
                .order_by(orders.c.id)
            )
            if conn.dialect.name == "postgresql":
                stmt = stmt.with_for_update()
            rows = conn.execute(stmt).mappings()
            for found in rows:
                existing[(platform, account, found["number"])] = dict(found)
    inserts: dict[tuple[str, str, str], dict[str, Any]] = {}
    updates: dict[int, dict[str, Any]] = {}
    changed: set[tuple[str, str, str]] = set()
    for order in batch:
        key = (order.platform, order.account, order.number)
        data = order.model_dump(mode="json")
        if key in inserts:  # the same new order twice in one batch
            inserts[key]["data"] = _merge(inserts[key]["data"], data)
            inserts[key]["status"] = inserts[key]["data"]["status"]
            continue
        row = existing.get(key)
        if row is None:
            inserts[key] = {
                "school": school,
                "platform": order.platform,
                "account": order.account,
                "number": order.number,
                "external_id": order.external_id,
                "status": order.status.value,
                "data": data,
                # stored in UTC: SQLite keeps no offset, so a Moscow time would read back 3 h off
                "created_at": as_utc(order.created_at) if order.created_at else None,
                "updated_at": now,
                "status_changed_at": now,
                "version": 1,
                "lane": lane_of(order, lanes),
                "crm_state": PENDING if push else NONE,
            }
            changed.add(key)
            continue
        if snapshot_at is not None and as_utc(row["updated_at"]) >= snapshot_at:
            continue  # changed after the snapshot was taken: what we have is newer
        current = updates.get(row["id"], row)
        merged = _merge(dict(current["data"]), data)
        values = dict(current)
        if merged != current["data"]:
            values.update(
                data=merged,
                status=merged["status"],
                external_id=merged.get("external_id"),
                version=row["version"] + 1,
                updated_at=now,
            )
            if merged["status"] != current["status"]:
                values["status_changed_at"] = now
                values["status_origin"] = origin
            changed.add(key)
        # a sending order goes out again once its push sees the newer version
        if (
            push
            and (key in changed or row["crm_state"] in (NONE, FAILED))
            and row["crm_state"] != SENDING
        ):
            values["crm_state"] = PENDING
            values["crm_error"] = None
        if values != row:
            updates[row["id"]] = values
    if inserts:
        conn.execute(sa.insert(orders), list(inserts.values()))
    for order_id, values in updates.items():
        conn.execute(
            sa.update(orders)
            .where(orders.c.id == order_id)
            .values(
                {
                    name: values[name]
                    for name in (
                        "data",
                        "status",
                        "external_id",
                        "version",
                        "updated_at",
                        "status_changed_at",
                        "status_origin",
                        "crm_state",
                        "crm_error",
                    )
                }
            )
        )
    return len(changed)


def requeue(
    conn: Connection,
    school: str,
    numbers: Sequence[str] | None = None,
    *,
    platform: str | None = None,
    account: str | None = None,
) -> int:
    """Mark orders pending again (replay, backfill); returns how many."""
    stmt = sa.update(orders).where(orders.c.school == school, orders.c.crm_state != SENDING)
    if platform is not None:
        stmt = stmt.where(orders.c.platform == platform)
    if account is not None:
        stmt = stmt.where(orders.c.account == account)
    if numbers is not None:
        stmt = stmt.where(orders.c.number.in_(list(numbers)))
    return conn.execute(stmt.values(crm_state=PENDING, crm_error=None)).rowcount


def _stored(row: Any) -> StoredOrder:
    return StoredOrder(
        id=int(row["id"]),
        order=Order.model_validate(row["data"]),
        version=int(row["version"]),
        crm_state=str(row["crm_state"]),
        crm_tries=int(row["crm_tries"]),
        maybe_sent_at=_maybe_sent_at(row),
    )


def _maybe_sent_at(row: Any) -> datetime | None:
    if row["crm_maybe_sent_at"] is not None:
        return as_utc(row["crm_maybe_sent_at"])
    if row["crm_state"] == SENDING and row["crm_claimed_at"] is not None:
        return as_utc(row["crm_claimed_at"])  # a push died holding it
    return None


def claim(
    conn: Connection,
    school: str,
    *,
    limit: int,
    claim_id: str,
    stale_before: datetime,
    lane: int = 0,
    exclude: Sequence[int] = (),
) -> list[StoredOrder]:
    """Take up to ``limit`` pending orders (and sends abandoned before ``stale_before``) for one
    push, oldest first; each one's ``crm_tries`` counts the attempt."""
    due = (orders.c.crm_state == PENDING) | (
        (orders.c.crm_state == SENDING) & (orders.c.crm_claimed_at < stale_before)
    )
    stmt = sa.select(orders).where(orders.c.school == school, orders.c.lane == lane, due)
    if exclude:
        stmt = stmt.where(orders.c.id.notin_(list(exclude)))
    stmt = stmt.order_by(orders.c.id).limit(limit)
    if conn.dialect.name == "postgresql":
        stmt = stmt.with_for_update(skip_locked=True)
    rows = conn.execute(stmt).mappings().all()
    if not rows:
        return []
    conn.execute(
        sa.update(orders)
        .where(orders.c.id.in_([r["id"] for r in rows]))
        .values(
            crm_state=SENDING,
            crm_claim=claim_id,
            crm_claimed_at=utcnow(),
            crm_tries=orders.c.crm_tries + 1,
            # a push that died holding it may have reached the CRM: remember that for good
            crm_maybe_sent_at=sa.case(
                (
                    orders.c.crm_state == SENDING,
                    sa.func.coalesce(orders.c.crm_maybe_sent_at, orders.c.crm_claimed_at),
                ),
                else_=orders.c.crm_maybe_sent_at,
            ),
        )
    )
    return [_stored(r) for r in rows]


def release(
    conn: Connection, ids: Sequence[int], *, claim_id: str, maybe_sent: bool = False
) -> None:
    """Give orders this push claimed back. ``maybe_sent``: the platform may have applied the
    request (a timeout or 5xx), so the attempt still counts and the next push looks for what it
    created. Orders another push has taken over since are left alone."""
    if ids:
        values: dict[str, Any] = {"crm_state": PENDING, "crm_claim": None}
        if maybe_sent:
            values["crm_maybe_sent_at"] = sa.func.coalesce(
                orders.c.crm_maybe_sent_at, orders.c.crm_claimed_at
            )
        else:
            values["crm_tries"] = orders.c.crm_tries - 1
        conn.execute(
            sa.update(orders)
            .where(
                orders.c.id.in_(list(ids)),
                orders.c.crm_state == SENDING,
                orders.c.crm_claim == claim_id,
            )
            .values(**values)
        )


def mark_synced(conn: Connection, sent: Sequence[tuple[int, int]], *, claim_id: str) -> None:
    """``sent``: (order id, version sent) by the push holding ``claim_id``. Newer versions go
    back to pending."""
    if not sent:
        return
    sent_version = sa.bindparam("sent_version", type_=sa.Integer())
    conn.execute(
        sa.update(orders)
        .where(
            orders.c.id == sa.bindparam("order_id", type_=sa.BigInteger()),
            orders.c.crm_claim == claim_id,
        )
        .values(
            crm_state=sa.case((orders.c.version == sent_version, SYNCED), else_=PENDING),
            crm_sent_version=sent_version,
            crm_synced_at=utcnow(),
            crm_claim=None,
            crm_error=None,
            crm_maybe_sent_at=None,
        ),
        # in id order: the same order as every other statement that locks these rows
        [{"order_id": order_id, "sent_version": version} for order_id, version in sorted(sent)],
    )


def mark_failed(
    conn: Connection, order_id: int, error: str, *, claim_id: str, version: int | None = None
) -> bool:
    """The order cannot go to the CRM as it is; False if this push no longer holds it. A newer
    version that arrived meanwhile goes back to pending instead (it may be fixed)."""
    state: Any = FAILED
    if version is not None:
        state = sa.case((orders.c.version == version, FAILED), else_=PENDING)
    result = conn.execute(
        sa.update(orders)
        .where(orders.c.id == order_id, orders.c.crm_claim == claim_id)
        .values(crm_state=state, crm_error=error[:2000], crm_claim=None)
    )
    return bool(result.rowcount)


def get(conn: Connection, school: str, platform: str, account: str, number: str) -> Any:
    return (
        conn.execute(
            sa.select(orders).where(
                orders.c.school == school,
                orders.c.platform == platform,
                orders.c.account == account,
                orders.c.number == number,
            )
        )
        .mappings()
        .first()
    )


def find_order(conn: Connection, school: str, number: str) -> Order | None:
    """The mirrored order with this number (any platform account of the school)."""
    data = (
        conn.execute(
            sa.select(orders.c.data).where(orders.c.school == school, orders.c.number == number)
        )
        .scalars()
        .first()
    )
    return Order.model_validate(data) if data is not None else None


@dataclass(frozen=True)
class StatusState:
    """An order with when and by whom its status was last changed (W4's conflict rule)."""

    order: Order
    changed_at: datetime | None
    origin: str | None


def status_states(conn: Connection, school: str, numbers: Sequence[str]) -> dict[str, StatusState]:
    """number -> its :class:`StatusState`, for those of ``numbers`` in the mirror."""
    if not numbers:
        return {}
    rows = conn.execute(
        sa.select(
            orders.c.number, orders.c.data, orders.c.status_changed_at, orders.c.status_origin
        ).where(orders.c.school == school, orders.c.number.in_(list(numbers)))
    ).all()
    return {
        str(number): StatusState(
            Order.model_validate(data), as_utc(changed) if changed else None, origin
        )
        for number, data, changed, origin in rows
    }


def orders_where(conn: Connection, school: str, *conditions: Any) -> list[Order]:
    """The school's mirrored orders matching SQL ``conditions`` on the ``orders`` table."""
    rows = conn.execute(sa.select(orders.c.data).where(orders.c.school == school, *conditions))
    return [Order.model_validate(data) for data in rows.scalars()]


def count_by_state(conn: Connection, school: str, *, lane: int | None = None) -> dict[str, int]:
    stmt = sa.select(orders.c.crm_state, sa.func.count()).where(orders.c.school == school)
    if lane is not None:
        stmt = stmt.where(orders.c.lane == lane)
    rows = conn.execute(stmt.group_by(orders.c.crm_state)).all()
    return {str(state): int(n) for state, n in rows}
