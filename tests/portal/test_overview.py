"""R1: only the owner manages billing, and only of the owner's own account. R2.2 (the list of
invoices; the PDF comes with the documents issue) and R2.3 (support resends a month's invoices)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from renewly.accounts.accounts import add_member
from renewly.accounts.contacts import approve_contact, request_contact
from renewly.billing.invoices import resend_invoices_of_month
from renewly.outbox.reading import list_outbox
from renewly.portal.overview import billing_overview
from renewly.scheduler import advance
from renewly.shared.errors import InvalidInput, NotAllowed, NotFound
from tests.builders import OPERATOR, database_rows, subscribed

OWNER = "owner@acme.test"


@pytest.fixture
def acme(app) -> int:
    account_id, _ = subscribed(app, owner=OWNER)
    add_member(app, account_id, email="admin@acme.test", role="admin", actor=OPERATOR)
    add_member(app, account_id, email="agent@acme.test", role="agent", actor=OPERATOR)
    return account_id


def test_r1_1_the_owner_sees_subscription_invoices_card_address_and_contacts(app, acme):
    overview = billing_overview(app, acme, acting_email=OWNER)
    assert [s["seats"] for s in overview["subscriptions"]] == [3]
    assert [i["number"] for i in overview["invoices"]] == ["2026-000001"]  # R2.2: the owner lists invoices
    assert (overview["payment_method"]["brand"], overview["payment_method"]["last4"]) == ("visa", "4242")
    assert overview["buyer"]["name"] == "Acme"
    assert [c["email"] for c in overview["billing_contacts"]] == [OWNER]


@pytest.mark.parametrize("member", ["admin@acme.test", "agent@acme.test"])
def test_r1_1_admins_and_agents_are_told_only_the_owner_can(app, acme, member):
    with pytest.raises(NotAllowed, match=r"only the account owner \(owner@acme.test\) can do this"):
        billing_overview(app, acme, acting_email=member)


def test_r1_2_the_owner_of_another_account_gets_nothing_of_this_one(app, acme):
    other, _ = subscribed(app, name="Globex", owner="boss@globex.test", plan="team")
    with pytest.raises(NotAllowed) as refused:
        billing_overview(app, acme, acting_email="boss@globex.test")
    assert refused.value.message == f"boss@globex.test is not a member of account {acme}"
    assert OWNER not in refused.value.message  # not even who the owner is
    assert billing_overview(app, other, acting_email="boss@globex.test")["account_id"] == other


def test_r1_2_an_unknown_account_is_not_found(app, acme):
    with pytest.raises(NotFound):
        billing_overview(app, 999, acting_email=OWNER)


def test_r2_3_support_resends_the_invoices_of_a_month_to_every_billing_contact(app, acme):
    request_contact(app, acme, email="books@acme.test", requested_by="admin@acme.test")
    approve_contact(app, acme, email="books@acme.test", acting_email=OWNER)
    advance(app, timedelta(days=40))  # February's invoice is issued too
    assert resend_invoices_of_month(app, acme, year=2026, month=2, reason="lost in spam", actor=OPERATOR) == [
        "2026-000002"]
    *issued, sent = [row["payload"] for row in list_outbox(app, account_id=acme, topic="email")
                     if row["payload"]["kind"] == "invoice"]
    assert [e["invoice"] for e in issued] == ["2026-000001", "2026-000002"]  # each e-mailed at issue (R4.3)
    assert sent["recipients"] == [OWNER, "books@acme.test"]
    assert sent["contacts"] == {"books@acme.test": sent["contacts"]["books@acme.test"]}  # its removal link (R4.2)
    assert sent["invoice"] == "2026-000002" and "2026-000002" in sent["subject"]
    assert "lost in spam" in sent["body"]


def test_r2_3_a_month_without_invoices_and_bad_months_are_refused_and_change_nothing(app, acme):
    before = database_rows(app)
    with pytest.raises(NotFound, match="no invoice issued in 2025-12"):
        resend_invoices_of_month(app, acme, year=2025, month=12, reason="asked", actor=OPERATOR)
    with pytest.raises(InvalidInput):
        resend_invoices_of_month(app, acme, year=2026, month=13, reason="asked", actor=OPERATOR)
    with pytest.raises(InvalidInput):
        resend_invoices_of_month(app, acme, year=2026, month=1, reason=" ", actor=OPERATOR)
    assert database_rows(app) == before


def test_r2_3_and_r1_1_through_the_command_line(app, acme, renewly):
    resent = renewly("invoices", "resend", str(acme), "--month", "2026-01", "--reason", "asked").out
    # Nothing is sent by the command: the e-mail waits in the outbox, and here no server takes it.
    assert " ".join(resent.split()) == ("to send again: 2026-000001, in the outbox; no SMTP server is configured "
                                        "(mail.host): they stay there")
    refused = renewly("billing", "show", str(acme), "--as", "agent@acme.test")
    assert (refused.code, refused.err) == (2, "error: only the account owner (owner@acme.test) can do this\n")
    assert renewly("billing", "show", str(acme), "--as", OWNER, "--json").json()["invoices"][0]["number"] == \
        "2026-000001"
    bad = renewly("invoices", "resend", str(acme), "--month", "January", "--reason", "asked")
    assert (bad.code, bad.err) == (2, "error: malformed --month 'January': expected YYYY-MM\n")


def test_r4_1_a_request_waiting_for_the_owner_is_listed_apart_not_as_a_contact(app, acme):
    request_contact(app, acme, email="books@acme.test", requested_by="admin@acme.test")
    overview = billing_overview(app, acme, acting_email=OWNER)
    assert [c["email"] for c in overview["billing_contacts"]] == [OWNER]
    assert [(c["email"], c["requested_by"]) for c in overview["contact_requests"]] == [
        ("books@acme.test", "admin@acme.test")]
    approve_contact(app, acme, email="books@acme.test", acting_email=OWNER)
    overview = billing_overview(app, acme, acting_email=OWNER)
    assert [c["email"] for c in overview["billing_contacts"]] == [OWNER, "books@acme.test"]
    assert overview["contact_requests"] == []
