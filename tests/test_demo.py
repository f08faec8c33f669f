"""`renewly demo`, the main job of a fresh clone: its five stories, told on the days the rules say
(R4, R7.1, R8, R9, R10, R11), read from its JSON timeline."""

from __future__ import annotations

import contextlib
import io
import json
import os

import pytest
from rich.console import Console

from renewly.demo import run_demo


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


def told(timeline, account: str) -> list[tuple[str, str]]:
    """(date, e-mail kind) of the account's e-mails."""
    return [(row["date"], row["event"].split(":")[0].removeprefix("e-mail ")) for row in timeline
            if row["account"] == account and row["email"]]


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


def test_the_demo_s_timeline_fits_80_columns(tmp_path, monkeypatch):
    for name in [n for n in os.environ if n.startswith("RENEWLY_") and not n.startswith("RENEWLY_TEST_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    out = io.StringIO()
    run_demo(str(tmp_path / "renewly-demo.db"), as_json=False, console=Console(file=out, width=80))
    lines = out.getvalue().splitlines()
    assert len(lines) > 100
    assert [line for line in lines if len(line) > 80] == []
