"""`renewly invoices ...`: invoices and credit notes, as issued."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from renewly.cli.common import (
    AccountFilter,
    AccountId,
    InvoiceNumber,
    JsonFlag,
    actor,
    check_new_file,
    echo_wrapped,
    group,
    money,
    open_app,
    period,
    print_json,
    print_table,
    write_new_file,
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
    # A credit note's number says what it is (CN-...): no column for the kind, so that the
    # numbers and periods fit 80 columns whole.
    print_table("Invoices and credit notes", ["number", "account", "issued", "period", "total", "status"],
                [[r["number"], r["account_id"], r["issue_date"], period(r["period_start"], r["period_end"]),
                  money(r["total"], r["currency"], r["locale"]), r["status"]] for r in rows],
                whole=("number",))


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
    if found["period_start"]:
        typer.echo(f"period: {period(found['period_start'], found['period_end'])}")
    def amount(minor_units: int) -> str:  # as the list and the document say it: in the account's language
        return money(minor_units, found["currency"], found["locale"])

    for line in found["lines"]:
        echo_wrapped(f"  {line['description']}: {line['quantity']} × {amount(line['unit_amount'])}"
                     f" = {amount(line['amount'])}")
    typer.echo(f"subtotal {amount(found['subtotal'])}, tax {found['tax_rate']}% {amount(found['tax'])}, "
               f"total {amount(found['total'])}")


@app.command("pdf")
def invoices_pdf(number: InvoiceNumber,
                 output: Annotated[Path, typer.Option("--output", "-o", help="The PDF file to write; an existing "
                                                                              "file is never overwritten.")],
                 *,  # so that the required --as needs no default, in the options' order of --help
                 acting: Annotated[str, typer.Option("--as", help="Who downloads it: only the owner may (R2.2).")],
                 ) -> None:
    """The owner's download: the PDF/A-3 with its Factur-X XML, as first rendered (R2.2, R2.4)."""
    from renewly.billing.documents import invoice_pdf
    check_new_file(output)  # before the PDF is made
    pdf = invoice_pdf(open_app(), number, acting_email=acting)
    write_new_file(output, pdf)
    typer.echo(f"{output}: {number}, {len(pdf)} bytes")


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
    application = open_app()
    sent = resend_invoices_of_month(application, account, year=year, month=number, reason=reason, actor=actor())
    # Written to the outbox, not sent yet: delivery is the mail batch's, if an SMTP server is set.
    echo_wrapped(f"to send again: {', '.join(sent)}, in the outbox; "
                 + ("the mail batch delivers them (renewly mail send)" if application.mailer is not None
                    else "no SMTP server is configured (mail.host): they stay there"))


@app.command("credit")
def invoices_credit(number: InvoiceNumber,
                    reason: Annotated[str, typer.Option(help="Why: the credit note's line says it.")],
                    amount: Annotated[int | None, typer.Option(help="Before tax, minor units; default: "
                                                                         "all not yet credited.")] = None) -> None:
    """Correct an invoice with a credit note (an issued invoice is never edited)."""
    from renewly.billing.invoices import issue_credit_note
    typer.echo(issue_credit_note(open_app(), number, reason=reason, amount=amount, actor=actor()))
