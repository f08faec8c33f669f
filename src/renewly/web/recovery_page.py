"""What the support console's recovery page shows (docs/dunning.md, "The recovery report"): the
report of `dunning/recovery_report.py` in the reader's language, each currency with its charts
(web/charts.py) and its table, every value already in words, for the partial
`web/console/templates/recovery.html` to lay out. A page includes it with `recovery=` this
value, in an environment with Jinja2's i18n extension (newstyle gettext, trimmed) and autoescape.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from markupsafe import Markup

from renewly.billing.rules.invoices import format_day
from renewly.config.catalogues import translations
from renewly.dunning.rules.recovery_report import Figures, RecoveryReport, share_in_words
from renewly.shared.money import Money
from renewly.web.charts import Series, bar_chart, line_chart

SHARE_SCALE = 10_000  # a share's 4 places as a whole number: the charts draw integers


@dataclass(frozen=True, slots=True)
class RecoveryRow:
    week: str  # "2026-W05", or the total's label
    first_day: str  # the week's Monday in words; "" for the total
    failed_invoices: int
    failed: str
    recovered: str
    credited: str
    unpaid: str
    share: str
    cases_recovered: int
    cases_opened: int
    median_days: str
    p90_days: str
    accounts_cancelled: int


@dataclass(frozen=True, slots=True)
class CurrencySection:
    currency: str
    amounts_chart: Markup
    share_chart: Markup
    days_chart: Markup
    weeks: tuple[RecoveryRow, ...]
    total: RecoveryRow


@dataclass(frozen=True, slots=True)
class RecoveryPage:
    first_day: str
    last_day: str
    timezone: str
    week_count: int
    currencies: tuple[CurrencySection, ...]


def recovery_page(report: RecoveryReport, *, locale: str, timezone: str) -> RecoveryPage:
    gettext, ngettext = translations(locale).gettext, translations(locale).ngettext
    labels = [week.label for week in report.weeks]
    no_data = gettext("No data for these weeks")

    def days_in_words(days: int | None) -> str:
        return "–" if days is None else ngettext("%(num)d day", "%(num)d days", days) % {"num": days}

    def row(label: str, monday: date | None, figures: Figures, currency: str) -> RecoveryRow:
        def amount(minor_units: int) -> str:
            return Money(minor_units, currency).format(locale)
        return RecoveryRow(week=label, first_day=format_day(monday, locale) if monday else "",
                           failed_invoices=figures.failed_invoices, failed=amount(figures.failed),
                           recovered=amount(figures.recovered), credited=amount(figures.credited),
                           unpaid=amount(figures.unpaid), share=share_in_words(figures.share_recovered, locale),
                           cases_recovered=figures.cases_recovered, cases_opened=figures.cases_opened,
                           median_days=days_in_words(figures.median_days_to_recover),
                           p90_days=days_in_words(figures.p90_days_to_recover),
                           accounts_cancelled=figures.accounts_cancelled)

    sections = []
    for each in report.currencies:
        code = each.currency.lower()
        weeks = [week.figures for week in each.weeks]
        named = {"currency": each.currency}
        sections.append(CurrencySection(
            currency=each.currency,
            amounts_chart=bar_chart(
                f"recovery-amounts-{code}", title=gettext("Failed and recovered, %(currency)s") % named,
                description=gettext("For each week, the total of the invoices that entered dunning that week, "
                                    "and how much of it was recovered since."),
                labels=labels, no_data=no_data,
                series=[Series(gettext("failed"), tuple(figures.failed for figures in weeks)),
                        Series(gettext("recovered"), tuple(figures.recovered for figures in weeks))],
                value_text=_money_text(each.currency, locale)),
            share_chart=line_chart(
                f"recovery-share-{code}", title=gettext("Share recovered, %(currency)s") % named,
                description=gettext("For each week, the share of the failed amount recovered since; no point "
                                    "for a week when no payment failed."),
                labels=labels, no_data=no_data, top=SHARE_SCALE,
                series=[Series(gettext("share recovered"), tuple(
                    None if figures.share_recovered is None else int(figures.share_recovered * SHARE_SCALE)
                    for figures in weeks))],
                value_text=lambda scaled: share_in_words(Decimal(scaled) / SHARE_SCALE, locale)),
            days_chart=line_chart(
                f"recovery-days-{code}", title=gettext("Days to recover, %(currency)s") % named,
                description=gettext("For the cases opened each week that recovered: the median and the 90th "
                                    "percentile of the days from opening to recovery."),
                labels=labels, no_data=no_data,
                series=[Series(gettext("median"), tuple(figures.median_days_to_recover for figures in weeks)),
                        Series(gettext("90th percentile"), tuple(figures.p90_days_to_recover for figures in weeks))],
                value_text=days_in_words),
            weeks=tuple(row(week.week.label, week.week.monday, week.figures, each.currency) for week in each.weeks),
            total=row(gettext("All weeks"), None, each.total, each.currency)))
    return RecoveryPage(first_day=format_day(report.first_day, locale), last_day=format_day(report.last_day, locale),
                        timezone=timezone, week_count=len(report.weeks), currencies=tuple(sections))


def _money_text(currency: str, locale: str) -> Callable[[int], str]:
    return lambda minor_units: Money(minor_units, currency).format(locale)
