"""Signing in to the support console: e-mail and password, a server-side session, the throttle.

- A sign-in checks the password against the stored Argon2id hash. An unknown address, a wrong
  password and a disabled staff member get the same refusal, after the same work (a hash is
  checked for an unknown address too), so the page tells nobody which addresses are staff.
- Every refusal is counted under two keys, the request's IP address and the e-mail address as
  typed; while either waits (console/rules/throttle.py), a try is refused as throttled, with the
  instant it may come again, without checking the password. A sign-in clears its address's count.
- A sign-in starts a session: a new random id (256 bits) for the browser's cookie, only its
  SHA-256 stored; the session that browser held is ended (a new id at every sign-in). It ends at
  sign-out, after `portal.session_idle_minutes` unused, `portal.session_hours` after sign-in, or
  when the staff member is disabled, on the injected clock.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, delete, select

from renewly.adapters.db.tables import staff, staff_sessions, staff_sign_in_failures
from renewly.console.rules.staff import LONGEST_PASSWORD, StaffRole
from renewly.console.rules.throttle import WINDOW, retry_at
from renewly.console.staff import ACTOR_PREFIX, StaffMember, hasher
from renewly.outbox.records import audit
from renewly.ports import Ports

KEY_LENGTH = 400  # staff_sign_in_failures.key
LAST_SEEN_GRANULARITY = timedelta(minutes=1)  # how often a session's last use is written


class SignInRefused(Exception):
    """Unknown address, wrong password or disabled: one answer for all three."""


class SignInThrottled(Exception):
    """Too many refusals lately for this IP address or this e-mail address: wait until `retry_at`."""

    def __init__(self, retry_at: datetime) -> None:
        super().__init__(f"try again at {retry_at.isoformat()}")
        self.retry_at = retry_at


@dataclass(frozen=True)
class SignedIn:
    """A session just started: its secret id goes to the browser's cookie, and nowhere else."""

    secret: str
    staff: StaffMember


@dataclass(frozen=True)
class StaffSession:
    session_id: int
    staff: StaffMember


@cache
def _unknown_address_hash() -> str:
    """A hash to check an unknown address's password against: the same work as a real check."""
    return hasher().hash(secrets.token_urlsafe(16))


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def throttle_keys(ip: str, email: str) -> tuple[str, str]:
    return (f"ip:{ip}"[:KEY_LENGTH], f"email:{email.strip().lower()}"[:KEY_LENGTH])


def sign_in(app: Ports, *, email: str, password: str, ip: str, replacing: str | None = None) -> SignedIn:
    now = app.clock.now()
    keys = throttle_keys(ip, email)
    with app.engine.connect() as conn:
        waits = [retry_at(conn.execute(select(staff_sign_in_failures.c.at).where(
            staff_sign_in_failures.c.key == key, staff_sign_in_failures.c.at > now - WINDOW)).scalars(), now)
            for key in keys]
        if any(waits):
            raise SignInThrottled(max(wait for wait in waits if wait is not None))
        row = conn.execute(select(staff).where(staff.c.email == email.strip().lower())).first()
    if not _password_holds(row.password_hash if row is not None else _unknown_address_hash(), password) \
            or row is None or row.disabled_at is not None:
        with app.engine.begin() as conn:
            # The window's old rows go as new ones come: the table holds minutes of refusals.
            conn.execute(delete(staff_sign_in_failures).where(staff_sign_in_failures.c.at <= now - WINDOW))
            conn.execute(staff_sign_in_failures.insert(), [{"key": key, "at": now} for key in keys])
        raise SignInRefused()
    secret = secrets.token_urlsafe(32)
    with app.engine.begin() as conn:
        if replacing:
            _end(conn, replacing, now)
        conn.execute(staff_sessions.insert().values(
            staff_id=row.id, secret_hash=digest(secret), created_at=now, last_seen_at=now,
            expires_at=now + timedelta(hours=app.settings.portal.session_hours)))
        conn.execute(delete(staff_sign_in_failures).where(staff_sign_in_failures.c.key == keys[1]))
        if hasher().check_needs_rehash(row.password_hash):  # the library's parameters grew since
            conn.execute(staff.update().where(staff.c.id == row.id).values(password_hash=hasher().hash(password)))
        audit(conn, now, f"{ACTOR_PREFIX}{row.id}", "console.signed_in", "staff", row.id)
    return SignedIn(secret=secret, staff=_member(row))


def session_of(app: Ports, secret: str) -> StaffSession | None:
    """The live session a cookie names, or None (unknown, ended, idle too long, too old, disabled)."""
    now = app.clock.now()
    idle = timedelta(minutes=app.settings.portal.session_idle_minutes)
    with app.engine.connect() as conn:
        row = conn.execute(select(staff_sessions.c.id.label("session_id"), staff_sessions.c.last_seen_at,
                                  staff_sessions.c.expires_at, staff_sessions.c.ended_at, staff.c.id, staff.c.email,
                                  staff.c.name, staff.c.role, staff.c.disabled_at)
                           .join(staff, staff.c.id == staff_sessions.c.staff_id)
                           .where(staff_sessions.c.secret_hash == digest(secret))).first()
    if (row is None or row.ended_at is not None or row.disabled_at is not None or row.expires_at <= now
            or row.last_seen_at + idle <= now):
        return None
    if now - row.last_seen_at >= LAST_SEEN_GRANULARITY:
        with app.engine.begin() as conn:
            conn.execute(staff_sessions.update().where(staff_sessions.c.id == row.session_id)
                         .values(last_seen_at=now))
    return StaffSession(session_id=row.session_id, staff=_member(row))


def sign_out(app: Ports, secret: str) -> None:
    with app.engine.begin() as conn:
        _end(conn, secret, app.clock.now())


def _password_holds(password_hash: str, password: str) -> bool:
    if len(password) > LONGEST_PASSWORD:  # never set so (rules/staff.py): refused without the work
        return False
    try:
        return hasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def _member(row) -> StaffMember:
    return StaffMember(id=row.id, email=row.email, name=row.name, role=StaffRole(row.role))


def _end(conn: Connection, secret: str, now: datetime) -> None:
    conn.execute(staff_sessions.update().where(staff_sessions.c.secret_hash == digest(secret),
                                               staff_sessions.c.ended_at.is_(None)).values(ended_at=now))
