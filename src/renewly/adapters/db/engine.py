"""Engines for SQLite (embedded default) and PostgreSQL (production), and schema upgrades."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import DisconnectionError

from renewly.shared.errors import BillingError

if TYPE_CHECKING:
    from alembic.config import Config

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


def missing_database_file(url: str) -> str | None:
    """The file `url` names when it is an SQLite database whose file does not exist (connecting
    would create it, empty); None for a database that is there, in memory, or on a server."""
    path = sqlite_file(make_url(url))
    return path if path is not None and not Path(path).is_file() else None


@contextmanager
def read_only_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that writes nothing: on SQLite it takes no write lock (it begins DEFERRED,
    and in WAL mode never waits for a writer); PostgreSQL refuses any write in it."""
    options: dict[str, bool] = {"read_only": True}
    if engine.dialect.name == "postgresql":
        options["postgresql_readonly"] = True
    with engine.connect().execution_options(**options) as conn, conn.begin():
        yield conn


@contextmanager
def reading(engine: Engine) -> Iterator[Connection]:
    """A connection for reads (a request's, a listing's), writing nothing but what a statement
    commits alone. On PostgreSQL it is in autocommit: each statement sees what was committed
    when it began, as it would in the READ COMMITTED transaction `engine.connect()` opens, but
    without that transaction's BEGIN and ROLLBACK, two round trips to the server of the three a
    one-query read made. On SQLite a DEFERRED transaction: no write lock (`_sqlite_behaves`)."""
    if engine.dialect.name == "postgresql":
        options: dict[str, Any] = {"isolation_level": "AUTOCOMMIT"}
    else:
        options = {"read_only": True}
    with engine.connect().execution_options(**options) as conn:
        yield conn


# A pooled connection idle for longer than this is checked (a `SELECT 1`) before it is handed
# out: one that the server dropped meanwhile (a restart, an idle timeout, a firewall) is replaced
# instead of failing its first statement. One in steady use is not: the check was a round trip on
# every checkout (SQLAlchemy's pool_pre_ping), a third of an API read's; a connection that died
# under load fails its statement once (an API request answers 503 with Retry-After, a batch stops
# and is run again), and SQLAlchemy then replaces every connection the pool held before.
CHECKED_AFTER_IDLE_SECONDS = 10.0
# At most this many connections a process, as SQLAlchemy's default allows (5 kept, 10 more made
# when needed), but all kept once made: with the default, a connection beyond the fifth was
# closed when given back, and an API serving more than five requests at once opened a new one
# (a server process forked, a login) for one request in four.
POOLED_CONNECTIONS = 15


def make_engine(url: str) -> Engine:
    url = normalize_url(url)
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 30})
        _sqlite_behaves(engine)
        return engine
    engine = create_engine(url, pool_size=POOLED_CONNECTIONS, max_overflow=0)
    _checked_after_idle(engine)
    return engine


def _checked_after_idle(engine: Engine) -> None:
    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection, record):
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_connection, record, _proxy):
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < CHECKED_AFTER_IDLE_SECONDS:
            return
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as error:
            if not engine.dialect.is_disconnect(error, dbapi_connection, None):
                raise
            # The pool discards this connection and hands out another, as pool_pre_ping does.
            raise DisconnectionError(f"a pooled connection was lost: {error}") from error


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


def alembic_config(engine: Engine | None) -> Config:
    from alembic.config import Config  # Alembic is slow to import: only an upgrade needs it
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    from alembic import command
    command.upgrade(alembic_config(engine), revision)


# What every migration file says of itself (Alembic's template): `revision = '0011'`,
# `down_revision = '0010'` (None for the first one).
_REVISION_LINE = re.compile(r"""^(down_revision|revision)\s*(?::[^=]*)?=\s*(?:None|['"]([^'"]+)['"])\s*$""",
                            re.MULTILINE)


@cache
def head_revision() -> str:
    """The revision this Renewly's schema is at: the one revision no other follows. Read from the
    migration files' `revision` lines at every command's start (importing them through Alembic
    costs a tenth of a second); Alembic decides whenever the history is not one plain line."""
    revisions: set[str] = set()
    followed: set[str | None] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        said: dict[str, str | None] = {match.group(1): match.group(2)
                                       for match in _REVISION_LINE.finditer(path.read_text(encoding="utf-8"))}
        if "revision" not in said or said["revision"] is None or "down_revision" not in said:
            return alembic_head_revision()
        revisions.add(said["revision"])
        followed.add(said["down_revision"])
    heads = revisions - followed
    return heads.pop() if len(heads) == 1 else alembic_head_revision()


def alembic_head_revision() -> str:
    from alembic.script import ScriptDirectory
    head = ScriptDirectory.from_config(alembic_config(None)).get_current_head()
    if head is None:
        raise RuntimeError(f"no migration in {MIGRATIONS / 'versions'}: this installation of Renewly is incomplete")
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database's schema is at (Alembic's `alembic_version` row), None if none."""
    with engine.connect() as connection:
        if not inspect(connection).has_table("alembic_version"):
            return None
        found = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    if len(found) > 1:  # branches: Alembic says which
        from alembic.runtime.migration import MigrationContext
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    return found[0] if found else None


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
