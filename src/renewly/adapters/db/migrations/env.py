"""Alembic environment: migrations run on the engine Renewly hands over, SQLite or PostgreSQL."""

from alembic import context

from renewly.adapters.db.tables import metadata

engine = context.config.attributes["engine"]

with engine.begin() as connection:
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True,
                      transactional_ddl=True)
    context.run_migrations()
