"""The recovery report (docs/dunning.md, "The recovery report"): the rows of the weeks asked for,
loaded set-based (three queries, whatever the number of accounts), then the pure rules
(`dunning/rules/recovery_report.py`) count them. Read only.

The report's weeks end with the week of today in the seller's time zone; each row is dated in
its account's time zone. Rows are fetched a day beyond each end of the weeks (no time zone is
a day away from UTC) and the rules leave out those whose local day falls outside.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

from sqlalchemy import Connection, and_, exists, func, select

from renewly.adapters.db.tables import accounts, dunning_case_invoices, dunning_cases, invoices, payment_attempts
from renewly.billing.rules.invoices import InvoiceStatus
from renewly.dunning.rules.recovery_report import (
    DEFAULT_WEEKS,
    Cancellation,
    CaseOutcome,
    FailedInvoice,
    Figures,
    RecoveryReport,
    recovery_report,
    report_weeks,
    validate_weeks,
)
from renewly.payments.rules.charges import AttemptStatus
from renewly.ports import Ports
from renewly.shared.calendar import local_date

MARGIN = timedelta(days=1)


def recovery_report_of(app: Ports, weeks: int = DEFAULT_WEEKS) -> RecoveryReport:
    """The recovery report of the last `weeks` ISO weeks, this one included."""
    validate_weeks(weeks)
    today = local_date(app.clock.now(), app.settings.seller.timezone)
    chosen = report_weeks(today, weeks)
    since = datetime.combine(chosen[0].monday, time(), UTC) - MARGIN
    until = datetime.combine(chosen[-1].monday + timedelta(days=7), time(), UTC) + MARGIN
    # Each read sees what was committed when it ran (READ COMMITTED): a payment landing between
    # two of them may show in one figure and not yet in another, which a report can live with.
    with app.engine.connect() as conn:
        return recovery_report(chosen, _failed_invoices(conn, since, until), _cases(conn, since, until),
                               _cancellations(conn, since, until))


def _failed_invoices(conn: Connection, since: datetime, until: datetime) -> list[FailedInvoice]:
    """The invoices that joined a case in the window, with what charges and credit notes did to them."""
    credit = invoices.alias("credit")
    collected = (select(func.coalesce(func.sum(payment_attempts.c.amount), 0))
                 .where(payment_attempts.c.invoice_id == invoices.c.id,
                        payment_attempts.c.status == AttemptStatus.SUCCEEDED.value).scalar_subquery())
    credited = (select(func.coalesce(func.sum(credit.c.total), 0))
                .where(credit.c.credited_invoice_id == invoices.c.id).scalar_subquery())
    rows = conn.execute(
        select(invoices.c.currency, invoices.c.total, collected.label("collected"), credited.label("credited"),
               dunning_case_invoices.c.added_at, accounts.c.timezone)
        .join(invoices, invoices.c.id == dunning_case_invoices.c.invoice_id)
        .join(accounts, accounts.c.id == invoices.c.account_id)
        .where(dunning_case_invoices.c.added_at >= since, dunning_case_invoices.c.added_at < until))
    return [FailedInvoice(row.currency, int(row.total), int(row.collected), int(row.credited),
                          local_date(row.added_at, row.timezone)) for row in rows]


def _cases(conn: Connection, since: datetime, until: datetime) -> list[CaseOutcome]:
    """The cases opened in the window (not those merged into another, migration 0007); recovered:
    ended with nothing unpaid, at least one of its invoices paid."""
    paid_one = exists().where(dunning_case_invoices.c.case_id == dunning_cases.c.id,
                              invoices.c.id == dunning_case_invoices.c.invoice_id,
                              invoices.c.status == InvoiceStatus.PAID.value)
    rows = conn.execute(
        select(dunning_cases.c.opened_at, dunning_cases.c.closed_at, accounts.c.currency, accounts.c.timezone,
               and_(dunning_cases.c.status == "recovered", paid_one).label("recovered"))
        .join(accounts, accounts.c.id == dunning_cases.c.account_id)
        .where(dunning_cases.c.opened_at >= since, dunning_cases.c.opened_at < until,
               dunning_cases.c.status != "merged"))
    return [CaseOutcome(row.currency, local_date(row.opened_at, row.timezone),
                        local_date(row.closed_at, row.timezone) if row.recovered and row.closed_at else None)
            for row in rows]


def _cancellations(conn: Connection, since: datetime, until: datetime) -> list[Cancellation]:
    """Accounts cancelled in the window, still cancelled or deleted since (only dunning cancels an
    account; a payment during a reactivation undoes it, R9.3)."""
    rows = conn.execute(select(accounts.c.currency, accounts.c.timezone, accounts.c.cancelled_at)
                        .where(accounts.c.cancelled_at >= since, accounts.c.cancelled_at < until))
    return [Cancellation(row.currency, local_date(row.cancelled_at, row.timezone)) for row in rows]


def report_as_json(report: RecoveryReport, timezone: str) -> dict[str, Any]:
    """The report as `renewly dunning recovery --json` prints it and the API answers it: amounts
    in minor units beside their currency, the share a number from 0 to 1 (4 places, rounded down)."""
    return {"object": "dunning_recovery", "timezone": timezone, "first_day": report.first_day,
            "last_day": report.last_day, "weeks": [week.label for week in report.weeks],
            "currencies": [{"currency": each.currency,
                            "weeks": [{"week": week.week.label, "monday": week.week.monday,
                                       **_figures_json(week.figures)} for week in each.weeks],
                            "total": _figures_json(each.total)} for each in report.currencies]}


def _figures_json(figures: Figures) -> dict[str, Any]:
    share = figures.share_recovered
    return {"failed_invoices": figures.failed_invoices, "failed": figures.failed, "recovered": figures.recovered,
            "credited": figures.credited, "unpaid": figures.unpaid,
            "share_recovered": None if share is None else float(share),
            "cases_opened": figures.cases_opened, "cases_recovered": figures.cases_recovered,
            "median_days_to_recover": figures.median_days_to_recover,
            "p90_days_to_recover": figures.p90_days_to_recover, "accounts_cancelled": figures.accounts_cancelled}
