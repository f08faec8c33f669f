"""The PDF of an issued invoice or credit note: PDF/A-3 with its Factur-X XML, rendered once, kept.

R2.2: the owner downloads each invoice as a PDF in the account's language. R2.4: it shows the
same content today and in five years. Both follow from two choices:

- the render's only inputs are the document's frozen rows (the invoice row with its seller and
  buyer snapshots, its lines, the invoice a credit note corrects): never the settings or the
  account's address of today (billing/rules/documents.py);
- the first PDF rendered is stored (`invoice_documents`, content-addressed by its SHA-256, never
  updated) and every later download is those bytes, checked against their hash: a template, a
  catalogue or a library changed later cannot alter what the customer was given.

It is rendered at the first download or the first delivery of the invoice's e-mail (which
attaches it: mail/letters.py), not at issue: a PDF costs tens of milliseconds, a renewal a few
microseconds, and the renewal batch must not wait on a layout engine.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Collection, Mapping
from functools import cache, partial

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from sqlalchemy import Connection, select
from sqlalchemy.exc import IntegrityError

from renewly.accounts.accounts import require_owner_of
from renewly.accounts.rules.members import Role, validate_email
from renewly.adapters.db.bulk import among
from renewly.adapters.db.tables import accounts, invoice_documents, invoice_lines, invoices, members
from renewly.adapters.pdf import pdf_a3, with_facturx
from renewly.billing.facturx import cii_xml
from renewly.billing.rules import documents as values
from renewly.billing.rules.documents import FrozenDocument, FrozenLine
from renewly.config.catalogues import translations
from renewly.dunning.rules.access import dashboard_access, refusal
from renewly.ports import Ports
from renewly.shared.errors import BillingError, NotAllowed, NotFound
from renewly.shared.money import Money

MEDIA_TYPE = "application/pdf"
TEMPLATES = __file__.rsplit("/", 1)[0] + "/templates"


class DocumentCorrupted(BillingError):
    code = "document_corrupted"


def invoice_pdf(app: Ports, number: str, *, acting_email: str) -> bytes:
    """The owner's download (R2.2): the stored PDF, or the first one, rendered and stored now."""
    acting = validate_email(acting_email)
    # One query for what a download needs: the invoice, its account's status, the role of whoever
    # asks, the stored PDF. A download is read far more often than a PDF is rendered.
    with app.engine.connect() as conn:
        row = conn.execute(
            select(invoices.c.id, invoices.c.account_id, accounts.c.status, members.c.role,
                   invoice_documents.c.sha256, invoice_documents.c.content)
            .select_from(invoices.join(accounts, accounts.c.id == invoices.c.account_id)
                         .outerjoin(members, (members.c.account_id == invoices.c.account_id)
                                    & (members.c.email == acting))
                         .outerjoin(invoice_documents, invoice_documents.c.invoice_id == invoices.c.id))
            .where(invoices.c.number == number)).first()
    if row is None:
        raise NotFound(f"no invoice numbered {number!r}", code="unknown_invoice")
    if not _owner_in_good_standing(row.status, row.role):
        # Anyone else, or an owner whose account is cancelled (a reactivation lets them in) or
        # deleted: the accounts' full check decides, and says why.
        try:
            require_owner_of(app, row.account_id, acting)
        except NotAllowed as refused:
            if refused.code == "not_a_member":  # R1.2: a stranger learns nothing, not even that it exists
                raise NotFound(f"no invoice numbered {number!r}", code="unknown_invoice") from None
            raise
    if row.content is not None:
        return _checked(row.id, row.sha256, row.content)
    return document_of(app, row.id)


def _owner_in_good_standing(status: str, role: str | None) -> bool:
    """The owner of an account whose billing pages are open to them without a reactivation (the
    same rules as accounts' require_access: dunning/rules/access.py)."""
    return role == Role.OWNER.value and refusal(status, dashboard_access(status, Role.OWNER, False),
                                                billing=True) is None


def document_of(app: Ports, invoice_id: int) -> bytes:
    """The document's PDF as first stored; rendered and stored if it never was."""
    stored = _stored(app, invoice_id)
    if stored is not None:
        return stored
    with app.engine.connect() as conn:
        frozen = frozen_document(conn, invoice_id)
    pdf = render_document(frozen)  # tens of milliseconds: no connection held meanwhile
    try:
        with app.engine.begin() as conn:
            conn.execute(invoice_documents.insert().values(
                invoice_id=invoice_id, sha256=hashlib.sha256(pdf).hexdigest(), media_type=MEDIA_TYPE, content=pdf,
                created_at=app.clock.now()))
    except IntegrityError:
        # Two first downloads at once: the one stored first is the document, for both.
        stored = _stored(app, invoice_id)
        if stored is None:
            raise
        return stored
    return pdf


def documents_of(app: Ports, invoice_ids: Collection[int]) -> dict[int, bytes]:
    """The PDFs of several documents (a slice of e-mails' attachments), stored ones in one query,
    the others rendered and stored now; a document that no longer exists (purged past its
    retention, R10.2) is left out."""
    if not invoice_ids:
        return {}
    with app.engine.connect() as conn:
        found = {row.id: row for row in conn.execute(
            select(invoices.c.id, invoice_documents.c.sha256, invoice_documents.c.content)
            .select_from(invoices.outerjoin(invoice_documents, invoice_documents.c.invoice_id == invoices.c.id))
            .where(among(conn, invoices.c.id, list(invoice_ids))))}
    return {invoice_id: (_checked(invoice_id, row.sha256, row.content) if row.content is not None
                         else document_of(app, invoice_id))
            for invoice_id, row in found.items()}


def _stored(app: Ports, invoice_id: int) -> bytes | None:
    with app.engine.connect() as conn:
        row = conn.execute(select(invoice_documents.c.sha256, invoice_documents.c.content)
                           .where(invoice_documents.c.invoice_id == invoice_id)).first()
    if row is None:
        return None
    return _checked(invoice_id, row.sha256, row.content)


def _checked(invoice_id: int, sha256: str, stored: bytes) -> bytes:
    content = bytes(stored)
    if hashlib.sha256(content).hexdigest() != sha256:
        raise DocumentCorrupted(f"the stored PDF of invoice id {invoice_id} does not match its SHA-256 "
                                f"{sha256}: restore it from a backup", code="document_corrupted")
    return content


def frozen_document(conn: Connection, invoice_id: int) -> FrozenDocument:
    """The document's rows, as issued: the only input of its render."""
    row = conn.execute(select(invoices).where(invoices.c.id == invoice_id)).one()
    lines = conn.execute(select(invoice_lines).where(invoice_lines.c.invoice_id == invoice_id)
                         .order_by(invoice_lines.c.position)).all()
    credited = None
    if row.credited_invoice_id is not None:
        credited = conn.execute(select(invoices.c.number, invoices.c.issue_date)
                                .where(invoices.c.id == row.credited_invoice_id)).one()
    return FrozenDocument(
        number=row.number, kind=row.kind, issue_date=row.issue_date, period_start=row.period_start,
        period_end=row.period_end, currency=row.currency, locale=row.locale, subtotal=row.subtotal,
        tax_rate=row.tax_rate, tax=row.tax, total=row.total, seller=dict(row.seller), buyer=dict(row.buyer),
        lines=tuple(FrozenLine(line.description, line.quantity, line.unit_amount, line.amount, line.period_start,
                               line.period_end) for line in lines),
        credited_number=credited.number if credited else None,
        credited_issue_date=credited.issue_date if credited else None)


def render_document(doc: FrozenDocument) -> bytes:
    """PDF/A-3b with the document's Factur-X XML embedded (checked against the XSD on the way)."""
    title = _title(doc)
    return with_facturx(pdf_a3(render_html(doc)), cii_xml(doc), lang=doc.locale,
                        metadata={"author": doc.seller.get("name", ""), "title": title,
                                  "subject": title, "keywords": "Factur-X"})


def render_html(doc: FrozenDocument) -> str:
    locale = doc.locale
    # A snapshot frozen before a mention existed (an invoice issued before SIREN was asked for)
    # has no such key: it prints without it rather than with today's value.
    seller: Mapping[str, str] = defaultdict(str, doc.seller)
    buyer: Mapping[str, str] = defaultdict(str, doc.buyer)
    indemnity = seller["recovery_indemnity_eur"]
    return _environment(locale).get_template("invoice.html").render(
        doc=doc, seller=seller, buyer=buyer, tax_subtotals=values.tax_subtotals(doc),
        indemnity=Money(int(indemnity) * 100, "EUR").format(locale) if indemnity else "",
        money=partial(values.money, document=doc), day=partial(values.day, locale=locale),
        last_day=partial(values.last_day, locale=locale), rate=partial(values.rate, locale=locale),
        number=partial(values.number, locale=locale), country=partial(values.country, locale=locale))


def _title(doc: FrozenDocument) -> str:
    gettext = translations(doc.locale).gettext
    label = gettext("Credit note %(number)s") if doc.is_credit_note else gettext("Invoice %(number)s")
    return label % {"number": doc.number}


@cache
def _environment(locale: str) -> Environment:
    """One Jinja environment per language, its gettext the catalogue's (newstyle: `_()` takes the
    placeholders and escapes what it is given)."""
    environment = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True),
                              undefined=StrictUndefined, extensions=["jinja2.ext.i18n"])
    environment.install_gettext_translations(translations(locale), newstyle=True)  # type: ignore[attr-defined]
    return environment
