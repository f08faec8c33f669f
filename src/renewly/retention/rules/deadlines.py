"""When the law no longer lets us keep something (R10): the deadlines, as local dates.

R10.1: an account's personal data is deleted `deletion_days` local days after its cancellation
day (set once, never moved by a reactivation). R10.2: an issued document is kept until its issue
date plus `invoice_retention_years`, counted in calendar months (29 February's falls on 28).
"""

from __future__ import annotations

from datetime import date, timedelta

from renewly.shared.calendar import add_months


def deletion_date(cancelled_on: date, deletion_days: int) -> date:
    """R10.1: the local day an account's personal data is deleted, from its local cancellation day."""
    return cancelled_on + timedelta(days=deletion_days)


def retention_ends(issue_date: date, years: int) -> date:
    """R10.2: the first day an issued document may be deleted."""
    return add_months(issue_date, 12 * years)


def last_purgeable_issue_date(today: date, years: int) -> date:
    """The latest issue date whose retention has ended by `today` (month ends make it inexact to
    count back: a document of 29 February is kept until 28 February)."""
    day = add_months(today, -12 * years)
    while retention_ends(day + timedelta(days=1), years) <= today:
        day += timedelta(days=1)
    return day

