"""Configuration: with no `payments.simulator_url`, the simulated gateway's ledger goes with the
configured database (a file beside an SQLite database's, the same PostgreSQL database), never
into the working directory of whoever runs the command."""

from __future__ import annotations

import pytest

from renewly.settings import load_settings


def ledger_for(database_url: str, **payments: str) -> str:
    return load_settings(config_file=None, database_url=database_url, payments=payments).simulator_url()


@pytest.mark.parametrize("database, ledger", [
    ("sqlite:///./renewly.db", "sqlite:///./renewly-gateway.db"),
    ("sqlite:///books/renewly.db", "sqlite:///books/renewly-gateway.db"),
    ("sqlite:////srv/billing/renewly.db", "sqlite:////srv/billing/renewly-gateway.db"),
    ("sqlite:////srv/billing/renewly.sqlite", "sqlite:////srv/billing/renewly.sqlite-gateway.db"),
    ("sqlite:////srv/billing/renewly.db?timeout=5", "sqlite:////srv/billing/renewly-gateway.db?timeout=5"),
])
def test_on_sqlite_the_gateway_ledger_is_a_file_beside_the_database(database, ledger):
    assert ledger_for(database) == ledger


def test_on_postgresql_the_gateway_ledger_is_in_the_same_database():
    database = "postgresql://renewly:secret@db.internal/renewly"
    assert ledger_for(database) == database


def test_payments_simulator_url_says_where_the_ledger_is_whatever_the_database():
    for database in ("sqlite:////srv/billing/renewly.db", "postgresql://renewly@db.internal/renewly"):
        assert ledger_for(database, simulator_url="sqlite:////var/lib/gateway.db") == "sqlite:////var/lib/gateway.db"
