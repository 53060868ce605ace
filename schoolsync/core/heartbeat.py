"""Liveness heartbeats: a role touches ``<data_dir>/health/<role>`` every few seconds and
``schoolsync healthcheck <role>`` reads how old the file is.

The file's modification time is the heartbeat; its content is never read. Several processes
of one role (the worker's) touch the same file, which is fine: any one of them alive and
beating keeps it fresh, and the container's health is about the container.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from schoolsync.core.logging import get_logger

log = get_logger(__name__)

BEAT_EVERY_S = 10.0
"""How often a role touches its heartbeat file."""
MAX_AGE_S = 60.0
"""A heartbeat older than this means the role is stuck or gone."""


def heartbeat_path(data_dir: Path, role: str) -> Path:
    """Where ``role`` (worker, scheduler) keeps its heartbeat."""
    return data_dir / "health" / role


def touch(path: Path) -> None:
    """Set the heartbeat to now, creating the file (and its directory) if needed.

    Raises:
        OSError: the data dir is not writable.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(exist_ok=True)  # an existing file gets its times set to now


def age(path: Path, *, now: float | None = None) -> float | None:
    """Seconds since the last beat (never negative), or None when there was none yet."""
    try:
        modified = path.stat().st_mtime
    except FileNotFoundError:
        return None
    return max(0.0, (time.time() if now is None else now) - modified)


class Heartbeat:
    """A heartbeat to call from a loop as often as it likes: it touches the file at most every
    ``every_s`` seconds, and a write error is logged (once until it works again), never raised:
    a full disk must not stop a role, only make its health check fail."""

    def __init__(self, path: Path, *, every_s: float = BEAT_EVERY_S) -> None:
        self.path = path
        self.every_s = every_s
        self._last: float | None = None
        self._failing = False

    def beat(self) -> None:
        now = time.monotonic()
        if self._last is not None and now - self._last < self.every_s:
            return
        try:
            touch(self.path)
        except OSError as exc:
            if not self._failing:
                log.warning(
                    "heartbeat: cannot write", path=str(self.path), error=type(exc).__name__
                )
            self._failing = True
            return
        self._failing = False
        self._last = now


def touch_every(path: Path, every_s: float, stop: threading.Event) -> None:
    """Touch ``path`` now and every ``every_s`` seconds until ``stop`` is set."""
    heartbeat = Heartbeat(path, every_s=0)  # the wait below is the pace
    while True:
        heartbeat.beat()
        if stop.wait(every_s):
            return


def start_heartbeat(path: Path, *, every_s: float = BEAT_EVERY_S) -> threading.Event:
    """Run :func:`touch_every` in a daemon thread; set the returned event to stop it."""
    stop = threading.Event()
    threading.Thread(
        target=touch_every, args=(path, every_s, stop), name="heartbeat", daemon=True
    ).start()
    return stop
