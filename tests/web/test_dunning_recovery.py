"""GET /v1/dunning/recovery: the recovery report through the API (docs/dunning.md, "The recovery
report"), amounts in integer minor units beside their currency, each answer held to the OpenAPI
document. The story: tests/dunning/test_recovery_report.py."""

from __future__ import annotations

import pytest

from tests.dunning.test_recovery_report import INVOICE, story  # noqa: F401 (the fixture)
from tests.web.conftest import problem


def test_the_weekly_recovery_per_currency(story, api):  # noqa: F811
    answer = api.get("/v1/dunning/recovery", params={"weeks": 5})
    assert answer.status_code == 200, answer.text
    found = answer.json()
    assert (found["object"], found["timezone"], found["first_day"], found["last_day"]) == (
        "dunning_recovery", "Europe/Paris", "2025-12-29", "2026-02-01")
    assert found["weeks"] == ["2026-W01", "2026-W02", "2026-W03", "2026-W04", "2026-W05"]
    eur, usd = found["currencies"]
    assert (eur["currency"], usd["currency"]) == ("EUR", "USD")
    assert usd["weeks"][0] | {"week": "2026-W01"} == {
        "week": "2026-W01", "monday": "2025-12-29", "failed_invoices": 4, "failed": 4 * INVOICE,
        "recovered": 2 * INVOICE, "credited": INVOICE, "unpaid": INVOICE, "share_recovered": 0.5, "cases_opened": 4,
        "cases_recovered": 2, "median_days_to_recover": 2, "p90_days_to_recover": 21, "accounts_cancelled": 0}
    assert [week["accounts_cancelled"] for week in usd["weeks"]] == [0, 0, 0, 0, 1]
    assert (eur["weeks"][1]["week"], eur["weeks"][1]["recovered"], eur["weeks"][1]["share_recovered"]) == (
        "2026-W02", INVOICE, 1)
    assert usd["total"]["accounts_cancelled"] == 1


def test_twelve_weeks_by_default_and_no_currency_without_rows(api):
    answer = api.get("/v1/dunning/recovery")
    assert answer.status_code == 200, answer.text
    assert (len(answer.json()["weeks"]), answer.json()["currencies"]) == (12, [])


@pytest.mark.parametrize("weeks", ["0", "105", "twelve", "1.5"])
def test_weeks_out_of_range_is_a_problem(client, weeks):
    body = problem(client.get("/v1/dunning/recovery", params={"weeks": weeks}), 422, "invalid_input")
    assert [error["field"] for error in body["errors"]] == ["query.weeks"]


def test_an_api_key_is_required(anonymous):
    problem(anonymous.get("/v1/dunning/recovery"), 401, "unauthorized")
