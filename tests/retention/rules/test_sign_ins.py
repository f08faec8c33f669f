"""Which sign-in rows the retention batch purges, and when the first falls due: the two say the
same (a row due at the moment `first_purge_at` gives is past the cutoff taken then)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from renewly.retention.rules.sign_ins import SIGN_IN_HISTORY, first_purge_at, sign_in_cutoffs

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
IDLE, WINDOW = timedelta(minutes=30), timedelta(minutes=15)


def test_links_and_sessions_are_kept_a_week_after_they_stop_working_refusals_only_their_window():
    cutoffs = sign_in_cutoffs(NOW, session_idle=IDLE, throttle_window=WINDOW)
    assert SIGN_IN_HISTORY == timedelta(days=7)
    assert cutoffs.links_expired == cutoffs.sessions_over == NOW - timedelta(days=7)
    assert cutoffs.sessions_last_seen == NOW - timedelta(days=7, minutes=30)
    assert cutoffs.failures_at == NOW - WINDOW


def test_the_first_purge_is_the_earliest_row_past_its_keeping():
    def first(**moments):
        given = {"link_expiry": None, "session_end": None, "session_last_seen": None, "failure_at": None} | moments
        return first_purge_at(**given, session_idle=IDLE, throttle_window=WINDOW)

    assert first() is None
    assert first(failure_at=NOW) == NOW + WINDOW
    assert first(link_expiry=NOW, session_last_seen=NOW) == NOW + timedelta(days=7)
    assert first(session_last_seen=NOW) == NOW + timedelta(days=7, minutes=30)
    assert first(session_end=NOW, failure_at=NOW + timedelta(days=8)) == NOW + timedelta(days=7)

    def cutoffs_at(moment):
        assert moment is not None
        return sign_in_cutoffs(moment, session_idle=IDLE, throttle_window=WINDOW)

    assert cutoffs_at(first(link_expiry=NOW)).links_expired >= NOW
    assert cutoffs_at(first(session_end=NOW)).sessions_over >= NOW
    assert cutoffs_at(first(session_last_seen=NOW)).sessions_last_seen >= NOW
    assert cutoffs_at(first(failure_at=NOW)).failures_at >= NOW
