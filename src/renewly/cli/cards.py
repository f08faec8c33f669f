"""`renewly cards ...`: the account's card."""

from __future__ import annotations

from typing import Annotated

import typer

from renewly.cli.common import (
    AccountId,
    JsonFlag,
    group,
    open_app,
    print_json,
)
from renewly.shared.errors import InvalidInput

app = group("Payment methods (only the owner changes them).")


@app.command("add")
def cards_add(account: AccountId,
              number: Annotated[str | None, typer.Option(
                  help="Simulated gateway only: the number its tokenizer takes, as a hosted card form would.")] = None,
              exp: Annotated[str | None, typer.Option(help="MM/YYYY")] = None,
              token: Annotated[str | None, typer.Option(help="A card token from the gateway's card form.")] = None,
              *,  # so that the required --as needs no default, in the options' order of --help
              acting: Annotated[str, typer.Option("--as", help="Who is doing it: only the owner may.")],
              as_json: JsonFlag = False) -> None:
    """Save a card after a verification authorization (R5.1); retries unpaid invoices next batch (R7.1)."""
    from renewly.payments.cards import add_card, may_change_card
    from renewly.payments.rules.charges import parse_expiry
    application = open_app()
    if token is None:
        if number is None or exp is None:
            raise InvalidInput("give --number and --exp (simulated gateway), or --token", code="card_required")
        # The owner first: a refused card must not have left a token at the gateway.
        may_change_card(application, account, acting)
        tokenize = getattr(application.gateway, "tokenize", None)
        if tokenize is None:
            raise InvalidInput(f"the {application.gateway.name} gateway takes a --token from its card form, never "
                               "a card number", code="token_required")
        month, year = parse_expiry(exp, application.clock.now().date())
        token = tokenize(number, month, year)
    saved = add_card(application, account, card_token=token, acting_email=acting)
    card = saved.card
    if as_json:
        print_json({"brand": card.brand, "last4": card.last4, "exp_month": card.exp_month, "exp_year": card.exp_year,
                    "retries_requested": saved.retries_requested})
    else:
        typer.echo(f"card saved: {card.brand} •••• {card.last4}, expires {card.exp_month:02d}/{card.exp_year}"
                   + (f"; {saved.retries_requested} unpaid invoice(s) will be retried by the next payment batch"
                      if saved.retries_requested else ""))


@app.command("show")
def cards_show(account: AccountId, as_json: JsonFlag = False) -> None:
    """The account's card, as Renewly keeps it: brand, last 4 digits, expiry (R5.4)."""
    from renewly.payments.cards import current_card
    card = current_card(open_app(), account)
    if as_json:
        print_json(card)
    elif card is None:
        typer.echo(f"account {account} has no card")
    else:
        typer.echo(f"{card['brand']} •••• {card['last4']}, expires {card['exp_month']:02d}/{card['exp_year']}, "
                   f"added by {card['added_by']} on {card['added_at'].date()}")
