"""R9.2: a temporary reactivation's window, in the account's local days.

Support opens the billing pages of a cancelled account to its owner for today and the `days`
after it, to the end of the last one in the account's time zone, so that the date the owner
reads is the whole last day. The deletion date (R10) does not move.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from renewly.shared.calendar import local_date
from renewly.shared.errors import InvalidInput


def window_days(days: int | None, policy_days: int) -> int:
    """The days a window lasts: those asked for, else the policy's; at least one."""
    days = policy_days if days is None else days
    if days < 1:
        raise InvalidInput(f"a reactivation lasts at least one day (got {days})", code="invalid_days")
    return days


def window_end(today: date, days: int) -> date:
    """The local day at whose midnight a window granted `today` for `days` days ends."""
    return today + timedelta(days=days + 1)


def last_day(ends_at: datetime, timezone: str) -> date:
    """The last local day of a window that ends at `ends_at` (a local midnight)."""
    return local_date(ends_at - timedelta(microseconds=1), timezone)
