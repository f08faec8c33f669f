"""`renewly invoices ...`: invoices and credit notes, as issued."""

from __future__ import annotations

from typing import Annotated

import typer

from renewly.cli.common import (
    AccountFilter,
    AccountId,
    InvoiceNumber,
    JsonFlag,
    actor,
    group,
    money,
    open_app,
    print_json,
    print_table,
)
from renewly.shared.errors import InvalidInput

app = group("Invoices and credit notes.")


@app.command("list")
def invoices_list(account: AccountFilter = None, as_json: JsonFlag = False) -> None:
    """List invoices and credit notes."""
    from renewly.billing.invoices import list_invoices
    rows = list_invoices(open_app(), account)
    if as_json:
        print_json(rows)
        return
    print_table("Invoices", ["number", "kind", "account", "issued", "period", "total", "status"],
                [[r["number"], r["kind"], r["account_id"], r["issue_date"],
                  f"{r['period_start']} – {r['period_end']}" if r["period_start"] else "",
                  money(r["total"], r["currency"], r["locale"]), r["status"]] for r in rows])


@app.command("show")
def invoices_show(number: InvoiceNumber, as_json: JsonFlag = False) -> None:
    """Show one invoice with its lines, as issued."""
    from renewly.billing.invoices import show_invoice
    found = show_invoice(open_app(), number)
    if as_json:
        print_json(found)
        return
    typer.echo(f"{found['kind']} {found['number']} issued {found['issue_date']} ({found['status']})")
    typer.echo(f"seller: {found['seller']['name']}   buyer: {found['buyer']['name']}")
    for line in found["lines"]:
        typer.echo(f"  {line['description']}: {line['quantity']} × {money(line['unit_amount'], found['currency'])}"
                   f" = {money(line['amount'], found['currency'])}")
    typer.echo(f"subtotal {money(found['subtotal'], found['currency'])}, tax {found['tax_rate']}% "
               f"{money(found['tax'], found['currency'])}, total {money(found['total'], found['currency'])}")


@app.command("resend")
def invoices_resend(account: AccountId, month: Annotated[str, typer.Option(help="YYYY-MM: the invoices issued then.")],
                    reason: Annotated[str, typer.Option(help="Why they are sent again, for the audit "
                                                             "log.")]) -> None:
    """Support: send the invoices of a month and year again to the billing contacts (R2.3)."""
    from renewly.billing.invoices import resend_invoices_of_month
    try:
        year, number = (int(part) for part in month.split("-"))
    except ValueError:
        raise InvalidInput(f"malformed --month {month!r}: expected YYYY-MM", code="malformed_month") from None
    sent = resend_invoices_of_month(open_app(), account, year=year, month=number, reason=reason, actor=actor())
    typer.echo(f"sent again: {', '.join(sent)}")


@app.command("credit")
def invoices_credit(number: InvoiceNumber,
                    reason: Annotated[str, typer.Option(help="Why: the credit note's line says it.")],
                    amount: Annotated[int | None, typer.Option(help="Before tax, minor units; default: "
                                                                         "all not yet credited.")] = None) -> None:
    """Correct an invoice with a credit note (an issued invoice is never edited)."""
    from renewly.billing.invoices import issue_credit_note
    typer.echo(issue_credit_note(open_app(), number, reason=reason, amount=amount, actor=actor()))
