"""`renewly subscriptions ...`: starting them, changing their seats, cancelling them."""

from __future__ import annotations

from typing import Annotated

import typer

from renewly.cli.common import (
    AccountId,
    JsonFlag,
    actor,
    group,
    money,
    open_app,
    parse_date,
    print_json,
)

app = group("Subscriptions.")


@app.command("create")
def subscriptions_create(account: AccountId, plan: Annotated[str, typer.Option(help="The plan's code.")],
                         seats: Annotated[int, typer.Option(help="How many seats are billed.")] = 1,
                         start: Annotated[str | None, typer.Option(help="YYYY-MM-DD; default: today "
                                                                             "in the account's time zone.")] = None,
                         backdate: Annotated[bool, typer.Option(
                             "--backdate", help="A start more than one period ago: its periods up to today in "
                                                "one catch-up invoice.")] = False,
                         as_json: JsonFlag = False) -> None:
    """Start a subscription; its first invoice is issued when it starts."""
    from renewly.billing.subscriptions import create_subscription
    application = open_app(issues_invoices=True)  # the first invoice
    starts = parse_date(start, "--start") if start is not None else None  # --start "" is no date
    subscription_id = create_subscription(application, account, plan_code=plan, seats=seats, start=starts,
                                          actor=actor(), backdate=backdate)
    print_json({"id": subscription_id}) if as_json else typer.echo(subscription_id)


@app.command("change-seats")
def subscriptions_change_seats(subscription: Annotated[int, typer.Argument(help="The subscription's id.")],
                               seats: Annotated[int, typer.Option(help="The new seat count.")]) -> None:
    """Change the seat count from today; the prorated difference goes on the next invoice."""
    from renewly.billing.subscriptions import change_seats
    prorated = change_seats(open_app(), subscription, seats=seats, actor=actor())
    typer.echo(f"subscription {subscription}: {seats} seat(s); prorated on the next invoice: "
               f"{money(prorated.amount, prorated.currency)}")


@app.command("cancel")
def subscriptions_cancel(subscription: Annotated[int, typer.Argument(help="The subscription's id.")]) -> None:
    """Stop a subscription now: never renewed nor invoiced again; issued invoices stay as they are."""
    from renewly.billing.subscriptions import cancel_subscription
    left = cancel_subscription(open_app(), subscription, actor=actor())
    typer.echo(f"subscription {subscription}: cancelled"
               + (f"; prorations not invoiced: {money(left.amount, left.currency)}" if left.amount else ""))
