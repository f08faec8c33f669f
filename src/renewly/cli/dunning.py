"""`renewly dunning`: the dunning sweep, once (R8); and `renewly dunning recovery`, how much of
what dunning chased was recovered, week by week (docs/dunning.md, "The recovery report")."""

from __future__ import annotations

from typing import Annotated

import typer

from renewly.cli.batches import run_one_batch
from renewly.cli.common import AsOf, JsonFlag, echo_wrapped, money, open_app, print_json, print_table

# Its help is the callback's: `renewly dunning` runs the sweep, `renewly dunning recovery` reads.
app = typer.Typer(invoke_without_command=True)


@app.callback(invoke_without_command=True)
def dunning_command(context: typer.Context, as_of: AsOf = None, as_json: JsonFlag = False) -> None:
    """The dunning sweep: open cases for failed payments and take each step due, once (R8)."""
    if context.invoked_subcommand is not None:
        if as_of is not None or as_json:
            raise typer.BadParameter(f"--as-of and --json before `{context.invoked_subcommand}` are the sweep's: "
                                     f"give its own options after it")
        return
    from renewly.dunning.sweep import run_dunning
    run_one_batch(run_dunning, as_of, as_json)


# The rules' DEFAULT_WEEKS and MAX_WEEKS, written out: every command imports this module at start,
# and the rules' module is not light (tests/cli/test_dunning.py checks they agree).
Weeks = Annotated[int, typer.Option("--weeks", help="How many ISO weeks, this one included (1 to 104).")]


@app.command("recovery")
def recovery(weeks: Weeks = 12, as_json: JsonFlag = False) -> None:
    """Failed payments recovered per week and currency: amounts, share, days to recover, cancellations."""
    from renewly.dunning.recovery_report import recovery_report_of, report_as_json
    from renewly.dunning.rules.recovery_report import share_in_words
    application = open_app()
    report = recovery_report_of(application, weeks)
    timezone = application.settings.seller.timezone
    if as_json:
        print_json(report_as_json(report, timezone))
        return
    echo_wrapped(f"Recovery of failed payments, {report.first_day} to {report.last_day} (ISO weeks up to "
                 f"today's in {timezone}, each row on its account's local day): each invoice in the week it "
                 "entered dunning, each case in the week it opened, each cancellation in its own week.")
    if not report.currencies:
        echo_wrapped("No payment entered dunning and no account was cancelled in these weeks.")
        return
    for each in report.currencies:
        rows = [[label, money(figures.failed, each.currency), money(figures.recovered, each.currency),
                 share_in_words(figures.share_recovered, "en"), f"{figures.cases_recovered}/{figures.cases_opened}",
                 _days(figures.median_days_to_recover), _days(figures.p90_days_to_recover),
                 figures.accounts_cancelled]
                for label, figures in [*((week.week.label, week.figures) for week in each.weeks),
                                       ("total", each.total)]]
        typer.echo("")
        print_table(each.currency, ["week", "failed", "recovered", "share", "cases", "days p50", "days p90",
                                    "cancelled"], rows, whole=["week"])


def _days(days: int | None) -> str:
    return "–" if days is None else str(days)
