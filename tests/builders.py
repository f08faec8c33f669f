"""Small builders that set up billing situations through the real services."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select

from renewly.accounts.accounts import create_account
from renewly.adapters.db.tables import metadata
from renewly.billing.plans import create_plan
from renewly.billing.subscriptions import create_subscription
from renewly.bootstrap import App
from renewly.payments.cards import add_card

OPERATOR = "test:operator"


def team_plan(app: App, *, code: str = "team", price: int = 1900, currency: str = "USD",
              interval: str = "month") -> str:
    create_plan(app, code=code, name=code.title(), interval=interval, price=price, currency=currency,
                actor=OPERATOR)
    return code


def customer(app: App, *, name: str = "Acme", owner: str = "owner@acme.test", currency: str = "USD",
             country: str = "FR", locale: str = "en", timezone: str = "UTC") -> int:
    return create_account(app, name=name, owner_email=owner, currency=currency, country=country, locale=locale,
                          timezone=timezone, actor=OPERATOR)


GOOD_CARD = "4242424242424242"


def with_card(app: App, account_id: int, number: str = GOOD_CARD, owner: str = "owner@acme.test") -> None:
    """The owner saves a card through the simulated gateway's card form (R5.1 verification included)."""
    token = app.gateway.tokenize(number, 12, 2035)
    add_card(app, account_id, card_token=token, acting_email=owner)


def subscribed(app: App, *, seats: int = 3, start: date | None = None, plan: str | None = None,
               card: str | None = GOOD_CARD, **account) -> tuple[int, int]:
    """A paying account subscribed to the team plan (card=None: no card on file, so its invoices
    go unpaid and dunning follows); returns (account id, subscription id)."""
    account_id = customer(app, **account)
    if card:
        with_card(app, account_id, card, owner=account.get("owner", "owner@acme.test"))
    plan = plan or team_plan(app)
    return account_id, create_subscription(app, account_id, plan_code=plan, seats=seats, start=start, actor=OPERATOR)


def database_rows(app: App) -> dict[str, list]:
    """Every row of every table: compare before and after to show that nothing changed."""
    with app.engine.connect() as conn:
        return {table.name: conn.execute(select(table).order_by(*table.primary_key.columns)).all()
                for table in metadata.sorted_tables}


@dataclass
class Outcome:
    """What a command line run gave: exit code, standard output, standard error."""

    code: int
    out: str
    err: str

    def json(self):
        return json.loads(self.out)
