"""Purging the rows of signing in that no longer serve (retention/rules/sign_ins.py says which):
the portal's links and sessions, the console's sessions and refused sign-ins. Part of the
retention batch: one DELETE per table, whatever the number of rows, in one transaction; run
twice, or by two workers at once, the second deletes nothing (each row is deleted once).

Nothing else deletes them but a member's removal and an account's deletion (their links and
sessions go with the member, ON DELETE CASCADE) and a new refused sign-in (the console deletes
the refusals older than the throttle's window as it counts a new one).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, func, or_, select

from renewly.adapters.db.tables import portal_links, portal_sessions, staff_sessions, staff_sign_in_failures
from renewly.console.rules.throttle import WINDOW as THROTTLE_WINDOW
from renewly.ports import Ports
from renewly.retention.rules.sign_ins import first_purge_at, sign_in_cutoffs


def purge_sign_ins(app: Ports, as_of: datetime) -> int:
    """Delete the sign-in rows past their keeping as of `as_of`; how many went."""
    cutoffs = sign_in_cutoffs(as_of, session_idle=_idle(app), throttle_window=THROTTLE_WINDOW)
    with app.engine.begin() as conn:
        deleted = conn.execute(portal_links.delete().where(portal_links.c.expires_at <= cutoffs.links_expired)).rowcount
        for sessions in (portal_sessions, staff_sessions):
            deleted += conn.execute(sessions.delete().where(or_(
                sessions.c.ended_at <= cutoffs.sessions_over, sessions.c.expires_at <= cutoffs.sessions_over,
                sessions.c.last_seen_at <= cutoffs.sessions_last_seen))).rowcount
        deleted += conn.execute(staff_sign_in_failures.delete()
                                .where(staff_sign_in_failures.c.at <= cutoffs.failures_at)).rowcount
    return deleted


def next_sign_in_purge_at(conn: Connection, app: Ports) -> datetime | None:
    """When the first sign-in row falls due for purging: one query, each table's earliest moments."""
    def earliest(column):
        return select(func.min(column)).scalar_subquery()

    row = conn.execute(select(
        earliest(portal_links.c.expires_at),
        earliest(portal_sessions.c.ended_at), earliest(portal_sessions.c.expires_at),
        earliest(portal_sessions.c.last_seen_at),
        earliest(staff_sessions.c.ended_at), earliest(staff_sessions.c.expires_at),
        earliest(staff_sessions.c.last_seen_at),
        earliest(staff_sign_in_failures.c.at))).one()
    link, portal_ended, portal_expiry, portal_seen, staff_ended, staff_expiry, staff_seen, failure = row
    return first_purge_at(link_expiry=link,
                          session_end=_earliest(portal_ended, portal_expiry, staff_ended, staff_expiry),
                          session_last_seen=_earliest(portal_seen, staff_seen), failure_at=failure,
                          session_idle=_idle(app), throttle_window=THROTTLE_WINDOW)


def _earliest(*moments: datetime | None) -> datetime | None:
    return min((moment for moment in moments if moment is not None), default=None)


def _idle(app: Ports) -> timedelta:
    return timedelta(minutes=app.settings.portal.session_idle_minutes)
