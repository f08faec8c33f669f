"""The recovery report's figures from plain rows (docs/dunning.md, "The recovery report"): each
invoice in the week it entered dunning, each case in the week it opened, each cancellation in
its own week; every figure per currency."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from renewly.dunning.rules.recovery_report import (
    MAX_WEEKS,
    Cancellation,
    CaseOutcome,
    FailedInvoice,
    IsoWeek,
    nearest_rank,
    recovery_report,
    report_weeks,
)
from renewly.shared.errors import InvalidInput

TODAY = date(2026, 3, 18)  # a Wednesday of 2026-W12
WEEKS = report_weeks(TODAY, 4)  # 2026-W09 .. 2026-W12


def test_the_weeks_end_with_today_s_iso_week_oldest_first():
    assert [week.label for week in WEEKS] == ["2026-W09", "2026-W10", "2026-W11", "2026-W12"]
    assert WEEKS[0].monday == date(2026, 2, 23)
    assert report_weeks(date(2026, 1, 1), 2) == (IsoWeek(2025, 52), IsoWeek(2026, 1))  # 2026-01-01 is in W01


@pytest.mark.parametrize("weeks", [0, -1, MAX_WEEKS + 1])
def test_a_number_of_weeks_out_of_range_is_refused(weeks):
    with pytest.raises(InvalidInput) as refused:
        report_weeks(TODAY, weeks)
    assert refused.value.code == "invalid_weeks"


def test_an_invoice_counts_in_the_week_it_entered_dunning_whenever_it_was_paid():
    invoices = [FailedInvoice("EUR", 1000, 1000, 0, date(2026, 3, 2)),  # W10, paid (later or not)
                FailedInvoice("EUR", 3000, 0, 0, date(2026, 3, 4)),  # W10, still unpaid
                FailedInvoice("EUR", 500, 0, 500, date(2026, 3, 10))]  # W11, credited in full
    report = recovery_report(WEEKS, invoices, [], [])
    (eur,) = report.currencies
    w10, w11 = eur.weeks[1].figures, eur.weeks[2].figures
    assert (w10.failed_invoices, w10.failed, w10.recovered, w10.credited, w10.unpaid) == (2, 4000, 1000, 0, 3000)
    assert w10.share_recovered == Decimal("0.25")
    assert (w11.failed, w11.recovered, w11.credited, w11.share_recovered) == (500, 0, 500, Decimal(0))
    assert eur.weeks[0].figures.share_recovered is None  # nothing failed: no share, not 0
    assert (eur.total.failed, eur.total.recovered, eur.total.failed_invoices) == (4500, 1000, 3)


def test_currencies_are_never_summed_together():
    invoices = [FailedInvoice("USD", 1900, 1900, 0, date(2026, 3, 2)),
                FailedInvoice("EUR", 2500, 0, 0, date(2026, 3, 2)),
                FailedInvoice("JPY", 3000, 3000, 0, date(2026, 3, 3))]
    report = recovery_report(WEEKS, invoices, [], [Cancellation("EUR", date(2026, 3, 17))])
    assert [(c.currency, c.total.failed, c.total.recovered, c.total.accounts_cancelled)
            for c in report.currencies] == [("EUR", 2500, 0, 1), ("JPY", 3000, 3000, 0), ("USD", 1900, 1900, 0)]


def test_days_to_recover_count_the_local_days_from_opening_to_recovery_median_and_p90_by_nearest_rank():
    opened = date(2026, 3, 2)
    cases = [CaseOutcome("USD", opened, opened + timedelta(days=days)) for days in (0, 2, 3, 3, 4, 7, 9, 12, 21, 28)]
    cases += [CaseOutcome("USD", opened, None)]  # still open, or cancelled: no days to recover
    (usd,) = recovery_report(WEEKS, [], cases, []).currencies
    w10 = usd.weeks[1].figures
    assert (w10.cases_opened, w10.cases_recovered) == (11, 10)
    assert (w10.median_days_to_recover, w10.p90_days_to_recover) == (4, 21)
    assert usd.weeks[0].figures.median_days_to_recover is None


def test_a_case_counts_in_the_week_it_opened_a_cancellation_in_its_own_week():
    cases = [CaseOutcome("USD", date(2026, 2, 24), date(2026, 3, 10))]  # opened W09, recovered in W11
    cancellations = [Cancellation("USD", date(2026, 3, 23)),  # W13: after the report's weeks
                     Cancellation("USD", date(2026, 3, 16))]
    (usd,) = recovery_report(WEEKS, [], cases, cancellations).currencies
    assert [week.figures.cases_recovered for week in usd.weeks] == [1, 0, 0, 0]
    assert usd.weeks[0].figures.median_days_to_recover == 14
    assert [week.figures.accounts_cancelled for week in usd.weeks] == [0, 0, 0, 1]


def test_rows_outside_the_weeks_are_left_out_and_no_rows_is_no_currency():
    report = recovery_report(WEEKS, [FailedInvoice("USD", 100, 0, 0, date(2026, 2, 22))], [], [])  # W08
    assert report.currencies == ()
    assert (report.first_day, report.last_day) == (date(2026, 2, 23), date(2026, 3, 22))


def test_an_invoice_collected_or_credited_beyond_its_total_is_refused():
    with pytest.raises(ValueError):
        FailedInvoice("USD", 100, 60, 50, TODAY)
    with pytest.raises(ValueError):
        CaseOutcome("USD", TODAY, TODAY - timedelta(days=1))


def test_the_share_is_rounded_down_one_only_when_everything_was_recovered():
    (usd,) = recovery_report(WEEKS, [FailedInvoice("USD", 99999, 99998, 0, TODAY)], [], []).currencies
    assert usd.total.share_recovered == Decimal("0.9999")


def test_nearest_rank():
    assert nearest_rank([], 50) is None
    assert nearest_rank([5], 90) == 5
    assert nearest_rank([1, 2], 50) == 1
    assert nearest_rank([4, 1, 3, 2], 50) == 2
    assert nearest_rank(list(range(1, 11)), 90) == 9


# -- properties ------------------------------------------------------------------------------------

DAYS = st.dates(min_value=date(2026, 1, 1), max_value=date(2026, 4, 30))
CURRENCIES = st.sampled_from(["EUR", "USD", "JPY"])


@st.composite
def failed_invoices(draw) -> FailedInvoice:
    amount = draw(st.integers(0, 10**12))
    recovered = draw(st.integers(0, amount))
    credited = draw(st.integers(0, amount - recovered))
    return FailedInvoice(draw(CURRENCIES), amount, recovered, credited, draw(DAYS))


@st.composite
def cases(draw) -> CaseOutcome:
    opened = draw(DAYS)
    days = draw(st.none() | st.integers(0, 120))
    return CaseOutcome(draw(CURRENCIES), opened, None if days is None else opened + timedelta(days=days))


@settings(max_examples=200, deadline=None)
@given(invoices=st.lists(failed_invoices(), max_size=30), outcomes=st.lists(cases(), max_size=30),
       cancelled=st.lists(st.builds(Cancellation, CURRENCIES, DAYS), max_size=10),
       today=DAYS, count=st.integers(1, 20))
def test_property_recovered_never_exceeds_failed_shares_in_0_1_weeks_add_up_to_the_total(
        invoices, outcomes, cancelled, today, count):
    weeks = report_weeks(today, count)
    report = recovery_report(weeks, invoices, outcomes, cancelled)
    for currency in report.currencies:
        assert [week.week for week in currency.weeks] == list(weeks)
        for figures in [currency.total, *(week.figures for week in currency.weeks)]:
            assert 0 <= figures.recovered <= figures.failed
            assert figures.recovered + figures.credited + figures.unpaid == figures.failed
            assert figures.unpaid >= 0
            share = figures.share_recovered
            assert share is None if figures.failed == 0 else Decimal(0) <= share <= Decimal(1)
            assert figures.cases_recovered <= figures.cases_opened
            if figures.cases_recovered:
                assert 0 <= figures.median_days_to_recover <= figures.p90_days_to_recover <= 120
            else:
                assert figures.median_days_to_recover is figures.p90_days_to_recover is None
        for field in ("failed_invoices", "failed", "recovered", "credited", "cases_opened", "cases_recovered",
                      "accounts_cancelled"):
            assert getattr(currency.total, field) == sum(getattr(week.figures, field) for week in currency.weeks)
    # Every row of the report's weeks is counted once, under its own currency.
    inside = [invoice for invoice in invoices if IsoWeek.of(invoice.failed_on) in set(weeks)]
    for code in {invoice.currency for invoice in inside}:
        (found,) = [currency for currency in report.currencies if currency.currency == code]
        assert found.total.failed == sum(invoice.amount for invoice in inside if invoice.currency == code)
