"""`renewly clock ...`: the test clock, and moving it forward with the batches due on the way."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Annotated

import typer

from renewly.cli.batches import exit_if_anything_was_left, run_json, say_stopped
from renewly.cli.common import JsonFlag, echo_wrapped, group, open_app, parse_date, print_json, stopping_on_ctrl_c

app = group("The test clock.")

def days_to_the_clocks_end() -> int:
    """No advance can go further than from the earliest day the test clock starts on (1970) to its end."""
    from renewly.adapters.clock import LATEST_TEST_CLOCK
    return (LATEST_TEST_CLOCK - datetime(1970, 1, 1, tzinfo=UTC)).days


@app.command("show")
def clock_show(as_json: JsonFlag = False) -> None:
    """Print the clock's time."""
    application = open_app()
    now = application.clock.now()
    kind = "test" if application.test_clock else "system"
    if as_json:
        print_json({"clock": kind, "now": now})
    else:
        typer.echo(f"{kind} clock: {now.isoformat()}")


@app.command("set")
def clock_set(day: Annotated[str, typer.Argument(help="YYYY-MM-DD: the new time is that day's midnight, UTC.")],
              ) -> None:
    """Start the test clock on a day of your choice (forward only)."""
    from renewly.adapters.clock import LATEST_TEST_CLOCK
    from renewly.shared.errors import InvalidInput
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


@app.command("advance")
def clock_advance(days: Annotated[int, typer.Option("--days", help="How many days to move forward.")] = 0,
                  hours: Annotated[int, typer.Option("--hours", help="And this many hours.")] = 0,
                  batches: Annotated[bool, typer.Option("--batches/--no-batches",
                                                        help="Run the batches due on the way (default), or let "
                                                             "time pass as if Renewly were down.")] = True,
                  as_json: JsonFlag = False) -> None:
    """Move the test clock forward, running every batch that falls due on the way, in order.
    Advances at once take turns, each from where the one before it left the clock."""
    from renewly.adapters.clock import LATEST_TEST_CLOCK
    from renewly.scheduler import advance
    from renewly.shared.errors import InvalidInput
    if days < 0 or hours < 0:
        raise InvalidInput("the test clock only moves forward", code="clock_backwards")
    if days > days_to_the_clocks_end() or hours > 24 * days_to_the_clocks_end():
        raise InvalidInput(f"the test clock stops at {LATEST_TEST_CLOCK.isoformat()}", code="clock_too_far")
    # The longest advance (scheduler.MOST_DAYS_PER_ADVANCE) is refused by `advance`, before any work.
    from renewly.cli.progress import bar, days_of_an_advance
    application = open_app()
    with (bar("days", max(1, days), as_json=as_json) as update,
          stopping_on_ctrl_c(application, say=update and (lambda said: update(what=said)))):
        moved = advance(application, timedelta(days=days, hours=hours), run_batches=batches,
                        on_progress=update and days_of_an_advance(update))
    runs, now = moved.runs, moved.now  # this move's end: another one may have moved the clock since
    if as_json:
        print_json({"now": now, "target": moved.target, "stopped": moved.stopped,
                    "runs": [run_json(run) for run in runs]})
    else:
        for run in runs:
            # A tick runs every batch; those that found nothing to do stay quiet.
            if run.report.did_anything or run.report.left_undone:
                echo_wrapped(f"{run.at.isoformat()}  {run.batch}: {run.report.describe()}")
        ticks = len({run.at for run in runs})
        typer.echo(f"test clock: {now.isoformat()}" + (f" ({ticks} tick(s) ran)" if batches else
                                                       " (no batches ran)"))
    if application.stop.asked:
        exit_if_anything_was_left([run.report for run in runs], say=not as_json, then_exit=False)
        say_stopped(application, now, as_json=as_json,
                    where=f" short of {moved.target.isoformat()}" if moved.stopped else "")
    exit_if_anything_was_left([run.report for run in runs], say=not as_json)
