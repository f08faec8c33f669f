from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from renewly.accounts.accounts import update_buyer_address
from renewly.adapters.db.tables import audit_log, invoices
from renewly.billing.invoices import issue_credit_note, list_invoices, show_invoice
from renewly.billing.numbering import take_sequences
from renewly.billing.renewals import renew_due
from renewly.billing.subscriptions import change_seats, create_subscription
from renewly.scheduler import advance
from renewly.shared.errors import InvalidInput, NotAllowed, NotFound
from renewly.shared.money import Money
from tests.builders import OPERATOR, customer, subscribed, team_plan
from tests.processes import run_at_once

FEB_1 = datetime(2026, 2, 1, tzinfo=UTC)


def three_customers(app) -> list[int]:
    team_plan(app)
    accounts = [customer(app, name=name, owner=f"owner@{name.lower()}.test") for name in ("Acme", "Globex", "Initech")]
    for account_id in accounts:
        create_subscription(app, account_id, plan_code="team", seats=1, actor=OPERATOR)
    return accounts


def status_of(app, number: str) -> str:
    return show_invoice(app, number)["status"]


# -- R2.1 numbering --------------------------------------------------------------------------------------

def test_r2_1_numbers_are_sequential_and_gapless_across_accounts(app):
    accounts = three_customers(app)
    renew_due(app, FEB_1)
    renew_due(app, datetime(2026, 3, 1, tzinfo=UTC))
    issued = list_invoices(app)
    assert [i["number"] for i in issued] == [f"2026-{n:06d}" for n in range(1, 10)]
    assert [i["account_id"] for i in issued] == accounts * 3
    assert [i["issue_date"] for i in issued] == [date(2026, 1, 1)] * 3 + [date(2026, 2, 1)] * 3 + [date(2026, 3, 1)] * 3


def test_r2_1_a_refused_request_uses_no_number(app):
    account_id, _ = subscribed(app)
    with pytest.raises(InvalidInput):
        issue_credit_note(app, "2026-000001", reason="too much", amount=10**6, actor=OPERATOR)
    with pytest.raises(InvalidInput):
        create_subscription(app, account_id, plan_code="team", seats=0, actor=OPERATOR)
    renew_due(app, FEB_1)
    issue_credit_note(app, "2026-000002", reason="goodwill", amount=100, actor=OPERATOR)
    assert [i["number"] for i in list_invoices(app)] == ["2026-000001", "2026-000002", "CN-2026-000001"]


def test_r2_1_a_rolled_back_issue_gives_its_numbers_back(app):
    subscribed(app)
    with pytest.raises(RuntimeError):
        with app.engine.begin() as conn:
            assert take_sequences(conn, "2026", 5) == 2
            raise RuntimeError("the transaction fails after taking its numbers")
    renew_due(app, FEB_1)
    assert [i["number"] for i in list_invoices(app)] == ["2026-000001", "2026-000002"]


def test_r2_1_each_issue_year_starts_its_own_series(app):
    app.test_clock.set(datetime(2026, 12, 15, tzinfo=UTC))
    account_id, _ = subscribed(app)
    advance(app, timedelta(days=31))
    assert [i["number"] for i in list_invoices(app, account_id)] == ["2026-000001", "2027-000001"]


def test_r2_1_issue_dates_follow_the_sellers_calendar(app):
    # 23:30 UTC on January 31 is already February 1 in Paris, where the seller issues its invoices.
    app.test_clock.set(datetime(2026, 1, 31, 23, 30, tzinfo=UTC))
    account_id, _ = subscribed(app, timezone="UTC")
    [invoice] = list_invoices(app, account_id)
    assert (invoice["issue_date"], invoice["period_start"]) == (date(2026, 2, 1), date(2026, 1, 31))


def test_r2_1_an_invoice_carries_the_seller_and_buyer_identity(app):
    subscribed(app, name="Acme SAS", country="FR")
    invoice = show_invoice(app, "2026-000001")
    assert invoice["seller"] == app.seller
    assert invoice["seller"]["vat_id"] == app.settings.seller.vat_id
    assert invoice["buyer"]["name"] == "Acme SAS"
    assert (invoice["currency"], invoice["tax_rate"]) == ("USD", "20")


# -- R2.4 credit notes are the correction ---------------------------------------------------------------

def test_r2_4_credit_notes_have_their_own_series(app):
    subscribed(app)
    renew_due(app, FEB_1)
    assert issue_credit_note(app, "2026-000001", reason="seat unused", amount=1900, actor=OPERATOR) == "CN-2026-000001"
    assert issue_credit_note(app, "2026-000002", reason="seat unused", amount=1900, actor=OPERATOR) == "CN-2026-000002"
    renew_due(app, datetime(2026, 3, 1, tzinfo=UTC))
    assert [i["number"] for i in list_invoices(app)] == ["2026-000001", "2026-000002", "CN-2026-000001",
                                                         "CN-2026-000002", "2026-000003"]


def test_r2_4_a_full_credit_of_an_open_invoice_voids_it(app):
    subscribed(app)
    assert status_of(app, "2026-000001") == "open"
    number = issue_credit_note(app, "2026-000001", reason="cancelled the first day", actor=OPERATOR)
    note = show_invoice(app, number)
    assert (note["kind"], note["status"], note["subtotal"], note["tax"], note["total"]) == (
        "credit_note", "paid", 5700, 1140, 6840)
    assert note["credited_invoice_id"] == show_invoice(app, "2026-000001")["id"]
    assert note["lines"][0]["description"] == "Credit for invoice 2026-000001: cancelled the first day"
    assert status_of(app, "2026-000001") == "void"


def test_r2_4_a_partial_credit_leaves_the_invoice_as_issued_and_open(app):
    subscribed(app)
    before = show_invoice(app, "2026-000001")
    number = issue_credit_note(app, "2026-000001", reason="one seat unused", amount=1900, actor=OPERATOR)
    assert (show_invoice(app, number)["total"], show_invoice(app, "2026-000001")) == (2280, before)


def test_r2_4_partial_credits_that_add_up_to_the_whole_invoice_void_it(app):
    subscribed(app)
    issue_credit_note(app, "2026-000001", reason="one seat", amount=1900, actor=OPERATOR)
    issue_credit_note(app, "2026-000001", reason="the rest", actor=OPERATOR)
    assert [i["subtotal"] for i in list_invoices(app) if i["kind"] == "credit_note"] == [1900, 3800]
    assert status_of(app, "2026-000001") == "void"


def test_r2_4_crediting_more_than_the_invoice_is_refused_and_nothing_is_issued(app):
    subscribed(app)
    issue_credit_note(app, "2026-000001", reason="one seat", amount=1900, actor=OPERATOR)
    with pytest.raises(InvalidInput) as refused:
        issue_credit_note(app, "2026-000001", reason="too much", amount=3801, actor=OPERATOR)
    assert refused.value.code == "invalid_credit_amount"
    assert len(list_invoices(app)) == 2 and status_of(app, "2026-000001") == "open"


def test_r2_4_a_credit_note_cannot_be_credited(app):
    subscribed(app)
    number = issue_credit_note(app, "2026-000001", reason="one seat", amount=1900, actor=OPERATOR)
    with pytest.raises(NotAllowed):
        issue_credit_note(app, number, reason="undo", actor=OPERATOR)
    assert len(list_invoices(app)) == 2


@pytest.mark.parametrize("number, reason, error", [("2026-000001", " ", InvalidInput),
                                                   ("2026-000099", "typo", NotFound)])
def test_r2_4_a_credit_note_needs_a_reason_and_an_existing_invoice(app, number, reason, error):
    subscribed(app)
    with pytest.raises(error):
        issue_credit_note(app, number, reason=reason, actor=OPERATOR)
    assert len(list_invoices(app)) == 1


def test_r2_4_a_credit_note_corrects_the_invoice_as_issued_with_its_buyer_snapshot(app):
    account_id, _ = subscribed(app, name="Acme SAS", country="FR")
    update_buyer_address(app, account_id, changes={"name": "Acme GmbH", "country": "DE"},
                         acting_email="owner@acme.test", actor=OPERATOR)
    note = show_invoice(app, issue_credit_note(app, "2026-000001", reason="refund", actor=OPERATOR))
    assert (note["buyer"]["name"], note["buyer"]["country"], note["tax_rate"], note["tax"]) == (
        "Acme SAS", "FR", "20", 1140)


def test_r2_4_a_credit_note_is_audited_with_its_reason(app):
    subscribed(app)
    issue_credit_note(app, "2026-000001", reason="seat unused", amount=1900, actor="support:alice")
    with app.engine.connect() as conn:
        entry = conn.execute(select(audit_log).where(audit_log.c.action == "credit_note.issued")).one()
    assert (entry.actor, entry.target_id, entry.reason) == ("support:alice", "2026-000001", "seat unused")
    assert entry.details["credit_note"] == "CN-2026-000001"


def test_r2_4_issued_invoices_keep_their_content_when_the_plan_or_seats_change(app):
    _, subscription_id = subscribed(app, seats=3)
    before = show_invoice(app, "2026-000001")
    change_seats(app, subscription_id, seats=8, actor=OPERATOR)
    with app.engine.begin() as conn:
        conn.execute(invoices.update().where(invoices.c.number == "2026-000001").values(status="paid"))
    after = show_invoice(app, "2026-000001")
    assert after | {"status": "open"} == before


# -- R12.1 languages ---------------------------------------------------------------------------------------

def test_r12_1_a_french_accounts_invoice_is_in_french_with_amounts_formatted_for_fr(app):
    team_plan(app, currency="EUR")
    account_id = customer(app, locale="fr", timezone="Europe/Paris", currency="EUR", country="FR")
    subscription_id = create_subscription(app, account_id, plan_code="team", seats=3, actor=OPERATOR)
    advance(app, timedelta(days=15))
    change_seats(app, subscription_id, seats=4, actor=OPERATOR)
    renew_due(app, FEB_1)
    invoice = show_invoice(app, "2026-000002")
    assert invoice["locale"] == "fr"
    assert [line["description"] for line in invoice["lines"]] == [
        "Team (mensuel), du 1 févr. 2026 au 28 févr. 2026",
        "Team : licences 3 → 4 à partir du 16 janv. 2026, au prorata jusqu'au 31 janv. 2026"]
    total = Money(invoice["total"], invoice["currency"]).format(invoice["locale"])
    assert total.replace("\u202f", " ").replace("\xa0", " ") == "102,97 €"  # (76.00 + 19.00 × 16/31) × 1.20


@pytest.mark.postgres_only
def test_r2_4_three_credit_notes_at_once_never_credit_more_than_the_invoice(pg_app):
    """Three `invoices credit` processes at once used to credit one invoice three times: each one
    now takes its account first and reads what is left to credit under that lock."""
    subscribed(pg_app)
    finished = run_at_once(pg_app, ["invoices", "credit", "2026-000001", "--reason", "refund"], gate="accounts",
                           environment={}, count=3, outcomes=True, as_json=False)
    assert sorted(code for code, _, _ in finished) == [0, 2, 2]
    assert all("can be credited between 1 and 0" in err for code, _, err in finished if code == 2)
    with pg_app.engine.connect() as conn:
        credited = conn.execute(select(func.sum(invoices.c.subtotal)).where(invoices.c.kind == "credit_note")).scalar()
        status = conn.execute(select(invoices.c.status).where(invoices.c.number == "2026-000001")).scalar()
    assert (credited, status) == (5700, "void")
