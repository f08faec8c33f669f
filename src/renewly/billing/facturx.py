"""The Factur-X XML of an issued document: UN/CEFACT CII, EN 16931 profile, from its frozen rows.

Written with lxml in the order of the schema (`adapters/pdf.py: with_facturx` checks it against
the library's XSD before embedding it); its figures are the invoice's as stored (subtotal, tax,
total), never recomputed, so that the XML and the PDF it travels in cannot disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from lxml import etree
from lxml.builder import ElementMaker

from renewly.billing.rules.documents import (
    CREDIT_NOTE_TYPE_CODE,
    INVOICE_TYPE_CODE,
    FrozenDocument,
    cii_amount,
    cii_date,
    cii_line,
    cii_rate,
    tax_subtotals,
    vat_category,
)

GUIDELINE_EN16931 = "urn:cen.eu:en16931:2017"
NAMESPACES = {
    "rsm": "urn:un:unece:uncefact:data:standard:CrossIndustryInvoice:100",
    "ram": "urn:un:unece:uncefact:data:standard:ReusableAggregateBusinessInformationEntity:100",
    "qdt": "urn:un:unece:uncefact:data:standard:QualifiedDataType:100",
    "udt": "urn:un:unece:uncefact:data:standard:UnqualifiedDataType:100",
}
RSM = ElementMaker(namespace=NAMESPACES["rsm"], nsmap=NAMESPACES)
RAM = ElementMaker(namespace=NAMESPACES["ram"], nsmap=NAMESPACES)
UDT = ElementMaker(namespace=NAMESPACES["udt"], nsmap=NAMESPACES)
QDT = ElementMaker(namespace=NAMESPACES["qdt"], nsmap=NAMESPACES)
SIREN_SCHEME = "0002"  # ISO 6523 ICD of the French SIREN
UNIT_CODE = "C62"  # UN/ECE rec 20: one (a seat, a period)
# EN 16931 wants a reason beside category O (outside the scope of VAT).
NOT_SUBJECT_TO_VAT = "Not subject to VAT"


def cii_xml(doc: FrozenDocument) -> bytes:
    """The document's CII XML, UTF-8."""
    currency = doc.currency
    root = RSM.CrossIndustryInvoice(
        RSM.ExchangedDocumentContext(RAM.GuidelineSpecifiedDocumentContextParameter(RAM.ID(GUIDELINE_EN16931))),
        RSM.ExchangedDocument(
            RAM.ID(doc.number),
            RAM.TypeCode(CREDIT_NOTE_TYPE_CODE if doc.is_credit_note else INVOICE_TYPE_CODE),
            RAM.IssueDateTime(_date(doc.issue_date)),
        ),
        RSM.SupplyChainTradeTransaction(
            *[_line(doc, position, line) for position, line in enumerate(doc.lines, start=1)],
            RAM.ApplicableHeaderTradeAgreement(_party("SellerTradeParty", doc.seller, legal=True),
                                               _party("BuyerTradeParty", doc.buyer, legal=False)),
            RAM.ApplicableHeaderTradeDelivery(),
            RAM.ApplicableHeaderTradeSettlement(
                RAM.InvoiceCurrencyCode(currency),
                *[_tax(subtotal.tax, subtotal.base, str(subtotal.rate), currency) for subtotal in tax_subtotals(doc)],
                *_period(doc.period_start, doc.period_end),
                *([RAM.SpecifiedTradePaymentTerms(RAM.DueDateDateTime(_date(doc.due_date)))] if doc.due_date else []),
                RAM.SpecifiedTradeSettlementHeaderMonetarySummation(
                    RAM.LineTotalAmount(cii_amount(sum(line.amount for line in doc.lines), currency)),
                    RAM.TaxBasisTotalAmount(cii_amount(doc.subtotal, currency)),
                    RAM.TaxTotalAmount(cii_amount(doc.tax, currency), currencyID=currency),
                    RAM.GrandTotalAmount(cii_amount(doc.total, currency)),
                    RAM.DuePayableAmount(cii_amount(doc.total, currency)),
                ),
                *([RAM.InvoiceReferencedDocument(
                    RAM.IssuerAssignedID(doc.credited_number),
                    RAM.FormattedIssueDateTime(QDT.DateTimeString(cii_date(doc.credited_issue_date), format="102")),
                )] if doc.credited_number and doc.credited_issue_date else []),
            ),
        ),
    )
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _date(value):
    return UDT.DateTimeString(cii_date(value), format="102")


def _line(doc: FrozenDocument, position: int, line) -> etree._Element:
    quantity, unit_price, amount = cii_line(line)
    category = vat_category(doc.tax_rate)
    return RAM.IncludedSupplyChainTradeLineItem(
        RAM.AssociatedDocumentLineDocument(RAM.LineID(str(position))),
        RAM.SpecifiedTradeProduct(RAM.Name(line.description)),
        RAM.SpecifiedLineTradeAgreement(RAM.NetPriceProductTradePrice(RAM.ChargeAmount(
            cii_amount(unit_price, doc.currency)))),
        RAM.SpecifiedLineTradeDelivery(RAM.BilledQuantity(quantity, unitCode=UNIT_CODE)),
        RAM.SpecifiedLineTradeSettlement(
            RAM.ApplicableTradeTax(RAM.TypeCode("VAT"), RAM.CategoryCode(category),
                                   *([RAM.RateApplicablePercent(cii_rate(doc.tax_rate))] if category != "O" else [])),
            *_period(line.period_start, line.period_end),
            RAM.SpecifiedTradeSettlementLineMonetarySummation(RAM.LineTotalAmount(cii_amount(amount, doc.currency))),
        ),
    )


def _tax(tax: int, base: int, rate: str, currency: str) -> etree._Element:
    category = vat_category(rate)
    return RAM.ApplicableTradeTax(
        RAM.CalculatedAmount(cii_amount(tax, currency)),
        RAM.TypeCode("VAT"),
        *([RAM.ExemptionReason(NOT_SUBJECT_TO_VAT)] if category == "O" else []),
        RAM.BasisAmount(cii_amount(base, currency)),
        RAM.CategoryCode(category),
        *([RAM.RateApplicablePercent(cii_rate(rate))] if category != "O" else []),
    )


def _period(start, end_exclusive) -> list[etree._Element]:
    if start is None or end_exclusive is None:
        return []
    return [RAM.BillingSpecifiedPeriod(RAM.StartDateTime(_date(start)),
                                       RAM.EndDateTime(_date(end_exclusive - timedelta(days=1))))]


def _party(element: str, party: Mapping[str, str], *, legal: bool) -> etree._Element:
    address = [RAM.PostcodeCode(party["postcode"])] if party.get("postcode") else []
    address += [RAM.LineOne(party["line1"])] if party.get("line1") else []
    address += [RAM.LineTwo(party["line2"])] if party.get("line2") else []
    address += [RAM.CityName(party["city"])] if party.get("city") else []
    address += [RAM.CountryID(party["country"])] if party.get("country") else []
    return getattr(RAM, element)(
        RAM.Name(party["name"]),
        *([RAM.SpecifiedLegalOrganization(RAM.ID(party["siren"], schemeID=SIREN_SCHEME))]
          if legal and party.get("siren") else []),
        *([RAM.PostalTradeAddress(*address)] if address else []),
        *([RAM.SpecifiedTaxRegistration(RAM.ID(party["vat_id"], schemeID="VA"))] if party.get("vat_id") else []),
    )
