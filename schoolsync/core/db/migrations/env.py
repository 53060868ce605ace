"""Alembic environment: the database handle is passed in by ``core.db.migrate``."""

from __future__ import annotations

from alembic import context

from schoolsync.core.db.tables import metadata

database = context.config.attributes["database"]
with database.engine.connect() as connection:
    database_is_sqlite = connection.dialect.name == "sqlite"
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=database_is_sqlite,
        transactional_ddl=True,
    )
    with context.begin_transaction():
        context.run_migrations()
    connection.commit()
