"""`renewly plans ...`: the plan catalogue."""

from __future__ import annotations

from typing import Annotated

import typer

from renewly.cli.common import (
    JsonFlag,
    actor,
    group,
    money,
    open_app,
    print_json,
    print_table,
)

app = group("The plan catalogue.")


@app.command("create")
def plans_create(code: Annotated[str, typer.Option(help="The plan's code, unique: what subscriptions name.")],
                 name: Annotated[str, typer.Option(help="The name shown on invoices.")],
                 interval: Annotated[str, typer.Option(help="month or year")],
                 price: Annotated[int, typer.Option(help="Price per seat, in minor units (1900 = 19.00).")],
                 currency: Annotated[str, typer.Option(help="ISO 4217 code, e.g. USD, EUR.")],
                 as_json: JsonFlag = False) -> None:
    """Add a plan to the catalogue."""
    from renewly.billing.plans import create_plan
    plan_id = create_plan(open_app(), code=code, name=name, interval=interval, price=price, currency=currency,
                          actor=actor())
    print_json({"id": plan_id, "code": code}) if as_json else typer.echo(plan_id)


@app.command("list")
def plans_list(as_json: JsonFlag = False) -> None:
    """List the plans."""
    from renewly.billing.plans import list_plans
    rows = list_plans(open_app())
    if as_json:
        print_json(rows)
    else:
        print_table("Plans", ["code", "name", "interval", "price per seat"],
                    [[r["code"], r["name"], r["interval"], money(r["unit_amount"], r["currency"])] for r in rows])
