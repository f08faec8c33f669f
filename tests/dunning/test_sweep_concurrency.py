"""R8.7 concurrently (PostgreSQL): two `renewly dunning` processes started at once over many due
cases take each step once and send each e-mail once.

"At once" is made certain by a gate (tests/processes.py).
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from renewly.adapters.db.tables import accounts, dunning_cases, dunning_steps, outbox, payment_retries, reactivations
from renewly.dunning.reactivation import grant_reactivation
from renewly.dunning.sweep import DunningReport, apply_decisions, claim_due_cases, open_cases
from renewly.payments.collect import claim_slice
from renewly.scheduler import run_all
from tests.builders import OPERATOR, customer, subscribed, team_plan, with_card
from tests.processes import run_at_once

pytestmark = pytest.mark.postgres_only

CASES = 40


def run_two_sweeps_at_once(app) -> list[dict]:
    # Opening cases locks the accounts, as taking steps does: both wait at the gate.
    return run_at_once(app, ["dunning"], gate="accounts", environment={"RENEWLY_BATCHES__CHUNK_SIZE": "10"})


def test_r8_7_two_sweeps_at_once_take_each_step_once_and_send_each_e_mail_once(pg_app):
    app = pg_app
    plan = team_plan(app)
    for n in range(CASES):
        subscribed(app, plan=plan, card=None, owner=f"owner{n}@acme.test")  # no card: each renewal goes unpaid

    app.test_clock.set(datetime(2026, 1, 1, 1, tzinfo=UTC))  # day 0
    day_0 = run_two_sweeps_at_once(app)
    app.test_clock.set(datetime(2026, 1, 22, 1, tzinfo=UTC))  # day 21: the steps of days 2, 4 and 21 are due
    day_21 = run_two_sweeps_at_once(app)

    assert sum(r["cases_opened"] for r in day_0) == CASES
    assert sum(r["steps_taken"] for r in day_0) == CASES
    assert sum(r["steps_taken"] for r in day_21) == 3 * CASES
    assert sum(r["emails"] for r in day_0 + day_21) == 2 * CASES
    with app.engine.connect() as conn:
        steps = Counter(conn.execute(select(dunning_steps.c.case_id, dunning_steps.c.name)).all())
        cases = conn.execute(select(dunning_cases.c.id, dunning_cases.c.account_id)).all()
        emails = Counter((row.account_id, row.payload["kind"], tuple(row.payload["recipients"])) for row in
                         conn.execute(select(outbox.c.account_id, outbox.c.payload).where(outbox.c.topic == "email"))
                         if row.payload["kind"] != "invoice")  # the invoices' e-mails are R4.3's
        events = Counter(conn.execute(select(outbox.c.account_id, outbox.c.topic)
                                      .where(outbox.c.topic.like("dunning.%"))).all())
        retries = Counter(conn.execute(select(payment_retries.c.invoice_id)).scalars())
    assert len(cases) == CASES
    assert set(steps.values()) == {1} and len(steps) == 4 * CASES
    assert sorted(emails.values()) == [1] * 2 * CASES
    assert {kind for _, kind, _ in emails} == {"payment_failed_1", "suspension_warning"}
    assert all(recipients == (f"owner{account_id - 1}@acme.test",) for account_id, _, recipients in emails)
    assert events == Counter({(account_id, topic): count for _, account_id in cases
                              for topic, count in (("dunning.case_opened", 1), ("dunning.steps_taken", 2))})
    assert retries == Counter()  # no card on file: nothing to charge, nothing asked of the payment batch


def test_r8_7_a_sweep_leaves_alone_the_cases_of_an_account_another_worker_holds(pg_app):
    """The claim locks an account before its cases: a case whose account is held elsewhere is
    skipped without being locked. Locked and skipped, it made two workers that each froze the other's
    account's cases (a cancellation) wait for each other: a deadlock."""
    app = pg_app
    plan = team_plan(app)
    held_account, _ = subscribed(app, plan=plan, card=None, owner="held@acme.test")
    free_account, _ = subscribed(app, plan=plan, card=None, owner="free@acme.test")
    as_of = datetime(2026, 1, 1, 1, tzinfo=UTC)  # day 0: both cases due
    assert open_cases(app, as_of) == (2, 0)

    with app.engine.connect() as other_worker, app.engine.connect() as sweep, app.engine.connect() as probe:
        other_worker.execute(select(accounts.c.id).where(accounts.c.id == held_account).with_for_update())
        claimed = claim_due_cases(sweep, app.policy, as_of, 10)
        # The held account's case is still free for whoever holds its account.
        probe.execute(select(dunning_cases.c.id).where(dunning_cases.c.account_id == held_account)
                      .with_for_update(nowait=True)).all()
        other_worker.rollback()
        sweep.rollback()
    assert [case.notice.account_id for case in claimed] == [free_account]


def test_a_sweep_holding_an_account_lets_a_payment_batch_charge_its_invoice_no_deadlock(pg_app):
    """The sweep holds an account (and will ask a charge for its invoice); a payment batch claims
    that invoice (a card update's retry) and writes its attempt, whose foreign key points at the
    account. With the account held FOR UPDATE the attempt waited for the sweep, and the sweep's
    charge request for the invoice the batch held: a deadlock. FOR NO KEY UPDATE lets it through."""
    app = pg_app
    account_id, _ = subscribed(app, card="4000000000000341")
    day0 = datetime(2026, 1, 1, tzinfo=UTC)
    run_all(app, day0 + timedelta(hours=12))  # declined on day 0: a case, its day-0 e-mail
    app.test_clock.set(day0 + timedelta(days=2, minutes=1))
    with_card(app, account_id, "4000000000000341")  # a card update: a retry for the next batch
    as_of = app.clock.now()
    with app.engine.connect() as sweep:
        sweep.begin()
        cases = claim_due_cases(sweep, app.policy, as_of, 10)  # the day-2 step is due: the account is held
        assert [case.notice.account_id for case in cases] == [account_id]
        claimed: list = []
        payment_batch = threading.Thread(target=lambda: claimed.extend(claim_slice(app, as_of, 10)))
        payment_batch.start()
        payment_batch.join(timeout=10)
        assert not payment_batch.is_alive(), "the payment batch waited for the sweep's account lock"
        assert len(claimed) == 1
        apply_decisions(sweep, app, cases, as_of, DunningReport())  # its charge request for the same invoice
        sweep.commit()


def test_r9_3_two_sweeps_at_once_end_each_expired_reactivation_once(pg_app):
    """Each sweep reads the windows that have ended, locks their accounts, and reads them again:
    the second one, let in once the first has ended them, finds none left to end."""
    app = pg_app
    now = app.clock.now()
    account_ids = [customer(app, name=f"Customer {n}", owner=f"owner{n}@acme.test") for n in range(CASES)]
    with app.engine.begin() as conn:  # cancelled for an unpaid renewal, as dunning leaves them
        conn.execute(accounts.update().where(accounts.c.id.in_(account_ids)).values(
            status="cancelled", cancelled_at=now, deletion_due_at=now + timedelta(days=90)))
    for account_id in account_ids:
        grant_reactivation(app, account_id, days=1, reason="the owner called support", actor=OPERATOR)
    expiry = now + timedelta(days=3)
    app.test_clock.set(expiry)  # every window has ended unpaid

    # Each reads the ended windows and locks their accounts, then waits at the gate to end them.
    reports = run_at_once(app, ["dunning"], gate="reactivations")

    assert sum(report["reactivations_expired"] for report in reports) == CASES
    with app.engine.connect() as conn:
        ended = dict(conn.execute(select(reactivations.c.id, reactivations.c.outcome)).all())
        events = Counter((row.topic, row.account_id) for row in conn.execute(
            select(outbox.c.topic, outbox.c.account_id).where(outbox.c.created_at == expiry)))
    assert set(ended.values()) == {"expired"} and len(ended) == CASES
    assert events == Counter({(topic, account_id): 1 for account_id in account_ids
                              for topic in ("reactivation.expired", "account.dunning_state")})
