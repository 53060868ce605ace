"""Periodic jobs: each due slot is recorded under a unique key before it is enqueued, so any
number of scheduler replicas enqueue it once. Jobs are enqueued, never run here."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import exc as sa_exc

from schoolsync.core.clock import utcnow
from schoolsync.core.db import Database
from schoolsync.core.db.tables import SYSTEM_SCHOOL, schedule_slots
from schoolsync.core.db.upsert import insert_ignore
from schoolsync.core.logging import get_logger
from schoolsync.core.stores import jobs
from schoolsync.sync_jobs.queue import JobQueue

log = get_logger(__name__)


@dataclass(frozen=True)
class Periodic:
    name: str
    actor: str
    every_s: int
    school: str = SYSTEM_SCHOOL
    args: dict[str, Any] = field(default_factory=dict)

    def slot(self, now: datetime) -> int:
        """Start of the slot ``now`` falls in, in epoch seconds. Missed slots are not caught up:
        after downtime only the current one runs."""
        return int(now.timestamp()) // self.every_s * self.every_s


class Scheduler:
    def __init__(self, db: Database, queue: JobQueue, schedule: list[Periodic]) -> None:
        self.db = db
        self.queue = queue
        self.schedule = schedule
        self._seen: dict[str, int] = {}

    def tick(self, now: datetime | None = None) -> list[jobs.JobRef]:
        """Record and enqueue every slot that became due; returns the jobs this replica created."""
        now = now or utcnow()
        created: list[jobs.JobRef] = []
        for periodic in self.schedule:
            slot = periodic.slot(now)
            if self._seen.get(periodic.name) == slot:
                continue
            with self.db.write() as conn:
                slot_id = insert_ignore(
                    conn,
                    schedule_slots,
                    {
                        "school": periodic.school,
                        "name": periodic.name,
                        "slot": slot,
                        "created_at": now,
                    },
                    conflict=("school", "name", "slot"),
                )
                if slot_id is not None:
                    ref = jobs.add(
                        conn,
                        school=periodic.school,
                        actor=periodic.actor,
                        args=periodic.args,
                        dedup_key=f"slot:{periodic.school}:{periodic.name}:{slot}",
                    )
                    if ref is not None:
                        created.append(ref)
            self._seen[periodic.name] = slot
        self.queue.send(created)
        return created

    def run_forever(
        self,
        stop: threading.Event,
        *,
        interval_s: float = 1.0,
        on_tick: Callable[[], None] | None = None,
    ) -> None:
        """Tick every ``interval_s`` until ``stop`` is set; ``on_tick`` (a heartbeat) is called
        before each tick, whether or not the database answers."""
        log.info("scheduler started", jobs=[p.name for p in self.schedule])
        while not stop.is_set():
            if on_tick is not None:
                on_tick()
            try:
                self.tick()
            except sa_exc.SQLAlchemyError as exc:
                log.warning("scheduler could not reach the database; trying again", error=str(exc))
            stop.wait(interval_s)
        log.info("scheduler stopped")
