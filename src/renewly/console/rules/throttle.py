"""The console's sign-in throttle: after a few refused sign-ins under one key (an IP address, an
e-mail address typed) within a window, that key waits before its next try, longer at each new
refusal, and never longer than the window: the real user is slowed down, never locked out.

A try made while its key waits is refused without checking the password and is not counted, so
the wait cannot be stretched by trying during it. Once the last refusal is older than the window,
nothing is counted any more.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

FAILURES_BEFORE_WAIT = 5
WINDOW = timedelta(minutes=15)
FIRST_WAIT = timedelta(minutes=1)
LONGEST_WAIT = WINDOW


def wait_after(failures: int) -> timedelta:
    """How long a key waits after its `failures`-th refusal within the window: nothing before the
    fifth, then 1, 2, 4, 8 minutes, then 15 at most."""
    if failures < FAILURES_BEFORE_WAIT:
        return timedelta(0)
    doublings = min(failures - FAILURES_BEFORE_WAIT, 4)  # 2**4 minutes is past the longest wait
    return min(FIRST_WAIT * (1 << doublings), LONGEST_WAIT)


def retry_at(failures: Iterable[datetime], now: datetime) -> datetime | None:
    """When a key may try again, given its refusals (any order); None: it may now."""
    recent = [at for at in failures if now - WINDOW < at <= now]
    if len(recent) < FAILURES_BEFORE_WAIT:
        return None
    until = max(recent) + wait_after(len(recent))
    return until if until > now else None
