"""`renewly demo`, the main job of a fresh clone: its five stories, told on the days the rules say
(R4, R7.1, R8, R9, R10, R11), read from its JSON timeline; and the files it replaces: only its own."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console
from sqlalchemy import func, select

from renewly import cli
from renewly.adapters.db.engine import make_engine
from renewly.adapters.db.tables import accounts
from renewly.adapters.gateways.simulated import sim_operations
from renewly.demo import run_demo
from tests.builders import Outcome

# Under `make test` (pytest-xdist), the tests of this module run in one process: their module
# fixtures (the demo, run once for its JSON timeline and once as printed) would otherwise be made
# again in each.
pytestmark = pytest.mark.xdist_group("demo")


@pytest.fixture(scope="module")
def timeline(tmp_path_factory) -> list[dict]:
    folder = tmp_path_factory.mktemp("demo")
    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.MonkeyPatch.context() as patch:
        for name in [n for n in os.environ if n.startswith("RENEWLY_") and not n.startswith("RENEWLY_TEST_")]:
            patch.delenv(name)  # no settings from the shell, as for every test
        patch.chdir(folder)
        run_demo(str(folder / "renewly-demo.db"), as_json=True, console=Console(file=io.StringIO()))
    return [json.loads(line) for line in out.getvalue().splitlines()]


def told(timeline, account: str, *, invoices: bool = False) -> list[tuple[str, str]]:
    """(date, e-mail kind) of the account's e-mails; those of its invoices (R4.3) only if asked."""
    return [(row["date"], kind) for row in timeline if row["account"] == account and row["email"]
            if (kind := row["event"].split(":")[0].removeprefix("e-mail ")) != "invoice" or invoices]


def test_r8_r11_boulangerie_martin_is_declined_fixes_its_card_on_day_3_and_is_told_once(timeline):
    assert told(timeline, "Boulangerie Martin") == [
        ("2026-01-31", "payment_failed_1"), ("2026-02-02", "payment_failed_2"), ("2026-02-03", "payment_confirmed")]


def test_r8_globex_is_declined_until_cancelled_on_its_own_day_29(timeline):
    assert told(timeline, "Globex GmbH") == [
        ("2026-03-12", "payment_failed_1"), ("2026-03-14", "payment_failed_2"), ("2026-03-16", "payment_failed_3"),
        ("2026-04-02", "suspension_warning"), ("2026-04-10", "account_cancelled")]


def test_r9_initech_is_cancelled_reactivated_and_pays_both_invoices_with_one_confirmation(timeline):
    assert told(timeline, "Initech SARL")[-2:] == [("2026-03-01", "account_cancelled"),
                                                   ("2026-03-07", "payment_confirmed")]
    [confirmation] = [row for row in timeline if row["account"] == "Initech SARL"
                      and row["event"].startswith("e-mail payment_confirmed")]
    assert "2026-000003, 2026-000006" in confirmation["event"]
    seen = [row["banner"] for row in timeline if row["account"] == "Initech SARL" and row["banner"]]
    assert "owner: reactivated; admin, agent: cancelled" in seen


def test_r10_umbrella_never_adds_a_card_and_is_deleted_90_days_after_its_cancellation(timeline):
    assert told(timeline, "Umbrella Ltd")[-1] == ("2026-03-01", "account_cancelled")
    [deleted] = [row["date"] for row in timeline if row["account"] == "Umbrella Ltd"
                 and row["event"].startswith("personal data deleted")]
    assert deleted == "2026-05-30"


def test_r4_acme_pays_fine_and_its_accountant_becomes_a_billing_contact(timeline):
    assert [kind for _, kind in told(timeline, "Acme Inc.")] == ["contact_request", "contact_added"]
    assert {kind for _, kind in told(timeline, "Acme Inc.", invoices=True)} == {
        "invoice", "contact_request", "contact_added"}  # each of its invoices e-mailed at issue (R4.3)


def test_the_demo_s_timeline_fits_80_columns_and_its_closing_hint_runs_as_printed(tmp_path, monkeypatch):
    for name in [n for n in os.environ if n.startswith("RENEWLY_") and not n.startswith("RENEWLY_TEST_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    run_demo(str(tmp_path / "renewly-demo.db"), as_json=False, console=Console(file=out, width=80))
    lines = out.getvalue().splitlines()
    assert len(lines) > 100
    assert [line for line in lines if len(line) > 80] == []
    # The lines after "Look around with:", pasted into a shell as they are, list the demo's accounts.
    hint = lines[[i for i, line in enumerate(lines) if line.endswith("Look around with:")][-1] + 1:]
    shell = subprocess.run(["bash", "-ec", "\n".join(hint)], cwd=tmp_path, capture_output=True, text=True,
                           env={n: v for n, v in os.environ.items() if not n.startswith("RENEWLY_")}, timeout=120)
    assert shell.returncode == 0, shell.stderr
    assert "Acme Inc." in shell.stdout and "Globex GmbH" in shell.stdout


# -- the files it replaces: only those an earlier demo made ----------------------------------------

@pytest.fixture
def folder(tmp_path, monkeypatch) -> Path:
    """An operator's folder, the working directory of `renewly demo`."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def renewly_demo(monkeypatch, capsys, *args: str) -> Outcome:
    """`renewly demo ARGS...` through the real entry point, `cli.main()`."""
    monkeypatch.setattr(sys, "argv", ["renewly", "demo", *args])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    captured = capsys.readouterr()
    return Outcome(exited.value.code, captured.out, captured.err)


def contents(folder: Path) -> dict[str, bytes | None]:
    """Every file and folder under `folder`, with its bytes (None for a folder)."""
    return {str(path.relative_to(folder)): None if path.is_dir() else path.read_bytes()
            for path in sorted(folder.rglob("*"))}


# Each puts something in the operator's folder; returns (--database, the file refused).

def a_text_file(folder: Path, _template: Path) -> tuple[str, str]:
    (folder / "notes.txt").write_text("the operator's notes\n")
    return "notes.txt", "notes.txt"


def a_directory(folder: Path, _template: Path) -> tuple[str, str]:
    (folder / "exports").mkdir()
    (folder / "exports" / "march.csv").write_text("invoice,total\n")
    return "exports", "exports"


def a_renewly_database(folder: Path, template: Path) -> tuple[str, str]:
    shutil.copyfile(template, folder / "renewly.db")  # migrated, as `renewly db upgrade` leaves it
    return "renewly.db", "renewly.db"


def a_gateway_ledger_beside_it(folder: Path, template: Path) -> tuple[str, str]:
    """renewly.db is not there; renewly-gateway.db, where the demo would put its ledger, is."""
    shutil.copyfile(template, folder / "renewly-gateway.db")
    return "renewly.db", "renewly-gateway.db"


def a_write_ahead_log_without_its_database(folder: Path, _template: Path) -> tuple[str, str]:
    (folder / "renewly.db-wal").write_bytes(b"\x37\x7f\x06\x82" + bytes(28))
    return "renewly.db", "renewly.db-wal"


@pytest.mark.parametrize("existing", [a_text_file, a_directory, a_renewly_database, a_gateway_ledger_beside_it,
                                      a_write_ahead_log_without_its_database])
def test_the_demo_refuses_a_database_path_holding_a_file_it_did_not_make_and_touches_nothing(
        folder, sqlite_template, monkeypatch, capsys, existing):
    database, refused = existing(folder, sqlite_template)
    before = contents(folder)
    outcome = renewly_demo(monkeypatch, capsys, "--database", database)
    assert (outcome.code, outcome.out) == (2, "")
    assert outcome.err.startswith(f"error: refusing to replace {refused}") and outcome.err.count("\n") == 1
    assert contents(folder) == before


def test_a_second_demo_replaces_the_first_demo_s_database_and_ledger(folder, monkeypatch, capsys):
    first = renewly_demo(monkeypatch, capsys, "--database", "demo.db", "--json")
    charged = ledger_charges(folder / "demo-gateway.db")
    second = renewly_demo(monkeypatch, capsys, "--database", "demo.db", "--json")
    assert (first.code, first.err, second.code, second.err) == (0, "", 0, "")
    assert second.out == first.out and len(first.out.splitlines()) > 50
    assert sorted(contents(folder)) == ["demo-gateway.db", "demo.db", "demo.db-clock-lock"]  # the clock's lock
    engine = make_engine(f"sqlite:///{folder / 'demo.db'}")
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(accounts)).scalar_one() == 5  # one demo's, not two
    engine.dispose()
    assert ledger_charges(folder / "demo-gateway.db") == charged > 0


def ledger_charges(ledger: Path) -> int:
    engine = make_engine(f"sqlite:///{ledger}")
    with engine.connect() as conn:
        count = conn.execute(select(func.count()).select_from(sim_operations)).scalar_one()
    engine.dispose()
    return count


# -- how it reads: cause before effect, no line twice, banners as words ---------------------------

@pytest.fixture(scope="module")
def printed(tmp_path_factory) -> str:
    """The demo's timeline as a person reads it (not --json), 80 columns."""
    folder = tmp_path_factory.mktemp("printed")
    out = io.StringIO()
    with pytest.MonkeyPatch.context() as patch:
        for name in [n for n in os.environ if n.startswith("RENEWLY_") and not n.startswith("RENEWLY_TEST_")]:
            patch.delenv(name)
        patch.chdir(folder)
        run_demo(str(folder / "renewly-demo.db"), as_json=False, console=Console(file=out, width=80))
    return out.getvalue()


def test_no_line_of_the_demo_is_told_twice(timeline):
    rows = [(row["date"], row["account"], row["event"], row["email"], row["banner"]) for row in timeline]
    assert [row for row in rows if rows.count(row) > 1] == []
    # Two charges on one day read apart: each names its invoice.
    assert [row["event"] for row in timeline if row["account"] == "Initech SARL" and row["date"] == "2026-03-07"
            and row["event"].startswith("charge")] == ["charge for 2026-000003 succeeded: €104.40",
                                                       "charge for 2026-000006 succeeded: €104.40"]


def test_within_a_day_the_demo_tells_the_cause_before_its_effect(timeline):
    def position(account: str, day: str, starts: str) -> int:
        return next(i for i, row in enumerate(timeline) if row["account"] == account and row["date"] == day
                    and row["event"].startswith(starts))

    # A decline, then the e-mail it causes; an invoice, then its charge; a saved card, then what it pays.
    assert position("Boulangerie Martin", "2026-01-31", "charge for 2026-000002 declined") < position(
        "Boulangerie Martin", "2026-01-31", "e-mail payment_failed_1")
    assert position("Acme Inc.", "2026-01-31", "invoice 2026-000001 issued") < position(
        "Acme Inc.", "2026-01-31", "charge for 2026-000001 succeeded")
    assert (position("Boulangerie Martin", "2026-02-03", "the owner saves a card")
            < position("Boulangerie Martin", "2026-02-03", "charge for 2026-000002 succeeded")
            < position("Boulangerie Martin", "2026-02-03", "payment recovered")
            < position("Boulangerie Martin", "2026-02-03", "account active"))
    assert position("Initech SARL", "2026-03-06", "support grants") < position(
        "Initech SARL", "2026-03-06", "account cancelled; what members see")
    # Every charge comes after its invoice was issued.
    issued = {row["event"].split()[1]: i for i, row in enumerate(timeline) if row["event"].startswith("invoice ")}
    charged = [(row["event"].split()[2], i) for i, row in enumerate(timeline) if row["event"].startswith("charge ")]
    assert charged and all(issued[number] < i for number, i in charged)


def test_the_demo_says_banners_in_words_and_its_json_keeps_the_policy_codes(printed, timeline):
    assert "what members see: owner, admin: payment failed warning; agent: no banner" in " ".join(printed.split())
    assert "cancellation warning" in printed and "account cancelled page" in printed
    assert not any(code in printed for code in ("owner_and_admins", "everyone", ": none"))
    assert "owner, admin: owner_and_admins; agent: none" in [row["banner"] for row in timeline]
