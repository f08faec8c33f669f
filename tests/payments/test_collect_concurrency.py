"""On PostgreSQL, two payment batches at once, in two processes, never charge an invoice twice:
each claims its slices with FOR UPDATE SKIP LOCKED and commits one pending attempt per invoice
before calling the gateway, and a second unsettled attempt on an invoice is refused by a unique
index."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from renewly.billing.invoices import list_invoices
from renewly.billing.renewals import renew_due
from renewly.billing.subscriptions import create_subscription
from renewly.payments import collect
from renewly.payments.collect import _not_taken_meanwhile, claim_slice
from renewly.payments.reconcile import reconcile
from renewly.scheduler import advance, run_all
from tests.builders import OPERATOR, customer, subscribed, team_plan
from tests.payment_builders import CHARGES_DECLINED, invoice_statuses, paying_customer, save_card, successes_per_invoice
from tests.processes import run_at_once

CASES = 30


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


def test_r5_3_a_payment_batch_and_a_sweep_at_once_over_the_same_accounts_never_deadlock(pg_app, tmp_path):
    """The payment batch holds the invoices it claims and writes their attempts, whose foreign
    keys point at the accounts; the sweep holds the accounts it claims and asks charges for their
    invoices. Were the sweep's account locks FOR UPDATE, each would wait for the other."""
    app = pg_app
    plan = team_plan(app)
    accounts = [subscribed(app, plan=plan, card=CHARGES_DECLINED, owner=f"owner{n}@acme.test")[0]
                for n in range(CASES)]
    day0 = datetime(2026, 1, 1, tzinfo=UTC)
    run_all(app, day0 + timedelta(hours=12))  # declined on day 0: a case each, its day-0 e-mail
    app.test_clock.set(day0 + timedelta(days=2, minutes=1))  # the day-2 step is due ...
    for n, account_id in enumerate(accounts):  # ... and a card update asks the payment batch for a retry
        save_card(app, account_id, CHARGES_DECLINED, acting=f"owner{n}@acme.test")

    # The sweep holds its accounts and waits at the gate to write its steps, then to ask its
    # charges; meanwhile the payment batch claims those accounts' invoices and writes their attempts.
    swept, collected = run_at_once(app, [["dunning"], ["collect"]], gate="dunning_steps", cwd=tmp_path,
                                   one_after_another=True,
                                   environment={"RENEWLY_PAYMENTS__SLICE_SIZE": "10",
                                                "RENEWLY_BATCHES__CHUNK_SIZE": "10", "RENEWLY_ACTOR": "test:batches"})

    # Each invoice charged for the card update; again in the same batch if the sweep's request
    # came in while it was still claiming, else by the next one.
    assert CASES <= collected["attempted"] == collected["declined"] <= 2 * CASES
    assert swept["steps_taken"] == CASES
    assert reconcile(app).discrepancies == []


def test_r5_3_an_invoice_another_collector_claimed_while_our_query_ran_is_left_to_it(pg_app):
    """READ COMMITTED does not look again at a row another transaction only locked: a claim whose
    query began before another collector claimed an invoice, and locked it after, reads it as still
    chargeable. Its attempt, committed meanwhile, is looked for afresh before ours is written;
    writing ours would wait on that collector's settle, which waits on our lock (four `renewly
    run` at once deadlocked so, bench/scaleout.py)."""
    app = pg_app
    paying_customer(app)
    # The other collector's claim, its attempt committed; what our slow query read is the same
    # invoice with the same attempt to make.
    read_by_our_query = claim_slice(app, app.clock.now(), 10)
    assert len(read_by_our_query) == 1

    with app.engine.begin() as conn:
        assert _not_taken_meanwhile(conn, read_by_our_query) == []


def test_r5_3_a_claim_whose_every_invoice_was_taken_meanwhile_reads_again_rather_than_end_the_batch(
        pg_app, monkeypatch):
    # The race of the test above cannot be timed from a test: the first read is made to lose every
    # invoice to it, as one of four `renewly run` at once did (it then charged nothing).
    app = pg_app
    paying_customer(app)
    reads = []

    def first_read_lost(conn, claims):
        reads.append(claims)
        return [] if len(reads) == 1 else _not_taken_meanwhile(conn, claims)

    monkeypatch.setattr(collect, "_not_taken_meanwhile", first_read_lost)
    claimed = collect.claim_slice(app, app.clock.now(), 10)

    assert [len(read) for read in reads] == [1, 1]
    assert [claim.invoice_id for claim in claimed] == [claim.invoice_id for claim in reads[0]]
