"""R2.2, R2.4, R3.1: an issued document's PDF, read back with pdftotext, and its Factur-X XML.

pdftotext (poppler-utils, installed by .ci/run) reads each PDF as a person would; the factur-x
library takes the XML back out of it and checks it against the EN 16931 schema (XSD), and the
official EN 16931 Schematron checks its business rules (tests/billing/schematron.py).
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from facturx import get_facturx_xml_from_pdf, xml_check_xsd
from lxml import etree
from pypdf import PdfReader
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError

from renewly.accounts.accounts import add_member, update_buyer_address
from renewly.adapters.db.tables import invoice_documents, invoices
from renewly.billing.documents import document_of, frozen_document, invoice_pdf, render_document
from renewly.billing.invoices import issue_credit_note
from renewly.billing.renewals import renew_due
from renewly.bootstrap import bootstrap
from renewly.config.settings import load_settings
from renewly.retention.deletion import purge_due
from renewly.scheduler import advance
from renewly.shared.errors import NotAllowed, NotFound
from tests.billing.schematron import en16931_findings
from tests.builders import OPERATOR, subscribed, team_plan
from tests.retention.test_deletion import RETENTION_ENDS, deleted_account

pytestmark = pytest.mark.skipif(shutil.which("pdftotext") is None,
                                reason="pdftotext missing: apt-get install poppler-utils (.ci/run does)")

OWNER = "owner@acme.test"
FEB_1 = datetime(2026, 2, 1, tzinfo=UTC)
RAM = "{urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100}"
ADDRESS = {"name": "Acme SAS", "line1": "12 rue de la Paix", "postcode": "75002", "city": "Paris", "country": "FR",
           "vat_id": "FR40303265045"}


def text_of(pdf: bytes) -> str:
    """What a reader sees, spaces folded (CLDR puts narrow no-break spaces in French amounts)."""
    said = subprocess.run(["pdftotext", "-layout", "-", "-"], input=pdf, capture_output=True, check=True).stdout
    return " ".join(said.decode("utf-8").replace("\u202f", " ").replace("\u00a0", " ").split())


# The one Schematron warning Renewly's XML draws: the CII schema requires the delivery block
# (BG-13), and a subscription has no delivery to put in it (its billing period is BG-14, in the
# settlement block); PEPPOL-EN16931-R008 warns of the element left empty. A warning, not a rule
# of EN 16931 broken: the invoice is valid.
ACCEPTED_WARNINGS = {("PEPPOL-EN16931-R008", "ApplicableHeaderTradeDelivery")}


def facturx_of(pdf: bytes) -> etree._Element:
    filename, xml = get_facturx_xml_from_pdf(pdf, check_xsd=False)
    assert filename == "factur-x.xml"
    xml_check_xsd(xml, flavor="factur-x", level="en16931")  # raises when the schema refuses it
    findings = en16931_findings(xml)
    assert [finding for finding in findings if finding.flag == "fatal"] == []
    assert {(finding.rule, finding.element) for finding in findings} <= ACCEPTED_WARNINGS, findings
    return etree.fromstring(xml)


def amount(xml: etree._Element, name: str) -> Decimal:
    [found] = xml.iter(f"{RAM}{name}")
    return Decimal(found.text)


def acme(app, *, locale: str = "fr", currency: str = "EUR") -> int:
    plan = team_plan(app, currency=currency)
    account_id, _ = subscribed(app, locale=locale, currency=currency, seats=3, plan=plan)
    update_buyer_address(app, account_id, changes=ADDRESS, acting_email=OWNER, actor=OWNER)
    return account_id


@pytest.fixture
def with_seller(app):
    """The same database, opened later with other seller settings (a new name, new terms)."""
    opened = []

    def reopen(**seller):
        opened.append(bootstrap(load_settings(config_file=None, database_url=app.settings.database_url, clock="test",
                                              payments={"simulator_url": app.settings.simulator_url()},
                                              seller=seller)))
        return opened[-1]

    yield reopen
    for application in opened:
        application.engine.dispose()


def stored_count(app) -> int:
    with app.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(invoice_documents)).scalar_one()


# -- R2.2: what the document says --------------------------------------------------------------------

def test_r2_2_the_invoice_says_everything_french_law_asks_of_a_business_invoice(app):
    acme(app)
    renew_due(app, FEB_1)  # 2026-000002: issued after the address was set
    said = text_of(invoice_pdf(app, "2026-000002", acting_email=OWNER))
    seller = app.settings.seller
    for mention in (
            "Facture 2026-000002", "Date d’émission : 1 février 2026", "Période : du 1 février 2026 au 28 février 2026",
            seller.name, seller.line1, f"{seller.postcode} {seller.city}", "SIREN : 123456782",
            "SIRET : 12345678200010", seller.registration, f"N° de TVA : {seller.vat_id}",
            "Acme SAS", "12 rue de la Paix", "75002 Paris", "N° de TVA : FR40303265045",
            "Désignation", "Prix unitaire HT", "Quantité", "Taux de TVA", "Montant HT",
            "19,00 € 3 20 % 57,00 €",  # unit price, quantity, VAT rate, amount of the seats' line
            "Total HT 57,00 €", "TVA 20 % sur 57,00 € 11,40 €", "Total TTC 68,40 €",
            "Date d’échéance : 3 mars 2026",  # the issue date + the 30 days of the payment terms
            "Conditions de paiement : 30 jours à compter de la date d’émission",
            "Pas d’escompte pour paiement anticipé", "Pénalités de retard : 12,15 % par an",
            "Indemnité forfaitaire pour frais de recouvrement en cas de retard de paiement : 40,00 €"):
        assert mention in said, f"{mention!r} missing from: {said}"


def test_r2_2_the_document_is_in_the_buyer_s_language_amounts_and_dates_included(app):
    acme(app, locale="en", currency="USD")
    renew_due(app, FEB_1)
    said = text_of(invoice_pdf(app, "2026-000002", acting_email=OWNER))
    for mention in ("Invoice 2026-000002", "Issue date: February 1, 2026", "Period: February 1, 2026 to February 28, "
                    "2026", "SIREN: 123456782", "VAT number: FR40303265045", "France",
                    "$19.00 3 20% $57.00", "Total excl. VAT $57.00", "VAT 20% on $57.00 $11.40",
                    "Total incl. VAT $68.40", "Due date: March 3, 2026", "Late payment penalties: 12.15% a year",
                    "Fixed indemnity for recovery costs in case of late payment: €40.00"):
        assert mention in said, f"{mention!r} missing from: {said}"
    assert "Facture" not in said and "TTC" not in said


def test_an_ordinary_invoice_is_one_page_of_pdf_a_3_carrying_its_factur_x_xml(app):
    acme(app)
    pdf = invoice_pdf(app, "2026-000001", acting_email=OWNER)
    reader = PdfReader(__import__("io").BytesIO(pdf))
    assert len(reader.pages) == 1
    xmp = reader.trailer["/Root"]["/Metadata"].get_object().get_data().decode()
    assert re.search(r"pdfaid:part[>=\"']+3", xmp) and "urn:factur-x:pdfa:CrossIndustryDocument:invoice:1p0#" in xmp
    assert "/AF" in reader.trailer["/Root"]  # the XML is an associated file of the document (PDF/A-3)


# -- R3.1: the buyer as frozen at issue ---------------------------------------------------------------

def test_r3_1_an_address_changed_after_issue_never_reaches_the_issued_invoice_s_pdf(app):
    account_id = acme(app)
    renew_due(app, FEB_1)
    before = text_of(invoice_pdf(app, "2026-000002", acting_email=OWNER))  # downloaded before the move
    update_buyer_address(app, account_id, changes={"name": "Acme Group SAS", "line1": "5 avenue Foch",
                                                   "postcode": "69006", "city": "Lyon"},
                         acting_email=OWNER, actor=OWNER)
    renew_due(app, datetime(2026, 3, 1, tzinfo=UTC))
    # 2026-000002 is first rendered before the move; 2026-000001 after it, never downloaded before:
    # both print the address frozen at their issue, 2026-000003 the new one.
    assert text_of(invoice_pdf(app, "2026-000002", acting_email=OWNER)) == before
    assert "12 rue de la Paix" in before and "Lyon" not in before
    first = text_of(invoice_pdf(app, "2026-000001", acting_email=OWNER))
    assert "Lyon" not in first and "Acme Group" not in first
    after = text_of(invoice_pdf(app, "2026-000003", acting_email=OWNER))
    assert "Acme Group SAS" in after and "5 avenue Foch" in after and "69006 Lyon" in after
    assert "12 rue de la Paix" not in after


# -- R2.4: the same content forever ---------------------------------------------------------------------

def test_r2_4_the_first_pdf_is_stored_and_served_ever_after_byte_for_byte(app, with_seller):
    acme(app)
    first = invoice_pdf(app, "2026-000001", acting_email=OWNER)
    assert invoice_pdf(app, "2026-000001", acting_email=OWNER) == first
    with app.engine.connect() as conn:
        stored = conn.execute(select(invoice_documents)).one()
    assert (stored.sha256, stored.media_type) == (hashlib.sha256(first).hexdigest(), "application/pdf")
    # The seller's settings changed later (a new name, new terms): the stored PDF is what is served.
    changed = with_seller(name="Renamed SAS", payment_terms_days=45)
    assert invoice_pdf(changed, "2026-000001", acting_email=OWNER) == first
    assert stored_count(app) == 1


def test_r2_4_a_render_of_the_frozen_rows_says_the_same_whatever_the_settings_of_the_day(app, with_seller):
    acme(app)
    with app.engine.connect() as conn:
        invoice_id = conn.execute(select(invoices.c.id)).scalar_one()
    stored = text_of(document_of(app, invoice_id))
    changed = with_seller(name="Renamed SAS", payment_terms_days=45, late_payment_rate="15")
    with changed.engine.connect() as conn:
        rendered_again = render_document(frozen_document(conn, invoice_id))
    assert text_of(rendered_again) == stored
    assert "Renamed" not in stored and "45 jours" not in stored


def test_r2_4_a_stored_pdf_cannot_be_changed(app):
    acme(app)
    invoice_pdf(app, "2026-000001", acting_email=OWNER)
    with pytest.raises(DBAPIError, match="invoice_documents rows cannot be changed"):
        with app.engine.begin() as conn:
            conn.execute(invoice_documents.update().values(content=b"%PDF-forged"))
    with pytest.raises(DBAPIError, match="invoice_documents rows cannot be deleted"):
        with app.engine.begin() as conn:
            conn.execute(invoice_documents.delete())


def test_r10_2_the_retention_batch_deletes_the_pdf_with_its_invoice(app):
    account_id = deleted_account(app)
    with app.engine.connect() as conn:
        [invoice_id] = conn.execute(select(invoices.c.id).where(invoices.c.account_id == account_id)).scalars()
    document_of(app, invoice_id)
    assert stored_count(app) == 1
    advance(app, RETENTION_ENDS - app.clock.now(), run_batches=False)
    assert purge_due(app, app.clock.now()).invoices_purged == 1
    assert stored_count(app) == 0


# -- Factur-X -------------------------------------------------------------------------------------------

def test_the_factur_x_xml_passes_the_en_16931_schema_and_its_totals_are_the_invoice_s(app):
    acme(app)
    renew_due(app, FEB_1)
    xml = facturx_of(invoice_pdf(app, "2026-000002", acting_email=OWNER))
    with app.engine.connect() as conn:
        invoice = conn.execute(select(invoices).where(invoices.c.number == "2026-000002")).one()
    assert [element.text for element in xml.iter(f"{RAM}TypeCode")][0] == "380"
    assert amount(xml, "TaxBasisTotalAmount") == Decimal(invoice.subtotal) / 100
    assert amount(xml, "TaxTotalAmount") == Decimal(invoice.tax) / 100
    assert amount(xml, "GrandTotalAmount") == amount(xml, "DuePayableAmount") == Decimal(invoice.total) / 100
    assert [element.text for element in xml.iter(f"{RAM}ID") if element.get("schemeID") == "0002"] == ["123456782"]


def test_the_en_16931_schematron_refuses_an_xml_whose_totals_do_not_add_up(app):
    acme(app)
    xml = facturx_of(invoice_pdf(app, "2026-000001", acting_email=OWNER))  # valid, as issued
    [grand_total] = xml.iter(f"{RAM}GrandTotalAmount")
    grand_total.text = str(Decimal(grand_total.text) + Decimal("0.01"))  # no longer net + VAT
    findings = en16931_findings(etree.tostring(xml, xml_declaration=True, encoding="UTF-8"))
    # BR-CO-15: the grand total is the net total plus VAT; BR-CO-16: the amount due follows from it.
    assert {finding.rule for finding in findings if finding.flag == "fatal"} == {"BR-CO-15", "BR-CO-16"}


def test_a_credit_note_names_the_invoice_it_corrects_in_its_pdf_and_its_xml(app):
    acme(app, locale="en")
    credit = issue_credit_note(app, "2026-000001", reason="seats billed twice", amount=1900, actor=OPERATOR)
    pdf = invoice_pdf(app, credit, acting_email=OWNER)
    said = text_of(pdf)
    assert "Credit note CN-2026-000001" in said
    assert "Corrects invoice 2026-000001 of January 1, 2026" in said
    assert "Total credited incl. VAT €22.80" in said
    assert "Due date" not in said and "Late payment" not in said  # a credit note is settled by being issued
    xml = facturx_of(pdf)
    assert [element.text for element in xml.iter(f"{RAM}TypeCode")][0] == "381"
    [referenced] = xml.iter(f"{RAM}InvoiceReferencedDocument")
    assert referenced.findtext(f"{RAM}IssuerAssignedID") == "2026-000001"
    assert amount(xml, "GrandTotalAmount") == Decimal("22.80")


# -- R2.2: who downloads it --------------------------------------------------------------------------------

def test_r2_2_only_the_owner_downloads_and_a_stranger_learns_nothing(app):
    account_id = acme(app)
    add_member(app, account_id, email="admin@acme.test", role="admin", actor=OPERATOR)
    with pytest.raises(NotAllowed, match=r"only the account owner \(owner@acme.test\)"):
        invoice_pdf(app, "2026-000001", acting_email="admin@acme.test")
    with pytest.raises(NotFound, match="no invoice numbered '2026-000001'"):
        invoice_pdf(app, "2026-000001", acting_email="someone@else.test")
    with pytest.raises(NotFound, match="no invoice numbered '2026-999999'"):
        invoice_pdf(app, "2026-999999", acting_email=OWNER)
    assert stored_count(app) == 0  # nothing rendered for whoever was refused


def test_a_year_of_renewals_lays_out_each_invoice_on_one_page(app):
    acme(app)
    advance(app, timedelta(days=365))
    with app.engine.connect() as conn:
        numbers = conn.execute(select(invoices.c.number).order_by(invoices.c.id)).scalars().all()
    assert len(numbers) == 13
    assert {len(PdfReader(__import__("io").BytesIO(invoice_pdf(app, number, acting_email=OWNER))).pages)
            for number in numbers[-2:]} == {1}
