"""`renewly GROUP ...` is parsed with the root and that group alone (Typer builds every command of
the application it is given before parsing: a sixth of a simple read's start); it must answer
exactly as the whole command line does: help, usage errors, options."""

from __future__ import annotations

import io
from contextlib import redirect_stderr, redirect_stdout

import pytest
import typer.main

from renewly.cli.root import GROUPS, app, command_line, for_the_arguments


def answer(command, arguments: list[str]) -> tuple:
    """What the parsed command line says to these arguments, without running any command: its
    output, and what it returned or raised (main() turns a usage error into one line)."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        try:
            outcome = ("returned", command.main(args=arguments, prog_name="renewly", standalone_mode=False))
        except Exception as error:
            said = error.format_message() if hasattr(error, "format_message") else str(error)
            outcome = ("raised", type(error).__name__, said)
    return outcome, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def whole():
    return typer.main.get_command(app)


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_a_group_alone_under_the_root_answers_as_the_whole_command_line(group, whole):
    alone = typer.main.get_command(command_line(group))
    commands = sorted(whole.commands[group].commands)
    asked = [[group], [group, "--help"], [group, "no-such-command"], [group, "--no-such-option"]]
    asked += [[group, name, option] for name in commands for option in ("--help", "--no-such-option")]

    for arguments in asked:
        assert answer(alone, arguments) == answer(whole, arguments), arguments


def test_only_a_group_s_name_first_takes_the_group_alone():
    assert for_the_arguments(["clock", "show"]).registered_groups[0].name == "clock"
    assert len(for_the_arguments(["clock", "show"]).registered_groups) == 1
    for arguments in ([], ["--help"], ["--version"], ["run"], ["clokc", "show"], ["--json", "clock"]):
        assert for_the_arguments(arguments) is app, arguments
