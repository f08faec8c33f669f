from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from renewly.accounts.accounts import describe_account
from renewly.adapters.db.tables import outbox
from renewly.billing.invoices import list_invoices, show_invoice
from renewly.billing.renewals import renew_due
from renewly.billing.subscriptions import cancel_subscription, change_seats, create_subscription
from renewly.scheduler import advance
from renewly.shared.errors import InvalidInput, NotAllowed, NotFound
from renewly.shared.money import Money
from tests.builders import OPERATOR, customer, subscribed, team_plan

FEB_1 = datetime(2026, 2, 1, tzinfo=UTC)


def lines(app, number: str) -> list[tuple[str, int, int, int]]:
    return [(line["kind"], line["quantity"], line["unit_amount"], line["amount"])
            for line in show_invoice(app, number)["lines"]]


def totals(app, number: str) -> tuple[int, int, int]:
    invoice = show_invoice(app, number)
    return invoice["subtotal"], invoice["tax"], invoice["total"]


def test_a_subscription_starting_today_is_invoiced_at_once_for_its_first_period(app):
    account_id, subscription_id = subscribed(app, seats=3)
    [subscription] = describe_account(app, account_id)["subscriptions"]
    assert (subscription["id"], subscription["seats"], subscription["status"]) == (subscription_id, 3, "active")
    assert (subscription["current_period_start"], subscription["current_period_end"]) == (
        date(2026, 1, 1), date(2026, 2, 1))
    assert subscription["renews_at"] == FEB_1
    assert lines(app, "2026-000001") == [("subscription", 3, 1900, 5700)]


def test_a_subscription_starting_later_is_first_invoiced_on_its_start_day(app):
    account_id, _ = subscribed(app, start=date(2026, 1, 10))
    assert list_invoices(app, account_id) == []
    advance(app, timedelta(days=10))
    [invoice] = list_invoices(app, account_id)
    assert (invoice["period_start"], invoice["period_end"]) == (date(2026, 1, 10), date(2026, 2, 10))


def test_a_subscription_started_in_the_past_is_invoiced_for_every_period_up_to_today(app):
    account_id, _ = subscribed(app, start=date(2025, 11, 30))
    periods = [(i["period_start"], i["period_end"]) for i in list_invoices(app, account_id)]
    assert periods == [(date(2025, 11, 30), date(2025, 12, 30)), (date(2025, 12, 30), date(2026, 1, 30))]


def test_a_renewal_falls_due_at_midnight_in_the_accounts_time_zone(app):
    app.test_clock.set(datetime(2026, 1, 1, 12, tzinfo=UTC))  # January 1 in Los Angeles too
    account_id, _ = subscribed(app, timezone="America/Los_Angeles")
    assert renew_due(app, datetime(2026, 2, 1, 7, 59, tzinfo=UTC)).invoices_issued == 0
    assert renew_due(app, datetime(2026, 2, 1, 8, tzinfo=UTC)).invoices_issued == 1
    assert [i["period_start"] for i in list_invoices(app, account_id)] == [date(2026, 1, 1), date(2026, 2, 1)]


@pytest.mark.parametrize("request_, error, code", [
    ({"plan_code": "gold"}, NotFound, "unknown_plan"),
    ({"seats": 0}, InvalidInput, "invalid_seats"),
    ({"seats": -3}, InvalidInput, "invalid_seats"),
    ({"account_id": 99}, NotFound, "unknown_account"),
], ids=["unknown-plan", "zero-seats", "negative-seats", "unknown-account"])
def test_a_bad_subscription_is_refused_and_nothing_is_written(app, request_, error, code):
    account_id = customer(app)
    team_plan(app)
    request = {"account_id": account_id, "plan_code": "team", "seats": 3} | request_
    with pytest.raises(error) as refused:
        create_subscription(app, request.pop("account_id"), **request, actor=OPERATOR)
    assert refused.value.code == code
    assert describe_account(app, account_id)["subscriptions"] == [] and list_invoices(app) == []


def test_a_plan_in_another_currency_than_the_account_is_refused(app):
    account_id = customer(app, currency="EUR")
    team_plan(app, currency="USD")
    with pytest.raises(InvalidInput) as refused:
        create_subscription(app, account_id, plan_code="team", seats=1, actor=OPERATOR)
    assert refused.value.code == "currency_mismatch"
    assert list_invoices(app) == []


def test_adding_seats_mid_period_puts_a_proration_line_on_the_next_invoice(app):
    _, subscription_id = subscribed(app, seats=3)
    advance(app, timedelta(days=15))  # January 16: 16 of January's 31 days left
    assert change_seats(app, subscription_id, seats=5, actor=OPERATOR) == Money(1961, "USD")  # 2 × 19.00 × 16/31
    renew_due(app, FEB_1)
    assert lines(app, "2026-000002") == [("subscription", 5, 1900, 9500), ("proration", 1, 1961, 1961)]
    assert totals(app, "2026-000002") == (11461, 2292, 13753)
    description = show_invoice(app, "2026-000002")["lines"][1]["description"]
    assert description == "Team: seats 3 → 5 from Jan 16, 2026, prorated to Jan 31, 2026"


def test_removing_seats_mid_period_credits_the_next_invoice(app):
    _, subscription_id = subscribed(app, seats=5)
    advance(app, timedelta(days=15))
    assert change_seats(app, subscription_id, seats=3, actor=OPERATOR) == Money(-1961, "USD")
    renew_due(app, FEB_1)
    assert lines(app, "2026-000002") == [("subscription", 3, 1900, 5700), ("proration", 1, -1961, -1961)]
    assert totals(app, "2026-000002") == (3739, 748, 4487)


def test_a_proration_is_invoiced_once(app):
    _, subscription_id = subscribed(app, seats=3)
    advance(app, timedelta(days=15))
    change_seats(app, subscription_id, seats=4, actor=OPERATOR)
    renew_due(app, datetime(2026, 3, 1, tzinfo=UTC))
    assert [kind for kind, *_ in lines(app, "2026-000002")] == ["subscription", "proration"]
    assert lines(app, "2026-000003") == [("subscription", 4, 1900, 7600)]


def test_a_credit_larger_than_the_next_charge_is_carried_forward_until_used(app):
    _, subscription_id = subscribed(app, seats=10)
    # on the period's first day
    assert change_seats(app, subscription_id, seats=1, actor=OPERATOR) == Money(-17100, "USD")
    renew_due(app, FEB_1)
    assert totals(app, "2026-000002") == (0, 0, 0)
    assert lines(app, "2026-000002") == [("subscription", 1, 1900, 1900), ("proration", 1, -17100, -17100),
                                         ("credit_carried_forward", 1, 15200, 15200)]
    renew_due(app, datetime(2026, 3, 1, tzinfo=UTC))
    assert totals(app, "2026-000003") == (0, 0, 0)
    assert lines(app, "2026-000003") == [("subscription", 1, 1900, 1900),
                                         ("credit_brought_forward", 1, -15200, -15200),
                                         ("credit_carried_forward", 1, 13300, 13300)]
    assert all(invoice["status"] == "paid" for invoice in list_invoices(app)[1:])  # nothing to collect


def test_changing_to_the_same_seat_count_or_an_unknown_subscription_is_refused(app):
    _, subscription_id = subscribed(app, seats=3)
    with pytest.raises(InvalidInput):
        change_seats(app, subscription_id, seats=3, actor=OPERATOR)
    with pytest.raises(InvalidInput):
        change_seats(app, subscription_id, seats=0, actor=OPERATOR)
    with pytest.raises(NotFound):
        change_seats(app, 99, seats=4, actor=OPERATOR)
    renew_due(app, FEB_1)
    assert lines(app, "2026-000002") == [("subscription", 3, 1900, 5700)]


def test_a_cancelled_subscription_is_never_renewed_and_its_issued_invoice_stays(app):
    account_id, subscription_id = subscribed(app, seats=3)
    assert cancel_subscription(app, subscription_id, actor=OPERATOR) == Money(0, "USD")
    renew_due(app, datetime(2026, 4, 1, tzinfo=UTC))
    assert [invoice["number"] for invoice in list_invoices(app, account_id)] == ["2026-000001"]
    assert describe_account(app, account_id)["subscriptions"][0]["status"] == "cancelled"
    with app.engine.connect() as conn:
        event = conn.execute(select(outbox.c.topic, outbox.c.payload).where(outbox.c.topic == "subscription.cancelled")
                             ).one()
    assert event.payload == {"subscription_id": subscription_id}


def test_a_cancellation_says_which_prorations_will_never_be_invoiced(app):
    _, subscription_id = subscribed(app, seats=3)
    advance(app, timedelta(days=15))
    change_seats(app, subscription_id, seats=5, actor=OPERATOR)
    assert cancel_subscription(app, subscription_id, actor=OPERATOR) == Money(1961, "USD")


def test_a_subscription_is_cancelled_once_and_then_changes_no_more(app):
    _, subscription_id = subscribed(app, seats=3)
    cancel_subscription(app, subscription_id, actor=OPERATOR)
    for act in (lambda: cancel_subscription(app, subscription_id, actor=OPERATOR),
                lambda: change_seats(app, subscription_id, seats=4, actor=OPERATOR)):
        with pytest.raises(NotAllowed) as refused:
            act()
        assert refused.value.code == "subscription_inactive"
    with pytest.raises(NotFound):
        cancel_subscription(app, subscription_id + 1, actor=OPERATOR)
