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


OWN_SELLER = {"name": "Acme Billing SARL", "vat_id": "FR40123456824", "registration": "RCS Lyon 123 456 824",
              "siren": "123456824", "siret": "12345682400010"}


@pytest.mark.parametrize("kept", ["name", "vat_id", "registration", "siren"])
def test_a_seller_that_keeps_any_of_the_demo_s_name_vat_id_registration_or_siren_is_the_demo_s(kept):
    own = {**OWN_SELLER, "siret": ""}  # a SIRET starts with its SIREN, whichever is kept
    assert not SellerIdentity(**own).is_the_demo_s()
    assert SellerIdentity(**{**own, kept: getattr(SellerIdentity(), kept)}).is_the_demo_s()


def test_the_demo_seller_is_refused_on_the_system_clock_only():
    load_settings(config_file=None, clock="test").refuse_the_demo_seller_on_the_system_clock()
    with pytest.raises(InvalidInput, match="invoices would name the demo seller"):
        load_settings(config_file=None, clock="system").refuse_the_demo_seller_on_the_system_clock()
    load_settings(config_file=None, clock="system", seller=OWN_SELLER).refuse_the_demo_seller_on_the_system_clock()


@pytest.mark.parametrize("seller, reason", [
    ({"siren": "123456789"}, "seller.siren: Value error, a SIREN is 9 digits with a valid check digit"),
    ({"siren": "12345678"}, "seller.siren: Value error, a SIREN is 9 digits"),
    ({"siret": "12345678200011"}, "seller.siret: Value error, a SIRET is 14 digits with a valid check digit"),
    ({"siren": "123456824", "siret": "12345678200010"}, "does not start with the SIREN 123456824"),
    ({"siren": "", "siret": ""}, "a seller in France prints its SIREN on every invoice"),
    ({"payment_terms_days": 61}, "seller.payment_terms_days: "),
    ({"late_payment_rate": "0"}, "seller.late_payment_rate: "),
    ({"late_payment_rate": "100"}, "seller.late_payment_rate: "),
])
def test_the_seller_s_legal_mentions_are_checked_at_start(seller, reason):
    with pytest.raises(InvalidInput, match=reason):
        load_settings(config_file=None, seller=seller)


def test_a_seller_outside_france_needs_no_siren_and_every_mention_is_frozen_as_text():
    seller = load_settings(config_file=None, seller={"country": "DE", "siren": "", "siret": ""}).seller
    snapshot = seller.snapshot()
    assert snapshot["siren"] == "" and snapshot["payment_terms_days"] == "30"
    assert snapshot["late_payment_rate"] == "12.15" and snapshot["recovery_indemnity_eur"] == "40"
    assert all(isinstance(value, str) for value in snapshot.values())


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


@pytest.mark.parametrize("origin", ["app.example.com", "https://app.example.com/dashboard", "https://*.example.com",
                                    "http://app.example.com", "https://app.example.com 'unsafe-inline'",
                                    "https://app.example.com;script-src *", "https://a:b@app.example.com", "*",
                                    "'self'", "https://app.example.com:99999", "https://app.example.com?x=1", ""])
def test_an_embed_origin_is_a_scheme_host_and_port_only_checked_at_start(origin):
    """It goes into the embed's Content-Security-Policy (frame-ancestors): nothing else may."""
    with pytest.raises(InvalidInput, match=r"^configuration: embed.allowed_origins.*an allowed origin is https://"):
        load_settings(config_file=None, database_url="sqlite:///renewly.db", embed={"allowed_origins": [origin]})


def test_embed_origins_are_kept_as_the_browser_names_them():
    settings = load_settings(config_file=None, database_url="sqlite:///renewly.db", embed={"allowed_origins": [
        "https://App.Example.com/", "https://app.example.com:8443", "http://localhost:5173", "http://127.0.0.1"]})
    assert settings.embed.allowed_origins == ["https://app.example.com", "https://app.example.com:8443",
                                              "http://localhost:5173", "http://127.0.0.1"]
