"""`renewly demo`: the main job on the embedded default, on a test clock, in seconds.

Until the dunning issue lands the full story, the demo sets up a handful of accounts with
different calendars, languages and currencies, then moves the test clock day by day for 100
days; the renewal batch runs whenever it falls due. It prints a timeline and the invoices.
"""

from __future__ import annotations

import json
import sys
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from rich.console import Console
from rich.table import Table

from renewly.bootstrap import bootstrap
from renewly.domain.money import Money
from renewly.services.accounts import add_member, create_account, update_buyer_address
from renewly.services.invoices import issue_credit_note, list_invoices
from renewly.services.plans import create_plan
from renewly.services.scheduler import advance
from renewly.services.subscriptions import change_seats, create_subscription
from renewly.settings import load_settings

START = datetime(2026, 1, 31, 12, tzinfo=timezone.utc)  # the 31st in every demo time zone
DAYS = 100
ACTOR = "demo:operator"


def run_demo(database: str, *, as_json: bool, console: Console) -> None:
    path = Path(database)
    for leftover in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        leftover.unlink(missing_ok=True)
    settings = load_settings().model_copy(update={"database_url": f"sqlite:///{path}", "clock": "test"})
    app = bootstrap(settings)
    app.test_clock.set(START)
    events: list[dict] = []

    def note(what: str, account: str = "", at: date | None = None, **details) -> None:
        day = at or app.clock.now().date()
        events.append({"at": day.isoformat(), "account": account, "event": what, **details})

    create_plan(app, code="team", name="Team", interval="month", price=1900, currency="USD", actor=ACTOR)
    create_plan(app, code="equipe", name="Équipe", interval="month", price=2900, currency="EUR", actor=ACTOR)
    create_plan(app, code="business-yearly", name="Business", interval="year", price=19000, currency="EUR",
                actor=ACTOR)
    stories = [
        ("Acme Inc.", "ops@acme.example", "en", "America/Los_Angeles", "USD", "US", "team", 5),
        ("Boulangerie Martin", "claire@martin.example", "fr", "Europe/Paris", "EUR", "FR", "equipe", 2),
        ("Globex GmbH", "it@globex.example", "en", "Europe/Berlin", "EUR", "DE", "equipe", 10),
        ("Initech SARL", "finance@initech.example", "fr", "Europe/Paris", "EUR", "FR", "business-yearly", 3),
    ]
    accounts = {}
    for name, owner, locale, tz, currency, country, plan, seats in stories:
        account_id = create_account(app, name=name, owner_email=owner, locale=locale, timezone=tz,
                                    currency=currency, country=country, actor=ACTOR)
        accounts[name] = account_id
        subscription_id = create_subscription(app, account_id, plan_code=plan, seats=seats, actor=ACTOR)
        accounts[f"{name}/subscription"] = subscription_id
        note(f"subscribed to {plan} with {seats} seat(s) on the 31st ({tz}); first invoice issued", name)
    add_member(app, accounts["Acme Inc."], email="dev@acme.example", role="admin", actor=ACTOR)

    scripted = {
        10: lambda: note("grew from 2 to 4 seats: the difference is prorated on the next invoice",
                         "Boulangerie Martin",
                         prorated=change_seats(app, accounts["Boulangerie Martin/subscription"], seats=4,
                                               actor=ACTOR)),
        20: lambda: (update_buyer_address(app, accounts["Globex GmbH"],
                                          changes={"line1": "Neue Straße 5", "postcode": "10115", "city": "Berlin",
                                                   "vat_id": "DE123456789"}, actor=ACTOR),
                     note("moved: future invoices carry the new address, issued ones keep the old (R3.1)",
                          "Globex GmbH")),
        35: lambda: note("its first invoice corrected by a credit note for one unused seat, never edited (R2.4)",
                         "Acme Inc.",
                         credit_note=issue_credit_note(app, list_invoices(app, accounts["Acme Inc."])[0]["number"],
                                                       reason="goodwill: 1 seat unused", amount=1900, actor=ACTOR)),
    }
    names = {account_id: name for name, account_id in accounts.items() if "/" not in name}
    seen = {invoice["id"] for invoice in list_invoices(app)}
    for day in range(1, DAYS + 1):
        advance(app, timedelta(days=1))
        for invoice in list_invoices(app):
            if invoice["id"] not in seen:
                seen.add(invoice["id"])
                note(f"{invoice['kind'].replace('_', ' ')} {invoice['number']} issued: "
                     f"{Money(invoice['total'], invoice['currency']).format(invoice['locale'])}",
                     names[invoice["account_id"]], at=invoice["issue_date"], number=invoice["number"])
        if day in scripted:
            scripted[day]()

    if as_json:
        for event in events:
            sys.stdout.write(json.dumps(event, ensure_ascii=False) + "\n")
        return
    timeline = Table(title=f"Renewly demo: {DAYS} days on a test clock from {START.date()}")
    for column in ("date", "account", "what happened"):
        timeline.add_column(column)
    for event in events:
        timeline.add_row(event["at"], event["account"], event["event"])
    console.print(timeline)
    invoices = Table(title="Invoices issued")
    for column in ("number", "account", "issued", "period", "total"):
        invoices.add_column(column)
    for invoice in list_invoices(app):
        period = (f"{invoice['period_start']} → {invoice['period_end'] - timedelta(days=1)}"
                  if invoice["period_start"] else "")
        invoices.add_row(invoice["number"], names[invoice["account_id"]], str(invoice["issue_date"]), period,
                         Money(invoice["total"], invoice["currency"]).format(invoice["locale"]))
    console.print(invoices)
    console.print(f"Database: {path} (inspect it with RENEWLY_DATABASE_URL=sqlite:///{path} "
                  f"RENEWLY_CLOCK=test renewly invoices list)")


