"""`renewly import FILE`: customers from another system, in bulk (docs/import.md). The whole
file is checked before anything is written (renewly.onboarding); its problems are listed with
their lines, then one line on stderr and exit 2."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from renewly.cli.common import JsonFlag, actor, echo_wrapped, open_app, print_json, stopping_on_ctrl_c
from renewly.shared.errors import InvalidInput

if TYPE_CHECKING:
    from rich.console import Console

    from renewly.onboarding.importing import ImportReport

app = typer.Typer()  # `renewly import`, a command of the root

# Problems printed before "... and N more" (--json lists them all).
PROBLEMS_SHOWN = 20


@app.command("import")
def import_command(file: Annotated[str, typer.Argument(help="A CSV or JSON lines file of accounts, one per line "
                                                            "(docs/import.md).")],
                   file_format: Annotated[str | None, typer.Option(
                       "--format", help="csv or jsonl; default: the file's extension (.csv, .jsonl).")] = None,
                   dry_run: Annotated[bool, typer.Option("--dry-run", help="Check the whole file and say what "
                                                                           "would be written; write nothing.")] = False,
                   as_json: JsonFlag = False) -> None:
    """Import accounts with their members, subscriptions and gateway card tokens, the whole file
    checked before anything is written; a second run skips the accounts already imported."""
    from renewly.onboarding.importing import import_file
    application = open_app()
    with import_progress(as_json=as_json) as on_slice, stopping_on_ctrl_c(application):
        report = import_file(application, file, fmt=file_format, dry_run=dry_run, actor=actor(), on_slice=on_slice)
    if as_json:
        print_json({"file": report.file, "format": report.format, "dry_run": report.dry_run,
                    "accounts": report.accounts, "members": report.members,
                    "subscriptions": report.subscriptions, "cards": report.cards, "skipped": report.skipped,
                    "problem_count": len(report.problems),
                    "problems": [{"line": problem.line, "field": problem.field, "reason": problem.reason}
                                 for problem in report.problems],
                    # only when a Ctrl-C stopped it: how many accounts were written by then
                    **({"stopped_after": report.stopped_after} if report.stopped_after is not None else {})})
    else:
        for problem in report.problems[:PROBLEMS_SHOWN]:
            echo_wrapped(f"line {problem.line}, {problem.field}: {shortened(problem.reason)}")
        if len(report.problems) > PROBLEMS_SHOWN:
            typer.echo(f"... and {len(report.problems) - PROBLEMS_SHOWN} more problem(s) (--json lists them all)")
        if not report.refused and report.stopped_after is None:
            echo_wrapped(describe_import(report))
    if report.stopped_after is not None:
        echo_wrapped(f"interrupted: stopped after the slice in hand; {report.stopped_after} of {report.accounts} "
                     f"account(s) written; run the same import again to write the rest (it skips those written)",
                     err=as_json)
        raise typer.Exit(130)
    if report.refused:
        raise InvalidInput(f"{len(report.problems)} problem(s) in {report.file}: nothing was written",
                           code="import_refused")


def describe_import(report: ImportReport) -> str:
    counts = (f"{report.accounts} account(s), {report.members} member(s) besides their owners, "
              f"{report.subscriptions} subscription(s), {report.cards} card(s)")
    skipped = f"; {report.skipped} already imported, skipped" if report.skipped else ""
    if report.dry_run:
        return f"{report.file} checked: it would import {counts}{skipped}. Nothing was written (--dry-run)."
    return f"imported from {report.file}: {counts}{skipped}"


def shortened(text: str, most: int = 200) -> str:
    """A reason quoting a long value (a whole line pasted in a cell) stays a few lines."""
    return text if len(text) <= most else text[:most - 1] + "…"


@contextmanager
def import_progress(stderr: Console | None = None, *, as_json: bool = False,
                    ) -> Iterator[Callable[[int, int], None] | None]:
    """A progress bar of the accounts written (cli.progress: on stderr when it is a terminal and
    the output is not JSON, never in the way of stdout's report, 80 columns at most); None elsewhere."""
    from renewly.cli.progress import bar
    with bar("checking", None, unit="accounts", as_json=as_json, console=stderr) as update:
        yield update and (lambda done, total: update(completed=done, total=total, what="writing "))
