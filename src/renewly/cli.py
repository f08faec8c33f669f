"""The operator's command line. Every read takes --json; bad input is one line on stderr, exit 2."""

from __future__ import annotations

import getpass
import json
import os
import signal
import sys
import textwrap
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy.exc import ArgumentError, DBAPIError, InterfaceError, OperationalError, SQLAlchemyError
from typer._click.exceptions import NoArgsIsHelpError
from typer.exceptions import TyperException

from renewly.adapters.clock import LATEST_TEST_CLOCK
from renewly.adapters.logs import configure_command_line_logs
from renewly.bootstrap import App, bootstrap
from renewly.cli_contacts import AccountId, contacts_app
from renewly.config.settings import load_settings
from renewly.shared.calendar import end_of_day_utc
from renewly.shared.errors import BillingError, InvalidInput
from renewly.shared.money import Money

app = typer.Typer(help="Renewly: subscription billing, invoicing and dunning.", no_args_is_help=True,
                  pretty_exceptions_enable=False, rich_markup_mode=None, add_completion=False)
db_app = typer.Typer(help="The database schema.", no_args_is_help=True)
# No advance can go further than from the earliest day the test clock starts on (1970) to its end.
DAYS_TO_THE_CLOCKS_END = (LATEST_TEST_CLOCK - datetime(1970, 1, 1, tzinfo=UTC)).days
# One advance runs about a simulated year a second: a longer one is a typo (`--days 1000000` would
# run for an hour); ten years at once is more than any story a test clock tells.
MOST_DAYS_PER_ADVANCE = 3660
clock_app = typer.Typer(help="The test clock.", no_args_is_help=True)
plans_app = typer.Typer(help="The plan catalogue.", no_args_is_help=True)
accounts_app = typer.Typer(help="Customer accounts.", no_args_is_help=True)
members_app = typer.Typer(help="Members of an account and their roles.", no_args_is_help=True)
subscriptions_app = typer.Typer(help="Subscriptions.", no_args_is_help=True)
invoices_app = typer.Typer(help="Invoices and credit notes.", no_args_is_help=True)
cards_app = typer.Typer(help="Payment methods (only the owner changes them).", no_args_is_help=True)
payments_app = typer.Typer(help="Payment attempts.", no_args_is_help=True)
gateway_app = typer.Typer(help="The simulated gateway's fault scripting (tests and demos).", no_args_is_help=True)
support_app = typer.Typer(help="What the operator's support staff do.", no_args_is_help=True)
outbox_app = typer.Typer(help="E-mails and events waiting for delivery.", no_args_is_help=True)
policy_app = typer.Typer(help="The dunning policy file.", no_args_is_help=True)
billing_app = typer.Typer(help="What an account's owner sees of billing.", no_args_is_help=True)
problems_app = typer.Typer(help="Rows the batches could not process, left aside with the reason.",
                           no_args_is_help=True)
for sub, name in ((db_app, "db"), (clock_app, "clock"), (plans_app, "plans"), (accounts_app, "accounts"),
                  (members_app, "members"), (subscriptions_app, "subscriptions"), (invoices_app, "invoices"),
                  (cards_app, "cards"), (payments_app, "payments"), (gateway_app, "gateway"),
                  (support_app, "support"), (outbox_app, "outbox"), (policy_app, "policy"),
                  (billing_app, "billing"), (problems_app, "problems")):
    app.add_typer(sub, name=name)
app.add_typer(contacts_app, name="contacts")

console = Console()


def _print_version(asked: bool) -> None:
    if asked:
        from importlib.metadata import version
        typer.echo(f"renewly {version('renewly')}")
        raise typer.Exit()


@app.callback()
def _options(version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                                   help="Print Renewly's version and exit.")] = False) -> None:
    """Renewly: subscription billing, invoicing and dunning."""
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
InvoiceNumber = Annotated[str, typer.Argument(help="An invoice's or credit note's number, e.g. 2026-000001.")]
AccountFilter = Annotated[int | None, typer.Option("--account", help="Only this account's (its id).")]
AsOf = Annotated[str | None, typer.Option("--as-of", help="An ISO date (its last instant, UTC) or datetime; "
                                                          "default: the clock's now.")]


def actor() -> str:
    """Who the audit log names: $RENEWLY_ACTOR, or the operating-system user at the command line."""
    return os.environ.get("RENEWLY_ACTOR") or f"cli:{getpass.getuser()}"


def open_app(*, issues_invoices: bool = False) -> App:
    """The application, for one command. A command that issues invoices is refused before the
    database is opened while the seller is still the demo's on the system clock."""
    settings = load_settings()
    if issues_invoices:
        settings.refuse_the_demo_seller_on_the_system_clock()
    return bootstrap(settings)


# Set by the second Ctrl-C: `main` then exits at once, without waiting for threads at the gateway.
STOPPED_AT_ONCE = threading.Event()


@contextmanager
def stopping_on_ctrl_c(application: App) -> Iterator[None]:
    """The first Ctrl-C asks the batches to stop once the slice in hand is done (its charges
    answered and recorded); the second one stops at once (KeyboardInterrupt, see `main`)."""
    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield
        return

    def second_ctrl_c(_signal, _frame) -> None:
        STOPPED_AT_ONCE.set()
        raise KeyboardInterrupt

    def first_ctrl_c(_signal, _frame) -> None:
        application.stop.ask()
        signal.signal(signal.SIGINT, second_ctrl_c)
        # os.write: a signal handler may run while the main thread is inside sys.stderr.write.
        os.write(2, b"stopping after the slice in hand (Ctrl-C again stops at once)\n")

    previous = signal.signal(signal.SIGINT, first_ctrl_c)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def say_stopped(application: App, as_of: datetime, *, as_json: bool, where: str = "") -> None:
    """After the first Ctrl-C: one line on what was left (on stderr under --json, which keeps
    stdout the report), then exit 130."""
    from renewly.batches.scheduler import still_due
    left = still_due(application, as_of)
    line = (f"interrupted{where}: stopped after the slice in hand; "
            + (f"still due: {', '.join(left)} (`renewly run` does the rest)" if left else "nothing was left"))
    echo_wrapped(line, err=as_json)
    raise typer.Exit(130)


def parse_date(text: str, what: str = "date") -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"malformed {what} {text!r}: expected YYYY-MM-DD", code="malformed_date") from None


# The earliest moment a batch may run as of: the earliest day the test clock starts on.
EARLIEST_AS_OF = datetime(1970, 1, 1, tzinfo=UTC)


def parse_as_of(text: str | None, application: App) -> datetime:
    """The moment a batch runs as of: the clock's now, or an earlier one (a batch run late). Never
    later: a typo (2030 for 2026) would issue invoices dated years ahead."""
    now = application.clock.now()
    if text is None:
        return now
    if len(text) == 10:
        day = parse_date(text, "--as-of date")
        # A bare date means its last instant (UTC); today's is not reached yet: now.
        instant = min(end_of_day_utc(day), now) if day == now.astimezone(UTC).date() else end_of_day_utc(day)
    else:
        try:
            instant = datetime.fromisoformat(text)
        except ValueError:
            raise InvalidInput(f"malformed --as-of {text!r}: expected YYYY-MM-DD or an ISO datetime",
                               code="malformed_date") from None
        instant = instant if instant.tzinfo else instant.replace(tzinfo=UTC)
    if instant > now:
        raise InvalidInput(f"--as-of {text} is later than the clock ({now.isoformat()}): batches run as of now or "
                           "earlier", code="as_of_in_the_future")
    if instant < EARLIEST_AS_OF:
        # Retention counts years back from it: year 1 left the calendar (a traceback).
        raise InvalidInput(f"--as-of {text} is before {EARLIEST_AS_OF.date()}: no batch runs that late",
                           code="as_of_too_early")
    return instant


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
    target = datetime.combine(parse_date(day), time.min, tzinfo=UTC)
    with application.test_clock.turn():  # not in the middle of an advance
        current = application.test_clock.peek()
        if current is not None and target < current:
            raise InvalidInput(f"the test clock is at {current.isoformat()}; it only moves forward",
                               code="clock_backwards")
        if target > LATEST_TEST_CLOCK:
            raise InvalidInput(f"the test clock stops at {LATEST_TEST_CLOCK.isoformat()}", code="clock_too_far")
        application.test_clock.set(target)
    typer.echo(f"test clock: {target.isoformat()}")


@clock_app.command("advance")
def clock_advance(days: Annotated[int, typer.Option("--days", help="How many days to move forward.")] = 0,
                  hours: Annotated[int, typer.Option("--hours", help="And this many hours.")] = 0,
                  batches: Annotated[bool, typer.Option("--batches/--no-batches",
                                                        help="Run the batches due on the way (default), or let "
                                                             "time pass as if Renewly were down.")] = True,
                  as_json: JsonFlag = False) -> None:
    """Move the test clock forward, running every batch that falls due on the way, in order.
    Advances at once take turns, each from where the one before it left the clock."""
    from renewly.batches.scheduler import advance
    if days < 0 or hours < 0:
        raise InvalidInput("the test clock only moves forward", code="clock_backwards")
    if days > DAYS_TO_THE_CLOCKS_END or hours > 24 * DAYS_TO_THE_CLOCKS_END:
        raise InvalidInput(f"the test clock stops at {LATEST_TEST_CLOCK.isoformat()}", code="clock_too_far")
    if timedelta(days=days, hours=hours) > timedelta(days=MOST_DAYS_PER_ADVANCE):
        raise InvalidInput(f"an advance moves at most {MOST_DAYS_PER_ADVANCE} days (ten years); advance again "
                           "for more", code="advance_too_long")
    application = open_app()
    with stopping_on_ctrl_c(application):
        moved = advance(application, timedelta(days=days, hours=hours), run_batches=batches)
    runs, now = moved.runs, moved.now  # this move's end: another one may have moved the clock since
    if as_json:
        print_json({"now": now, "target": moved.target, "stopped": moved.stopped,
                    "runs": [_run_json(run) for run in runs]})
    else:
        for run in runs:
            # A tick runs every batch; those that found nothing to do stay quiet.
            if run.report.did_anything or left_undone(run.report):
                echo_wrapped(f"{run.at.isoformat()}  {run.batch}: {_describe_report(run.report)}")
        ticks = len({run.at for run in runs})
        typer.echo(f"test clock: {now.isoformat()}" + (f" ({ticks} tick(s) ran)" if batches else
                                                       " (no batches ran)"))
    if application.stop.asked:
        exit_if_anything_was_left([run.report for run in runs], say=not as_json, then_exit=False)
        say_stopped(application, now, as_json=as_json,
                    where=f" short of {moved.target.isoformat()}" if moved.stopped else "")
    exit_if_anything_was_left([run.report for run in runs], say=not as_json)


def echo_wrapped(text: str, indent: int = 4, *, err: bool = False) -> None:
    """One line of output folded to 80 columns, its continuation lines indented."""
    typer.echo(textwrap.fill(text, width=80, subsequent_indent=" " * indent, break_on_hyphens=False,
                             break_long_words=False), err=err)


def _run_json(run) -> dict[str, Any]:
    report = run.report
    return {"batch": run.batch, "at": run.at, "report": getattr(report, "__dict__", report)}


def _describe_report(report: Any) -> str:
    from renewly.batches.scheduler import BatchFailed
    if isinstance(report, BatchFailed):
        return f"failed: {report.reason}"
    parked = f"; {report.parked} parked (renewly problems)" if getattr(report, "parked", 0) else ""
    if hasattr(report, "invoices_issued"):
        return (f"{report.invoices_issued} invoice(s) issued for {report.subscriptions_renewed} subscription(s)"
                + parked)
    if hasattr(report, "attempted"):
        collected = ", ".join(money(amount, currency) for currency, amount in sorted(report.collected.items()))
        return (f"{report.attempted} charge(s): {report.succeeded} succeeded, {report.declined} declined, "
                f"{report.unknown} without answer; {report.settled_by_janitor} earlier attempt(s) settled"
                + (f"; collected {collected}" if collected else ""))
    if hasattr(report, "steps_taken"):
        return (f"{report.cases_opened} case(s) opened, {report.invoices_joined} invoice(s) joined an open case, "
                f"{report.steps_taken} step(s) taken, {report.emails} e-mail(s), {report.charges_requested} "
                f"charge(s) requested ({report.notices_waiting} notice(s) wait for their answers), "
                f"{report.cancelled} account(s) cancelled, {report.reactivations_expired} reactivation(s) ended "
                f"unpaid" + parked)
    if hasattr(report, "voided"):
        return f"{report.voided} card-check authorization(s) voided, {report.failed} to try again"
    if hasattr(report, "invoices_purged"):
        return (f"{report.accounts_deleted} account(s) deleted, {report.invoices_purged} invoice(s) purged"
                + (f"; gateway refused account(s) {', '.join(map(str, report.gateway_failures))}, tried again "
                   f"next run" if report.gateway_failures else ""))
    return str(report)


@app.command("run")
def run(as_of: AsOf = None, as_json: JsonFlag = False) -> None:
    """Do everything due: renewals, their charges, dunning and what it asks, voids, deletions."""
    from renewly.batches.scheduler import run_all
    application = open_app(issues_invoices=True)  # renewals
    instant = parse_as_of(as_of, application)
    with stopping_on_ctrl_c(application):
        runs = run_all(application, instant)
    if as_json:
        print_json([_run_json(r) for r in runs])
    else:
        for r in runs:
            echo_wrapped(f"{r.batch}: {_describe_report(r.report)}")
    if application.stop.asked:
        exit_if_anything_was_left([r.report for r in runs], say=not as_json, then_exit=False)
        say_stopped(application, instant, as_json=as_json)
    exit_if_anything_was_left([r.report for r in runs], say=not as_json)


def left_undone(report: Any) -> bool:
    from renewly.batches.scheduler import BatchFailed
    return isinstance(report, BatchFailed) or bool(getattr(report, "parked", 0))


def exit_if_anything_was_left(reports: list, *, say: bool = True, then_exit: bool = True) -> None:
    """Exit 1 (saying so, unless the output is JSON) when a batch failed or parked rows: the
    rest was done. `then_exit=False`: only say it (a stopped batch exits 130 after)."""
    from renewly.batches.scheduler import BatchFailed
    failed = sum(1 for report in reports if isinstance(report, BatchFailed))
    parked = sum(getattr(report, "parked", 0) for report in reports)
    if failed or parked:
        if say:
            echo_wrapped(f"{parked} row(s) parked, {failed} batch(es) failed"
                         + ("; everything else was done" if then_exit else "")
                         + ". See renewly problems.")
        if then_exit:
            raise typer.Exit(1)


def run_one_batch(batch, as_of: str | None, as_json: bool, *, issues_invoices: bool = False) -> None:
    """`renewly renew`, `collect`, `dunning`, `retention`: one batch, once, and its report."""
    application = open_app(issues_invoices=issues_invoices)
    instant = parse_as_of(as_of, application)
    with stopping_on_ctrl_c(application):
        report = batch(application, instant)
    print_json(report.__dict__) if as_json else echo_wrapped(_describe_report(report))
    if application.stop.asked:
        exit_if_anything_was_left([report], say=not as_json, then_exit=False)
        say_stopped(application, instant, as_json=as_json)
    exit_if_anything_was_left([report], say=not as_json)


@app.command("renew")
def renew(as_of: AsOf = None, as_json: JsonFlag = False) -> None:
    """The renewal batch: invoice every subscription whose period has ended, once."""
    from renewly.billing.renewals import renew_due
    run_one_batch(renew_due, as_of, as_json, issues_invoices=True)


@app.command("collect")
def collect(as_of: AsOf = None, as_json: JsonFlag = False) -> None:
    """The payment batch: settle unanswered attempts, then charge open invoices (R5.3, R7.1)."""
    from renewly.payments.collect import collect_due
    run_one_batch(collect_due, as_of, as_json)


@app.command("reconcile")
def reconcile_command(as_json: JsonFlag = False) -> None:
    """Compare the gateway's ledger with Renewly's (exit 1 on a discrepancy); list unanswered attempts.

    An attempt without an answer yet is no discrepancy: it is listed apart, with when the janitor
    settles it."""
    from renewly.payments.reconcile import reconcile
    report = reconcile(open_app())
    if as_json:
        print_json({"gateway_charges": report.gateway_charges, "local_successes": report.local_successes,
                    "discrepancies": [d.__dict__ for d in report.discrepancies],
                    "unanswered": [u.__dict__ for u in report.unanswered]})
    else:
        typer.echo(f"{report.gateway_charges} successful charge(s) at the gateway, {report.local_successes} in Renewly")
        for found in report.discrepancies:
            echo_wrapped(f"  {found.kind}: {found.idempotency_key or ''} {found.detail}")
        if not report.discrepancies:
            typer.echo("no discrepancy")
        if report.unanswered:
            echo_wrapped(f"{len(report.unanswered)} attempt(s) without an answer yet, not discrepancies: the "
                         "janitor settles each with its idempotency key", indent=2)
        for waiting in report.unanswered:
            echo_wrapped(f"  {waiting.invoice} (account {waiting.account_id}) "
                         f"{money(waiting.amount, waiting.currency)}, {describe_unanswered(waiting)}", indent=6)
    if report.discrepancies:
        raise typer.Exit(1)


def describe_unanswered(waiting) -> str:
    from renewly.payments.attempts import wall_clock
    charged = "; the gateway charged it" if waiting.charged_at_gateway else ""
    since = f"{waiting.status} since {waiting.attempted_at:%Y-%m-%d %H:%M} UTC{charged}"
    lease = waiting.lease_expires_at
    if waiting.status == "pending" and lease is not None and waiting.settled_after == lease:
        minutes = max(1, -(-int((lease - wall_clock()).total_seconds()) // 60))
        return (f"{since}; its lease ends {lease:%Y-%m-%d %H:%M:%S} UTC (in {minutes} min): the first payment "
                "batch after that settles it")
    if waiting.status == "pending" and lease is not None:
        return f"{since}; its lease ended {lease:%Y-%m-%d %H:%M:%S} UTC: the next payment batch settles it"
    return f"{since}: the next payment batch settles it"


# -- plans --------------------------------------------------------------------------------------

@plans_app.command("create")
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


@plans_app.command("list")
def plans_list(as_json: JsonFlag = False) -> None:
    """List the plans."""
    from renewly.billing.plans import list_plans
    rows = list_plans(open_app())
    if as_json:
        print_json(rows)
    else:
        print_table("Plans", ["code", "name", "interval", "price per seat"],
                    [[r["code"], r["name"], r["interval"], money(r["unit_amount"], r["currency"])] for r in rows])


# -- accounts and members -------------------------------------------------------------------------

@accounts_app.command("create")
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


@accounts_app.command("show")
def accounts_show(account: AccountId, as_json: JsonFlag = False) -> None:
    """Show an account: members, buyer address, subscriptions, and the banner each role sees."""
    from renewly.accounts.accounts import describe_account
    from renewly.dunning.reactivation import banners_by_role
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
                   f"period {sub['current_period_start']} to {sub['current_period_end']}")
    for role, banner in found["banners"].items():
        echo_wrapped(f"  banner for {role}: {banner['banner']}" + (f" — {banner['text']}" if banner["text"] else ""))


@accounts_app.command("list")
def accounts_list(as_json: JsonFlag = False) -> None:
    """List the accounts."""
    from renewly.accounts.accounts import list_accounts
    rows = list_accounts(open_app())
    if as_json:
        print_json(rows)
    else:
        print_table("Accounts", ["id", "name", "status", "currency", "owner"],
                    [[r["id"], r["name"], r["status"], r["currency"], r["owner"]] for r in rows])


@accounts_app.command("update-address")
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


@accounts_app.command("transfer-ownership")
def accounts_transfer_ownership(account: AccountId, to: Annotated[str, typer.Option("--to", help="A member's e-mail.")],
                                reason: Annotated[str, typer.Option(help="Why, for the audit log.")]) -> None:
    """Support: make another member the owner (R6.1), audited; the previous owner becomes an admin."""
    from renewly.accounts.accounts import transfer_ownership
    previous = transfer_ownership(open_app(), account, to_email=to, reason=reason, actor=actor())
    typer.echo(f"account {account}: owner is now {to.lower()} (was {previous})")


@members_app.command("add")
def members_add(account: AccountId, email: Annotated[str, typer.Option(help="The new member's e-mail.")],
                role: Annotated[str, typer.Option(help="admin or agent")]) -> None:
    """Add a member with a role."""
    from renewly.accounts.accounts import add_member
    typer.echo(add_member(open_app(), account, email=email, role=role, actor=actor()))


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
        print_table(f"Members of account {account}", ["role", "email"], [[r["role"], r["email"]] for r in rows])


# -- subscriptions ------------------------------------------------------------------------------

@subscriptions_app.command("create")
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


@subscriptions_app.command("change-seats")
def subscriptions_change_seats(subscription: Annotated[int, typer.Argument(help="The subscription's id.")],
                               seats: Annotated[int, typer.Option(help="The new seat count.")]) -> None:
    """Change the seat count from today; the prorated difference goes on the next invoice."""
    from renewly.billing.subscriptions import change_seats
    prorated = change_seats(open_app(), subscription, seats=seats, actor=actor())
    typer.echo(f"subscription {subscription}: {seats} seat(s); prorated on the next invoice: {prorated}")


# -- invoices -----------------------------------------------------------------------------------

@invoices_app.command("list")
def invoices_list(account: AccountFilter = None, as_json: JsonFlag = False) -> None:
    """List invoices and credit notes."""
    from renewly.billing.invoices import list_invoices
    rows = list_invoices(open_app(), account)
    if as_json:
        print_json(rows)
        return
    print_table("Invoices", ["number", "kind", "account", "issued", "period", "total", "status"],
                [[r["number"], r["kind"], r["account_id"], r["issue_date"],
                  f"{r['period_start']} – {r['period_end']}" if r["period_start"] else "",
                  money(r["total"], r["currency"], r["locale"]), r["status"]] for r in rows])


@invoices_app.command("show")
def invoices_show(number: InvoiceNumber, as_json: JsonFlag = False) -> None:
    """Show one invoice with its lines, as issued."""
    from renewly.billing.invoices import show_invoice
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


@invoices_app.command("resend")
def invoices_resend(account: AccountId, month: Annotated[str, typer.Option(help="YYYY-MM: the invoices issued then.")],
                    reason: Annotated[str, typer.Option(help="Why they are sent again, for the audit "
                                                             "log.")]) -> None:
    """Support: send the invoices of a month and year again to the billing contacts (R2.3)."""
    from renewly.billing.invoices import resend_invoices_of_month
    try:
        year, number = (int(part) for part in month.split("-"))
    except ValueError:
        raise InvalidInput(f"malformed --month {month!r}: expected YYYY-MM", code="malformed_month") from None
    sent = resend_invoices_of_month(open_app(), account, year=year, month=number, reason=reason, actor=actor())
    typer.echo(f"sent again: {', '.join(sent)}")


@invoices_app.command("credit")
def invoices_credit(number: InvoiceNumber,
                    reason: Annotated[str, typer.Option(help="Why: the credit note's line says it.")],
                    amount: Annotated[int | None, typer.Option(help="Before tax, minor units; default: "
                                                                         "all not yet credited.")] = None) -> None:
    """Correct an invoice with a credit note (an issued invoice is never edited)."""
    from renewly.billing.invoices import issue_credit_note
    typer.echo(issue_credit_note(open_app(), number, reason=reason, amount=amount, actor=actor()))


# -- cards and payments -------------------------------------------------------------------------

@cards_app.command("add")
def cards_add(account: AccountId,
              number: Annotated[str | None, typer.Option(
                  help="Simulated gateway only: the number its tokenizer takes, as a hosted card form would.")] = None,
              exp: Annotated[str | None, typer.Option(help="MM/YYYY")] = None,
              token: Annotated[str | None, typer.Option(help="A card token from the gateway's card form.")] = None,
              acting: Annotated[str, typer.Option("--as", help="Who is doing it: only the owner may.")] = ...,
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


@cards_app.command("show")
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


@payments_app.command("list")
def payments_list(account: AccountFilter = None, as_json: JsonFlag = False) -> None:
    """List payment attempts."""
    from renewly.payments.history import list_attempts
    rows = list_attempts(open_app(), account)
    if as_json:
        print_json(rows)
        return
    print_table("Payment attempts", ["invoice", "#", "amount", "status", "decline", "at"],
                [[r["invoice_number"], r["number"], money(r["amount"], r["currency"]), r["status"],
                  r["decline_code"] or "", r["created_at"]] for r in rows])


@gateway_app.command("fault")
def gateway_fault(kind: Annotated[str, typer.Argument(help="timeout_after, timeout_before, server_error or "
                                                            "decline")],
                  count: Annotated[int, typer.Option(min=1, help="How many operations.")] = 1,
                  code: Annotated[str, typer.Option(help="decline: the decline code.")] = "insufficient_funds",
                  account: Annotated[int | None, typer.Option(help="decline: only this account's charges.")] = None,
                  ) -> None:
    """Make the simulated gateway's next COUNT operations fail this way (decline: the next COUNT
    charges are declined, then cards behave as they would)."""
    from renewly.adapters.gateways.simulated import Fault
    application = open_app()
    try:
        fault = Fault(kind)
    except ValueError:
        raise InvalidInput(f"unknown fault {kind!r}: expected one of {', '.join(f.value for f in Fault)}",
                           code="unknown_fault") from None
    if fault is not Fault.DECLINE and (code != "insufficient_funds" or account is not None):
        raise InvalidInput(f"--code and --account go with the decline fault, not {fault.value}",
                           code="option_not_for_fault")
    script = getattr(application.gateway, "script", None)
    if script is None:
        raise InvalidInput("only the simulated gateway takes scripted faults", code="not_simulated")
    script(fault, count, decline_code=code, account_id=account)
    if fault is Fault.DECLINE:
        whose = f"account {account}'s" if account is not None else "any account's"
        typer.echo(f"the next {count} charge(s) of {whose}: declined ({code}), then as the card would")
    else:
        typer.echo(f"the next {count} gateway operation(s): {fault.value}")


# -- dunning, support, outbox -------------------------------------------------------------------

@app.command("dunning")
def dunning_command(as_of: AsOf = None, as_json: JsonFlag = False) -> None:
    """The dunning sweep: open cases for failed payments and take each step due, once (R8)."""
    from renewly.dunning.sweep import run_dunning
    run_one_batch(run_dunning, as_of, as_json)


@app.command("retention")
def retention_command(as_of: AsOf = None, as_json: JsonFlag = False) -> None:
    """The retention batch: delete accounts' personal data and invoices whose time is up (R10)."""
    from renewly.retention.deletion import purge_due
    run_one_batch(purge_due, as_of, as_json)


@app.command("preview")
def preview(account: AccountId, as_json: JsonFlag = False) -> None:
    """What the policy in force will do to this account on each coming day (R8.8)."""
    from renewly.dunning.preview import preview_account
    found = preview_account(open_app(), account)
    if as_json:
        print_json({"account_id": found.account_id, "policy_version": found.policy_version, "today": found.today,
                    "status": found.status, "cases": [{"about": about, "days": [
                        {"day": d.day, "date": d.date, "actions": list(d.actions)} for d in days]}
                        for about, days in found.cases]})
        return
    echo_wrapped(f"account {found.account_id} ({found.status}) under policy {found.policy_version}, today "
                 f"{found.today}")
    if not found.cases:
        typer.echo("  nothing is scheduled")
    for about, days in found.cases:
        echo_wrapped(f"  {about}:", indent=4)
        for day in days:
            echo_wrapped(f"    day {day.day:>3} {day.date}: {'; '.join(day.actions)}", indent=24)


@billing_app.command("show")
def billing_show(account: AccountId, acting: Annotated[str, typer.Option("--as", help="Who asks: only the owner may.")],
                 as_json: JsonFlag = False) -> None:
    """The owner's billing pages: subscription, invoices, card, buyer address, contacts (R1.1)."""
    from renewly.billing.overview import billing_overview
    found = billing_overview(open_app(), account, acting_email=acting)
    if as_json:
        print_json(found)
        return
    typer.echo(f"{found['name']} ({found['status']})")
    card = found["payment_method"]
    typer.echo(f"payment method: {card['brand']} •••• {card['last4']}" if card else "payment method: none")
    typer.echo("buyer: " + ", ".join(v for v in found["buyer"].values() if v))
    typer.echo("billing contacts: " + ", ".join(c["email"] for c in found["billing_contacts"]))
    for invoice in found["invoices"]:
        typer.echo(f"  {invoice['number']} {invoice['issue_date']} "
                   f"{money(invoice['total'], invoice['currency'], invoice['locale'])} {invoice['status']}")


@accounts_app.command("banner")
def accounts_banner(account: AccountId, member: Annotated[str, typer.Option(help="The member's e-mail.")],
                    as_json: JsonFlag = False) -> None:
    """Which banner this member sees now, in the account's language."""
    from renewly.dunning.reactivation import banner_for_member
    found = banner_for_member(open_app(), account, member)
    print_json(found) if as_json else echo_wrapped(f"{found['banner']}" + (f": {found['text']}" if found["text"]
                                                                            else ""))


@accounts_app.command("access")
def accounts_access(account: AccountId, acting: Annotated[str, typer.Option("--as", help="The member's e-mail.")],
                    billing: Annotated[bool, typer.Option("--billing", help="The billing pages.")] = False,
                    as_json: JsonFlag = False) -> None:
    """May this member use the dashboard (or the billing pages) now? Exit 2 with the reason if not."""
    from renewly.dunning.reactivation import require_access
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


@support_app.command("reactivate")
def support_reactivate(account: AccountId, reason: Annotated[str, typer.Option(help="Why, for the audit log.")],
                       days: Annotated[int | None, typer.Option(help="Default: the policy's window.")] = None,
                       ) -> None:
    """Grant a cancelled account a temporary reactivation: owner only, billing pages only (R9.2)."""
    from renewly.accounts.accounts import describe_account
    from renewly.dunning.reactivation import grant_reactivation, last_day
    application = open_app()
    ends_at = grant_reactivation(application, account, days=days, reason=reason, actor=actor())
    zone = describe_account(application, account)["timezone"]
    echo_wrapped(f"account {account}: the owner may use the billing pages until the end of "
                 f"{last_day(ends_at, zone)} ({zone}); the next payment batch retries the unpaid invoices once "
                 "the card is updated")


@outbox_app.command("list")
def outbox_list(account: AccountFilter = None,
                topic: Annotated[str | None, typer.Option(help="e.g. email")] = None, as_json: JsonFlag = False,
                ) -> None:
    """E-mails and events written by Renewly, oldest first."""
    from renewly.outbox.reading import list_outbox
    rows = list_outbox(open_app(), account_id=account, topic=topic)
    if as_json:
        print_json(rows)
        return
    print_table("Outbox", ["at", "account", "topic", "what"],
                [[r["created_at"], r["account_id"], r["topic"],
                  (f"{r['payload']['subject']} → {', '.join(r['payload']['recipients'])}" if r["topic"] == "email"
                   else json.dumps(r["payload"], default=_json_default))] for r in rows])


@policy_app.command("check")
def policy_check(path: Annotated[str, typer.Argument(help="A policy TOML file.")],
                 against: Annotated[bool, typer.Option(
                     "--against", help="Also list the open dunning cases of the configured database "
                                       "(RENEWLY_DATABASE_URL) that this policy would move, if it replaced the "
                                       "one in force. Reads only.")] = False,
                 as_json: JsonFlag = False) -> None:
    """Validate a dunning policy file without running anything (exit 0: valid)."""
    from pathlib import Path

    from renewly.config.policy import load_policy
    policy = load_policy(Path(path))
    steps = [{"name": s.name, "day": s.day} for s in policy.steps]
    if not against:
        if as_json:
            print_json({"file": path, "version": policy.version, "valid": True, "steps": steps})
            return
        echo_wrapped(f"{path}: policy {policy.version} is valid: " +
                     ", ".join(f"day {s.day} {s.name}" for s in policy.steps))
        return
    from renewly.dunning.policy_impact import policy_impact
    impact = policy_impact(bootstrap(upgrade=False), policy)
    if as_json:
        print_json({"file": path, "version": policy.version, "valid": True, "steps": steps,
                    "database": impact.database, "policy_in_force": impact.current.version,
                    "cases": [_case_impact_json(impact, found) for found in impact.moved],
                    "counts": impact.counts()})
        return
    echo_wrapped(f"{path}: policy {policy.version} is valid: " +
                 ", ".join(f"day {s.day} {s.name}" for s in policy.steps))
    echo_wrapped(f"against {impact.database} (policy in force: {impact.current.version}):")
    for found in impact.moved:
        for number, line in enumerate(_case_impact_lines(impact, found)):
            echo_wrapped(("  " if number == 0 else "      ") + line, indent=8)
    counts = impact.counts()
    echo_wrapped(f"{counts['open_cases']} open case(s); {counts['would_move']} would move: "
                 f"{counts['last_step_gone']} whose last step is gone, {counts['steps_due_at_once']} with a step "
                 f"due at the next sweep, {counts['cancellation_moved']} whose cancellation moves "
                 f"({counts['cancelled_at_once']} cancelled at the next sweep), {counts['notices_dropped']} "
                 f"waiting notice(s) no longer given")


def _schedule(steps, today) -> str:
    return ", ".join(f"{name} {'at the next sweep' if day <= today else f'on {day}'}" for name, day in steps) \
        or "no step left"


def _case_impact_lines(impact, found) -> list[str]:
    move = found.move
    lines = [f"case {found.case_id}, account {found.account_id}: after "
             f"{found.last_step or 'no step yet'}" +
             (f"; that step is gone: now after {move.after or 'no step'}" if move.last_step_gone else "")]
    if move.notice_dropped:
        lines.append("its waiting notice names a step that is gone: not given")
    if move.was != move.now:
        lines.append(f"new: {_schedule(move.now, move.today)}")
        lines.append(f"was: {_schedule(move.was, move.today)}")
    was, now = impact.cancellations(move)
    if was != now:
        lines.append(f"cancellation: {now or 'none'} (was {was or 'none'})")
    return lines


def _case_impact_json(impact, found) -> dict[str, Any]:
    move = found.move
    was, now = impact.cancellations(move)
    return {"case_id": found.case_id, "account_id": found.account_id, "last_step": found.last_step,
            "last_step_gone": move.last_step_gone, "after": move.after, "today": move.today,
            "waiting_notice_dropped": move.notice_dropped,
            "was": [{"step": name, "date": day} for name, day in move.was],
            "now": [{"step": name, "date": day} for name, day in move.now],
            "due_at_once": list(move.due_at_once), "cancellation_was": was, "cancellation_now": now}


@policy_app.command("show")
def policy_show(as_json: JsonFlag = False) -> None:
    """The policy in force: its version and steps."""
    from renewly.config.policy import load_policy, policy_path
    from renewly.dunning.rules.schedule import describe_step
    policy = load_policy()
    if as_json:
        print_json({"file": str(policy_path()), "version": policy.version,
                    "steps": [{"name": s.name, "day": s.day, "charge": s.charge, "email": s.email,
                               "banner": s.banner.value, "cancel": s.cancel} for s in policy.steps],
                    "reactivation_days": policy.reactivation_days, "deletion_days": policy.deletion_days,
                    "invoice_retention_years": policy.invoice_retention_years,
                    "verification_void_delay_days": policy.verification_void_delay_days,
                    "minimum_warning_days": policy.minimum_warning_days})
        return
    echo_wrapped(f"policy {policy.version} ({policy_path()})")
    for step in policy.steps:
        echo_wrapped(f"  day {step.day:>3} {step.name}: {'; '.join(describe_step(step))}", indent=10)
    echo_wrapped(f"  reactivation window {policy.reactivation_days} days; deletion {policy.deletion_days} days after "
                 f"cancellation; invoices kept {policy.invoice_retention_years} years; card checks voided after "
                 f"{policy.verification_void_delay_days} days; the warning at least "
                 f"{policy.minimum_warning_days} days before the cancellation")


# -- problems -----------------------------------------------------------------------------------

@problems_app.command("list")
def problems_list(all_of_them: Annotated[bool, typer.Option("--all", help="Resolved ones too.")] = False,
                  as_json: JsonFlag = False) -> None:
    """What the batches left aside, with the reason: each is skipped until it is resolved."""
    from renewly.batches.parking import list_problems
    rows = list_problems(open_app(), include_resolved=all_of_them)
    if as_json:
        print_json(rows)
        return
    if not rows:
        typer.echo("no problem: the batches processed every row")
    for row in rows:
        state = f"resolved {row['resolved_at']:%Y-%m-%d}" if row["resolved_at"] else "open"
        echo_wrapped(f"#{row['id']} {row['batch']}: {row['subject']} {row['subject_id']} (account "
                     f"{row['account_id']}), parked {row['parked_at']:%Y-%m-%d %H:%M} UTC, {state}: {row['reason']}")


@problems_app.command("resolve")
def problems_resolve(problem: Annotated[int, typer.Argument(help="The problem's id.")],
                     reason: Annotated[str, typer.Option(help="What was mended.")]) -> None:
    """Put a parked row back once mended: the next run takes it again (and parks it again if it still fails)."""
    from renewly.batches.parking import resolve
    if not reason.strip():
        raise InvalidInput("say what was mended with --reason", code="reason_required")
    row = resolve(open_app(), problem, actor=actor(), note=reason.strip())
    typer.echo(f"#{problem}: {row['subject']} {row['subject_id']} goes back to the {row['batch']} batch")


# -- demo ---------------------------------------------------------------------------------------

@app.command("demo")
def demo(database: Annotated[str, typer.Option(help="SQLite file: created, or replaced if an earlier demo "
                                                   "made it (any other file is refused).")] = "renewly-demo.db",
         as_json: JsonFlag = False) -> None:
    """The main job: the whole dunning story, 130 days on a test clock, on a fresh SQLite database."""
    from renewly.demo import run_demo
    run_demo(database, as_json=as_json, console=console)


def main() -> None:
    configure_command_line_logs()  # stderr, plain or JSON as the settings say
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
    except (SQLAlchemyError, OSError) as error:  # the database or a file, not the request: nothing was changed
        _fail(infrastructure_trouble(error))
    except OverflowError:  # a number SQLite cannot hold (PostgreSQL says so as a database error)
        _fail("a number is larger than the database holds (at most 9223372036854775807)")
    except KeyboardInterrupt:  # Ctrl-C outside a command (Typer makes it exit 130 inside one)
        stopped_at_once()
    if STOPPED_AT_ONCE.is_set():  # the second Ctrl-C during a batch
        stopped_at_once()
    sys.exit(exit_code if isinstance(exit_code, int) else 0)


def stopped_at_once() -> None:
    """Exit 130 now, without waiting for the threads still at the gateway: the transaction in
    hand was rolled back; charges asked in it stay pending until their lease ends, then the next
    payment batch settles them (`renewly reconcile` lists them meanwhile)."""
    sys.stdout.flush()
    sys.stderr.write("interrupted: stopped at once; charges in flight stay pending until their\n"
                     "lease ends, then the next payment batch settles them (renewly reconcile)\n")
    sys.stderr.flush()
    os._exit(130)


def infrastructure_trouble(error: BaseException) -> str:
    """One line on what the database or the file system said (each transaction was rolled back)."""
    if isinstance(error, ArgumentError):
        return f"the database URL cannot be read ({error}); see docs/configuration.md"
    if isinstance(error, (OperationalError, InterfaceError)):
        said = str(error.orig or error).strip().splitlines()[0] if getattr(error, "orig", None) else str(error)
        return f"the database cannot be used: {said}"
    if isinstance(error, DBAPIError):
        return f"the database refused: {str(error.orig).strip().splitlines()[0]}"
    if isinstance(error, OSError):
        return f"{error.strerror or error}: {error.filename}" if error.filename else str(error)
    return f"the database failed: {str(error).splitlines()[0]}"


def _fail(message: str) -> None:
    sys.stderr.write(f"error: {' '.join(message.split())}\n")
    sys.exit(2)
