"""`/v1/invoices`: invoices and credit notes as issued, money in integer minor units, the buyer
as it was at issue (R3.1), a credit note naming the invoice it corrects (R2.4), and the owner's
PDF: the stored PDF/A-3 with its Factur-X XML, the same bytes the command line gives (R2.2)."""

from __future__ import annotations

from datetime import timedelta

from facturx import get_facturx_xml_from_pdf

from renewly.accounts.accounts import add_member, update_buyer_address
from renewly.billing.documents import invoice_pdf
from renewly.billing.invoices import issue_credit_note
from renewly.billing.subscriptions import change_seats
from renewly.scheduler import advance
from tests.builders import OPERATOR, customer, subscribed
from tests.web.conftest import problem, statements_sent

OWNER = "owner@acme.test"


def billed(app, locale: str = "en") -> int:
    """An account whose first invoice (2026-000001, 3 seats of 19.00 USD, French VAT) was
    corrected by a credit note of 10.00 USD before tax; the buyer address changed since."""
    account_id, _ = subscribed(app, seats=3, locale=locale)
    issue_credit_note(app, "2026-000001", reason="a seat too many", amount=1000, actor=OPERATOR)
    update_buyer_address(app, account_id, changes={"line1": "1 rue Neuve", "city": "Lyon"}, acting_email=OWNER,
                         actor=OPERATOR)
    return account_id


def test_r2_1_an_invoice_and_its_credit_note_as_issued_in_minor_units(client, app):
    account_id = billed(app)
    invoice = client.get("/v1/invoices/1").json()
    assert {key: invoice[key] for key in ("object", "id", "number", "account_id", "credited_invoice_id",
                                          "credited_invoice_number", "currency", "subtotal", "tax_rate", "tax",
                                          "total", "locale", "issue_date", "period_start", "period_end")} == {
        "object": "invoice", "id": 1, "number": "2026-000001", "account_id": account_id, "credited_invoice_id": None,
        "credited_invoice_number": None, "currency": "USD", "subtotal": 5700, "tax_rate": "20", "tax": 1140,
        "total": 6840, "locale": "en", "issue_date": "2026-01-01", "period_start": "2026-01-01",
        "period_end": "2026-02-01"}
    [line] = invoice["lines"]
    assert (line["quantity"], line["unit_amount"], line["amount"]) == (3, 1900, 5700)
    # R3.1: the buyer as it was when the invoice was issued, not the address changed since.
    assert (invoice["buyer"]["name"], invoice["buyer"]["line1"], invoice["buyer"]["city"]) == ("Acme", "", "")
    assert invoice["seller"]["name"]
    note = client.get("/v1/invoices/2").json()
    assert {key: note[key] for key in ("object", "subscription_id", "credited_invoice_id", "credited_invoice_number",
                                       "subtotal", "tax", "total", "currency")} == {
        "object": "credit_note", "subscription_id": None, "credited_invoice_id": 1,
        "credited_invoice_number": "2026-000001", "subtotal": 1000, "tax": 200, "total": 1200, "currency": "USD"}


def test_invoices_are_listed_per_account_a_page_at_a_time_as_get_shows_them(client, app):
    account_id = billed(app)
    other = customer(app, name="Other", owner="boss@other.test")
    add_member(app, other, email="admin@other.test", role="admin", actor=OPERATOR)
    first = client.get("/v1/invoices", params={"account_id": account_id, "limit": 1}).json()
    assert [item["number"] for item in first["data"]] == ["2026-000001"] and first["has_more"]
    second = client.get("/v1/invoices", params={"account_id": account_id, "cursor": first["next_cursor"]}).json()
    assert [item["object"] for item in second["data"]] == ["credit_note"] and not second["has_more"]
    assert first["data"] + second["data"] == [client.get(f"/v1/invoices/{n}").json() for n in (1, 2)]
    assert client.get("/v1/invoices", params={"account_id": other}).json() == {
        "object": "list", "data": [], "has_more": False, "next_cursor": None}
    assert len(client.get("/v1/invoices").json()["data"]) == 2



def test_a_page_counts_documents_not_lines_and_is_read_in_one_statement(client, app, trust_clock):
    """The renewal after a seat change carries the proration on a line of its own: a page of one
    is that one document with all its lines, in order, and says that the credit note after it
    follows."""
    account_id, subscription_id = subscribed(app, seats=3)
    advance(app, timedelta(days=15))
    change_seats(app, subscription_id, seats=5, actor=OPERATOR)
    advance(app, timedelta(days=17))  # past the renewal of 2026-02-01
    issue_credit_note(app, "2026-000002", reason="goodwill", amount=100, actor=OPERATOR)
    listed = {"account_id": account_id, "limit": 1}
    first = client.get("/v1/invoices", params=listed).json()  # the key trusted from now on
    with statements_sent(app) as sent:
        second = client.get("/v1/invoices", params={**listed, "cursor": first["next_cursor"]}).json()
    assert len(sent) == 1, sent
    [renewal] = second["data"]
    assert (renewal["number"], [line["position"] for line in renewal["lines"]]) == ("2026-000002", [1, 2])
    assert second["has_more"]
    third = client.get("/v1/invoices", params={**listed, "cursor": second["next_cursor"]}).json()
    assert [(note["object"], note["credited_invoice_number"]) for note in third["data"]] == [
        ("credit_note", "2026-000002")] and not third["has_more"]
    assert renewal == client.get(f"/v1/invoices/{renewal['id']}").json()


def test_an_invoice_refused(client, app):
    billed(app)
    problem(client.get("/v1/invoices/3"), 404, "unknown_invoice")
    problem(client.get("/v1/invoices/0"), 422, "invalid_input")
    problem(client.get(f"/v1/invoices/{2**63}"), 422, "invalid_input")
    problem(client.get("/v1/invoices", params={"account_id": 0}), 422, "invalid_input")
    problem(client.get("/v1/invoices", params={"limit": 101}), 422, "invalid_input")
    problem(client.get("/v1/invoices", params={"cursor": "bm90IGEgY3Vyc29y"}), 400, "invalid_cursor")


def test_r2_2_the_owner_downloads_the_stored_pdf_with_its_facturx_xml_named_in_the_accounts_language(client, app):
    billed(app, locale="fr")
    response = client.get("/v1/invoices/1/pdf", params={"acting_member": "Owner@Acme.test"})
    assert response.status_code == 200 and response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"] == (  # as the invoice's e-mail names it (R12.1)
        "attachment; filename=\"facture-2026-000001.pdf\"; filename*=UTF-8''facture-2026-000001.pdf")
    pdf = response.content
    assert pdf.startswith(b"%PDF") and get_facturx_xml_from_pdf(pdf, check_xsd=False)[0] == "factur-x.xml"
    # R2.4: the stored document, the bytes the command line's `invoices pdf` gives, every time.
    assert invoice_pdf(app, "2026-000001", acting_email=OWNER) == pdf
    assert client.get("/v1/invoices/1/pdf", params={"acting_member": OWNER}).content == pdf


def test_r1_the_pdf_is_refused_to_anyone_but_the_owner(client, app):
    account_id = billed(app)
    add_member(app, account_id, email="admin@acme.test", role="admin", actor=OPERATOR)
    customer(app, name="Other", owner="boss@other.test")
    body = problem(client.get("/v1/invoices/1/pdf", params={"acting_member": "admin@acme.test"}), 403,
                   "owner_required")
    assert OWNER in body["detail"]  # told who can (R1.1)
    # R1.2: the owner of another account learns nothing, not even that the invoice exists.
    problem(client.get("/v1/invoices/1/pdf", params={"acting_member": "boss@other.test"}), 404, "unknown_invoice")
    problem(client.get("/v1/invoices/9/pdf", params={"acting_member": OWNER}), 404, "unknown_invoice")
    problem(client.get("/v1/invoices/1/pdf"), 422, "invalid_input")
    problem(client.get("/v1/invoices/1/pdf", params={"acting_member": "not an e-mail"}), 422, "invalid_input")
