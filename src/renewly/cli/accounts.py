"""`renewly accounts ...` and `renewly members ...`: customer accounts, their members and roles, the banner
each member sees and what each may use."""

from __future__ import annotations

from typing import Annotated

import typer

from renewly.cli.common import (
    AccountId,
    JsonFlag,
    actor,
    echo_wrapped,
    group,
    open_app,
    period,
    print_json,
    print_table,
)
from renewly.shared.errors import InvalidInput

app = group("Customer accounts.")
members_app = group("Members of an account and their roles.")


@app.command("create")
def accounts_create(name: Annotated[str, typer.Option(help="The customer's name, printed on invoices.")],
                    owner_email: Annotated[str, typer.Option(help="The owner's e-mail: the one member who "
                                                                  "changes the card and the address.")],
                    locale: Annotated[str, typer.Option(help="en or fr")] = "en",
                    timezone_name: Annotated[str, typer.Option("--timezone", help="IANA zone, e.g. Europe/Paris: the "
                                                                                "account's renewal days.")] = "UTC",
                    currency: Annotated[str, typer.Option(help="ISO 4217: what it is billed in.")] = "USD",
                    country: Annotated[str, typer.Option(help="The buyer's country, ISO 3166.")] = "",
                    as_json: JsonFlag = False) -> None:
    """Create an account with its owner; prints the id."""
    from renewly.accounts.accounts import create_account, describe_account
    application = open_app()
    account_id = create_account(application, name=name, owner_email=owner_email, locale=locale,
                                timezone=timezone_name, currency=currency, country=country, actor=actor())
    print_json(describe_account(application, account_id)) if as_json else typer.echo(account_id)


@app.command("show")
def accounts_show(account: AccountId, as_json: JsonFlag = False) -> None:
    """Show an account: members, buyer address, subscriptions, and the banner each role sees."""
    from renewly.accounts.accounts import describe_account
    from renewly.dunning.reactivation import banners_by_role
    from renewly.dunning.rules.banners import banner_in_words
    application = open_app()
    found = describe_account(application, account)
    found["banners"] = banners_by_role(application, account)
    if as_json:
        print_json(found)
        return
    typer.echo(f"account {found['id']}: {found['name']} ({found['status']}), {found['currency']}, "
               f"{found['locale']}, {found['timezone']}")
    buyer = found["buyer"]
    typer.echo("buyer: " + ", ".join(v for v in buyer.values() if v))
    for member in found["members"]:
        typer.echo(f"  {member['role']:<6} {member['email']}")
    for sub in found["subscriptions"]:
        typer.echo(f"  subscription {sub['id']}: {sub['seats']} seat(s), {sub['status']}, "
                   f"period {period(sub['current_period_start'], sub['current_period_end'])}")
    for role, banner in found["banners"].items():
        echo_wrapped(f"  banner for {role}: {banner_in_words(banner['banner'])}"
                     + (f" — {banner['text']}" if banner["text"] else ""))


@app.command("list")
def accounts_list(as_json: JsonFlag = False) -> None:
    """List the accounts."""
    from renewly.accounts.accounts import list_accounts
    rows = list_accounts(open_app())
    if as_json:
        print_json(rows)
    else:
        print_table("Accounts", ["id", "name", "status", "currency", "owner"],
                    [[r["id"], r["name"], r["status"], r["currency"], r["owner"]] for r in rows], whole=("owner",))


@app.command("update-address")
def accounts_update_address(account: AccountId,
                            acting: Annotated[str, typer.Option("--as", help="Who is doing it: only the owner may.")],
                            name: Annotated[str | None, typer.Option(help="The buyer's name.")] = None,
                            line1: Annotated[str | None, typer.Option(help="Street address.")] = None,
                            line2: Annotated[str | None, typer.Option(help="More of the address.")] = None,
                            postcode: Annotated[str | None, typer.Option(help="Postal code.")] = None,
                            city: Annotated[str | None, typer.Option(help="City.")] = None,
                            country: Annotated[str | None, typer.Option(help="ISO 3166 country code.")] = None,
                            vat_id: Annotated[str | None, typer.Option("--vat-id", help="The buyer's VAT id.")] = None,
                            as_json: JsonFlag = False) -> None:
    """The owner changes the buyer address printed on future invoices (issued ones keep theirs, R3.1)."""
    from renewly.accounts.accounts import update_buyer_address
    changes = {key: value for key, value in dict(name=name, line1=line1, line2=line2, postcode=postcode, city=city,
                                                 country=country, vat_id=vat_id).items() if value is not None}
    if not changes:
        raise InvalidInput("nothing to change: give at least one of --name, --line1, --line2, --postcode, --city, "
                           "--country, --vat-id", code="nothing_to_change")
    updated = update_buyer_address(open_app(), account, changes=changes, acting_email=acting, actor=actor())
    print_json(updated) if as_json else typer.echo("buyer address: " + ", ".join(v for v in updated.values() if v))


@app.command("transfer-ownership")
def accounts_transfer_ownership(account: AccountId, to: Annotated[str, typer.Option("--to", help="A member's e-mail.")],
                                reason: Annotated[str, typer.Option(help="Why, for the audit log.")]) -> None:
    """Support: make another member the owner (R6.1), audited; the previous owner becomes an admin."""
    from renewly.accounts.accounts import transfer_ownership
    previous = transfer_ownership(open_app(), account, to_email=to, reason=reason, actor=actor())
    typer.echo(f"account {account}: owner is now {to.lower()} (was {previous})")


@app.command("banner")
def accounts_banner(account: AccountId, member: Annotated[str, typer.Option(help="The member's e-mail.")],
                    as_json: JsonFlag = False) -> None:
    """Which banner this member sees now, in the account's language."""
    from renewly.dunning.reactivation import banner_for_member
    from renewly.dunning.rules.banners import banner_in_words
    found = banner_for_member(open_app(), account, member)
    print_json(found) if as_json else echo_wrapped(banner_in_words(found["banner"])
                                                   + (f": {found['text']}" if found["text"] else ""))


@app.command("access")
def accounts_access(account: AccountId, acting: Annotated[str, typer.Option("--as", help="The member's e-mail.")],
                    billing: Annotated[bool, typer.Option("--billing", help="The billing pages.")] = False,
                    as_json: JsonFlag = False) -> None:
    """May this member use the dashboard (or the billing pages) now? Exit 2 with the reason if not."""
    from renewly.accounts.accounts import require_access
    application = open_app()
    with application.engine.connect() as conn:
        role = require_access(conn, account, acting, application.clock.now(),
                              support_email=application.settings.seller.support_email, billing=billing)
    pages = "billing pages" if billing else "dashboard"
    if as_json:
        print_json({"account": account, "member": acting.lower(), "role": role.value, "pages": pages,
                    "allowed": True})
    else:
        typer.echo(f"{acting.lower()} ({role.value}) may use the {pages}")


@members_app.command("add")
def members_add(account: AccountId, email: Annotated[str, typer.Option(help="The new member's e-mail.")],
                role: Annotated[str, typer.Option(help="admin or agent")]) -> None:
    """Add a member with a role."""
    from renewly.accounts.accounts import add_member
    typer.echo(add_member(open_app(), account, email=email, role=role, actor=actor()))


@members_app.command("set-role")
def members_set_role(account: AccountId, email: Annotated[str, typer.Option(help="The member's e-mail.")],
                     role: Annotated[str, typer.Option(help="admin or agent")]) -> None:
    """Make an admin an agent or the other way round (the owner changes by a transfer)."""
    from renewly.accounts.accounts import change_member_role
    change_member_role(open_app(), account, email=email, role=role, actor=actor())
    typer.echo(f"{email.strip().lower()} is now an {role} of account {account}")


@members_app.command("remove")
def members_remove(account: AccountId,
                   email: Annotated[str, typer.Option(help="The member's e-mail.")]) -> None:
    """Remove a member (never the owner)."""
    from renewly.accounts.accounts import remove_member
    remove_member(open_app(), account, email=email, actor=actor())
    typer.echo(f"removed {email}")


@members_app.command("list")
def members_list(account: AccountId, as_json: JsonFlag = False) -> None:
    """List an account's members."""
    from renewly.accounts.accounts import describe_account
    rows = describe_account(open_app(), account)["members"]
    if as_json:
        print_json(rows)
    else:
        print_table(f"Members of account {account}", ["role", "email"], [[r["role"], r["email"]] for r in rows],
                    whole=("email",))
