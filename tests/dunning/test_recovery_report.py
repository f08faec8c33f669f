"""The recovery report over a month of dunning on the test clock (docs/dunning.md, "The recovery
report"), on both engines: invoices counted in the week they entered dunning, cases in the week
they opened, days to recover in each account's local days, cancellations in their own week,
every figure per currency."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from renewly.adapters.gateways.simulated import Fault
from renewly.billing.invoices import issue_credit_note, list_invoices
from renewly.dunning.recovery_report import recovery_report_of
from renewly.scheduler import advance
from renewly.shared.errors import InvalidInput
from tests.builders import OPERATOR, subscribed, team_plan

DECLINES = "4000000000000341"  # the card check passes, every charge is declined
START = datetime(2026, 1, 1, tzinfo=UTC)  # a Thursday of 2026-W01
INVOICE = 6840  # 3 seats at 19.00, 20 % VAT (buyers in France)


def to_day(app, day: int) -> None:
    advance(app, START + timedelta(days=day, hours=12) - app.clock.now())


@pytest.fixture
def story(app):
    """From day 0 (2026-01-01), four USD accounts and one EUR account in Paris:
    - paid on day 2 (the retry after one decline),
    - paid on day 21 (three declines, then the warning's charge is paid),
    - never paid: cancelled on day 29 (2026-01-30, W05),
    - no card, its invoice credited in full on day 3 (ends the case, recovers no money),
    - in Paris, in EUR, subscribed from Monday 2026-01-05 (local midnight is 23:00 UTC on Sunday,
      2026-W01 in UTC, W02 where the account is), paid on its day 2."""
    team_plan(app)
    team_plan(app, code="team-eur", currency="EUR")
    paid_day_2, _ = subscribed(app, plan="team", owner="owner@a.test", name="A")
    app.gateway.script(Fault.DECLINE, 1, account_id=paid_day_2)
    paid_day_21, _ = subscribed(app, plan="team", owner="owner@b.test", name="B")
    app.gateway.script(Fault.DECLINE, 3, account_id=paid_day_21)
    subscribed(app, plan="team", owner="owner@c.test", name="C", card=DECLINES)
    credited, _ = subscribed(app, plan="team", owner="owner@d.test", name="D", card=None)
    paris, _ = subscribed(app, plan="team-eur", owner="owner@e.test", name="E", currency="EUR",
                          timezone="Europe/Paris", start=date(2026, 1, 5))
    app.gateway.script(Fault.DECLINE, 1, account_id=paris)
    to_day(app, 3)
    (invoice,) = list_invoices(app, credited)
    issue_credit_note(app, invoice["number"], reason="goodwill", actor=OPERATOR)
    to_day(app, 30)  # Saturday 2026-01-31, in W05
    return app


def figures_of(report, currency: str) -> dict[str, dict]:
    (found,) = [each for each in report.currencies if each.currency == currency]
    return {week.week.label: week.figures for week in found.weeks} | {"total": found.total}


def test_the_weekly_figures_of_a_month_of_dunning(story):
    report = recovery_report_of(story, weeks=5)
    assert [week.label for week in report.weeks] == ["2026-W01", "2026-W02", "2026-W03", "2026-W04", "2026-W05"]
    assert [each.currency for each in report.currencies] == ["EUR", "USD"]

    usd = figures_of(report, "USD")
    w01 = usd["2026-W01"]
    assert (w01.failed_invoices, w01.failed, w01.recovered, w01.credited, w01.unpaid) == (
        4, 4 * INVOICE, 2 * INVOICE, INVOICE, INVOICE)
    assert w01.share_recovered == Decimal("0.5")
    # The credited case ended with nothing unpaid but recovered no money: not a recovery.
    assert (w01.cases_opened, w01.cases_recovered) == (4, 2)
    assert (w01.median_days_to_recover, w01.p90_days_to_recover) == (2, 21)
    assert [usd[week].accounts_cancelled for week in ("2026-W01", "2026-W04", "2026-W05")] == [0, 0, 1]
    assert all(usd[week].failed == 0 and usd[week].share_recovered is None for week in ("2026-W02", "2026-W03"))
    assert (usd["total"].failed, usd["total"].recovered, usd["total"].accounts_cancelled) == (
        4 * INVOICE, 2 * INVOICE, 1)

    eur = figures_of(report, "EUR")
    assert eur["2026-W01"].failed == 0  # its local Monday, not the UTC Sunday
    w02 = eur["2026-W02"]
    assert (w02.failed_invoices, w02.failed, w02.recovered, w02.share_recovered) == (1, INVOICE, INVOICE, 1)
    assert (w02.cases_opened, w02.cases_recovered, w02.median_days_to_recover) == (1, 1, 2)


def test_the_weeks_end_with_today_s_weeks_before_are_left_out(story):
    report = recovery_report_of(story, weeks=2)  # W04 and W05: no invoice entered dunning then
    (usd,) = report.currencies
    assert [week.week.label for week in usd.weeks] == ["2026-W04", "2026-W05"]
    assert (usd.total.failed, usd.total.cases_opened, usd.total.accounts_cancelled) == (0, 0, 1)


def test_a_number_of_weeks_out_of_range_is_refused(app):
    with pytest.raises(InvalidInput):
        recovery_report_of(app, weeks=0)
