"""Alembic environment: migrations run on the engine Renewly hands over, SQLite or PostgreSQL."""

from alembic import context

from renewly.adapters.db.tables import metadata

engine = context.config.attributes["engine"]

with engine.connect() as connection:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:
        # SQLite changes a table's constraints by rebuilding it, and dropping the old table would
        # check (and refuse) every row that points at it. Foreign keys go off for the migration,
        # outside any transaction (SQLite ignores the pragma inside one), and are checked at its end.
        connection.connection.driver_connection.execute("PRAGMA foreign_keys = OFF")
    try:
        with connection.begin():
            context.configure(connection=connection, target_metadata=metadata, render_as_batch=True,
                              transactional_ddl=True)
            context.run_migrations()
            if sqlite and (broken := connection.exec_driver_sql("PRAGMA foreign_key_check").all()):
                raise RuntimeError(f"the migration leaves rows pointing at nothing: {broken[:5]}")
    finally:
        if sqlite:
            connection.connection.driver_connection.execute("PRAGMA foreign_keys = ON")
