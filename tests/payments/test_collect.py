"""The payment batch (R5.3, R7.1): real charges happen only for invoices, each charged once for
its total less its credit notes; a declined invoice is charged again only when a retry is
requested, e.g. by the owner's card update, and then with a new idempotency key."""

from __future__ import annotations

import time
from datetime import timedelta

from sqlalchemy import select

from renewly.adapters.db.tables import outbox, payment_retries
from renewly.billing.invoices import issue_credit_note, list_invoices
from renewly.billing.subscriptions import create_subscription
from renewly.payments.collect import collect_due
from renewly.payments.rules.charges import attempt_key
from renewly.scheduler import advance
from tests.builders import OPERATOR, customer, subscribed, team_plan
from tests.payment_builders import (
    CHARGES_DECLINED,
    GOOD_CARD,
    attempts,
    invoice_statuses,
    paying_customer,
    save_card,
    successful_charges,
)


def collect(app):
    return collect_due(app, app.clock.now())


def payment_events(app) -> list[tuple[str, int, int]]:
    with app.engine.connect() as conn:
        rows = conn.execute(select(outbox.c.topic, outbox.c.payload).where(outbox.c.topic.like("payment.%"))
                            .order_by(outbox.c.id)).all()
    return [(topic, payload["invoice_id"], payload["amount"]) for topic, payload in rows]


# -- R5.3: charges only for invoices ------------------------------------------------------------------

def test_r5_3_no_charge_is_made_until_an_invoice_exists(app):
    account_id = customer(app)
    save_card(app, account_id)
    advance(app, timedelta(days=2))
    assert collect(app).attempted == 0 and app.gateway.charge_count() == 0
    create_subscription(app, account_id, plan_code=team_plan(app), seats=3, actor=OPERATOR)
    [invoice] = list_invoices(app, account_id)
    assert collect_due(app, app.clock.now() - timedelta(seconds=1)).attempted == 0  # issued after that batch
    report = collect(app)
    assert (report.attempted, report.succeeded, report.collected) == (1, 1, {"USD": invoice["total"]})
    assert [(c.idempotency_key, c.amount) for c in successful_charges(app)] == [
        (attempt_key(invoice["id"], 1), invoice["total"])]
    assert collect(app).attempted == 0 and app.gateway.charge_count() == 1
    assert invoice_statuses(app) == {invoice["id"]: "paid"}


def test_r5_3_each_renewal_is_charged_once_by_the_next_payment_batch(app):
    account_id = paying_customer(app)
    collect(app)
    advance(app, timedelta(days=30, hours=23))  # to Jan 31 23:00: nothing new to charge
    assert app.gateway.charge_count() == 1
    advance(app, timedelta(days=29, hours=2))  # Feb 1 and Mar 1 renewals, each charged on the hour
    invoices = [i for i in list_invoices(app, account_id) if i["kind"] == "invoice"]
    assert [i["status"] for i in invoices] == ["paid", "paid", "paid"]
    assert sorted((c.idempotency_key, c.amount) for c in successful_charges(app)) == sorted(
        (attempt_key(i["id"], 1), i["total"]) for i in invoices)
    assert collect(app).attempted == 0 and app.gateway.charge_count() == 3


def test_r5_3_the_amount_charged_is_the_total_less_credit_notes(app):
    plan = team_plan(app)
    partly, _ = subscribed(app, plan=plan, seats=3)  # 5700 + 20 % tax = 6840
    wholly, _ = subscribed(app, plan=plan, seats=2, owner="boss@other.test")
    issue_credit_note(app, "2026-000001", reason="a seat unused", amount=1900, actor=OPERATOR)  # 1900 + 380 tax
    issue_credit_note(app, "2026-000002", reason="never used", actor=OPERATOR)
    report = collect(app)
    assert (report.attempted, report.collected) == (1, {"USD": 6840 - 2280})
    assert [c.amount for c in successful_charges(app)] == [4560]
    assert [i["status"] for i in list_invoices(app, wholly) if i["kind"] == "invoice"] == ["void"]


# -- R7.1: declined, card updated, retried ---------------------------------------------------------

def test_r7_1_a_declined_charge_is_retried_with_a_new_key_after_the_owner_updates_the_card(app):
    account_id = paying_customer(app, number=CHARGES_DECLINED)  # the card check passes, charges do not
    [invoice] = list_invoices(app, account_id)
    declined = collect(app)
    assert (declined.attempted, declined.declined) == (1, 1)
    [first] = attempts(app)
    assert (first["status"], first["decline_code"], first["idempotency_key"]) == (
        "declined", "card_declined", attempt_key(invoice["id"], 1))
    assert collect(app).attempted == 0  # no retry without a request: a decline is definite

    assert save_card(app, account_id, GOOD_CARD).retries_requested == 1
    retried = collect(app)
    assert (retried.attempted, retried.succeeded, retried.collected) == (1, 1, {"USD": invoice["total"]})
    second = attempts(app)[1]
    assert (second["number"], second["status"], second["idempotency_key"]) == (
        2, "succeeded", attempt_key(invoice["id"], 2))
    assert invoice_statuses(app) == {invoice["id"]: "paid"}
    assert sorted((c.idempotency_key, c.outcome.value) for c in app.gateway.ledger()) == [
        (attempt_key(invoice["id"], 1), "declined"), (attempt_key(invoice["id"], 2), "succeeded")]
    assert payment_events(app) == [("payment.declined", invoice["id"], invoice["total"]),
                                   ("payment.succeeded", invoice["id"], invoice["total"])]
    # Paid up now: another card update asks for nothing, and nothing is charged.
    assert save_card(app, account_id, "5555555555554444").retries_requested == 0
    assert collect(app).attempted == 0 and app.gateway.charge_count() == 2


def test_r7_1_each_retry_request_is_fulfilled_by_exactly_one_attempt(app):
    account_id = paying_customer(app, number=CHARGES_DECLINED)
    collect(app)
    save_card(app, account_id, CHARGES_DECLINED)  # another card that declines every charge
    assert collect(app).declined == 1
    assert collect(app).attempted == 0
    with app.engine.connect() as conn:
        fulfilled_by = conn.execute(select(payment_retries.c.attempt_id)).scalars().all()
    first, second = attempts(app)
    assert fulfilled_by == [second["id"]]
    assert (first["reason"], second["reason"], second["status"]) == ("issued", "retry", "declined")


def test_r7_1_the_next_batch_retries_every_unpaid_invoice_of_the_account(app):
    account_id = paying_customer(app, number=CHARGES_DECLINED)
    create_subscription(app, account_id, plan_code="team", seats=1, actor=OPERATOR)
    assert collect(app).declined == 2
    assert save_card(app, account_id, GOOD_CARD).retries_requested == 2
    advance(app, timedelta(hours=1))  # the next payment batch
    assert list(invoice_statuses(app).values()) == ["paid", "paid"]
    assert sorted(c.amount for c in successful_charges(app)) == sorted(
        i["total"] for i in list_invoices(app, account_id))


# -- the rate cap ----------------------------------------------------------------------------------

def test_charges_stay_under_the_rate_cap(databases, db_kind):
    app = databases.fresh_app(db_kind, payments={"rate_limit_per_second": 20, "concurrency": 8})
    plan = team_plan(app)
    for n in range(6):
        subscribed(app, plan=plan, owner=f"owner{n}@acme.test")  # with a card
    started = time.perf_counter()
    assert collect(app).succeeded == 6
    assert time.perf_counter() - started >= 5 / 20  # one token at a time: 6 calls span 5 gaps
