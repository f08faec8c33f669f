"""Migration 0022 (the support console's staff, their sessions, refused sign-ins): on a database
at 0021, and back. A staff member's role is support or finance, an address is one staff member,
and their sessions go with them (ON DELETE CASCADE), the same on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from renewly.adapters.db.engine import alembic_config, current_revision, head_revision, upgrade
from tests.adapters.test_migrations import database_at, stored

AT = datetime(2026, 1, 1, tzinfo=UTC)
TABLES = {"staff", "staff_sessions", "staff_sign_in_failures"}
INSERT_STAFF = text("INSERT INTO staff (email, name, role, password_hash, created_at) "
                    "VALUES (:email, 'Sam', :role, '$argon2id$...', :at)")


@pytest.fixture(params=["sqlite", "postgresql"])
def engine_at_0021(request, tmp_path):
    with database_at(request.param, tmp_path, "0021") as engine:
        yield engine


def test_0022_staff_roles_addresses_and_sessions_and_back(engine_at_0021):
    engine = engine_at_0021
    upgrade(engine)
    assert current_revision(engine) == head_revision()
    at = stored(engine, AT)
    with engine.begin() as conn:
        conn.execute(INSERT_STAFF, {"email": "sam@renewly.example", "role": "support", "at": at})
        conn.execute(text("INSERT INTO staff_sessions (staff_id, secret_hash, created_at, last_seen_at, expires_at) "
                          "VALUES (1, :hash, :at, :at, :at)"), {"hash": "b" * 64, "at": at})
        conn.execute(text("INSERT INTO staff_sign_in_failures (key, at) VALUES ('ip:192.0.2.1', :at)"), {"at": at})
    for email, role in (("sam@renewly.example", "finance"), ("other@renewly.example", "admin")):
        with pytest.raises(IntegrityError), engine.begin() as conn:
            conn.execute(INSERT_STAFF, {"email": email, "role": role, "at": at})
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM staff WHERE id = 1"))
        assert conn.execute(text("SELECT count(*) FROM staff_sessions")).scalar_one() == 0

    command.downgrade(alembic_config(engine), "0021")
    assert TABLES & set(inspect(engine).get_table_names()) == set()
    upgrade(engine)
    assert TABLES <= set(inspect(engine).get_table_names())
