"""Staff accounts of the support console (`renewly staff create | list | set-password | disable`,
docs/console.md).

A password is hashed with Argon2id (`PARAMETERS`) and only the hash is kept; it is never
printed, logged nor audited. A staff member is never deleted: the audit log names them
`console:staff-ID`. Disabling one refuses their sign-in and ends their sessions at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from argon2 import PasswordHasher, profiles
from sqlalchemy import Connection, select
from sqlalchemy.exc import IntegrityError

from renewly.accounts.rules.members import validate_email
from renewly.adapters.db.tables import staff, staff_sessions
from renewly.console.rules.staff import StaffRole, validate_name, validate_password, validate_role
from renewly.outbox.records import audit
from renewly.ports import Ports
from renewly.shared.errors import Conflict, NotFound

ACTOR_PREFIX = "console:staff-"


@dataclass(frozen=True)
class StaffMember:
    """Who is signed in to the console: what the pages and the audit log know of them."""

    id: int
    email: str
    name: str
    role: StaffRole

    @property
    def actor(self) -> str:
        """Who the audit log names for what this staff member did (as `api:key-ID` for a key)."""
        return f"{ACTOR_PREFIX}{self.id}"


# Argon2id's cost: RFC 9106's second recommendation (64 MiB, 3 passes, 4 lanes), argon2-cffi's
# default. The tests make it cheap (tests/console/conftest.py); a hash made under other
# parameters is made again under these at its next sign-in.
PARAMETERS = profiles.RFC_9106_LOW_MEMORY


def hasher() -> PasswordHasher:
    return PasswordHasher.from_parameters(PARAMETERS)


def create_staff(app: Ports, *, email: str, name: str, role: str, password: str, actor: str) -> StaffMember:
    email, name, checked_role = validate_email(email), validate_name(name), validate_role(role)
    password_hash = hasher().hash(validate_password(password))
    now = app.clock.now()
    try:
        with app.engine.begin() as conn:
            staff_id = conn.execute(staff.insert().values(
                email=email, name=name, role=checked_role.value, password_hash=password_hash, created_at=now,
            ).returning(staff.c.id)).scalar_one()
            audit(conn, now, actor, "staff.created", "staff", staff_id, details={"email": email, "role": checked_role})
    except IntegrityError:
        raise Conflict(f"{email} is already a staff member", code="staff_exists") from None
    return StaffMember(id=staff_id, email=email, name=name, role=checked_role)


def list_staff(app: Ports) -> list[dict[str, Any]]:
    with app.engine.connect() as conn:
        rows = conn.execute(select(staff.c.id, staff.c.email, staff.c.name, staff.c.role, staff.c.created_at,
                                   staff.c.disabled_at).order_by(staff.c.id)).all()
    return [dict(row._mapping) for row in rows]


def disable_staff(app: Ports, email: str, *, actor: str) -> datetime:
    """No more sign-in for them; their open sessions end now. Disabling twice keeps the first date."""
    email = validate_email(email)
    now = app.clock.now()
    with app.engine.begin() as conn:
        row = conn.execute(select(staff.c.id, staff.c.disabled_at).where(staff.c.email == email)).first()
        if row is None:
            raise NotFound(f"{email} is not a staff member", code="unknown_staff")
        if row.disabled_at is not None:
            return row.disabled_at
        conn.execute(staff.update().where(staff.c.id == row.id).values(disabled_at=now))
        conn.execute(staff_sessions.update().where(staff_sessions.c.staff_id == row.id,
                                                   staff_sessions.c.ended_at.is_(None)).values(ended_at=now))
        audit(conn, now, actor, "staff.disabled", "staff", row.id, details={"email": email})
    return now


def set_staff_password(app: Ports, email: str, *, password: str, actor: str) -> None:
    """A new password (forgotten, or told to someone it should not have been): its hash replaces
    the old one, and every session of theirs ends, so that whoever knew the old one is signed
    out too. A disabled staff member stays disabled."""
    email = validate_email(email)
    password_hash = hasher().hash(validate_password(password))
    now = app.clock.now()
    with app.engine.begin() as conn:
        staff_id = _staff_id(conn, email)
        conn.execute(staff.update().where(staff.c.id == staff_id).values(password_hash=password_hash))
        ended = conn.execute(staff_sessions.update().where(staff_sessions.c.staff_id == staff_id,
                                                           staff_sessions.c.ended_at.is_(None))
                             .values(ended_at=now).returning(staff_sessions.c.id)).all()
        audit(conn, now, actor, "staff.password_set", "staff", staff_id,
              details={"email": email, "sessions_ended": len(ended)})


def require_staff(app: Ports, email: str) -> None:
    """Refused (404) unless `email` names a staff member: asked before a password is typed."""
    with app.engine.connect() as conn:
        _staff_id(conn, validate_email(email))


def _staff_id(conn: Connection, email: str) -> int:
    staff_id = conn.execute(select(staff.c.id).where(staff.c.email == email)).scalar()
    if staff_id is None:
        raise NotFound(f"{email} is not a staff member", code="unknown_staff")
    return staff_id
