"""`renewly support ...`: what the operator's support staff do."""

from __future__ import annotations

from typing import Annotated

import typer

from renewly.cli.common import (
    AccountId,
    actor,
    echo_wrapped,
    group,
    open_app,
)

app = group("What the operator's support staff do.")


@app.command("reactivate")
def support_reactivate(account: AccountId, reason: Annotated[str, typer.Option(help="Why, for the audit log.")],
                       days: Annotated[int | None, typer.Option(help="Default: the policy's window.")] = None,
                       ) -> None:
    """Grant a cancelled account a temporary reactivation: owner only, billing pages only (R9.2)."""
    from renewly.accounts.accounts import describe_account
    from renewly.dunning.reactivation import grant_reactivation
    from renewly.dunning.rules.reactivation import last_day
    application = open_app()
    ends_at = grant_reactivation(application, account, days=days, reason=reason, actor=actor())
    zone = describe_account(application, account)["timezone"]
    echo_wrapped(f"account {account}: the owner may use the billing pages until the end of "
                 f"{last_day(ends_at, zone)} ({zone}); the next payment batch retries the unpaid invoices once "
                 "the card is updated")
