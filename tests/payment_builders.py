"""Helpers for the payment tests (R5-R7): cards through the simulated gateway's card form, paying
customers, and what the gateway's ledger and Renewly's tables say afterwards."""

from __future__ import annotations

import sys
import threading
from collections import Counter
from dataclasses import replace
from typing import Any

import pytest
from sqlalchemy import select

from renewly import cli
from renewly.adapters.db.tables import invoices, metadata, payment_attempts
from renewly.bootstrap import App, bootstrap
from renewly.payments.cards import CardSaved, add_card
from renewly.payments.history import list_attempts
from renewly.payments.rules.charges import LedgerCharge, Outcome
from tests.builders import Outcome as CliOutcome
from tests.builders import database_rows, subscribed

OWNER = "owner@acme.test"
GOOD_CARD = "4242424242424242"
CHARGES_DECLINED = "4000000000000341"  # saves fine, every later charge is declined


def tokenized(app: App, number: str = GOOD_CARD, exp_month: int = 12, exp_year: int = 2030) -> str:
    """What the hosted card form hands back: a token; the number stays at the gateway (R5.4)."""
    return app.gateway.tokenize(number, exp_month, exp_year)


def save_card(app: App, account_id: int, number: str = GOOD_CARD, *, acting: str = OWNER) -> CardSaved:
    return add_card(app, account_id, card_token=tokenized(app, number), acting_email=acting)


def paying_customer(app: App, *, number: str = GOOD_CARD, seats: int = 3, owner: str = OWNER,
                    **account: Any) -> int:
    """An account with a saved card and one open invoice (its first period); returns its id."""
    account_id, _ = subscribed(app, seats=seats, owner=owner, card=number, **account)
    return account_id


def attempts(app: App, account_id: int | None = None) -> list[dict[str, Any]]:
    return list_attempts(app, account_id)


def successful_charges(app: App) -> list[LedgerCharge]:
    return [charge for charge in app.gateway.ledger() if charge.outcome == Outcome.SUCCEEDED]


def successes_per_invoice(app: App) -> Counter:
    """invoice id -> how many successful charges the gateway holds for it."""
    with app.engine.connect() as conn:
        invoice_of = dict(conn.execute(select(payment_attempts.c.idempotency_key, payment_attempts.c.invoice_id)).all())
    return Counter(invoice_of.get(charge.idempotency_key) for charge in successful_charges(app))


def invoice_statuses(app: App) -> dict[int, str]:
    with app.engine.connect() as conn:
        return dict(conn.execute(select(invoices.c.id, invoices.c.status).where(invoices.c.kind == "invoice")).all())


def every_stored_value(app: App) -> list[tuple[str, str, str]]:
    """(table, column, value as text) for every non-null cell of every Renewly table."""
    with app.engine.connect() as conn:
        return [(table.name, column, str(value))
                for table in metadata.sorted_tables
                for row in conn.execute(select(table))
                for column, value in row._mapping.items() if value is not None]


snapshot = database_rows  # every row of every table, to show that a refused request changed nothing


def run_cli(app: App, monkeypatch, capsys, *args: str, actor: str = "support:alice") -> CliOutcome:
    """`renewly ARGS...` in this process through the real entry point, on `app`'s database and ledger."""
    environment = {"RENEWLY_DATABASE_URL": app.settings.database_url, "RENEWLY_CLOCK": "test",
                   "RENEWLY_ACTOR": actor, "RENEWLY_PAYMENTS__SIMULATOR_URL": app.settings.simulator_url()}
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    opened: list[App] = []

    def tracked_bootstrap(*given, **named):
        opened.append(bootstrap(*given, **named))
        return opened[-1]

    monkeypatch.setattr("renewly.cli.common.bootstrap", tracked_bootstrap)
    monkeypatch.setattr(sys, "argv", ["renewly", *args])
    try:
        with pytest.raises(SystemExit) as exited:
            cli.main()
    finally:
        for application in opened:  # each command opens its own engine, as a process would
            application.engine.dispose()
    captured = capsys.readouterr()
    return CliOutcome(exited.value.code, captured.out, captured.err)


class HeldGateway:
    """The simulated gateway, whose answers wait until the test lets them go: a slow network
    under one process while another one runs."""

    def __init__(self, gateway) -> None:
        self._gateway = gateway
        self.asked = threading.Event()
        self._released = threading.Event()

    def __getattr__(self, name: str):
        return getattr(self._gateway, name)

    def charge(self, request):
        self._hold()
        return self._gateway.charge(request)

    def find(self, idempotency_key: str):
        self._hold()
        return self._gateway.find(idempotency_key)

    def void(self, authorization: str, idempotency_key: str):
        self._hold()
        return self._gateway.void(authorization, idempotency_key)

    def _hold(self) -> None:
        self.asked.set()
        assert self._released.wait(timeout=30), "the test never let the gateway answer"

    def release(self) -> None:
        self._released.set()


def while_held(app, work, meanwhile) -> tuple:
    """Run `work(held_app)` in a thread until it waits for the gateway, then `meanwhile(app)`
    to the end, then let the gateway answer `work`; returns both results."""
    gateway = HeldGateway(app.gateway)
    held_app = replace(app, connect_gateway=lambda: gateway)
    results: list = []
    thread = threading.Thread(target=lambda: results.append(work(held_app)))
    thread.start()
    try:
        assert gateway.asked.wait(timeout=30), "the first one never asked the gateway"
        other = meanwhile(app)
    finally:
        gateway.release()
        thread.join(timeout=30)
    assert results, "the first one failed"
    return results[0], other
