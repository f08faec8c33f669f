from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from renewly.billing.invoices import list_invoices, show_invoice
from renewly.billing.renewals import renew_due
from renewly.scheduler import advance
from tests.builders import subscribed


def test_r2_1_a_new_subscription_is_invoiced_for_its_first_period_at_once(app):
    account_id, _ = subscribed(app, seats=3)
    [invoice] = list_invoices(app, account_id)
    assert invoice["number"] == "2026-000001"
    assert (invoice["period_start"], invoice["period_end"]) == (date(2026, 1, 1), date(2026, 2, 1))
    assert (invoice["subtotal"], invoice["tax"], invoice["total"]) == (5700, 1140, 6840)


def test_r2_1_renewal_issues_one_invoice_per_period_with_the_next_number(app):
    account_id, _ = subscribed(app)
    renew_due(app, datetime(2026, 2, 1, tzinfo=UTC))
    renew_due(app, datetime(2026, 2, 1, tzinfo=UTC))
    numbers = [(i["number"], i["period_start"]) for i in list_invoices(app, account_id)]
    assert numbers == [("2026-000001", date(2026, 1, 1)), ("2026-000002", date(2026, 2, 1))]


def test_month_end_anchor_holds_through_february(app):
    app.test_clock.set(datetime(2026, 1, 31, tzinfo=UTC))
    account_id, _ = subscribed(app)
    advance(app, timedelta(days=90))
    periods = [(i["period_start"], i["period_end"]) for i in list_invoices(app, account_id)]
    assert periods == [(date(2026, 1, 31), date(2026, 2, 28)), (date(2026, 2, 28), date(2026, 3, 31)),
                       (date(2026, 3, 31), date(2026, 4, 30)), (date(2026, 4, 30), date(2026, 5, 31))]


def test_a_late_run_catches_up_every_missed_period_once(app):
    account_id, _ = subscribed(app)
    advance(app, timedelta(days=100), run_batches=False)
    assert len(list_invoices(app, account_id)) == 1
    report = renew_due(app, app.clock.now())
    assert report.invoices_issued == 3
    assert renew_due(app, app.clock.now()).invoices_issued == 0
    assert [i["number"] for i in list_invoices(app, account_id)] == [f"2026-00000{n}" for n in range(1, 5)]


def test_r3_1_invoice_carries_the_buyer_snapshot(app):
    account_id, _ = subscribed(app, name="Acme SAS", country="FR")
    invoice = show_invoice(app, "2026-000001")
    assert invoice["buyer"]["name"] == "Acme SAS" and invoice["buyer"]["country"] == "FR"
    assert invoice["seller"]["name"] == app.settings.seller.name
