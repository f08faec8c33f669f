"""On PostgreSQL, two payment batches at once, in two processes, never charge an invoice twice:
each claims its slices with FOR UPDATE SKIP LOCKED and commits one pending attempt per invoice
before calling the gateway, and a second unsettled attempt on an invoice is refused by a unique
index."""

from __future__ import annotations

from datetime import timedelta

from renewly.services.invoices import list_invoices
from renewly.services.reconcile import reconcile
from renewly.services.renewals import renew_due
from renewly.services.scheduler import advance
from renewly.services.subscriptions import create_subscription
from tests.builders import OPERATOR, customer, team_plan
from tests.payment_builders import invoice_statuses, save_card, successes_per_invoice
from tests.processes import run_at_once


def test_r5_3_two_collect_processes_at_once_never_charge_an_invoice_twice(pg_app, tmp_path):
    app = pg_app
    plan = team_plan(app)
    for index in range(10):
        account_id = customer(app, name=f"Customer {index}", owner=f"owner{index}@acme.test")
        save_card(app, account_id, acting=f"owner{index}@acme.test")
        for seats in range(1, 11):
            create_subscription(app, account_id, plan_code=plan, seats=seats, actor=OPERATOR)
    advance(app, timedelta(days=59), run_batches=False)  # two more periods for each of the 100 subscriptions
    renew_due(app, app.clock.now())
    due = [i["id"] for i in list_invoices(app) if i["status"] == "open"]
    assert len(due) == 300

    # Each batch claims its first slice (invoices locked), then waits at the gate to write its
    # pending attempts: both start with work in hand.
    reports = run_at_once(app, ["collect"], gate="payment_attempts", cwd=tmp_path, environment={
        "RENEWLY_PAYMENTS__SLICE_SIZE": "20", "RENEWLY_PAYMENTS__SIMULATOR_LATENCY_MS": "10",
        "RENEWLY_PAYMENTS__RATE_LIMIT_PER_SECOND": "1000", "RENEWLY_ACTOR": "test:collect"})

    assert sum(report["attempted"] for report in reports) == 300
    assert all(report["attempted"] > 0 for report in reports), "the two batches did not overlap"
    assert successes_per_invoice(app) == {invoice: 1 for invoice in due}
    assert app.gateway.charge_count() == 300
    assert set(invoice_statuses(app).values()) == {"paid"}
    assert reconcile(app).discrepancies == []
