"""What services need, built once per process by the composition root and handed down."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy.engine import RowMapping

from schoolsync.core.config import AppConfig, School
from schoolsync.core.db import Database
from schoolsync.core.errors import ConfigError
from schoolsync.core.settings import JobSettings
from schoolsync.sync_jobs.platforms import Platforms
from schoolsync.sync_jobs.queue import JobQueue


@dataclass
class JobContext:
    config: AppConfig
    db: Database
    queue: JobQueue
    jobs: JobSettings
    data_dir: Path
    test_hooks: bool = False
    platforms: Platforms | None = None
    # inbox source name -> processor(context, inbox row id, job id)
    processors: dict[str, Callable[[JobContext, int, int | None], None]] = field(
        default_factory=dict
    )
    # inbox source name -> processor(context, inbox rows) for sources stored in batches
    batch_processors: dict[str, Callable[[JobContext, list[RowMapping]], None]] = field(
        default_factory=dict
    )

    def school(self, school_id: str) -> School:
        """The school's config. Raises ``ConfigError`` when the config no longer has it."""
        found = self.config.school(school_id)
        if found is None:
            raise ConfigError(f"school {school_id!r} is not in the config")
        return found
