"""The root of the command line: every group under `renewly`, and `main`, the console script.

Every bad request ends as one line on stderr and exit 2 (`main`); a batch that left rows undone
exits 1; Ctrl-C exits 130. Nothing heavy is imported here: each command imports what it uses.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from typer.exceptions import TyperException

from renewly.cli import (
    accounts,
    apikeys,
    batches,
    billing,
    cards,
    clock,
    contacts,
    db,
    demo,
    dunning,
    gateway,
    importing,
    invoices,
    mail,
    outbox,
    payments,
    plans,
    policy,
    portal,
    problems,
    serve,
    staff,
    subscriptions,
    support,
    webhooks,
    worker,
)
from renewly.cli.common import STOPPED_AT_ONCE, stopped_at_once

# The groups, by the name the operator types, in the order `--help` lists them; the commands of
# the root (`renewly run`, ...) come before them.
GROUPS = {"db": db.app, "clock": clock.app, "worker": worker.app, "plans": plans.app, "accounts": accounts.app,
          "members": accounts.members_app, "subscriptions": subscriptions.app, "invoices": invoices.app,
          "cards": cards.app, "payments": payments.app, "gateway": gateway.app, "support": support.app,
          "outbox": outbox.app, "mail": mail.app, "webhooks": webhooks.app, "policy": policy.app,
          "dunning": dunning.app, "billing": billing.app, "problems": problems.app, "contacts": contacts.app,
          "apikeys": apikeys.app, "portal": portal.app, "staff": staff.app}
ROOT_COMMANDS = (batches.app, policy.preview_app, importing.app, demo.app, serve.app)


def _print_version(asked: bool) -> None:
    if asked:
        from importlib.metadata import version
        typer.echo(f"renewly {version('renewly')}")
        raise typer.Exit()


def _options(version: Annotated[bool, typer.Option("--version", callback=_print_version, is_eager=True,
                                                   help="Print Renewly's version and exit.")] = False) -> None:
    """Renewly: subscription billing, invoicing and dunning."""


def command_line(group: str | None = None) -> typer.Typer:
    """The whole command line; or, given a group's name, the root with that group alone (see `main`)."""
    root = typer.Typer(help="Renewly: subscription billing, invoicing and dunning.", no_args_is_help=True,
                       pretty_exceptions_enable=False, rich_markup_mode=None, add_completion=False)
    root.callback()(_options)
    if group is None:
        for commands in ROOT_COMMANDS:
            root.add_typer(commands)
    for name, commands in GROUPS.items():
        if group in (None, name):
            root.add_typer(commands, name=name)
    return root


app = command_line()


def for_the_arguments(arguments: list[str]) -> typer.Typer:
    """What to parse these arguments with. Typer builds every command of an application, its
    parameters read from the annotations, before it parses anything: for the hundred commands
    here that was a sixth of a simple read's start. `renewly GROUP ...` needs the root (its
    options, its name in the usage line) and that group only, and is parsed, answered and refused
    the same by both; anything else (the root's help, its own commands, a mistyped group, a root
    option first) gets the whole command line."""
    return command_line(arguments[0]) if arguments and arguments[0] in GROUPS else app


def main() -> None:
    try:
        exit_code = for_the_arguments(sys.argv[1:])(standalone_mode=False)
    except typer.Abort:
        _fail("aborted")
    except TyperException as error:
        if _asks_for_help(error):  # `renewly` or `renewly GROUP` alone: its help, exit 0
            sys.stdout.write(error.format_message() + "\n")
            exit_code = 0
        else:  # usage errors: unknown option, not an integer, missing argument, ...
            _fail(error.format_message())
    except KeyboardInterrupt:  # Ctrl-C outside a command (Typer makes it exit 130 inside one)
        stopped_at_once()
    except Exception as error:
        said = explain(error)
        if said is None:
            raise
        _fail(said)
    if STOPPED_AT_ONCE.is_set():  # the second Ctrl-C during a batch
        stopped_at_once()
    sys.exit(exit_code if isinstance(exit_code, int) else 0)


def _asks_for_help(error: TyperException) -> bool:
    """A group called without a command (`no_args_is_help`): Typer raises its NoArgsIsHelpError,
    whose message is the group's help. Told by its name, as Typer itself does (rich_utils), since
    the class lives in a private module."""
    return type(error).__name__ == "NoArgsIsHelpError"


def explain(error: Exception) -> str | None:
    """One line for what went wrong outside the request's control, or None for a bug (its traceback
    stays). Imports SQLAlchemy only here: by then a command has loaded it if it could raise it."""
    from renewly.shared.errors import BillingError
    if isinstance(error, BillingError):
        return error.message
    if "sqlalchemy" in sys.modules:
        from sqlalchemy.exc import SQLAlchemyError
        if isinstance(error, SQLAlchemyError):  # the database, not the request: nothing was changed
            return infrastructure_trouble(error)
    if isinstance(error, OSError):  # a file
        return infrastructure_trouble(error)
    if isinstance(error, OverflowError):  # a number SQLite cannot hold (PostgreSQL says so as a database error)
        return "a number is larger than the database holds (at most 9223372036854775807)"
    return None


def infrastructure_trouble(error: BaseException) -> str:
    """One line on what the database or the file system said (each transaction was rolled back)."""
    if isinstance(error, OSError):
        return f"{error.strerror or error}: {error.filename}" if error.filename else str(error)
    from sqlalchemy.exc import ArgumentError, DBAPIError, InterfaceError, OperationalError
    if isinstance(error, ArgumentError):
        return f"the database URL cannot be read ({error}); see docs/configuration.md"
    if isinstance(error, (OperationalError, InterfaceError)):
        said = str(error.orig or error).strip().splitlines()[0] if getattr(error, "orig", None) else str(error)
        return f"the database cannot be used: {said}"
    if isinstance(error, DBAPIError):
        return f"the database refused: {str(error.orig).strip().splitlines()[0]}"
    return f"the database failed: {str(error).splitlines()[0]}"


def _fail(message: str) -> None:
    sys.stderr.write(f"error: {' '.join(message.split())}\n")
    sys.exit(2)
