"""`renewly run`, `renew`, `collect`, `retention`, `reconcile`: the batches, once, as of
now or earlier, and their reports (`renewly dunning`, the sweep: cli/dunning.py). Each report says
itself (renewly.batches.reports)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import typer

from renewly.cli.common import (
    AsOf,
    JsonFlag,
    echo_wrapped,
    money,
    open_app,
    parse_as_of,
    print_json,
    stopping_on_ctrl_c,
)

if TYPE_CHECKING:
    from renewly.batches.reports import BatchReport
    from renewly.bootstrap import App
    from renewly.scheduler import BatchRun

app = typer.Typer()  # its commands are the root's: `renewly run`, not `renewly batches run`


def run_json(run: BatchRun) -> dict[str, Any]:
    return {"batch": run.batch, "at": run.at, "report": run.report.as_json()}


def say_stopped(application: App, as_of: datetime, *, as_json: bool, where: str = "") -> None:
    """After the first Ctrl-C: one line on what was left (on stderr under --json, which keeps
    stdout the report), then exit 130."""
    from renewly.scheduler import still_due
    left = still_due(application, as_of)
    line = (f"interrupted{where}: stopped after the slice in hand; "
            + (f"still due: {', '.join(left)} (`renewly run` does the rest)" if left else "nothing was left"))
    echo_wrapped(line, err=as_json)
    raise typer.Exit(130)


def exit_if_anything_was_left(reports: list[BatchReport], *, say: bool = True, then_exit: bool = True) -> None:
    """Exit 1 (saying so, unless the output is JSON) when a batch failed or parked rows: the
    rest was done. `then_exit=False`: only say it (a stopped batch exits 130 after)."""
    from renewly.batches.reports import BatchFailed
    failed = sum(1 for report in reports if isinstance(report, BatchFailed))
    parked = sum(report.parked for report in reports)
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
    print_json(report.as_json()) if as_json else echo_wrapped(report.describe())
    if application.stop.asked:
        exit_if_anything_was_left([report], say=not as_json, then_exit=False)
        say_stopped(application, instant, as_json=as_json)
    exit_if_anything_was_left([report], say=not as_json)


@app.command("run")
def run(as_of: AsOf = None, as_json: JsonFlag = False) -> None:
    """Do everything due: renewals, their charges, dunning and what it asks, voids, deletions."""
    from renewly.cli.progress import bar, batches_of_a_run
    from renewly.scheduler import run_all
    application = open_app(issues_invoices=True)  # renewals
    instant = parse_as_of(as_of, application)
    with (bar("batches", None, as_json=as_json) as update,
          stopping_on_ctrl_c(application, say=update and (lambda said: update(what=said)))):
        runs = run_all(application, instant, on_progress=update and batches_of_a_run(update))
    if as_json:
        print_json([run_json(r) for r in runs])
    else:
        for r in runs:
            echo_wrapped(f"{r.batch}: {r.report.describe()}")
    if application.stop.asked:
        exit_if_anything_was_left([r.report for r in runs], say=not as_json, then_exit=False)
        say_stopped(application, instant, as_json=as_json)
    exit_if_anything_was_left([r.report for r in runs], say=not as_json)


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
    from renewly.adapters.clock import wall_clock
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


@app.command("retention")
def retention_command(as_of: AsOf = None, as_json: JsonFlag = False) -> None:
    """The retention batch: delete accounts' personal data and invoices whose time is up (R10)."""
    from renewly.retention.deletion import purge_due
    run_one_batch(purge_due, as_of, as_json)
