"""`/v1/invoices`: invoices and credit notes as issued (billing/invoices.py, as `renewly invoices`),
and the owner's PDF of each (billing/documents.py, as `renewly invoices pdf`). Money in integer
minor units of the document's currency; a credit note names the invoice it corrects (R2.4)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal
from urllib.parse import quote

from fastapi import APIRouter, Query
from fastapi.responses import Response
from pydantic import BaseModel, Field
from sqlalchemy import bindparam, select

from renewly.adapters.db.engine import reading
from renewly.adapters.db.tables import invoices
from renewly.billing.documents import MEDIA_TYPE, invoice_pdf
from renewly.billing.invoices import as_shown, with_lines
from renewly.outbox.rendering import templates_of
from renewly.ports import Ports
from renewly.shared.errors import NotFound
from renewly.web.dependencies import AppPorts
from renewly.web.fields import LARGEST_ID, Email, path_id
from renewly.web.pagination import Page, Paged, PageRequest, after_the_cursor, page_bounds, page_of
from renewly.web.problems import problems
from renewly.web.threads import in_a_read_thread

router = APIRouter(tags=["invoices"])
InvoiceId = Annotated[int, path_id("The invoice's (or credit note's) id.")]


class InvoiceLine(BaseModel):
    position: int
    kind: str = Field(description="What the line bills: the period's seats, a proration, a credit...")
    description: str
    quantity: int
    unit_amount: int = Field(description="Before tax, in minor units.")
    amount: int = Field(description="quantity × unit_amount, in minor units.")
    period_start: date | None
    period_end: date | None = Field(description="The day after the line's last (exclusive).")


class Invoice(BaseModel):
    """An invoice or a credit note, as issued: it never changes but for its status (R2.4). A
    credit note's amounts are what it credits, positive, as printed on it."""

    object: Literal["invoice", "credit_note"]
    id: int
    number: str = Field(description="Sequential and gapless per operator (R2.1).")
    status: Literal["open", "paid", "void"]
    account_id: int
    subscription_id: int | None = Field(description="An invoice's; a credit note has none.")
    credited_invoice_id: int | None = Field(description="A credit note's: the invoice it corrects.")
    credited_invoice_number: str | None = Field(description="That invoice's number.")
    issue_date: date
    period_start: date | None
    period_end: date | None = Field(description="The day after the period's last (exclusive).")
    currency: str = Field(description="ISO 4217: every amount of the document is in its minor units.")
    subtotal: int = Field(description="The lines' sum, before tax.")
    tax_rate: str = Field(description="The VAT rate in percent, as a decimal string (\"20\", \"5.5\").",
                          examples=["20"])
    tax: int
    total: int = Field(description="subtotal + tax.")
    locale: str = Field(description="The language the document is written in (R12.1).")
    seller: dict[str, str] = Field(description="The seller's identity as printed when issued.")
    buyer: dict[str, str] = Field(description="The buyer as printed when issued (R3.1): name, line1, line2, "
                                              "postcode, city, country, vat_id.")
    lines: list[InvoiceLine]


def _shape(shown: dict) -> Invoice:
    return Invoice(object=shown["kind"], **{key: shown[key] for key in Invoice.model_fields if key != "object"})


def _row(app: AppPorts, invoice_id: int):
    with reading(app.engine) as conn:
        row = conn.execute(select(invoices).where(invoices.c.id == invoice_id)).first()
    if row is None:
        raise NotFound(f"no invoice {invoice_id}", code="unknown_invoice")
    return row


@router.get("/invoices", response_model=Page[Invoice])
async def invoices_list(app: AppPorts, page: Paged,
                        account_id: Annotated[int | None, Query(ge=1, le=LARGEST_ID,
                                                                description="Only this account's.")] = None,
                        ) -> Page[Invoice]:
    """Invoices and credit notes (of one account, or all), in the order they were issued."""
    return await in_a_read_thread(app, _invoices, app, page, account_id)  # one hop: see accounts_get


def _invoices(app: Ports, page: PageRequest, account_id: int | None) -> Page[Invoice]:
    with reading(app.engine) as conn:
        rows = conn.execute(_PAGE if account_id is None else _PAGE_OF_ACCOUNT,
                            {"account_id": account_id, **page_bounds(page)}).all()
    return page_of(as_shown(rows), page, lambda shown: shown["id"], _shape)


# The host product's hot read: its statements built once (docs/performance.md, "API").
_PAGE = with_lines(after_the_cursor(select(invoices), invoices.c.id))
_PAGE_OF_ACCOUNT = with_lines(after_the_cursor(select(invoices).where(invoices.c.account_id == bindparam("account_id")),
                                               invoices.c.id))
_ONE = with_lines(select(invoices).where(invoices.c.id == bindparam("invoice_id")))


@router.get("/invoices/{invoice_id}", response_model=Invoice, responses=problems(404))
def invoices_get(invoice_id: InvoiceId, app: AppPorts) -> Invoice:
    """One invoice or credit note with its lines, VAT and the parties as issued."""
    with reading(app.engine) as conn:
        shown = as_shown(conn.execute(_ONE, {"invoice_id": invoice_id}).all())
    if not shown:
        raise NotFound(f"no invoice {invoice_id}", code="unknown_invoice")
    return _shape(shown[0])


@router.get("/invoices/{invoice_id}/pdf", response_class=Response, responses={
    200: {"description": "The PDF/A-3 with its Factur-X XML, as first rendered (R2.4).",
          "content": {MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}}}},
    **problems(403, 404)})
def invoices_pdf(invoice_id: InvoiceId, app: AppPorts,
                 acting_member: Annotated[Email, Query(description="Who downloads it: only the owner may (R2.2).")],
                 ) -> Response:
    """The owner's download of the document's PDF, the same bytes every time (R2.2, R2.4)."""
    row = _row(app, invoice_id)
    pdf = invoice_pdf(app, row.number, acting_email=acting_member)
    name = templates_of(app).attachment_name(row.locale, row.number)  # as the invoice's e-mail names it
    fallback = name.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_")
    return Response(pdf, media_type=MEDIA_TYPE,
                    headers={"Content-Disposition": f"attachment; filename=\"{fallback}\"; "
                                                    f"filename*=UTF-8''{quote(name)}"})
