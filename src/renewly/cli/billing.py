"""`renewly billing ...`: what an account's owner sees of billing."""

from __future__ import annotations

from typing import Annotated

import typer

from renewly.cli.common import (
    AccountId,
    JsonFlag,
    echo_wrapped,
    group,
    money,
    open_app,
    print_json,
)

app = group("What an account's owner sees of billing.")


@app.command("show")
def billing_show(account: AccountId, acting: Annotated[str, typer.Option("--as", help="Who asks: only the owner may.")],
                 as_json: JsonFlag = False) -> None:
    """The owner's billing pages: subscription, invoices, card, buyer address, contacts and the
    requests waiting for the owner's consent (R1.1, R4.1)."""
    from renewly.portal.overview import billing_overview
    found = billing_overview(open_app(), account, acting_email=acting)
    if as_json:
        print_json(found)
        return
    typer.echo(f"{found['name']} ({found['status']})")
    card = found["payment_method"]
    typer.echo(f"payment method: {card['brand']} •••• {card['last4']}" if card else "payment method: none")
    typer.echo("buyer: " + ", ".join(v for v in found["buyer"].values() if v))
    echo_wrapped("billing contacts: " + ", ".join(c["email"] for c in found["billing_contacts"]))
    for request in found["contact_requests"]:  # no contact yet: the owner approves or refuses it
        echo_wrapped(f"waiting for your consent: {request['email']} (asked by {request['requested_by']} on "
                     f"{request['requested_at']:%Y-%m-%d}; renewly contacts approve or refuse)")
    for invoice in found["invoices"]:
        typer.echo(f"  {invoice['number']} {invoice['issue_date']} "
                   f"{money(invoice['total'], invoice['currency'], invoice['locale'])} {invoice['status']}")
