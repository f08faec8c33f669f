"""Migration 0021 (the billing portal's links and sessions): on a database with accounts already,
and back. A member deleted takes their links and sessions along (ON DELETE CASCADE), as the
retention batch deletes an account's members (R10.1)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text

from renewly.adapters.db.engine import alembic_config, current_revision, head_revision, upgrade
from tests.adapters.test_migrations import database_at, stored

AT = datetime(2026, 1, 1, tzinfo=UTC)


def before_0021() -> str:
    """The revision 0021 follows (the chain is set when the branches meet)."""
    return ScriptDirectory.from_config(alembic_config(None)).get_revision("0021").down_revision


@pytest.fixture(params=["sqlite", "postgresql"])
def engine_before_0021(request, tmp_path):
    with database_at(request.param, tmp_path, before_0021()) as engine:
        yield engine


def test_0021_links_and_sessions_go_with_their_member_and_back(engine_before_0021):
    engine = engine_before_0021
    at = stored(engine, AT)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO accounts (name, locale, timezone, currency, status, buyer_name, created_at, "
                          "updated_at) VALUES ('Acme', 'en', 'UTC', 'USD', 'active', 'Acme', :at, :at)"), {"at": at})
        conn.execute(text("INSERT INTO members (account_id, email, role, created_at) "
                          "VALUES (1, 'admin@acme.test', 'admin', :at)"), {"at": at})
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO portal_links (member_id, token_hash, created_by, created_at, expires_at) "
                          "VALUES (1, :hash, 'test', :at, :at)"), {"hash": "a" * 64, "at": at})
        conn.execute(text("INSERT INTO portal_sessions (member_id, secret_hash, created_at, last_seen_at, expires_at)"
                          " VALUES (1, :hash, :at, :at, :at)"), {"hash": "b" * 64, "at": at})
        conn.execute(text("DELETE FROM members WHERE id = 1"))
        assert [conn.execute(text(f"SELECT count(*) FROM {table}")).scalar_one()
                for table in ("portal_links", "portal_sessions")] == [0, 0]

    command.downgrade(alembic_config(engine), before_0021())
    assert {"portal_links", "portal_sessions"} & set(inspect(engine).get_table_names()) == set()
    upgrade(engine)
    assert current_revision(engine) == head_revision()
