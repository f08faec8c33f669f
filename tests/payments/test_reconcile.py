"""Reconciliation: the gateway's ledger against Renewly's attempts. Money taken without a record
and records of money never taken are both found; `renewly reconcile` exits 1 when it finds any."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select, update

from renewly.adapters.clock import wall_clock
from renewly.adapters.db.tables import cards, gateway_customers, invoices, payment_attempts
from renewly.adapters.gateways.simulated import Fault
from renewly.billing.invoices import list_invoices
from renewly.billing.subscriptions import create_subscription
from renewly.payments.collect import claim_slice, collect_due
from renewly.payments.reconcile import reconcile
from renewly.payments.rules.charges import ChargeRequest
from tests.builders import OPERATOR, team_plan
from tests.payment_builders import CHARGES_DECLINED, paying_customer, run_cli
from tests.processes import RENEWLY


def found(app) -> list[tuple[str, str | None]]:
    return sorted((d.kind, d.idempotency_key) for d in reconcile(app).discrepancies)


def two_customers_collected(app) -> tuple[int, int]:
    """One account paid, one declined; returns their ids."""
    plan = team_plan(app)
    paid = paying_customer(app, plan=plan)
    declined = paying_customer(app, plan=plan, number=CHARGES_DECLINED, owner="boss@other.test")
    collect_due(app, app.clock.now())
    return paid, declined


def test_reconcile_finds_nothing_when_the_ledgers_agree(app, monkeypatch, capsys):
    two_customers_collected(app)
    report = reconcile(app)
    assert (report.gateway_charges, report.local_successes, report.discrepancies) == (1, 1, [])
    outcome = run_cli(app, monkeypatch, capsys, "reconcile")
    assert (outcome.code, outcome.err) == (0, "")
    assert outcome.out == "1 successful charge(s) at the gateway, 1 in Renewly\nno discrepancy\n"


def test_reconcile_finds_a_charge_made_on_the_gateway_without_a_record_in_renewly(app, monkeypatch, capsys):
    paid, _ = two_customers_collected(app)
    with app.engine.connect() as conn:
        customer = conn.execute(select(gateway_customers.c.customer).where(gateway_customers.c.account_id == paid)
                                ).scalar_one()
        token = conn.execute(select(cards.c.token).where(cards.c.account_id == paid)).scalar_one()
    app.gateway.charge(ChargeRequest(customer=customer, card_token=token, amount=4200, currency="USD",
                                     idempotency_key="made-in-the-gateway-dashboard"))
    assert found(app) == [("charge_without_record", "made-in-the-gateway-dashboard")]
    outcome = run_cli(app, monkeypatch, capsys, "reconcile", "--json")
    assert outcome.code == 1
    [discrepancy] = json.loads(outcome.out)["discrepancies"]
    assert discrepancy["kind"] == "charge_without_record" and "$42.00" in discrepancy["detail"]  # with its currency


def test_reconcile_finds_local_successes_the_gateway_does_not_know(app, monkeypatch, capsys):
    paid, declined = two_customers_collected(app)
    create_subscription(app, paid, plan_code="team", seats=1, actor=OPERATOR)  # a second, unpaid invoice
    with app.engine.begin() as conn:  # what a bug or a hand-typed statement could do
        conn.execute(update(payment_attempts).where(payment_attempts.c.account_id == declined)
                     .values(status="succeeded"))
        conn.execute(update(payment_attempts).where(payment_attempts.c.account_id == paid)
                     .values(amount=payment_attempts.c.amount + 1))
        conn.execute(update(invoices).where(invoices.c.account_id == paid, invoices.c.status == "open")
                     .values(status="paid"))
        keys = dict(conn.execute(select(payment_attempts.c.account_id, payment_attempts.c.idempotency_key)).all())
    assert found(app) == [("amount_mismatch", keys[paid]), ("charge_on_unpaid_invoice", keys[declined]),
                          ("paid_invoice_without_charge", None), ("record_without_charge", keys[declined])]
    outcome = run_cli(app, monkeypatch, capsys, "reconcile")
    assert outcome.code == 1
    assert outcome.out.splitlines()[0] == "1 successful charge(s) at the gateway, 2 in Renewly"
    assert f"  record_without_charge: {keys[declined]} " in outcome.out


def test_reconcile_finds_money_taken_for_an_invoice_voided_while_its_charge_was_unanswered(app):
    plan = team_plan(app)
    paying_customer(app, plan=plan)
    app.gateway.script(Fault.TIMEOUT_AFTER)  # the gateway charges, the answer is lost
    collect_due(app, app.clock.now())
    [invoice] = list_invoices(app)
    # Voided by hand while its charge was unanswered (a credit note waits for the answer instead).
    with app.engine.begin() as conn:
        conn.execute(update(invoices).where(invoices.c.id == invoice["id"]).values(status="void"))
    collect_due(app, app.clock.now())  # the janitor only asks, and records what the gateway did
    [(kind, _key)] = found(app)
    assert kind == "charge_on_unpaid_invoice"


def test_reconcile_gives_the_same_answer_from_any_working_directory_and_leaves_no_file_there(
        databases, db_kind, tmp_path, monkeypatch):
    """With no payments.simulator_url the ledger goes with the configured database: on SQLite a
    file beside the database's, on PostgreSQL the same database; never the working directory."""
    here, elsewhere = tmp_path / "here", tmp_path / "elsewhere"
    here.mkdir(), elsewhere.mkdir()
    monkeypatch.chdir(here)
    app = databases.fresh_app(db_kind, payments={"simulator_url": None})
    try:
        two_customers_collected(app)
    finally:
        app.gateway.dispose()
    environment = {**os.environ, "RENEWLY_DATABASE_URL": app.settings.database_url, "RENEWLY_CLOCK": "test"}
    answers = [subprocess.run([str(RENEWLY), "reconcile"], cwd=folder, env=environment, capture_output=True,
                              text=True, timeout=120) for folder in (here, elsewhere)]
    assert [(answer.returncode, answer.stdout, answer.stderr) for answer in answers] == 2 * [
        (0, "1 successful charge(s) at the gateway, 1 in Renewly\nno discrepancy\n", "")]
    assert (list(here.iterdir()), list(elsewhere.iterdir())) == ([], [])
    if db_kind == "sqlite":
        database = Path(app.settings.database_url.removeprefix("sqlite:///"))
        assert database.with_name(f"{database.stem}-gateway.db").is_file()
    else:
        assert sorted(path.name for path in tmp_path.iterdir()) == ["elsewhere", "here"]


def test_reconcile_names_a_charged_pending_attempt_and_its_lease_end_without_calling_it_a_discrepancy(
        app, monkeypatch, capsys):
    """A batch stopped at once (or dead) after the gateway charged: the attempt stays pending
    until its lease ends; reconcile says so, and when the janitor settles it, and exits 0."""
    account_id = paying_customer(app)
    [claim] = claim_slice(app, app.clock.now(), 10)  # the pending attempt is committed ...
    app.gateway.charge(claim.request)  # ... charged, and the process stops before the answer is written
    [invoice] = list_invoices(app, account_id)

    report = reconcile(app)
    assert report.discrepancies == []
    [waiting] = report.unanswered
    assert (waiting.invoice, waiting.account_id, waiting.status, waiting.charged_at_gateway) == (
        invoice["number"], account_id, "pending", True)
    assert waiting.lease_expires_at == claim.lease == waiting.settled_after
    outcome = run_cli(app, monkeypatch, capsys, "reconcile")
    assert (outcome.code, outcome.err) == (0, "")
    said = " ".join(outcome.out.split())
    assert said.startswith("1 successful charge(s) at the gateway, 0 in Renewly no discrepancy "
                           "1 attempt(s) without an answer yet, not discrepancies")
    assert (f"{invoice['number']} (account {account_id}) $68.40, pending since 2026-01-01 00:00 UTC; the gateway "
            f"charged it; its lease ends {claim.lease:%Y-%m-%d %H:%M:%S} UTC (in 15 min): the first payment batch "
            "after that settles it") in said
    assert max(len(line) for line in outcome.out.splitlines()) <= 80
    as_json = json.loads(run_cli(app, monkeypatch, capsys, "reconcile", "--json").out)
    assert [(u["invoice"], u["status"], u["charged_at_gateway"]) for u in as_json["unanswered"]] == [
        (invoice["number"], "pending", True)]

    with app.engine.begin() as conn:  # the lease runs out: the next payment batch settles it
        conn.execute(update(payment_attempts).values(lease_expires_at=wall_clock() - timedelta(seconds=1)))
    assert "its lease ended" in " ".join(run_cli(app, monkeypatch, capsys, "reconcile").out.split())
    assert collect_due(app, app.clock.now()).settled_by_janitor == 1
    after = reconcile(app)
    assert (after.gateway_charges, after.local_successes, after.discrepancies, after.unanswered) == (1, 1, [], [])


def test_reconcile_names_an_unknown_attempt_as_settled_by_the_next_payment_batch(app, monkeypatch, capsys):
    paying_customer(app)
    app.gateway.script(Fault.TIMEOUT_AFTER)  # the gateway charges, the answer is lost
    collect_due(app, app.clock.now())
    [waiting] = reconcile(app).unanswered
    assert (waiting.status, waiting.charged_at_gateway) == ("unknown", True)
    outcome = run_cli(app, monkeypatch, capsys, "reconcile")
    assert outcome.code == 0
    assert "unknown since 2026-01-01 00:00 UTC; the gateway charged it: the next payment batch settles it" in \
        " ".join(outcome.out.split())
