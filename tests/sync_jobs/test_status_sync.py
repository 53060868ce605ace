"""W4 against the GetCourse and amoCRM sandboxes and a real Redis, with the webhooks and callbacks
the sandboxes really send caught and handed to the service in an order the test chooses (as a
slow or a fast queue would): a stage change reaches GetCourse once and does not come back, our
own writes do not echo, conflicts settle to the source of truth, and 100 alternating changes
end with both sides agreeing, with the writes counted."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from schoolsync.connectors.amocrm.webhooks import LeadEvent, parse
from schoolsync.connectors.getcourse.callbacks import callback_url, parse_callback
from schoolsync.core.config import School
from schoolsync.core.db import Database
from schoolsync.core.db.tables import jobs as jobs_table
from schoolsync.core.db.tables import orders as orders_table
from schoolsync.mappings.amocrm import AmoCrmMapping
from schoolsync.mappings.getcourse import order_from_wire
from schoolsync.sandbox.amocrm import AmoSandboxConfig
from schoolsync.sandbox.amocrm.config import AmoPipeline, AmoStatus, default_pipelines
from schoolsync.sandbox.getcourse import GetCourseSandboxConfig
from schoolsync.sandbox.server import create_app
from schoolsync.sandbox.telegram import TelegramSandboxConfig
from schoolsync.sync_jobs.services.crm_push import push_orders
from schoolsync.sync_jobs.services.order_intake import ingest_orders
from schoolsync.sync_jobs.services.status_sync import (
    SETTLE_ACTOR,
    on_lead_status,
    settle_conflict,
)
from tests.conftest import RedisServer, serving
from tests.sync_jobs import test_payments
from tests.sync_jobs.test_payments import Setup

NEW, IN_WORK, WAITING, WON, LOST = 1002, 1003, 1004, 142, 143
MAPPING = AmoCrmMapping.model_validate(
    {
        "pipeline_id": 1000,
        "stages": {
            "new": NEW,
            "in_work": IN_WORK,
            "payment_waiting": WAITING,
            "payed": WON,
            "cancelled": LOST,
            "false": LOST,
        },
        "fields": {"order_number": 5001},
    }
)
_base = default_pipelines()[0]
PIPELINES = [
    AmoPipeline(
        id=_base.id,
        name=_base.name,
        statuses=(*_base.statuses, AmoStatus(WAITING, "Ожидаем оплаты", sort=40)),
    )
]
STAGE_OF = {s.value: stage for s, stage in MAPPING.stages.items()}
# what a manager and GetCourse do to the order in these tests
GC_STATUSES = ["new", "in_work", "payment_waiting", "cancelled"]
CRM_STAGES = [NEW, IN_WORK, WAITING, LOST]


class Catcher:
    """Where the sandboxes send their webhooks and callbacks; the test hands them on."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.amo: list[bytes] = []
        self.gc: list[str] = []

    def app(self) -> Starlette:
        async def amo(request: Request) -> PlainTextResponse:
            body = await request.body()
            with self.lock:
                self.amo.append(body)
            return PlainTextResponse("ok")

        async def gc(request: Request) -> PlainTextResponse:
            with self.lock:
                self.gc.append(request.url.query)
            return PlainTextResponse("ok")

        return Starlette(
            routes=[
                Route("/amo", amo, methods=["POST"]),
                Route("/gc", gc, methods=["GET", "POST"]),
            ]
        )


class Sync:
    def __init__(self, setup: Setup, catcher: Catcher) -> None:
        self.setup = setup
        self.catcher = catcher
        self.ctx = setup.ctx
        platforms = setup.ctx.platforms
        assert platforms is not None
        school = platforms.of("default")
        assert school.amocrm is not None and school.getcourse is not None
        self.amo = school.amocrm
        self.getcourse = school.getcourse
        self.school = setup.ctx.config.school("default")
        assert self.school is not None

    # the two sides, changed by people -----------------------------------------------------
    def gc_change(self, number: str, status: str) -> None:
        answer = self.setup.gc.post(f"/_sandbox/orders/{number}/status", json={"status": status})
        answer.raise_for_status()

    def crm_move(self, lead_id: int, stage: int) -> None:
        # a second later than anything before: amoCRM's times are whole seconds, and a person
        # does not move a lead in the same second as our write
        self.setup.amo.post("/_sandbox/clock", json={"advance_s": 1}).raise_for_status()
        answer = self.setup.amo.post(f"/_sandbox/leads/{lead_id}/status", json={"status_id": stage})
        answer.raise_for_status()

    def gc_status(self, number: str) -> str:
        return str(self.setup.gc.get(f"/_sandbox/orders/{number}").json()["status"])

    def lead_stage(self, lead_id: int) -> int:
        leads = self.setup.amo.get("/_sandbox/leads").json()
        return int(next(x for x in leads if x["id"] == lead_id)["status_id"])

    def mirrored(self, number: str) -> str:
        with self.setup.db.read() as conn:
            return str(
                conn.execute(
                    sa.select(orders_table.c.status).where(orders_table.c.number == number)
                ).scalar_one()
            )

    # writes we made, counted by the sandboxes -----------------------------------------------
    def crm_writes(self) -> int:
        requests = self.setup.amo.get("/_sandbox/state").json()["requests"]
        return sum(n for key, n in requests.items() if key.startswith("PATCH"))

    def gc_writes(self) -> int:
        return int(self.setup.gc.get("/_sandbox/state").json()["imports"]["ok"])

    # what the workers do -------------------------------------------------------------------
    def wait_sent(self) -> None:
        """Until the sandboxes have sent everything they queued."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            amo = self.setup.amo.get("/_sandbox/state").json()["webhooks_pending"]
            gc = self.setup.gc.get("/_sandbox/state").json()["callbacks"]["pending"]
            if amo == 0 and gc == 0:
                time.sleep(0.05)  # the last one's answer on its way back
                return
            time.sleep(0.02)
        raise AssertionError("the sandboxes did not send their webhooks")

    def take(self) -> tuple[list[bytes], list[str]]:
        self.wait_sent()
        with self.catcher.lock:
            amo, gc = self.catcher.amo[:], self.catcher.gc[:]
            self.catcher.amo.clear()
            self.catcher.gc.clear()
        return amo, gc

    def crm_webhook(self, body: bytes) -> None:
        for event in parse(body).events:
            if isinstance(event, LeadEvent):
                on_lead_status(self.ctx, self.school, self.amo, event)  # type: ignore[arg-type]

    def gc_callback(self, query: str) -> None:
        callback = parse_callback(query, self.getcourse.tz)
        order = order_from_wire(callback, account="sandbox", school="default", mapping=None)
        ingest_orders(self.ctx, "default", [order])

    def jobs(self) -> None:
        """The push and any conflict to settle, as the workers would run them."""
        push_orders(self.ctx, "default")
        with self.setup.db.write() as conn:
            rows = conn.execute(
                sa.select(jobs_table.c.id, jobs_table.c.args).where(
                    jobs_table.c.actor == SETTLE_ACTOR, jobs_table.c.status != "done"
                )
            ).all()
            conn.execute(
                sa.update(jobs_table)
                .where(jobs_table.c.id.in_([r.id for r in rows]))
                .values(status="done")
            )
        for row in rows:
            args = row.args
            settle_conflict(
                self.ctx,
                args["school"],
                args["number"],
                args["winner"],
                args["status"],
                args["seen_at"],
            )

    def drain(self, *, rng: random.Random | None = None) -> int:
        """Hand on everything until nothing more comes; returns the rounds it took."""
        for rounds in range(1, 30):
            self.jobs()
            amo, gc = self.take()
            if not amo and not gc:
                return rounds
            events: list[tuple[str, Any]] = [("amo", b) for b in amo]
            if rng is not None:
                rng.shuffle(events)  # amoCRM's webhooks in any order
            after = 0
            for query in gc:  # GetCourse's callbacks among them, in the order it sent them
                at = rng.randint(after, len(events)) if rng is not None else len(events)
                events.insert(at, ("gc", query))
                after = at + 1
            for kind, item in events:
                if kind == "amo":
                    self.crm_webhook(item)
                else:
                    self.gc_callback(item)
        raise AssertionError("the two sides never settled: a loop")


def school(source_of_truth: str) -> School:
    return School.model_validate(
        {
            "id": "default",
            "rules": {
                "status_sync": {
                    "source_of_truth": {"status": source_of_truth},
                    "conflict_window_s": 600,
                }
            },
        }
    )


@pytest.fixture
def make_sync(
    sqlite_db: Database,
    redis_server: RedisServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Any]:
    catcher = Catcher()
    with serving(catcher.app()) as caught:
        started: list[Any] = []

        def make(source_of_truth: str = "getcourse") -> Sync:
            monkeypatch.setattr(test_payments, "MAPPING", MAPPING)
            monkeypatch.setattr(test_payments, "SCHOOL", school(source_of_truth))
            app = create_app(
                getcourse=GetCourseSandboxConfig(callback_url=callback_url(f"{caught}/gc", "s")),
                amocrm=AmoSandboxConfig(
                    pipelines=PIPELINES,
                    long_lived_token="pay-token",
                    rate_per_s=1000,
                    webhook_url=f"{caught}/amo?secret=s",
                ),
                telegram=TelegramSandboxConfig(),
            )
            server = serving(app)
            base = server.__enter__()
            started.append(server)
            return Sync(Setup(sqlite_db, redis_server, tmp_path, base), catcher)

        yield make
        for server in started:
            server.__exit__(None, None, None)


def an_order(sync: Sync) -> tuple[str, int]:
    """An order already in the CRM: its lead in «new», linked, the mirror synced."""
    made = sync.setup.order()
    sync.drain()
    return str(made["number"]), int(made["lead_id"])


def test_a_stage_change_reaches_getcourse_once_and_does_not_come_back(make_sync: Any) -> None:
    sync = make_sync()
    number, lead = an_order(sync)
    crm_before, gc_before = sync.crm_writes(), sync.gc_writes()

    sync.crm_move(lead, IN_WORK)  # the manager takes the order into work
    amo, _ = sync.take()
    for body in amo * 3:  # amoCRM delivers it three times (retries)
        sync.crm_webhook(body)
    sync.drain()

    assert sync.gc_status(number) == "in_work" and sync.mirrored(number) == "in_work"
    assert sync.gc_writes() - gc_before == 1  # once
    assert sync.crm_writes() - crm_before == 0  # GetCourse's callback did not come back
    assert sync.lead_stage(lead) == IN_WORK


def test_our_own_stage_write_does_not_echo_back_to_getcourse(make_sync: Any) -> None:
    sync = make_sync()
    number, lead = an_order(sync)
    gc_before = sync.gc_writes()

    sync.gc_change(number, "false")  # «Ложный»: its stage (lost) is shared with «cancelled»
    rounds = sync.drain()

    assert sync.lead_stage(lead) == LOST
    assert sync.gc_status(number) == "false"  # not turned into «cancelled» by the echo
    assert sync.gc_writes() == gc_before
    assert rounds <= 3


def test_an_older_webhook_arriving_late_changes_nothing(make_sync: Any) -> None:
    sync = make_sync()
    number, lead = an_order(sync)
    sync.crm_move(lead, IN_WORK)
    first, _ = sync.take()
    sync.crm_move(lead, LOST)
    second, _ = sync.take()

    for body in second + first:  # the later change arrives first
        sync.crm_webhook(body)
    sync.drain()

    assert sync.gc_status(number) == "cancelled" and sync.lead_stage(lead) == LOST
    assert sync.gc_writes() >= 1


def test_a_conflict_is_won_by_getcourse_and_noted_on_the_lead(make_sync: Any) -> None:
    sync = make_sync("getcourse")
    number, lead = an_order(sync)
    gc_before = sync.gc_writes()

    sync.gc_change(number, "in_work")
    sync.crm_move(lead, LOST)  # at the same moment, from «new»: neither knew of the other
    amo, gc = sync.take()
    for body in amo:  # the manager's webhook is handled first
        sync.crm_webhook(body)
    for query in gc:
        sync.gc_callback(query)
    sync.drain()

    assert sync.gc_status(number) == "in_work" and sync.mirrored(number) == "in_work"
    assert sync.lead_stage(lead) == IN_WORK
    notes = sync.amo.client.notes("leads", lead)
    assert any("По правилам верен GetCourse" in n.text for n in notes)
    assert sync.gc_writes() - gc_before <= 2  # the manager's stage, then GetCourse's back


def test_with_amocrm_the_source_of_truth_the_managers_stage_wins(make_sync: Any) -> None:
    sync = make_sync("amocrm")
    number, lead = an_order(sync)

    sync.gc_change(number, "in_work")
    sync.crm_move(lead, LOST)
    amo, gc = sync.take()
    for query in gc:  # this time GetCourse's callback first: the push overwrites the lead
        sync.gc_callback(query)
    sync.jobs()
    for body in amo:
        sync.crm_webhook(body)
    sync.drain()

    assert sync.gc_status(number) == "cancelled" and sync.lead_stage(lead) == LOST
    notes = sync.amo.client.notes("leads", lead)
    assert any("По правилам верен amoCRM" in n.text for n in notes)

    sync.gc_change(number, "payment_waiting")  # GetCourse undoes it moments later
    sync.drain()

    assert sync.gc_status(number) == "cancelled" and sync.lead_stage(lead) == LOST


@pytest.mark.parametrize("truth", ["getcourse", "amocrm"])
def test_100_alternating_changes_settle_to_the_source_of_truth_without_a_loop(
    make_sync: Any, truth: str
) -> None:
    sync = make_sync(truth)
    number, lead = an_order(sync)
    rng = random.Random(20261123)
    crm_before, gc_before = sync.crm_writes(), sync.gc_writes()

    for change in range(100):
        if change % 2 == 0:
            sync.gc_change(
                number, rng.choice([s for s in GC_STATUSES if s != sync.gc_status(number)])
            )
        else:
            here = sync.lead_stage(lead)
            sync.crm_move(lead, rng.choice([s for s in CRM_STAGES if s != here]))
        if rng.random() < 0.5:  # sometimes the queue keeps up, sometimes it lags behind
            sync.drain(rng=rng)  # once it has caught up, the two sides agree
            assert sync.gc_status(number) == sync.mirrored(number)
            assert STAGE_OF[sync.gc_status(number)] == sync.lead_stage(lead)
    sync.drain(rng=rng)
    # the last two at the same moment, neither side knowing of the other
    gc_last = "payment_waiting" if sync.gc_status(number) != "payment_waiting" else "in_work"
    crm_last = LOST if sync.lead_stage(lead) != LOST else NEW
    sync.gc_change(number, gc_last)
    sync.crm_move(lead, crm_last)
    sync.drain(rng=rng)
    crm_settled, gc_settled = sync.crm_writes(), sync.gc_writes()

    assert sync.drain(rng=rng) == 1  # nothing left moving: no loop
    assert (sync.crm_writes(), sync.gc_writes()) == (crm_settled, gc_settled)
    final = sync.gc_status(number)
    assert sync.mirrored(number) == final and STAGE_OF[final] == sync.lead_stage(lead)
    expected = gc_last if truth == "getcourse" else {LOST: "cancelled", NEW: "new"}[crm_last]
    assert final == expected
    # every write answers a change: at most one per change and per conflict, not a ping-pong
    crm_writes, gc_writes = crm_settled - crm_before, gc_settled - gc_before
    print(f"source of truth {truth}: {crm_writes} lead writes, {gc_writes} GetCourse writes")
    assert crm_writes <= 102 and gc_writes <= 102
