"""Engines for SQLite (embedded default) and PostgreSQL (production), and schema upgrades."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import URL, make_url

from renewly.shared.errors import BillingError

MIGRATIONS = Path(__file__).with_name("migrations")


def normalize_url(url: str) -> str:
    """Accept plain postgresql:// URLs and use psycopg 3 for them."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def sqlite_file(url: URL) -> str | None:
    """The file of an SQLite database, in either form of its URL (sqlite:///path, or
    sqlite:///file:path?mode=ro&uri=true); None for a database in memory, or not SQLite."""
    database = url.database or ""
    if url.get_backend_name() != "sqlite":
        return None
    if url.query.get("uri") in ("true", "1") and database.startswith("file:"):
        if url.query.get("mode") == "memory":
            return None
        database = database.removeprefix("file:")
    return database if database and database != ":memory:" else None


def make_engine(url: str) -> Engine:
    url = normalize_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})
        _sqlite_behaves(engine)
        return engine
    return create_engine(url, pool_pre_ping=True)


def _sqlite_behaves(engine: Engine) -> None:
    """Foreign keys on, WAL, and BEGIN IMMEDIATE so that two writers queue instead of deadlocking
    (a connection opened with execution_options(read_only=True) begins DEFERRED)."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None  # let SQLAlchemy's begin event issue BEGIN
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection):
        # A read marked read_only takes no write lock: in WAL mode it never waits for a writer.
        read_only = connection.get_execution_options().get("read_only", False)
        connection.exec_driver_sql("BEGIN DEFERRED" if read_only else "BEGIN IMMEDIATE")


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    command.upgrade(alembic_config(engine), revision)


def head_revision() -> str:
    return ScriptDirectory.from_config(alembic_config(None)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


class SchemaOutOfDate(BillingError):
    code = "schema_out_of_date"


def ensure_schema(engine: Engine) -> None:
    """Upgrade an empty database by itself; refuse to run on an older schema that holds data."""
    current = current_revision(engine)
    if current == head_revision():
        return
    if current is None and not _has_tables(engine):
        upgrade(engine)
        return
    raise SchemaOutOfDate(f"the database schema is at {current or 'an unknown revision'}, "
                          f"this Renewly needs {head_revision()}: run `renewly db upgrade` first")


def _has_tables(engine: Engine) -> bool:
    return bool(inspect(engine).get_table_names())
