"""`renewly import FILE`: the report, the problems with their lines, exit 2 and nothing written
when any, one line for a file that is no import file, a progress bar only on a terminal."""

from __future__ import annotations

import io
import re
from pathlib import Path

from rich.console import Console

from renewly.cli import importing
from tests.builders import database_rows, team_plan

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "import"


def the_examples_plans(app) -> None:
    team_plan(app, code="team-eur", currency="EUR")
    team_plan(app, code="team-usd", currency="USD", price=2100)


def test_the_example_is_imported_then_skipped_on_a_second_run(app, renewly):
    the_examples_plans(app)
    first = renewly("import", str(EXAMPLES / "accounts.csv"))
    assert first.code == 0 and first.err == ""
    assert first.out == ("imported from accounts.csv: 3 account(s), 3 member(s) besides their owners, 2\n"
                         "    subscription(s), 2 card(s)\n")
    assert [row["owner"] for row in renewly("accounts", "list", "--json").json()] == [
        "ceo@acme.example", "owner@globex.example", "boss@initech.example"]

    again = renewly("import", str(EXAMPLES / "accounts.jsonl"), "--json")
    assert again.code == 0
    assert again.json() == {"file": "accounts.jsonl", "format": "jsonl", "dry_run": False, "accounts": 0,
                            "members": 0, "subscriptions": 0, "cards": 0, "skipped": 3, "problem_count": 0,
                            "problems": []}


def test_a_dry_run_says_what_it_would_write_and_writes_nothing(app, renewly):
    the_examples_plans(app)
    before = database_rows(app)
    checked = renewly("import", str(EXAMPLES / "accounts.csv"), "--dry-run")
    assert checked.code == 0
    assert "it would import 3 account(s)" in checked.out and "Nothing was written (--dry-run)." in checked.out
    assert database_rows(app) == before


def test_a_file_with_problems_lists_each_with_its_line_and_column_exits_2_and_writes_nothing(app, renewly,
                                                                                              tmp_path):
    the_examples_plans(app)
    rows = [f"k{n},Customer {n},owner{n}@x.example,FR" for n in range(1, 26)]
    rows[2] = "k3,Customer 3,not-an-email,FR"
    rows += [f"k{n},Customer {n},owner{n}@x.example,ZZ" for n in range(26, 50)]
    path = tmp_path / "customers.csv"
    path.write_text("key,name,owner_email,country\n" + "\n".join(rows) + "\n", encoding="utf-8")
    before = database_rows(app)

    refused = renewly("import", str(path))

    assert refused.code == 2
    assert refused.err == "error: 25 problem(s) in customers.csv: nothing was written\n"
    lines = refused.out.splitlines()
    assert lines[0] == "line 4, owner_email: 'not-an-email' is not an e-mail address"
    assert lines[1].startswith("line 27, country: unknown country 'ZZ'")
    assert lines[-1] == "... and 5 more problem(s) (--json lists them all)"
    assert all(len(line) <= 80 for line in lines)
    assert database_rows(app) == before
    listed = renewly("import", str(path), "--json")
    assert listed.code == 2 and listed.json()["problem_count"] == len(listed.json()["problems"]) == 25


def test_a_file_that_is_no_import_file_is_one_line_on_stderr(app, renewly, tmp_path):
    (tmp_path / "latin1.csv").write_bytes("key,name\nk1,Société\n".encode("latin-1"))
    (tmp_path / "notes.txt").write_text("hello\n")
    for args, message in [
        (["missing.csv"], "error: No such file or directory: missing.csv\n"),
        ([str(tmp_path / "latin1.csv")], "error: latin1.csv is not UTF-8 text (line 2, byte 17): save it as UTF-8\n"),
        ([str(tmp_path / "notes.txt")],
         "error: cannot tell the format of notes.txt from its name: give --format csv or jsonl\n"),
        ([str(tmp_path / "notes.txt"), "--format", "jsonl"], "error: notes.txt is not JSON lines: line 1: "
                                                             "Expecting value\n"),
    ]:
        refused = renewly("import", *args)
        assert (refused.code, refused.out, refused.err) == (2, "", message)


def test_the_progress_bar_shows_on_a_terminal_within_80_columns_and_nowhere_else():
    terminal = io.StringIO()
    with importing.import_progress(Console(file=terminal, force_terminal=True, width=200)) as on_slice:
        on_slice(0, 5000)
        on_slice(2000, 5000)
        on_slice(5000, 5000)
    shown = re.sub(r"\x1b\[[0-9;?]*[a-zA-Z]", "", terminal.getvalue()).replace("\r", "\n").splitlines()
    assert any("5000/5000 accounts" in line for line in shown)
    assert max(len(line) for line in shown) <= 80

    with importing.import_progress(Console(file=io.StringIO(), force_terminal=False)) as on_slice:
        assert on_slice is None


def test_docs_import_md_shows_the_example_file_the_tests_import():
    documented = (EXAMPLES.parents[1] / "docs" / "import.md").read_text(encoding="utf-8")
    [csv_block] = re.findall(r"```csv\n(.*?)```", documented, flags=re.DOTALL)
    assert csv_block == (EXAMPLES / "accounts.csv").read_text(encoding="utf-8")
    [json_line] = re.findall(r"```json\n(.*?)```", documented, flags=re.DOTALL)
    assert json_line in (EXAMPLES / "accounts.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
