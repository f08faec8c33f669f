"""Progress bars for long work (`clock advance`, `run`, the demo, `import`), on stderr.

A bar shows only when stderr is a terminal and the output is not JSON, so pipes, scripts and
tests see exactly what they would without it; it is transient: once the work is done it is
erased and the command prints its summary as it always did. RENEWLY_PROGRESS=always draws it
even on a pipe (what the tests use), =never hides it on a terminal. The batches only tell where
they are (`on_progress` callbacks of renewly.scheduler); Rich lives here, imported when
a bar is drawn.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

    from renewly.scheduler import Step

SECONDS_PER_DAY = 86400


def wanted(*, as_json: bool = False) -> bool:
    """Whether to draw a bar: never under --json; RENEWLY_PROGRESS=always|never, else a terminal."""
    if as_json:
        return False
    setting = os.environ.get("RENEWLY_PROGRESS", "auto").strip().lower()
    if setting in ("always", "never"):
        return setting == "always"
    return sys.stderr.isatty()


@contextmanager
def bar(what: str, total: float | None, *, as_json: bool = False, unit: str = "",
        console: Console | None = None) -> Iterator[Callable[..., None] | None]:
    """A bar on stderr while the block runs, 80 columns at most: yields
    `update(completed=, total=, doing=, what=)`, or None when no bar is wanted. `unit` follows
    the count ("5000/5000 accounts"); `console`: where to draw instead of stderr (tests), drawn
    when it is a terminal."""
    if console is None:
        if not wanted(as_json=as_json):
            yield None
            return
        from rich.console import Console
        forced = os.environ.get("RENEWLY_PROGRESS", "").strip().lower() == "always"
        console = Console(stderr=True, force_terminal=True if forced else None)
    elif as_json or not console.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console.width = min(console.width, 80)
    columns: list[Any] = [TextColumn("{task.description}"), BarColumn(bar_width=24)]
    if total is not None or unit:
        columns.append(MofNCompleteColumn())
    if unit:
        columns.append(TextColumn(unit))
    columns += [TextColumn("{task.fields[doing]}"), TimeElapsedColumn()]
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(what, total=total, doing="")

        def update(*, completed: float | None = None, total: float | None = None, doing: str | None = None,
                   what: str | None = None) -> None:
            fields: dict[str, Any] = {}
            if doing is not None:
                fields["doing"] = doing
            progress.update(task, completed=completed, total=total, description=what, refresh=True, **fields)

        yield update
        done = progress.tasks[0].total
        if done is not None:
            progress.update(task, completed=done)


def days_of_an_advance(update: Callable[..., None]) -> Callable[[Step], None]:
    """The `on_progress` of an advance: the bar over its days, the batch and tick in hand."""
    def on_progress(step: Step) -> None:
        if step.start is None or step.target is None:
            return
        update(total=max(1, round((step.target - step.start).total_seconds() / SECONDS_PER_DAY)),
               completed=int((step.at - step.start).total_seconds() // SECONDS_PER_DAY),
               doing=f"{step.batch} at {step.at:%Y-%m-%d %H:%M}")
    return on_progress


def batches_of_a_run(update: Callable[..., None]) -> Callable[[Step], None]:
    """The `on_progress` of `renewly run`: the batch in hand and how many have run (the billing
    chain runs again while one of its batches made work for another, so no total is known)."""
    begun = 0

    def on_progress(step: Step) -> None:
        nonlocal begun
        begun += 1
        update(doing=f"{step.batch} (batch run {begun})")
    return on_progress
