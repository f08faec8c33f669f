"""Billing periods and local dates.

A subscription's period boundaries are computed from its anchor date, never from the previous
boundary, so that a month-end anchor survives short months: Jan 31 -> Feb 28 (29) -> Mar 31.
A day is a calendar day in the account's time zone; the renewal of a period ending on day D
falls due at local midnight of D.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from renewly.shared.errors import InvalidInput

INTERVAL_MONTHS = {"month": 1, "year": 12}


def validate_interval(interval: str) -> str:
    if interval not in INTERVAL_MONTHS:
        raise InvalidInput(f"unknown interval {interval!r}: expected month or year", code="unknown_interval")
    return interval


# A well-formed IANA name: parts of letters, digits, "_", "+", "-" (Etc/GMT+1) joined by "/"; no
# "." (no path out of the folder). `available_timezones` leaves out the folder's "right/" and
# "posix/" copies and "posixrules", which ZoneInfo would load.
_ZONE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_+-]*(/[A-Za-z0-9_+-]+)*")
_UNLISTED = ("right", "posix", "posixrules")


def is_known_timezone(name: str) -> bool:
    """Whether `name` is one of `available_timezones()`, which walks the whole time-zone folder
    at every call (15 to 35 ms; the settings check the seller's zone at every start): a
    well-formed name is known when its zone loads, a read of its one file (ZoneInfo keeps it);
    any other name is looked up in the list, read once a process."""
    if _ZONE_NAME.fullmatch(name) and name.split("/")[0] not in _UNLISTED:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError, OSError):  # no such file, not a zone file, a folder
            return False
        return True
    return name in _listed_timezones()


@cache
def _listed_timezones() -> frozenset[str]:
    return frozenset(available_timezones())


def validate_timezone(name: str) -> str:
    if not is_known_timezone(name):
        raise InvalidInput(f"unknown time zone {name!r}: expected an IANA name such as Europe/Paris",
                           code="unknown_timezone")
    return name


def add_months(anchor: date, months: int) -> date:
    """The anchor's day of month, `months` later, clamped to the end of shorter months."""
    index = anchor.month - 1 + months
    year, month = anchor.year + index // 12, index % 12 + 1
    return date(year, month, min(anchor.day, calendar.monthrange(year, month)[1]))


def period_boundary(anchor: date, interval: str, index: int) -> date:
    """The start of period number `index` (0 is the first) of a subscription anchored on `anchor`."""
    return add_months(anchor, INTERVAL_MONTHS[interval] * index)


def local_midnight_utc(day: date, tz: str) -> datetime:
    """The UTC instant at which `day` begins in time zone `tz`."""
    return datetime.combine(day, time.min, tzinfo=ZoneInfo(tz)).astimezone(UTC)


def local_date(instant: datetime, tz: str) -> date:
    return instant.astimezone(ZoneInfo(tz)).date()


def days_between(start: date, end: date) -> int:
    return (end - start).days


def end_of_day_utc(day: date) -> datetime:
    """The last instant of `day` in UTC: the meaning of a bare `--as-of DATE`."""
    return datetime.combine(day + timedelta(days=1), time.min, tzinfo=UTC) - timedelta(microseconds=1)
