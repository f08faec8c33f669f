"""The simulated gateway behaves like Stripe in test mode: the card number picks the outcome, a
repeated idempotency key gets the first answer and never a second charge, scripted faults lose
answers the way a network does, and its ledger is its own: an SQLite file, or on PostgreSQL a
schema of its own beside Renewly's tables."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import inspect, select, text

from renewly.adapters.clock import SystemClock
from renewly.adapters.db.engine import make_engine
from renewly.adapters.gateways.simulated import (
    LEDGER_SCHEMA,
    Fault,
    LedgerUnavailable,
    SimulatedGateway,
    sim_operations,
)
from renewly.payments.rules.charges import ChargeRequest, Outcome
from renewly.shared.errors import InvalidInput

NOW = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass
class FixedClock:
    instant: datetime = NOW

    def now(self) -> datetime:
        return self.instant


def ledger_url(request, tmp_path, kind: str) -> str:
    """An empty place for a ledger: an SQLite file, or the test PostgreSQL database emptied."""
    if kind == "sqlite":
        return f"sqlite:///{tmp_path}/gateway.db"
    url = request.getfixturevalue("postgres_url")
    request.getfixturevalue("postgres_reset")()  # drops the ledger's schema as well
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def gateway(request, tmp_path) -> SimulatedGateway:
    simulated = SimulatedGateway(ledger_url(request, tmp_path, request.param), FixedClock())
    yield simulated
    simulated.dispose()


def card_of(gateway: SimulatedGateway, number: str, exp_year: int = 2030) -> tuple[str, str]:
    """(customer, card token) for a card attached to a new customer."""
    customer = gateway.ensure_customer(1, "owner@acme.test", "Acme")
    token = gateway.tokenize(number, 12, exp_year)
    gateway.attach_card(customer, token)
    return customer, token


def charge(gateway: SimulatedGateway, customer: str, token: str, key: str = "key-1", amount: int = 1900):
    return gateway.charge(ChargeRequest(customer=customer, card_token=token, amount=amount, currency="USD",
                                        idempotency_key=key))


@pytest.mark.parametrize("number, authorization, charge_decline", [
    ("4242424242424242", None, None),
    ("4000000000000002", "generic_decline", "generic_decline"),
    ("4000000000009995", "insufficient_funds", "insufficient_funds"),
    ("4000000000000069", "expired_card", "expired_card"),
    ("4000000000000119", "processing_error", "processing_error"),
    ("4000000000000341", None, "card_declined"),
])
def test_r5_stripes_test_cards_pick_the_outcome(gateway, number, authorization, charge_decline):
    customer, token = card_of(gateway, number)
    held = gateway.authorize(customer, token, 100, "USD", "check-1")
    charged = charge(gateway, customer, token)
    assert (held.outcome, held.decline_code) == (Outcome.DECLINED if authorization else Outcome.SUCCEEDED,
                                                 authorization)
    assert (charged.outcome, charged.decline_code) == (Outcome.DECLINED if charge_decline else Outcome.SUCCEEDED,
                                                       charge_decline)


def test_r5_4_the_card_form_returns_a_token_brand_and_last_four_digits_only(gateway):
    customer = gateway.ensure_customer(1, "owner@acme.test", "Acme")
    token = gateway.tokenize("4242 4242 4242 4242", 12, 2030)
    saved = gateway.attach_card(customer, token)
    assert token.startswith("pm_sim_") and "4242424242424242" not in token
    assert (saved.token, saved.brand, saved.last4, saved.exp_month, saved.exp_year) == (token, "visa", "4242", 12, 2030)
    assert gateway.attach_card(customer, gateway.tokenize("5555555555554444", 1, 2031)).brand == "mastercard"


@pytest.mark.parametrize("number", ["4242424242424241", "42424242", "4242-abcd-4242-4242", ""])
def test_a_malformed_card_number_is_refused_by_the_card_form(gateway, number):
    with pytest.raises(InvalidInput) as refused:
        gateway.tokenize(number, 12, 2030)
    assert refused.value.code == "incorrect_number"


def test_a_token_of_another_customer_is_refused(gateway):
    token = gateway.tokenize("4242424242424242", 12, 2030)
    gateway.attach_card(gateway.ensure_customer(1, "a@a.test", "A"), token)
    with pytest.raises(InvalidInput):
        gateway.attach_card(gateway.ensure_customer(2, "b@b.test", "B"), token)


def test_a_card_past_its_expiry_is_declined_as_expired(gateway):
    customer, token = card_of(gateway, "4242424242424242", exp_year=2025)
    assert charge(gateway, customer, token).decline_code == "expired_card"


def test_the_same_idempotency_key_never_charges_twice_and_gets_the_first_answer(gateway):
    customer, token = card_of(gateway, "4242424242424242")
    first = charge(gateway, customer, token, key="invoice-1")
    again = charge(gateway, customer, token, key="invoice-1", amount=999_999)
    assert first.succeeded and again == first
    assert [(c.idempotency_key, c.amount) for c in gateway.ledger()] == [("invoice-1", 1900)]
    assert gateway.find("invoice-1") == first
    assert gateway.find("never-sent") is None


def test_a_timeout_after_the_charge_loses_the_answer_but_the_charge_stands(gateway):
    customer, token = card_of(gateway, "4242424242424242")
    gateway.script(Fault.TIMEOUT_AFTER)
    assert charge(gateway, customer, token).outcome == Outcome.UNKNOWN
    assert gateway.find("key-1").succeeded
    assert charge(gateway, customer, token).succeeded  # the fault was used up; the replay gets the answer
    assert gateway.charge_count() == 1


@pytest.mark.parametrize("fault", [Fault.TIMEOUT_BEFORE, Fault.SERVER_ERROR])
def test_a_request_lost_before_the_gateway_acted_leaves_no_trace(gateway, fault):
    customer, token = card_of(gateway, "4242424242424242")
    gateway.script(fault, count=2)
    assert charge(gateway, customer, token).outcome == Outcome.UNKNOWN
    assert charge(gateway, customer, token).outcome == Outcome.UNKNOWN
    assert gateway.find("key-1") is None and gateway.charge_count() == 0
    assert charge(gateway, customer, token).succeeded and gateway.charge_count() == 1


def test_r5_2_a_void_releases_the_hold_once(gateway):
    customer, token = card_of(gateway, "4242424242424242")
    held = gateway.authorize(customer, token, 100, "USD", "check-1")
    assert gateway.held_authorizations() == [held.reference]
    assert gateway.void(held.reference, "check-1-void").succeeded
    assert gateway.void(held.reference, "check-1-void").succeeded
    assert gateway.held_authorizations() == [] and gateway.charge_count() == 0


def test_latency_delays_every_call(gateway):
    customer, token = card_of(gateway, "4242424242424242")
    gateway.latency = 0.2
    started = time.perf_counter()
    charge(gateway, customer, token)
    assert time.perf_counter() - started >= 0.2


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_the_ledger_records_when_a_request_arrived_apart_from_when_it_was_done(request, tmp_path, kind):
    # What a gateway's cap counts is the arrival; `at` comes after the latency and the ledger's own reads.
    gateway = SimulatedGateway(ledger_url(request, tmp_path, kind), SystemClock(), latency=0.2)
    customer, token = card_of(gateway, "4242424242424242")
    charge(gateway, customer, token)
    held = gateway.authorize(customer, token, 100, "USD", "check-1")
    gateway.void(held.reference, "check-1-void")

    rows = ledger_operations(gateway)
    assert [row.kind for row in rows] == ["authorization", "charge", "void"]
    assert all(row.at - row.received_at >= timedelta(seconds=0.2) for row in rows)
    gateway.dispose()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_ledger_from_before_arrival_instants_gets_their_column(request, tmp_path, kind):
    url = ledger_url(request, tmp_path, kind)
    SimulatedGateway(url, FixedClock()).dispose()
    table = "sim_operations" if kind == "sqlite" else f"{LEDGER_SCHEMA}.sim_operations"
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text(f"ALTER TABLE {table} DROP COLUMN received_at"))
    engine.dispose()

    gateway = SimulatedGateway(url, FixedClock())
    customer, token = card_of(gateway, "4242424242424242")
    charge(gateway, customer, token)
    assert [row.received_at for row in ledger_operations(gateway)] == [NOW]
    gateway.dispose()


def ledger_operations(gateway: SimulatedGateway) -> list:
    """The ledger's operations by kind, read where the gateway keeps them (its schema on PostgreSQL)."""
    with gateway._engine.connect() as conn:
        return conn.execute(select(sim_operations).order_by(sim_operations.c.kind)).all()


# -- a decline scripted N times, then the card as it is ------------------------------------------------

def test_a_scripted_decline_declines_the_next_charges_then_the_card_pays(gateway):
    customer, token = card_of(gateway, "4242424242424242")
    gateway.script(Fault.DECLINE, 2, decline_code="insufficient_funds")
    # A card check (an authorization) is not a charge: it does not use the script up.
    assert gateway.authorize(customer, token, 100, "USD", "check-1").outcome == Outcome.SUCCEEDED
    first, second, third = (charge(gateway, customer, token, key=f"key-{n}") for n in range(3))
    assert [(r.outcome, r.decline_code) for r in (first, second, third)] == [
        (Outcome.DECLINED, "insufficient_funds"), (Outcome.DECLINED, "insufficient_funds"), (Outcome.SUCCEEDED, None)]
    # The same key asked again (the janitor) gets its first answer and uses nothing up.
    assert charge(gateway, customer, token, key="key-0").outcome == Outcome.DECLINED
    assert charge(gateway, customer, token, key="key-3").outcome == Outcome.SUCCEEDED


def test_a_scripted_decline_for_one_account_leaves_the_others_alone(gateway):
    customer, token = card_of(gateway, "4242424242424242")  # account 1
    other = gateway.ensure_customer(2, "owner@globex.test", "Globex")
    other_token = gateway.tokenize("4242424242424242", 12, 2030)
    gateway.attach_card(other, other_token)
    gateway.script(Fault.DECLINE, 1, decline_code="expired_card", account_id=1)
    assert charge(gateway, other, other_token, key="globex-1").outcome == Outcome.SUCCEEDED
    declined = charge(gateway, customer, token, key="acme-1")
    assert (declined.outcome, declined.decline_code) == (Outcome.DECLINED, "expired_card")


def test_a_scripted_decline_needs_a_known_code(gateway):
    with pytest.raises(InvalidInput, match="unknown decline code 'nope'"):
        gateway.script(Fault.DECLINE, 1, decline_code="nope")


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_ledger_from_before_scripted_declines_gets_their_columns(request, tmp_path, kind):
    url = ledger_url(request, tmp_path, kind)
    table, key = ("sim_faults", "INTEGER") if kind == "sqlite" else (f"{LEDGER_SCHEMA}.sim_faults", "SERIAL")
    engine = make_engine(url)
    with engine.begin() as conn:
        if kind == "postgresql":
            conn.execute(text(f"CREATE SCHEMA {LEDGER_SCHEMA}"))
        conn.execute(text(f"CREATE TABLE {table} (id {key} PRIMARY KEY, kind VARCHAR(32) NOT NULL, "
                          "remaining INTEGER NOT NULL)"))
    engine.dispose()
    gateway = SimulatedGateway(url, FixedClock())
    customer, token = card_of(gateway, "4242424242424242")
    gateway.script(Fault.DECLINE, 1)
    assert charge(gateway, customer, token).decline_code == "insufficient_funds"
    gateway.dispose()


def test_on_postgresql_the_ledger_keeps_to_a_schema_of_its_own_beside_renewlys_tables(request, tmp_path):
    url = ledger_url(request, tmp_path, "postgresql")
    SimulatedGateway(url, FixedClock()).dispose()
    engine = make_engine(url)
    found = inspect(engine)
    ledger, renewly = found.get_table_names(schema=LEDGER_SCHEMA), found.get_table_names()
    engine.dispose()
    assert sorted(ledger) == ["sim_cards", "sim_customers", "sim_faults", "sim_operations"]
    assert "alembic_version" in renewly and not [name for name in renewly if name.startswith("sim_")]


def test_on_postgresql_each_test_database_reset_empties_the_ledger_too(request, tmp_path):
    """conftest's reset between tests: no test sees another's charges in the ledger."""
    first = SimulatedGateway(ledger_url(request, tmp_path, "postgresql"), FixedClock())
    charge(first, *card_of(first, "4242424242424242"))
    charged = first.charge_count()
    first.dispose()
    second = SimulatedGateway(ledger_url(request, tmp_path, "postgresql"), FixedClock())
    assert (charged, second.charge_count(), list(second.ledger())) == (1, 0, [])
    second.dispose()


def test_on_postgresql_processes_starting_at_once_prepare_the_ledger_in_turn(request, tmp_path):
    """Eight workers meeting an empty database at once: none fails on the schema another creates."""
    url = ledger_url(request, tmp_path, "postgresql")
    together, failures = threading.Barrier(8), []

    def start() -> None:
        together.wait()
        try:
            SimulatedGateway(url, FixedClock()).dispose()
        except LedgerUnavailable as error:
            failures.append(error.message)

    workers = [threading.Thread(target=start) for _ in range(8)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert failures == []
