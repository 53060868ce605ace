"""The state store: tables, the engine (SQLite or PostgreSQL) and migrations."""

from schoolsync.core.db.engine import Database
from schoolsync.core.db.tables import metadata

__all__ = ["Database", "metadata"]
