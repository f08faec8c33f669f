"""`renewly portal ...`: the billing portal (docs/portal.md), from the operator's side."""

from __future__ import annotations

from typing import Annotated

import typer

from renewly.cli.common import JsonFlag, actor, group, open_app, print_json, utc_minute

app = group("The billing portal: sign-in links for members.")


@app.command("link")
def portal_link(account: Annotated[int, typer.Argument(help="The account's id.")],
                member: Annotated[str, typer.Option("--member", help="The member's e-mail (any role).")],
                as_json: JsonFlag = False) -> None:
    """A one-time sign-in link to the portal for a member: it works once, for a few minutes."""
    from renewly.portal.sessions import create_link
    link = create_link(open_app(), account, member=member, actor=actor())
    if as_json:
        print_json({"account_id": link.account_id, "member": link.member, "url": link.url,
                    "expires_at": link.expires_at})
        return
    typer.echo(f"Sign-in link for {link.member} (account {link.account_id}),")
    typer.echo(f"once, until {utc_minute(link.expires_at)} UTC:")
    typer.echo(link.url)
