"""The recovery report (docs/dunning.md, "The recovery report"): per currency and ISO week, how
much of what dunning chased was recovered, how fast, and how many accounts it cancelled.

Pure: plain rows in (their dates already the local dates of each account), figures out. Money
stays in the currency it was billed in: every figure is per currency, never summed across.

- An invoice counts in the week it **entered dunning** (joined a case): that week's `failed`
  is its total, `recovered` what charges collected on it since (whenever they came), `credited`
  what credit notes took off it. So a week's share recovered is the share of that week's failed
  money recovered so far, never above 1; recent weeks grow as their cases go on.
- A case counts in the week it **opened**; it recovered if it ended with nothing unpaid and at
  least one of its invoices paid (a case ended only by credit notes recovered no money). Its days
  to recover are the local calendar days from its opening day to the day it ended.
- An account counts as cancelled in the week dunning **cancelled** it, if it still is (or its
  data was deleted since): one that paid during a temporary reactivation (R9.3) is active again,
  its cancellation undone, and its case counts as recovered instead.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_DOWN, Decimal

from renewly.shared.errors import InvalidInput

DEFAULT_WEEKS = 12
MAX_WEEKS = 104  # two years: the same limit from the command line and the API
SHARE_PLACES = Decimal("0.0001")


@dataclass(frozen=True, slots=True, order=True)
class IsoWeek:
    year: int
    week: int

    @classmethod
    def of(cls, day: date) -> IsoWeek:
        year, week, _ = day.isocalendar()
        return cls(year, week)

    @property
    def monday(self) -> date:
        return date.fromisocalendar(self.year, self.week, 1)

    @property
    def label(self) -> str:
        return f"{self.year}-W{self.week:02d}"


@dataclass(frozen=True, slots=True)
class FailedInvoice:
    """An invoice that entered dunning, as it stands now (minor units of its currency)."""

    currency: str
    amount: int  # its total
    recovered: int  # what succeeded charges collected on it
    credited: int  # what credit notes took off it
    failed_on: date  # the local day it joined a case

    def __post_init__(self) -> None:
        # An invoice is never collected or credited beyond its total: a row that says otherwise
        # is a bug upstream, and a report built on it would lie.
        if min(self.amount, self.recovered, self.credited) < 0 or self.recovered + self.credited > self.amount:
            raise ValueError(f"an invoice of {self.amount} {self.currency} cannot have {self.recovered} recovered "
                             f"and {self.credited} credited")


@dataclass(frozen=True, slots=True)
class CaseOutcome:
    """A dunning case (the account's currency), and the local day it recovered, if it did."""

    currency: str
    opened_on: date
    recovered_on: date | None

    def __post_init__(self) -> None:
        if self.recovered_on is not None and self.recovered_on < self.opened_on:
            raise ValueError(f"a case opened on {self.opened_on} cannot recover on {self.recovered_on}")

    @property
    def days_to_recover(self) -> int | None:
        return None if self.recovered_on is None else (self.recovered_on - self.opened_on).days


@dataclass(frozen=True, slots=True)
class Cancellation:
    """An account dunning cancelled (its currency), on a local day."""

    currency: str
    cancelled_on: date


@dataclass(frozen=True, slots=True)
class Figures:
    """One currency's figures over a week, or over the whole report (its `total`)."""

    failed_invoices: int = 0
    failed: int = 0
    recovered: int = 0
    credited: int = 0
    cases_opened: int = 0
    cases_recovered: int = 0
    median_days_to_recover: int | None = None
    p90_days_to_recover: int | None = None
    accounts_cancelled: int = 0

    @property
    def share_recovered(self) -> Decimal | None:
        """Recovered over failed, rounded down to 4 places (1 only when all of it was recovered);
        None when nothing failed."""
        if self.failed == 0:
            return None
        return (Decimal(self.recovered) / Decimal(self.failed)).quantize(SHARE_PLACES, rounding=ROUND_DOWN)

    @property
    def unpaid(self) -> int:
        """Failed money neither recovered nor credited: still chased, or lost with its account."""
        return self.failed - self.recovered - self.credited


@dataclass(frozen=True, slots=True)
class WeekFigures:
    week: IsoWeek
    figures: Figures


@dataclass(frozen=True, slots=True)
class CurrencyRecovery:
    currency: str
    weeks: tuple[WeekFigures, ...]  # every week of the report, oldest first, zeros included
    total: Figures


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    weeks: tuple[IsoWeek, ...]  # oldest first; the last is the week of the report's day
    currencies: tuple[CurrencyRecovery, ...]  # by currency code; none without a row in the weeks

    @property
    def first_day(self) -> date:
        return self.weeks[0].monday

    @property
    def last_day(self) -> date:
        return self.weeks[-1].monday + timedelta(days=6)


def validate_weeks(weeks: int) -> int:
    if isinstance(weeks, bool) or not isinstance(weeks, int) or not 1 <= weeks <= MAX_WEEKS:
        raise InvalidInput(f"weeks must be a whole number from 1 to {MAX_WEEKS}", code="invalid_weeks")
    return weeks


def report_weeks(today: date, count: int) -> tuple[IsoWeek, ...]:
    """The `count` ISO weeks that end with today's, oldest first."""
    monday = today - timedelta(days=today.weekday())
    return tuple(IsoWeek.of(monday - timedelta(weeks=back)) for back in range(validate_weeks(count) - 1, -1, -1))


def nearest_rank(values: Sequence[int], percent: int) -> int | None:
    """The nearest-rank percentile: the smallest value at least `percent`% of the values are at or
    below (the median is the 50th: the lower middle of an even count). None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = -(-percent * len(ordered) // 100)  # ceil, in integers
    return ordered[max(rank, 1) - 1]


def recovery_report(weeks: tuple[IsoWeek, ...], invoices: Iterable[FailedInvoice], cases: Iterable[CaseOutcome],
                    cancellations: Iterable[Cancellation]) -> RecoveryReport:
    """The figures of each currency for each of `weeks`; rows of other weeks are left out."""
    wanted = set(weeks)
    failed: dict[tuple[str, IsoWeek], list[FailedInvoice]] = defaultdict(list)
    opened: dict[tuple[str, IsoWeek], list[CaseOutcome]] = defaultdict(list)
    cancelled: dict[tuple[str, IsoWeek], int] = defaultdict(int)
    currencies: set[str] = set()
    for invoice in invoices:
        if (week := IsoWeek.of(invoice.failed_on)) in wanted:
            failed[(invoice.currency, week)].append(invoice)
            currencies.add(invoice.currency)
    for case in cases:
        if (week := IsoWeek.of(case.opened_on)) in wanted:
            opened[(case.currency, week)].append(case)
            currencies.add(case.currency)
    for cancellation in cancellations:
        if (week := IsoWeek.of(cancellation.cancelled_on)) in wanted:
            cancelled[(cancellation.currency, week)] += 1
            currencies.add(cancellation.currency)

    def figures(chased: list[FailedInvoice], cases_of: list[CaseOutcome], cancelled_count: int) -> Figures:
        days = [days for case in cases_of if (days := case.days_to_recover) is not None]
        return Figures(failed_invoices=len(chased), failed=sum(invoice.amount for invoice in chased),
                       recovered=sum(invoice.recovered for invoice in chased),
                       credited=sum(invoice.credited for invoice in chased), cases_opened=len(cases_of),
                       cases_recovered=len(days), median_days_to_recover=nearest_rank(days, 50),
                       p90_days_to_recover=nearest_rank(days, 90), accounts_cancelled=cancelled_count)

    reports = []
    for currency in sorted(currencies):
        keys = [(currency, week) for week in weeks]
        reports.append(CurrencyRecovery(
            currency=currency,
            weeks=tuple(WeekFigures(week, figures(failed[key], opened[key], cancelled[key]))
                        for key, week in zip(keys, weeks)),
            total=figures([invoice for key in keys for invoice in failed[key]],
                          [case for key in keys for case in opened[key]], sum(cancelled[key] for key in keys))))
    return RecoveryReport(weeks=weeks, currencies=tuple(reports))


def share_in_words(share: Decimal | None, locale: str) -> str:
    """A share as a percentage in the reader's language ("25%", "99.99%", "25 %" in French), with
    every place it has, so that nothing short of everything reads 100%; a dash for no share."""
    if share is None:
        return "–"
    from babel.numbers import format_percent  # Babel's numbers load only for a report that prints
    return format_percent(share.normalize(), locale=locale, decimal_quantization=False)
