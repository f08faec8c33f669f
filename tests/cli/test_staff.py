"""`renewly staff create|list|set-password|disable`: the password typed at a hidden prompt (twice) or read from
standard input, never an argument; refusals one line on stderr, exit 2."""

from __future__ import annotations

import inspect
import io

import pytest
from sqlalchemy import select

from renewly.adapters.db.tables import staff
from renewly.console.sessions import SignInRefused, sign_in

PASSWORD = "correct horse battery staple"

pytestmark = pytest.mark.usefixtures("cheap_argon2")


def typed(monkeypatch, *answers: str) -> None:
    """What the operator types at the hidden prompts."""
    given = iter(answers)
    monkeypatch.setattr("getpass.getpass", lambda prompt="", stream=None: next(given))


def test_staff_are_created_at_a_hidden_prompt_listed_and_disabled(app, renewly, monkeypatch):
    typed(monkeypatch, PASSWORD, PASSWORD)
    made = renewly("staff", "create", "Sam@Renewly.example", "--name", "Sam Support", "--role", "support")
    assert made.code == 0, made.err
    assert made.out.endswith("staff 1: Sam Support <sam@renewly.example>, support; they sign in at /console\n")
    assert PASSWORD not in made.out + made.err
    assert sign_in(app, email="sam@renewly.example", password=PASSWORD, ip="192.0.2.1").staff.name == "Sam Support"
    listed = renewly("staff", "list")
    assert listed.code == 0 and "sam@renewly.example" in listed.out and "support" in listed.out
    assert all(len(line) <= 80 for line in listed.out.splitlines())
    assert renewly("staff", "disable", "sam@renewly.example").out.startswith("staff sam@renewly.example disabled since")
    assert renewly("staff", "list", "--json").json()[0]["disabled_at"] is not None
    with pytest.raises(SignInRefused):
        sign_in(app, email="sam@renewly.example", password=PASSWORD, ip="192.0.2.1")


def test_the_password_may_come_from_standard_input(app, renewly, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    made = renewly("staff", "create", "fiona@renewly.example", "--name", "Fiona", "--role", "finance",
                   "--password-stdin", "--json")
    assert made.code == 0, made.err
    assert made.json() == {"id": 1, "email": "fiona@renewly.example", "name": "Fiona", "role": "finance"}
    with app.engine.connect() as conn:
        assert conn.execute(select(staff.c.password_hash)).scalar_one().startswith("$argon2id$")


def test_refusals_are_one_line_and_exit_2(app, renewly, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    for options, said in (
            (["--name", "Sam", "--role", "admin"], "error: no staff role 'admin': expected support or finance\n"),
            (["--name", "", "--role", "support"], "error: a staff member's name is 1 to 100 printable characters\n"),
            (["--name", "Sam", "--role", "support", "--password-stdin"],
             "error: no password on standard input (--password-stdin)\n")):
        refused = renewly("staff", "create", "sam@renewly.example", *options)
        assert (refused.code, refused.err) == (2, said)
    typed(monkeypatch, "too short", "too short")
    short = renewly("staff", "create", "sam@renewly.example", "--name", "Sam", "--role", "support")
    assert (short.code, short.err) == (2, "error: a staff password is 12 to 1024 characters\n")
    unknown = renewly("staff", "disable", "nobody@renewly.example")
    assert (unknown.code, unknown.err) == (2, "error: nobody@renewly.example is not a staff member\n")
    assert renewly("staff", "list", "--json").json() == []


def test_the_password_is_never_an_argument():
    from renewly.cli.staff import staff_create
    assert "password" not in inspect.signature(staff_create).parameters


def test_a_new_password_is_set_at_a_hidden_prompt_or_from_standard_input(app, renewly, monkeypatch):
    typed(monkeypatch, PASSWORD, PASSWORD)
    assert renewly("staff", "create", "sam@renewly.example", "--name", "Sam", "--role", "support").code == 0
    typed(monkeypatch, "a new passphrase, longer", "a new passphrase, longer")
    changed = renewly("staff", "set-password", "Sam@Renewly.example")
    assert changed.code == 0  # the prompts' words, then:
    assert changed.out.endswith("staff sam@renewly.example: new password set; their sessions ended\n")
    assert sign_in(app, email="sam@renewly.example", password="a new passphrase, longer", ip="192.0.2.1")
    monkeypatch.setattr("sys.stdin", io.StringIO("the third passphrase\n"))
    assert renewly("staff", "set-password", "sam@renewly.example", "--password-stdin").code == 0
    assert sign_in(app, email="sam@renewly.example", password="the third passphrase", ip="192.0.2.1")
    unknown = renewly("staff", "set-password", "nobody@renewly.example", "--password-stdin")
    assert (unknown.code, unknown.err) == (2, "error: nobody@renewly.example is not a staff member\n")
    from renewly.cli.staff import staff_set_password
    assert "password" not in inspect.signature(staff_set_password).parameters
