"""`renewly demo`: the whole dunning story on a fresh SQLite database (renewly.demo tells it)."""

from __future__ import annotations

from typing import Annotated

import typer

from renewly.cli.common import JsonFlag, console

app = typer.Typer()  # `renewly demo`, a command of the root


@app.command("demo")
def demo(database: Annotated[str, typer.Option(help="SQLite file: created, or replaced if an earlier demo "
                                                   "made it (any other file is refused).")] = "renewly-demo.db",
         as_json: JsonFlag = False) -> None:
    """The main job: the whole dunning story, 130 days on a test clock, on a fresh SQLite database."""
    from renewly.adapters.logs import configure_command_line_logs
    from renewly.cli.progress import bar
    from renewly.demo import DAYS, run_demo
    configure_command_line_logs()
    with bar("demo, days", DAYS, as_json=as_json) as update:
        run_demo(database, as_json=as_json, console=console(),
                 on_day=update and (lambda day, days: update(completed=day, total=days)))
