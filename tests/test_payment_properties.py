"""Issue 3's property: whatever the gateway loses on the way, money and invoices agree (R5.3, R7.1).

Over many invoices (some partly credited, some on a card whose charges are declined), several
payment batches run with random faults scripted at the gateway (timeouts after and before the
charge, server errors), some batches die after committing their pending attempts, and some
owners update their card between batches. Throughout, no invoice is ever charged twice. After a
final batch with no fault: every attempt the gateway can answer is settled, the amounts charged
at the gateway equal the amounts due of the paid invoices to the cent, every invoice still open
was last declined, and reconciliation finds nothing.
"""

from __future__ import annotations

from collections import defaultdict

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select

from renewly.adapters.db.engine import make_engine
from renewly.adapters.db.tables import invoices, payment_attempts
from renewly.adapters.gateways.simulated import Fault, sim_faults
from renewly.billing.invoices import issue_credit_note
from renewly.billing.subscriptions import create_subscription
from renewly.payments.cards import CardRefused
from renewly.payments.collect import amount_due, claim_slice, collect_due
from renewly.payments.reconcile import reconcile
from renewly.payments.rules.charges import UNSETTLED
from tests.builders import OPERATOR, customer, team_plan
from tests.payment_builders import CHARGES_DECLINED, GOOD_CARD, save_card, successes_per_invoice, successful_charges

CURRENCIES = ("USD", "EUR")
# An account: its currency, its card, its subscriptions' seats, and a credit (before tax) on its first invoice.
ACCOUNTS = st.tuples(st.sampled_from(CURRENCIES), st.sampled_from([GOOD_CARD, GOOD_CARD, CHARGES_DECLINED]),
                     st.lists(st.integers(1, 5), min_size=1, max_size=2), st.sampled_from([0, 0, 500, 1900]))
FAULTS = st.lists(st.sampled_from(list(Fault)), max_size=4)
# A payment batch: the faults scripted before it, whether its process dies after committing its
# pending attempts (and which of them it charged first), and whose owner updates the card before it.
BATCHES = st.tuples(FAULTS, st.none() | st.lists(st.booleans(), min_size=1, max_size=6), st.none() | st.integers(0, 7))


def owner(index: int) -> str:
    return f"owner{index}@acme.test"


@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(accounts=st.lists(ACCOUNTS, min_size=2, max_size=6), batches=st.lists(BATCHES, min_size=1, max_size=4))
def test_r5_3_charges_at_the_gateway_equal_paid_invoices_whatever_the_gateway_loses(databases, db_kind, accounts,
                                                                                       batches):
    app = databases.fresh_app(db_kind, payments={"lease_seconds": 0, "slice_size": 3, "concurrency": 4,
                                                 "rate_limit_per_second": 10_000})
    try:
        check_payments_under_faults(app, accounts, batches)
    finally:
        app.engine.dispose()  # each example's connections go now, not after the last example


def check_payments_under_faults(app, accounts, batches) -> None:
    for currency in CURRENCIES:
        team_plan(app, code=f"team-{currency.lower()}", currency=currency)
    account_ids = []
    for index, (currency, card, seats, credit) in enumerate(accounts):
        account_id = customer(app, owner=owner(index), currency=currency)
        save_card(app, account_id, card, acting=owner(index))
        for n in seats:
            create_subscription(app, account_id, plan_code=f"team-{currency.lower()}", seats=n, actor=OPERATOR)
        if credit:
            with app.engine.connect() as conn:
                first = conn.execute(select(invoices.c.number).where(invoices.c.account_id == account_id)
                                     .order_by(invoices.c.id)).scalars().first()
            issue_credit_note(app, first, reason="goodwill", amount=min(credit, 1900 * seats[0]), actor=OPERATOR)
        account_ids.append(account_id)

    for faults, crash, card_update in batches:
        if card_update is not None and card_update < len(account_ids):
            try:
                save_card(app, account_ids[card_update], GOOD_CARD, acting=owner(card_update))
            except CardRefused:  # a scripted fault hit the card check: nothing was saved
                pass
        for fault in faults:
            app.gateway.script(fault)
        if crash is None:
            collect_due(app, app.clock.now())
        else:
            claims = claim_slice(app, app.clock.now(), len(crash))
            for claim, charged in zip(claims, crash):
                if charged:
                    app.gateway.charge(claim.request)
            # ... and the process dies here: its attempts stay pending, their lease runs out.
        assert max(successes_per_invoice(app).values(), default=0) <= 1, "an invoice was charged twice"

    _stop_faults(app)
    collect_due(app, app.clock.now())

    with app.engine.connect() as conn:
        assert conn.execute(select(payment_attempts.c.id).where(
            payment_attempts.c.status.in_([s.value for s in UNSETTLED]))).all() == []
        due = {row.id: (row.status, row.currency, int(row.due)) for row in conn.execute(
            select(invoices.c.id, invoices.c.status, invoices.c.currency, amount_due().label("due"))
            .where(invoices.c.kind == "invoice"))}
        last_attempt = {}
        for row in conn.execute(select(payment_attempts).order_by(payment_attempts.c.id)):
            last_attempt[row.invoice_id] = row.status
    successes = successes_per_invoice(app)
    assert {invoice: 1 for invoice, (status, _, _) in due.items() if status == "paid"} == dict(successes)
    charged, paid = defaultdict(int), defaultdict(int)
    for charge in successful_charges(app):
        charged[charge.currency] += charge.amount
    for status, currency, amount in due.values():
        if status == "paid":
            paid[currency] += amount
    assert charged == paid
    assert {last_attempt.get(invoice) for invoice, (status, _, _) in due.items() if status == "open"} <= {"declined"}
    assert reconcile(app).discrepancies == []


def _stop_faults(app) -> None:
    """The gateway recovers: faults scripted but not yet met are dropped (in the simulator's own storage)."""
    engine = make_engine(app.settings.simulator_url())
    with engine.begin() as conn:
        conn.execute(delete(sim_faults))
    engine.dispose()
