"""Group commit for webhook ingest.

One writer thread owns inbox writes: it takes every request waiting, stores them in one
transaction (inbox row + job row each), commits, enqueues their jobs in one Redis round trip,
and only then lets each request answer. Nothing is answered 2xx before it is committed; SQLite's
single writer is fed by one thread instead of threads fighting over its lock.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

from schoolsync.core.db import Database
from schoolsync.core.logging import get_logger
from schoolsync.core.stores import inbox, jobs
from schoolsync.core.stores.inbox import InboxRecord
from schoolsync.sync_jobs.names import PROCESS_INBOX_BATCH, PROCESS_INBOX_EVENT
from schoolsync.sync_jobs.queue import JobQueue

log = get_logger(__name__)


@dataclass(frozen=True)
class Stored:
    inbox_id: int | None  # None: a duplicate of a stored event
    enqueued: bool


_STOP = object()


class InboxWriter:
    def __init__(
        self,
        db: Database,
        job_queue: JobQueue,
        *,
        max_batch: int = 500,
        batched_sources: frozenset[str] = frozenset(),
    ) -> None:
        self.db = db
        self.job_queue = job_queue
        self.max_batch = max_batch
        # sources whose events are processed together: one job per source and school per
        # commit (a launch's thousands of GetCourse callbacks), instead of one job per event
        self.batched_sources = batched_sources
        self._pending: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="inbox-writer", daemon=True)
        # Jobs sent to Redis whose enqueue time is not written yet: it goes into the next batch's
        # transaction, or its own one when the writer is idle, not a second commit per batch.
        self._sent: list[int] = []

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._pending.put(_STOP)
        self._thread.join(timeout=10)

    def submit(self, record: InboxRecord) -> Future[Stored]:
        future: Future[Stored] = Future()
        self._pending.put((record, future))
        return future

    def _run(self) -> None:
        while True:
            try:
                item = self._pending.get(timeout=0.2 if self._sent else None)
            except queue.Empty:
                self._note_sent()
                continue
            if item is _STOP:
                self._note_sent()
                return
            batch = [item]
            while len(batch) < self.max_batch:
                try:
                    more = self._pending.get_nowait()
                except queue.Empty:
                    break
                if more is _STOP:
                    self._pending.put(_STOP)
                    break
                batch.append(more)
            self._write(batch)  # type: ignore[arg-type]

    def _write(self, batch: list[tuple[InboxRecord, Future[Stored]]]) -> None:
        try:
            results, refs = self._store([record for record, _ in batch])
        except Exception as exc:  # the database is down or locked: every request gets a 503
            log.error("could not store webhooks", count=len(batch), error=str(exc))
            for _, future in batch:
                future.set_exception(exc)
            return
        enqueued = self.job_queue.send(refs, note=False)
        if enqueued:
            self._sent.extend(ref.id for ref in refs)
        for (_, future), inbox_id in zip(batch, results, strict=True):
            future.set_result(Stored(inbox_id, enqueued))

    def _note_sent(self) -> None:
        """Record the enqueue time of jobs sent while nothing else was written."""
        try:
            with self.db.write() as conn:
                jobs.mark_enqueued(conn, self._sent)
        except Exception as exc:  # sent anyway; at worst the relay sends a duplicate
            log.warning("could not note enqueue time", jobs=len(self._sent), error=str(exc))
        self._sent = []

    def _store(self, records: list[InboxRecord]) -> tuple[list[int | None], list[jobs.JobRef]]:
        """One transaction: the enqueue time of the last batch's jobs, every inbox row, then a
        job for each new one."""
        sent, self._sent = self._sent, []
        with self.db.write() as conn:
            jobs.mark_enqueued(conn, sent)
            ids = inbox.insert_many(conn, records)
            single: list[tuple[str, str, dict[str, Any], str]] = []
            grouped: dict[tuple[str, str], list[int]] = {}
            for record, inbox_id in zip(records, ids, strict=True):
                if inbox_id is None or record.status != inbox.RECEIVED:
                    continue
                if record.source in self.batched_sources:
                    grouped.setdefault((record.school, record.source), []).append(inbox_id)
                else:
                    single.append(
                        (
                            record.school,
                            PROCESS_INBOX_EVENT,
                            {"inbox_id": inbox_id},
                            f"inbox:{inbox_id}",
                        )
                    )
            single += [
                (
                    school,
                    PROCESS_INBOX_BATCH,
                    {"inbox_ids": batch_ids},
                    f"inbox-batch:{batch_ids[0]}:{len(batch_ids)}",
                )
                for (school, _source), batch_ids in grouped.items()
            ]
            refs = jobs.add_many(conn, school_actor_args_keys=single)
        return ids, refs
