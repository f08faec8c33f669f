"""The operator's command line. Every read takes --json; bad input is one line on stderr, exit 2."""

from __future__ import annotations

import getpass
import json
import os
import sys
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Annotated, Any, Optional

import typer
from typer._click.exceptions import NoArgsIsHelpError
from typer.exceptions import TyperException
from rich.console import Console
from rich.table import Table

from renewly.bootstrap import App, bootstrap
from renewly.domain.calendar import end_of_day_utc
from renewly.domain.errors import BillingError, InvalidInput
from renewly.domain.money import Money

app = typer.Typer(help="Renewly: subscription billing, invoicing and dunning.", no_args_is_help=True,
                  pretty_exceptions_enable=False, rich_markup_mode=None, add_completion=False)
db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
clock_app = typer.Typer(help="The test clock.", no_args_is_help=True)
plans_app = typer.Typer(help="The plan catalogue.", no_args_is_help=True)
accounts_app = typer.Typer(help="Customer accounts.", no_args_is_help=True)
members_app = typer.Typer(help="Members of an account and their roles.", no_args_is_help=True)
subscriptions_app = typer.Typer(help="Subscriptions.", no_args_is_help=True)
invoices_app = typer.Typer(help="Invoices and credit notes.", no_args_is_help=True)
for sub, name in ((db_app, "db"), (clock_app, "clock"), (plans_app, "plans"), (accounts_app, "accounts"),
                  (members_app, "members"), (subscriptions_app, "subscriptions"), (invoices_app, "invoices")):
    app.add_typer(sub, name=name)

console = Console()
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
AsOf = Annotated[Optional[str], typer.Option("--as-of", help="An ISO date (its last instant, UTC) or datetime; "
                                                          "default: the clock's now.")]


def actor() -> str:
    """Who the audit log names: $RENEWLY_ACTOR, or the operating-system user at the command line."""
    return os.environ.get("RENEWLY_ACTOR") or f"cli:{getpass.getuser()}"


def open_app() -> App:
    return bootstrap()


def parse_date(text: str, what: str = "date") -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"malformed {what} {text!r}: expected YYYY-MM-DD", code="malformed_date") from None


def parse_as_of(text: str | None, application: App) -> datetime:
    if text is None:
        return application.clock.now()
    if len(text) == 10:
        return end_of_day_utc(parse_date(text, "--as-of date"))
    try:
        instant = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"malformed --as-of {text!r}: expected YYYY-MM-DD or an ISO datetime",
                           code="malformed_date") from None
    return instant if instant.tzinfo else instant.replace(tzinfo=timezone.utc)


def _json_default(value: Any) -> Any:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot print {type(value).__name__} as JSON")


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, default=_json_default, ensure_ascii=False, indent=2) + "\n")


def print_table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    table = Table(title=title)
    for column in columns:
        table.add_column(column)
    for row in rows:
        table.add_row(*["" if cell is None else str(cell) for cell in row])
    console.print(table)


def money(amount: int, currency: str, locale: str = "en") -> str:
    return Money(amount, currency).format(locale)


# -- db -----------------------------------------------------------------------------------------

@db_app.command("upgrade")
def db_upgrade() -> None:
    """Bring the database schema to the latest revision."""
    from renewly.adapters.db.engine import current_revision, upgrade
    application = bootstrap(upgrade=False)
    upgrade(application.engine)
    typer.echo(f"database at revision {current_revision(application.engine)}")


# -- clock and batches --------------------------------------------------------------------------

@clock_app.command("show")
def clock_show(as_json: JsonFlag = False) -> None:
    """Print the clock's time."""
    application = open_app()
    now = application.clock.now()
    kind = "test" if application.test_clock else "system"
    if as_json:
        print_json({"clock": kind, "now": now})
    else:
        typer.echo(f"{kind} clock: {now.isoformat()}")


@clock_app.command("set")
def clock_set(day: Annotated[str, typer.Argument(help="YYYY-MM-DD: the new time is that day's midnight, UTC.")],
              ) -> None:
    """Start the test clock on a day of your choice (forward only)."""
    application = open_app()
    if application.test_clock is None:
        raise InvalidInput("the clock is the system clock; set RENEWLY_CLOCK=test", code="not_test_clock")
    target = datetime.combine(parse_date(day), time.min, tzinfo=timezone.utc)
    current = application.test_clock.peek()
    if current is not None and target < current:
        raise InvalidInput(f"the test clock is at {current.isoformat()}; it only moves forward",
                           code="clock_backwards")
    application.test_clock.set(target)
    typer.echo(f"test clock: {target.isoformat()}")


@clock_app.command("advance")
def clock_advance(days: Annotated[int, typer.Option("--days", help="How many days to move forward.")] = 0,
                  hours: Annotated[int, typer.Option("--hours")] = 0,
                  batches: Annotated[bool, typer.Option("--batches/--no-batches",
                                                        help="Run the batches due on the way (default), or let "
                                                             "time pass as if Renewly were down.")] = True,
                  as_json: JsonFlag = False) -> None:
    """Move the test clock forward, running every batch that falls due on the way, in order."""
    from renewly.services.scheduler import advance
    if days < 0 or hours < 0:
        raise InvalidInput("the test clock only moves forward", code="clock_backwards")
    application = open_app()
    runs = advance(application, timedelta(days=days, hours=hours), run_batches=batches)
    now = application.clock.now()
    if as_json:
        print_json({"now": now, "runs": [_run_json(run) for run in runs]})
        return
    for run in runs:
        typer.echo(f"{run.at.isoformat()}  {run.batch}: {_describe_report(run.report)}")
    typer.echo(f"test clock: {now.isoformat()}" + ("" if batches else " (no batches ran)"))


def _run_json(run) -> dict[str, Any]:
    report = run.report
    return {"batch": run.batch, "at": run.at, "report": getattr(report, "__dict__", report)}


def _describe_report(report: Any) -> str:
    if hasattr(report, "invoices_issued"):
        return f"{report.invoices_issued} invoice(s) issued for {report.subscriptions_renewed} subscription(s)"
    return str(report)


@app.command("run")
def run(as_of: AsOf = None, as_json: JsonFlag = False) -> None:
    """Run every batch once."""
    from renewly.services.scheduler import run_all
    application = open_app()
    runs = run_all(application, parse_as_of(as_of, application))
    if as_json:
        print_json([_run_json(r) for r in runs])
        return
    for r in runs:
        typer.echo(f"{r.batch}: {_describe_report(r.report)}")


@app.command("renew")
def renew(as_of: AsOf = None, as_json: JsonFlag = False) -> None:
    """The renewal batch: invoice every subscription whose period has ended, once."""
    from renewly.services.renewals import renew_due
    application = open_app()
    report = renew_due(application, parse_as_of(as_of, application))
    if as_json:
        print_json(report.__dict__)
    else:
        typer.echo(_describe_report(report))


# -- plans --------------------------------------------------------------------------------------

@plans_app.command("create")
def plans_create(code: Annotated[str, typer.Option()], name: Annotated[str, typer.Option()],
                 interval: Annotated[str, typer.Option(help="month or year")],
                 price: Annotated[int, typer.Option(help="Price per seat, in minor units (1900 = 19.00).")],
                 currency: Annotated[str, typer.Option()], as_json: JsonFlag = False) -> None:
    """Add a plan to the catalogue."""
    from renewly.services.plans import create_plan
    plan_id = create_plan(open_app(), code=code, name=name, interval=interval, price=price, currency=currency,
                          actor=actor())
    print_json({"id": plan_id, "code": code}) if as_json else typer.echo(plan_id)


@plans_app.command("list")
def plans_list(as_json: JsonFlag = False) -> None:
    """List the plans."""
    from renewly.services.plans import list_plans
    rows = list_plans(open_app())
    if as_json:
        print_json(rows)
    else:
        print_table("Plans", ["code", "name", "interval", "price per seat"],
                    [[r["code"], r["name"], r["interval"], money(r["unit_amount"], r["currency"])] for r in rows])


# -- accounts and members -------------------------------------------------------------------------

@accounts_app.command("create")
def accounts_create(name: Annotated[str, typer.Option()], owner_email: Annotated[str, typer.Option()],
                    locale: Annotated[str, typer.Option(help="en or fr")] = "en",
                    timezone_name: Annotated[str, typer.Option("--timezone")] = "UTC",
                    currency: Annotated[str, typer.Option()] = "USD",
                    country: Annotated[str, typer.Option(help="The buyer's country, ISO 3166.")] = "",
                    as_json: JsonFlag = False) -> None:
    """Create an account with its owner; prints the id."""
    from renewly.services.accounts import create_account, describe_account
    application = open_app()
    account_id = create_account(application, name=name, owner_email=owner_email, locale=locale,
                                timezone=timezone_name, currency=currency, country=country, actor=actor())
    print_json(describe_account(application, account_id)) if as_json else typer.echo(account_id)


@accounts_app.command("show")
def accounts_show(account: int, as_json: JsonFlag = False) -> None:
    """Show an account: members, buyer address, subscriptions."""
    from renewly.services.accounts import describe_account
    found = describe_account(open_app(), account)
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
                   f"period {sub['current_period_start']} to {sub['current_period_end']}")


@accounts_app.command("list")
def accounts_list(as_json: JsonFlag = False) -> None:
    """List the accounts."""
    from renewly.services.accounts import list_accounts
    rows = list_accounts(open_app())
    if as_json:
        print_json(rows)
    else:
        print_table("Accounts", ["id", "name", "status", "currency", "owner"],
                    [[r["id"], r["name"], r["status"], r["currency"], r["owner"]] for r in rows])


@accounts_app.command("update-address")
def accounts_update_address(account: int,
                            name: Annotated[Optional[str], typer.Option()] = None,
                            line1: Annotated[Optional[str], typer.Option()] = None,
                            line2: Annotated[Optional[str], typer.Option()] = None,
                            postcode: Annotated[Optional[str], typer.Option()] = None,
                            city: Annotated[Optional[str], typer.Option()] = None,
                            country: Annotated[Optional[str], typer.Option()] = None,
                            vat_id: Annotated[Optional[str], typer.Option("--vat-id")] = None,
                            as_json: JsonFlag = False) -> None:
    """Change the buyer address printed on future invoices (issued ones keep theirs, R3.1)."""
    from renewly.services.accounts import update_buyer_address
    changes = {key: value for key, value in dict(name=name, line1=line1, line2=line2, postcode=postcode, city=city,
                                                 country=country, vat_id=vat_id).items() if value is not None}
    if not changes:
        raise InvalidInput("nothing to change: give at least one of --name, --line1, --line2, --postcode, --city, "
                           "--country, --vat-id", code="nothing_to_change")
    updated = update_buyer_address(open_app(), account, changes=changes, actor=actor())
    print_json(updated) if as_json else typer.echo("buyer address: " + ", ".join(v for v in updated.values() if v))


@members_app.command("add")
def members_add(account: int, email: Annotated[str, typer.Option()],
                role: Annotated[str, typer.Option(help="admin or agent")]) -> None:
    """Add a member with a role."""
    from renewly.services.accounts import add_member
    typer.echo(add_member(open_app(), account, email=email, role=role, actor=actor()))


@members_app.command("remove")
def members_remove(account: int, email: Annotated[str, typer.Option()]) -> None:
    """Remove a member (never the owner)."""
    from renewly.services.accounts import remove_member
    remove_member(open_app(), account, email=email, actor=actor())
    typer.echo(f"removed {email}")


@members_app.command("list")
def members_list(account: int, as_json: JsonFlag = False) -> None:
    """List an account's members."""
    from renewly.services.accounts import describe_account
    rows = describe_account(open_app(), account)["members"]
    if as_json:
        print_json(rows)
    else:
        print_table(f"Members of account {account}", ["role", "email"], [[r["role"], r["email"]] for r in rows])


# -- subscriptions ------------------------------------------------------------------------------

@subscriptions_app.command("create")
def subscriptions_create(account: int, plan: Annotated[str, typer.Option(help="The plan's code.")],
                         seats: Annotated[int, typer.Option()] = 1,
                         start: Annotated[Optional[str], typer.Option(help="YYYY-MM-DD; default: today "
                                                                             "in the account's time zone.")] = None,
                         as_json: JsonFlag = False) -> None:
    """Start a subscription; its first invoice is issued when it starts."""
    from renewly.services.subscriptions import create_subscription
    application = open_app()
    subscription_id = create_subscription(application, account, plan_code=plan, seats=seats,
                                          start=parse_date(start, "--start") if start else None, actor=actor())
    print_json({"id": subscription_id}) if as_json else typer.echo(subscription_id)


@subscriptions_app.command("change-seats")
def subscriptions_change_seats(subscription: int, seats: Annotated[int, typer.Option()]) -> None:
    """Change the seat count from today; the prorated difference goes on the next invoice."""
    from renewly.services.subscriptions import change_seats
    prorated = change_seats(open_app(), subscription, seats=seats, actor=actor())
    typer.echo(f"subscription {subscription}: {seats} seat(s); prorated on the next invoice: {prorated}")


# -- invoices -----------------------------------------------------------------------------------

@invoices_app.command("list")
def invoices_list(account: Annotated[Optional[int], typer.Option()] = None, as_json: JsonFlag = False) -> None:
    """List invoices and credit notes."""
    from renewly.services.invoices import list_invoices
    rows = list_invoices(open_app(), account)
    if as_json:
        print_json(rows)
        return
    print_table("Invoices", ["number", "kind", "account", "issued", "period", "total", "status"],
                [[r["number"], r["kind"], r["account_id"], r["issue_date"],
                  f"{r['period_start']} – {r['period_end']}" if r["period_start"] else "",
                  money(r["total"], r["currency"], r["locale"]), r["status"]] for r in rows])


@invoices_app.command("show")
def invoices_show(number: str, as_json: JsonFlag = False) -> None:
    """Show one invoice with its lines, as issued."""
    from renewly.services.invoices import show_invoice
    found = show_invoice(open_app(), number)
    if as_json:
        print_json(found)
        return
    typer.echo(f"{found['kind']} {found['number']} issued {found['issue_date']} ({found['status']})")
    typer.echo(f"seller: {found['seller']['name']}   buyer: {found['buyer']['name']}")
    for line in found["lines"]:
        typer.echo(f"  {line['description']}: {line['quantity']} × {money(line['unit_amount'], found['currency'])}"
                   f" = {money(line['amount'], found['currency'])}")
    typer.echo(f"subtotal {money(found['subtotal'], found['currency'])}, tax {found['tax_rate']}% "
               f"{money(found['tax'], found['currency'])}, total {money(found['total'], found['currency'])}")


@invoices_app.command("credit")
def invoices_credit(number: str, reason: Annotated[str, typer.Option()],
                    amount: Annotated[Optional[int], typer.Option(help="Before tax, minor units; default: "
                                                                         "all not yet credited.")] = None) -> None:
    """Correct an invoice with a credit note (an issued invoice is never edited)."""
    from renewly.services.invoices import issue_credit_note
    typer.echo(issue_credit_note(open_app(), number, reason=reason, amount=amount, actor=actor()))


# -- demo ---------------------------------------------------------------------------------------

@app.command("demo")
def demo(database: Annotated[str, typer.Option(help="SQLite file, recreated.")] = "renewly-demo.db",
         as_json: JsonFlag = False) -> None:
    """The main job on the embedded default: sample accounts renewing on a test clock."""
    from renewly.demo import run_demo
    run_demo(database, as_json=as_json, console=console)


def main() -> None:
    try:
        exit_code = app(standalone_mode=False)
    except BillingError as error:
        _fail(error.message)
    except typer.Abort:
        _fail("aborted")
    except NoArgsIsHelpError as asked_for_help:
        sys.stdout.write(asked_for_help.format_message() + "\n")
        exit_code = 0
    except TyperException as error:  # usage errors: unknown option, not an integer, missing argument, ...
        _fail(error.format_message())
    sys.exit(exit_code if isinstance(exit_code, int) else 0)


def _fail(message: str) -> None:
    sys.stderr.write(f"error: {' '.join(message.split())}\n")
    sys.exit(2)
