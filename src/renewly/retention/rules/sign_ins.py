"""How long the rows of signing in (the portal's links and sessions, the console's sessions and
refused sign-ins) are kept once they no longer work: the cutoffs the retention batch purges by.

- A **link** works once, until it expires (a link is always used before its expiry, so its
  expiry is when it stopped working, used or not). It is kept `SIGN_IN_HISTORY` longer, so that
  a member who opens it again within a week is told it was used, or expired, rather than that
  it is unknown; the audit log keeps who made it and when it signed someone in.
- A **session** stops working when it is ended (sign-out, a new sign-in, a staff member
  disabled), at its expiry, or once unused for the idle delay; it too is kept
  `SIGN_IN_HISTORY` longer: a week of who was signed in, and until when, for an incident's
  questions.
- A **refused sign-in** counts only inside the throttle's window; after it, it is of no use.

A live session, a link not yet expired and a refusal inside the window are never purged.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

SIGN_IN_HISTORY = timedelta(days=7)


@dataclass(frozen=True)
class SignInCutoffs:
    """A row whose moment is at or before its cutoff is purged."""

    links_expired: datetime  # a link's expires_at
    sessions_over: datetime  # a session's ended_at or expires_at
    sessions_last_seen: datetime  # a session's last_seen_at (unused for the idle delay since)
    failures_at: datetime  # a refused sign-in's at


def sign_in_cutoffs(now: datetime, *, session_idle: timedelta, throttle_window: timedelta) -> SignInCutoffs:
    over = now - SIGN_IN_HISTORY
    return SignInCutoffs(links_expired=over, sessions_over=over, sessions_last_seen=over - session_idle,
                         failures_at=now - throttle_window)


def first_purge_at(*, link_expiry: datetime | None, session_end: datetime | None, session_last_seen: datetime | None,
                   failure_at: datetime | None, session_idle: timedelta, throttle_window: timedelta) -> datetime | None:
    """When the first of these rows falls due, given the earliest moment of each kind (None: no
    such row): the inverse of `sign_in_cutoffs`."""
    moments = [link_expiry and link_expiry + SIGN_IN_HISTORY,
               session_end and session_end + SIGN_IN_HISTORY,
               session_last_seen and session_last_seen + session_idle + SIGN_IN_HISTORY,
               failure_at and failure_at + throttle_window]
    return min((moment for moment in moments if moment is not None), default=None)
