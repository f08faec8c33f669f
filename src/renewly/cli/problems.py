"""`renewly problems ...`: rows the batches left aside, and putting them back."""

from __future__ import annotations

from typing import Annotated

import typer

from renewly.cli.common import (
    JsonFlag,
    actor,
    echo_wrapped,
    group,
    open_app,
    print_json,
)
from renewly.shared.errors import InvalidInput

app = group("Rows the batches could not process, left aside with the reason.")


@app.command("list")
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


@app.command("resolve")
def problems_resolve(problem: Annotated[int, typer.Argument(help="The problem's id.")],
                     reason: Annotated[str, typer.Option(help="What was mended.")]) -> None:
    """Put a parked row back once mended: the next run takes it again (and parks it again if it still fails)."""
    from renewly.batches.parking import resolve
    if not reason.strip():
        raise InvalidInput("say what was mended with --reason", code="reason_required")
    row = resolve(open_app(), problem, actor=actor(), note=reason.strip())
    typer.echo(f"#{problem}: {row['subject']} {row['subject_id']} goes back to the {row['batch']} batch")
