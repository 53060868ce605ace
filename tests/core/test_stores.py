"""The state store on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from schoolsync.core.clock import utcnow
from schoolsync.core.db import Database
from schoolsync.core.db.tables import SYSTEM_SCHOOL, job_attempts
from schoolsync.core.db.tables import failures as failures_table
from schoolsync.core.stores import audit, effects, failures, inbox, jobs
from schoolsync.core.stores.inbox import InboxRecord
from schoolsync.core.stores.jobs import Claim
from schoolsync.sync_jobs.scheduler import Periodic, Scheduler


def add_job(db: Database, key: str = "k1") -> int:
    with db.write() as conn:
        ref = jobs.add(
            conn, school="default", actor="process_inbox_event", args={"inbox_id": 1}, dedup_key=key
        )
    assert ref is not None
    return ref.id


def claim(
    db: Database, job_id: int, owner: str = "w1", alive: bool = True, **kw: Any
) -> jobs.ClaimResult:
    with db.write() as conn:
        return jobs.claim(
            conn,
            job_id,
            owner=owner,
            owner_alive=lambda _o: alive,
            max_crashes=kw.get("max_crashes", 3),
            stale_after=timedelta(minutes=5),
        )


def finish(db: Database, job_id: int, attempt: int, status: str, **kw: Any) -> None:
    with db.write() as conn:
        row = jobs.get(conn, job_id)
        assert row is not None
        jobs.finish(conn, row, attempt=attempt, status=status, **kw)


def test_inbox_keeps_one_row_per_event_and_school(any_db: Database) -> None:
    record = InboxRecord(school="default", source="generic", dedup_key="e1", body=b"{}")
    with any_db.write() as conn:
        first = inbox.insert(conn, record)
        again = inbox.insert(conn, record)
        other_school = inbox.insert(
            conn, InboxRecord(school="north", source="generic", dedup_key="e1", body=b"{}")
        )
    assert first is not None and again is None and other_school is not None


def test_job_dedup_key_creates_one_job(any_db: Database) -> None:
    add_job(any_db, "same")
    with any_db.write() as conn:
        assert jobs.add(conn, school="default", actor="a", args={}, dedup_key="same") is None


def test_claim_runs_once_and_skips_finished_duplicates(any_db: Database) -> None:
    job_id = add_job(any_db)
    first = claim(any_db, job_id)
    assert first.claim is Claim.RUN and first.attempt == 1
    assert claim(any_db, job_id, owner="w2").claim is Claim.BUSY  # w1 is alive and running it
    finish(any_db, job_id, 1, jobs.DONE)
    assert claim(any_db, job_id, owner="w2").claim is Claim.FINISHED


def test_a_dead_owners_job_is_taken_over_and_its_attempt_marked_crashed(any_db: Database) -> None:
    job_id = add_job(any_db)
    claim(any_db, job_id, owner="w1")
    second = claim(any_db, job_id, owner="w2", alive=False)
    assert second.claim is Claim.RUN and second.attempt == 2
    with any_db.read() as conn:
        outcomes = [a["outcome"] for a in jobs.attempts(conn, job_id)]
    assert outcomes == ["crashed", None]


def test_a_job_whose_worker_dies_n_times_becomes_a_poison_failure(any_db: Database) -> None:
    job_id = add_job(any_db)
    for _ in range(3):
        assert claim(any_db, job_id, alive=False).claim is Claim.RUN
    assert claim(any_db, job_id, alive=False).claim is Claim.POISON
    with any_db.read() as conn:
        row = jobs.get(conn, job_id)
        failure = failures.for_job(conn, job_id)
    assert row is not None and row["status"] == jobs.DEAD and row["starts"] == 3
    assert (
        failure is not None
        and failure["error_class"] == "PoisonJob"
        and failure["status"] == "open"
    )
    assert claim(any_db, job_id, alive=False).claim is Claim.FINISHED


def test_retry_then_failure_then_replay_resolves_and_settles_audit(any_db: Database) -> None:
    job_id = add_job(any_db)
    claim(any_db, job_id)
    finish(any_db, job_id, 1, jobs.RETRYING, error_class="UnavailableError", error="503")
    assert claim(any_db, job_id).attempt == 2
    finish(any_db, job_id, 2, jobs.FAILED, error_class="RejectedError", error="422 bad field")
    with any_db.write() as conn:
        failure = failures.for_job(conn, job_id)
        assert failure is not None
        assert (failure["error_class"], failure["attempts"]) == ("RejectedError", 2)
        jobs.reset_for_replay(conn, job_id)
        failures.set_status(conn, failure["id"], failures.REPLAYING)
        audit_id = audit.add(
            conn,
            school="default",
            who="ops",
            action="replay",
            target="failure:1",
            detail={},
            job_id=job_id,
        )
    assert claim(any_db, job_id).attempt == 3
    finish(any_db, job_id, 3, jobs.DONE)
    with any_db.write() as conn:
        audit.settle_for_job(conn, job_id, audit.SUCCEEDED)
        entry = audit.get(conn, audit_id)
        failure = failures.for_job(conn, job_id)
        history = [(a["attempt"], a["outcome"]) for a in jobs.attempts(conn, job_id)]
    assert entry is not None and entry["outcome"] == "succeeded"
    assert failure is not None and failure["status"] == "resolved"
    assert history == [(1, "retry"), (2, "failed"), (3, "ok")]


def test_stuck_finds_never_enqueued_and_overdue_jobs_only(any_db: Database) -> None:
    fresh, never_sent, sent = add_job(any_db, "a"), add_job(any_db, "b"), add_job(any_db, "c")
    now = utcnow()
    with any_db.write() as conn:
        conn.execute(
            sa.text("update jobs set created_at = :t where id in (:b, :c)"),
            {"t": now - timedelta(seconds=30), "b": never_sent, "c": sent},
        )
        jobs.mark_enqueued(conn, [sent], at=now - timedelta(seconds=20))
        found = jobs.stuck(
            conn,
            now=now,
            enqueue_grace=timedelta(seconds=5),
            requeue_after=timedelta(minutes=10),
            running_stale_after=timedelta(minutes=15),
        )
    assert [r["id"] for r in found] == [never_sent]
    assert fresh != never_sent


def test_effects_are_recorded_once(any_db: Database) -> None:
    with any_db.write() as conn:
        assert effects.record(conn, school="default", key="x:1", job_id=None, detail={}) is True
        assert effects.record(conn, school="default", key="x:1", job_id=None, detail={}) is False
        assert effects.exists(conn, "x:1")


class RecordingQueue:
    def __init__(self) -> None:
        self.sent: list[jobs.JobRef] = []

    def send(self, refs: list[jobs.JobRef]) -> bool:
        self.sent.extend(refs)
        return True


def test_two_scheduler_replicas_enqueue_each_slot_once(any_db: Database) -> None:
    schedule = [Periodic(name="relay", actor="relay_jobs", every_s=10)]
    queues = [RecordingQueue(), RecordingQueue()]
    replicas = [Scheduler(any_db, q, schedule) for q in queues]  # type: ignore[arg-type]
    start = utcnow().replace(microsecond=0)
    for second in range(25):
        for replica in replicas:
            replica.tick(start + timedelta(seconds=second))
    sent = queues[0].sent + queues[1].sent
    slots = {
        Periodic("relay", "relay_jobs", 10).slot(start + timedelta(seconds=s)) for s in range(25)
    }
    assert len(sent) == len(slots)
    with any_db.read() as conn:
        rows = conn.execute(sa.text("select school, dedup_key from jobs")).all()
    assert len(rows) == len(slots) and {r[0] for r in rows} == {SYSTEM_SCHOOL}


def test_sqlite_concurrent_read_then_write_transactions_wait_instead_of_failing(
    tmp_path: Any,
) -> None:
    from schoolsync.core.db.migrate import upgrade

    db = Database(f"sqlite:///{tmp_path / 'c.db'}")
    upgrade(db)
    errors: list[BaseException] = []

    def worker(n: int) -> None:
        try:
            for i in range(20):
                with db.write() as conn:
                    conn.execute(sa.select(sa.func.count()).select_from(failures_table)).scalar()
                    jobs.add(conn, school="default", actor="a", args={}, dedup_key=f"{n}-{i}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with db.read() as conn:
        assert conn.execute(sa.text("select count(*) from jobs")).scalar() == 120
    assert job_attempts is not None


def test_one_batch_with_a_repeated_event_stores_it_once(any_db: Database) -> None:
    records = [
        InboxRecord(school="default", source="generic", dedup_key=key, body=b"{}")
        for key in ("a", "b", "a", "c")
    ]
    with any_db.write() as conn:
        ids = inbox.insert_many(conn, records)
        again = inbox.insert_many(conn, records[:2])
    assert ids[0] is not None and ids[1] is not None and ids[3] is not None
    assert ids[2] is None
    assert again == [None, None]
