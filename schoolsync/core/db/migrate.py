"""Alembic, driven from code: ``schoolsync migrate`` and ``run`` call ``upgrade``."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

from schoolsync.core.db.engine import Database


def _config(db: Database) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", "schoolsync.core.db:migrations")
    cfg.attributes["database"] = db
    return cfg


def upgrade(db: Database, revision: str = "head") -> None:
    """Bring the schema to ``revision`` (idempotent)."""
    command.upgrade(_config(db), revision)


def head_revision(db: Database) -> str | None:
    return ScriptDirectory.from_config(_config(db)).get_current_head()


def current_revision(db: Database) -> str | None:
    with db.engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def is_current(db: Database) -> bool:
    """Whether the database is at the newest migration."""
    return current_revision(db) == head_revision(db)
