"""`renewly dunning recovery`: the recovery report on the command line, a table per currency that
fits 80 columns, or JSON (docs/dunning.md, "The recovery report"); `renewly dunning` alone is still
the sweep. The story: tests/dunning/test_recovery_report.py."""

from __future__ import annotations

import json

import pytest

from renewly.dunning.recovery_report import recovery_report_of, report_as_json
from tests.builders import Outcome
from tests.dunning.test_recovery_report import INVOICE, story  # noqa: F401 (the fixture)


def test_the_recovery_table_per_currency_fits_80_columns_amounts_in_words(story, renewly):  # noqa: F811
    shown = renewly("dunning", "recovery", "--weeks", "5")
    assert (shown.code, shown.err) == (0, "")
    lines = shown.out.splitlines()
    assert max(len(line.rstrip()) for line in lines) <= 80
    # Five ISO weeks ending with today's (Saturday 2026-01-31), Monday to Sunday.
    assert " ".join(shown.out.split()).startswith(
        "Recovery of failed payments, 2025-12-29 to 2026-02-01 (ISO weeks up to today's in Europe/Paris")
    usd = shown.out[shown.out.index("USD"):]
    w01 = next(line for line in usd.splitlines() if line.startswith("2026-W01")).split()
    # failed, recovered, share, cases recovered/opened, days p50 and p90, accounts cancelled
    assert w01[1:] == ["$273.60", "$136.80", "50%", "2/4", "2", "21", "0"]
    total = next(line for line in usd.splitlines() if line.startswith("total")).split()
    assert total[1:] == ["$273.60", "$136.80", "50%", "2/4", "2", "21", "1"]
    assert next(line for line in usd.splitlines() if line.startswith("2026-W02")).split()[3] == "–"
    eur = shown.out[shown.out.index("EUR"):shown.out.index("USD")]
    assert next(line for line in eur.splitlines() if line.startswith("2026-W02")).split()[1:4] == [
        "€68.40", "€68.40", "100%"]


def test_the_recovery_report_as_json_is_the_api_s(story, renewly):  # noqa: F811
    shown = renewly("dunning", "recovery", "--weeks", "5", "--json")
    assert shown.code == 0, shown.err
    found = shown.json()
    assert found == json.loads(json.dumps(report_as_json(recovery_report_of(story, 5), "Europe/Paris"), default=str))
    (usd,) = [each for each in found["currencies"] if each["currency"] == "USD"]
    assert usd["weeks"][0] == {"week": "2026-W01", "monday": "2025-12-29", "failed_invoices": 4,
                               "failed": 4 * INVOICE, "recovered": 2 * INVOICE, "credited": INVOICE,
                               "unpaid": INVOICE, "share_recovered": 0.5, "cases_opened": 4, "cases_recovered": 2,
                               "median_days_to_recover": 2, "p90_days_to_recover": 21, "accounts_cancelled": 0}


def test_no_failed_payment_says_so(renewly):
    shown = renewly("dunning", "recovery")
    assert shown.code == 0
    assert "No payment entered dunning and no account was cancelled in these weeks." in shown.out


@pytest.mark.parametrize("weeks", ["0", "105", "-3"])
def test_weeks_out_of_range_one_line_exit_2(renewly, weeks):
    assert renewly("dunning", "recovery", "--weeks", weeks) == Outcome(
        2, "", "error: weeks must be a whole number from 1 to 104\n")


def test_weeks_not_a_number_and_the_sweep_s_options_before_recovery_are_refused(renewly):
    not_a_number = renewly("dunning", "recovery", "--weeks", "many")
    assert (not_a_number.code, not_a_number.out, len(not_a_number.err.splitlines())) == (2, "", 1)
    misplaced = renewly("dunning", "--json", "recovery")
    assert (misplaced.code, misplaced.out) == (2, "")
    assert misplaced.err.startswith("error: ") and "--json" in misplaced.err


def test_the_option_says_the_rules_weeks():
    from typer.main import get_command

    from renewly.cli.dunning import app
    from renewly.dunning.rules.recovery_report import DEFAULT_WEEKS, MAX_WEEKS
    (weeks,) = [param for param in get_command(app).commands["recovery"].params if param.name == "weeks"]
    assert weeks.default == DEFAULT_WEEKS
    assert weeks.help.endswith(f"(1 to {MAX_WEEKS}).")


def test_renewly_dunning_alone_is_still_the_sweep(renewly):
    swept = renewly("dunning", "--json")
    assert swept.code == 0, swept.err
    assert swept.json()["cases_opened"] == 0
