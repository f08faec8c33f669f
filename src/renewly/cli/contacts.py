"""`renewly contacts ...`: billing contacts (R4). Refusals are one line on stderr, exit 2 (cli.main)."""

from __future__ import annotations

from typing import Annotated

import typer

from renewly.cli.common import AccountId, JsonFlag, group, open_app, print_json, print_table

app = group("Billing contacts: added only with the owner's consent (R4).")

Email = Annotated[str, typer.Option("--email", help="The billing contact's e-mail address.")]
Acting = Annotated[str, typer.Option("--as", help="Who is doing it (an e-mail address).")]


@app.command("request")
def contacts_request(account: AccountId, email: Email,
                     by: Annotated[str, typer.Option("--by", help="Who asks (an e-mail address).")]) -> None:
    """Ask for an address to receive billing e-mails; the owner is e-mailed for consent (R4.1)."""
    from renewly.accounts.contacts import request_contact
    status = request_contact(open_app(), account, email=email, requested_by=by)
    typer.echo(f"account {account}: {email.strip().lower()} added as a billing contact by the owner"
               if status == "active" else
               f"account {account}: {email.strip().lower()} requested; waiting for the owner's consent")


@app.command("approve")
def contacts_approve(account: AccountId, email: Email, acting: Acting) -> None:
    """The owner consents: the address receives billing e-mails from now on (R4.1)."""
    from renewly.accounts.contacts import approve_contact
    approve_contact(open_app(), account, email=email, acting_email=acting)
    typer.echo(f"account {account}: {email.strip().lower()} is now a billing contact")


@app.command("refuse")
def contacts_refuse(account: AccountId, email: Email, acting: Acting) -> None:
    """The owner refuses a request (R4.1)."""
    from renewly.accounts.contacts import refuse_contact
    refuse_contact(open_app(), account, email=email, acting_email=acting)
    typer.echo(f"account {account}: the request for {email.strip().lower()} was refused")


@app.command("remove")
def contacts_remove(account: AccountId, email: Email, acting: Acting) -> None:
    """Remove a contact: oneself, or anyone by the owner; never the owner (R4.2)."""
    from renewly.accounts.contacts import remove_contact
    remove_contact(open_app(), account, email=email, acting_email=acting)
    typer.echo(f"account {account}: {email.strip().lower()} is no longer a billing contact")


@app.command("unsubscribe")
def contacts_unsubscribe(token: Annotated[str, typer.Argument(
        metavar="TOKEN", help="The token of a billing e-mail's removal link (or the whole link).")]) -> None:
    """Apply a removal link: its contact stops receiving billing e-mails (R4.2). Each link works
    once, until it expires; an altered one is refused."""
    from renewly.accounts.contacts import unsubscribe_contact
    account, email = unsubscribe_contact(open_app(), token)
    typer.echo(f"account {account}: {email} is no longer a billing contact")


@app.command("list")
def contacts_list(account: AccountId, as_json: JsonFlag = False) -> None:
    """The owner first, then active contacts, then requests waiting for the owner."""
    from renewly.accounts.contacts import list_contacts
    rows = list_contacts(open_app(), account)
    if as_json:
        print_json(rows)
        return
    print_table(f"Billing contacts of account {account}", ["email", "status", "requested by"],
                [[row["email"], "owner" if row["owner"] else row["status"], row["requested_by"]] for row in rows],
                whole=("email",))
