"""adapters/db/engine.py: reads without a transaction's round trips, and connections the server
dropped replaced without a ping on every checkout."""

from __future__ import annotations

import sqlite3
from contextlib import closing

import pytest
from psycopg.pq import TransactionStatus
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from renewly.adapters.db import engine as engines
from renewly.adapters.db.engine import make_engine, reading, sqlite_file
from tests.conftest import drop_connection, drop_the_pool


def backend_pid(engine) -> int:
    with reading(engine) as conn:
        return conn.execute(text("SELECT pg_backend_pid()")).scalar_one()


def test_a_read_on_postgresql_holds_no_transaction_between_its_statements(pg_app):
    with reading(pg_app.engine) as conn:
        conn.execute(text("SELECT 1"))
        assert conn.connection.dbapi_connection.info.transaction_status == TransactionStatus.IDLE
    with pg_app.engine.connect() as conn:  # a use case's connection is transactional as before
        conn.execute(text("SELECT 1"))
        assert conn.connection.dbapi_connection.info.transaction_status == TransactionStatus.INTRANS


def test_a_read_on_sqlite_takes_no_write_lock(databases):
    app = databases.fresh_app("sqlite")
    path = sqlite_file(make_url(app.settings.database_url))
    with reading(app.engine) as conn:
        conn.execute(text("SELECT count(*) FROM accounts"))
        with closing(sqlite3.connect(path, timeout=0.1, isolation_level=None)) as writer:
            writer.execute("BEGIN IMMEDIATE")  # refused at once if the read held the write lock
            writer.execute("ROLLBACK")


def test_a_connection_dropped_while_idle_is_replaced_before_it_is_used(pg_app, monkeypatch):
    engine = make_engine(pg_app.settings.database_url)
    first = backend_pid(engine)
    drop_connection(first)
    monkeypatch.setattr(engines, "CHECKED_AFTER_IDLE_SECONDS", 0.0)
    assert backend_pid(engine) != first  # no error: the ping found it dead, the pool made another
    engine.dispose()


def test_a_connection_dropped_in_steady_use_fails_once_then_the_pool_recovers(pg_app):
    engine = make_engine(pg_app.settings.database_url)
    pids = drop_the_pool(engine)
    with pytest.raises(OperationalError) as lost, reading(engine) as conn:  # not checked: used a moment ago
        conn.execute(text("SELECT 1"))
    assert lost.value.connection_invalidated
    # SQLAlchemy then replaces every connection checked in before the failure: none fails again.
    assert not {backend_pid(engine) for _ in range(5)} & pids
    engine.dispose()
