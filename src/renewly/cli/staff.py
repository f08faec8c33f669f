"""`renewly staff ...`: the support console's staff accounts (docs/console.md).

A password is never an argument (it would stay in the shell's history and in `ps`): it is typed
at a hidden prompt, twice, or read as the first line of standard input with `--password-stdin`.
"""

from __future__ import annotations

import sys
from typing import Annotated, Any

import typer

from renewly.cli.common import JsonFlag, actor, group, open_app, print_json, print_table, utc_minute

app = group("The support console's staff: who may sign in to /console, and their role.")

PasswordStdin = Annotated[bool, typer.Option("--password-stdin", help="Read the password from the first line of "
                                                                      "standard input instead of a hidden prompt.")]


@app.command("create")
def staff_create(email: Annotated[str, typer.Argument(help="Their e-mail address: what they sign in with.")],
                 name: Annotated[str, typer.Option("--name", help="Their name, as the pages and the audit show it.")],
                 role: Annotated[str, typer.Option("--role", help="support (reads and acts) or finance (reads).")],
                 password_stdin: PasswordStdin = False,
                 as_json: JsonFlag = False) -> None:
    """Make a staff account; its password (12 characters or more) is hashed with Argon2id."""
    from renewly.console.rules.staff import validate_name, validate_role
    from renewly.console.staff import create_staff
    validate_name(name), validate_role(role)  # refused before the password is asked
    password = _password(password_stdin)
    made = create_staff(open_app(), email=email, name=name, role=role, password=password, actor=actor())
    if as_json:
        print_json({"id": made.id, "email": made.email, "name": made.name, "role": made.role.value})
        return
    typer.echo(f"staff {made.id}: {made.name} <{made.email}>, {made.role.value}; they sign in at /console")


@app.command("list")
def staff_list(as_json: JsonFlag = False) -> None:
    """Every staff account, disabled ones included."""
    from renewly.console.staff import list_staff
    rows = list_staff(open_app())
    if as_json:
        print_json(rows)
        return
    print_table("Staff", ["id", "email", "name", "role", "created (UTC)", "disabled (UTC)"],
                [[row["id"], row["email"], row["name"], row["role"], _minute(row["created_at"]),
                  _minute(row["disabled_at"])] for row in rows], whole=("email",))


@app.command("set-password")
def staff_set_password(email: Annotated[str, typer.Argument(help="The staff member's e-mail address.")],
                       password_stdin: PasswordStdin = False) -> None:
    """A new password for them (12 characters or more); their sessions end at once."""
    from renewly.console.staff import require_staff, set_staff_password
    application = open_app()
    require_staff(application, email)  # refused before the password is asked
    set_staff_password(application, email, password=_password(password_stdin), actor=actor())
    typer.echo(f"staff {email.strip().lower()}: new password set; their sessions ended")


@app.command("disable")
def staff_disable(email: Annotated[str, typer.Argument(help="The staff member's e-mail address.")]) -> None:
    """No more sign-in for them; their sessions end at once (the account stays, for the audit log)."""
    from renewly.console.staff import disable_staff
    at = disable_staff(open_app(), email, actor=actor())
    typer.echo(f"staff {email.strip().lower()} disabled since {utc_minute(at)} UTC")


def _password(from_stdin: bool) -> str:
    """The password typed at a hidden prompt, twice, or the first line of standard input."""
    from renewly.console.rules.staff import validate_password
    from renewly.shared.errors import InvalidInput
    if from_stdin:
        line = sys.stdin.readline()
        if not line.strip():
            raise InvalidInput("no password on standard input (--password-stdin)", code="invalid_password")
        password = line.removesuffix("\n").removesuffix("\r")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    return validate_password(password)


def _minute(value: Any) -> str:
    return utc_minute(value) if value is not None else ""
