"""Configuration: with no `payments.simulator_url`, the simulated gateway's ledger goes with the
configured database (a file beside an SQLite database's, the same PostgreSQL database), never
into the working directory of whoever runs the command."""

from __future__ import annotations

import pytest

from renewly.config.settings import SellerIdentity, load_settings
from renewly.shared.errors import InvalidInput


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


@pytest.mark.parametrize("section, key, value", [
    ("payments", "verification_units", 99_999_999_999_999),
    ("batches", "renewal_interval_minutes", 99_999_999_999_999),
    ("payments", "collect_interval_minutes", 10081),
    ("payments", "lease_seconds", 10**20),
    ("payments", "simulator_latency_ms", 10**9),
    ("payments", "rate_limit_per_second", float("nan")),
    (None, "default_tax_rate", "1e30"),
    (None, "default_tax_rate", "-5"),
])
def test_a_setting_out_of_its_bounds_is_refused_with_its_name(section, key, value):
    """Unbounded, a huge verification amount overflowed the invoice bounds and a huge interval
    overflowed the clock's arithmetic, far from the setting that caused it."""
    from renewly.shared.errors import InvalidInput
    name = f"{section}.{key}" if section else key
    given = {section: {key: value}} if section else {key: value}
    with pytest.raises(InvalidInput, match=f"^configuration: {name}: "):
        load_settings(config_file=None, database_url="sqlite:///renewly.db", **given)


@pytest.mark.parametrize("kept", ["name", "vat_id", "registration"])
def test_a_seller_that_keeps_any_of_the_demo_s_name_vat_id_or_registration_is_the_demo_s(kept):
    own = {"name": "Acme Billing SARL", "vat_id": "FR40123456824", "registration": "RCS Lyon 1"}
    assert not SellerIdentity(**own).is_the_demo_s()
    assert SellerIdentity(**{**own, kept: getattr(SellerIdentity(), kept)}).is_the_demo_s()


def test_the_demo_seller_is_refused_on_the_system_clock_only():
    load_settings(config_file=None, clock="test").refuse_the_demo_seller_on_the_system_clock()
    with pytest.raises(InvalidInput, match="invoices would name the demo seller"):
        load_settings(config_file=None, clock="system").refuse_the_demo_seller_on_the_system_clock()
    load_settings(config_file=None, clock="system", seller={
        "name": "Acme Billing SARL", "vat_id": "FR40123456824", "registration": "RCS Lyon 1",
    }).refuse_the_demo_seller_on_the_system_clock()


# -- [mail] -------------------------------------------------------------------------------------

def test_without_an_smtp_host_delivery_is_off():
    assert not load_settings(config_file=None).mail.configured


def test_an_smtp_host_needs_a_sender_address_and_username_and_password_go_together():
    with pytest.raises(InvalidInput, match="host is set but not from_address"):
        load_settings(config_file=None, mail={"host": "smtp.example"})
    with pytest.raises(InvalidInput, match="is not an e-mail address"):
        load_settings(config_file=None, mail={"host": "smtp.example", "from_address": "billing"})
    with pytest.raises(InvalidInput, match="username and password go together"):
        load_settings(config_file=None, mail={"host": "smtp.example", "from_address": "b@seller.example",
                                              "username": "renewly"})
    with pytest.raises(InvalidInput, match="mail.connections"):
        load_settings(config_file=None, mail={"connections": 0})


def test_the_port_follows_the_security_and_the_message_ids_the_sender_s_domain():
    mail = load_settings(config_file=None, mail={"host": "smtp.example", "security": "tls",
                                                 "from_address": "Billing <billing@seller.example>"}).mail
    assert (mail.smtp_port, mail.sender_domain) == (465, "seller.example")


def test_the_smtp_password_is_never_printed(monkeypatch):
    monkeypatch.setenv("RENEWLY_MAIL__PASSWORD", "s3cret-pw")
    settings = load_settings(config_file=None, mail={"host": "smtp.example", "from_address": "b@seller.example",
                                                     "username": "renewly"})
    assert settings.mail.password.get_secret_value() == "s3cret-pw"
    assert "s3cret-pw" not in repr(settings) and "s3cret-pw" not in str(settings.model_dump())
