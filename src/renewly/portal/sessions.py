"""Signing in to the billing portal: one-time links, and the server-side sessions they open.

- A **link** is made for one member of one account, by the host product (`POST
  /v1/portal_sessions`, as Stripe's customer-portal sessions) or by an operator (`renewly portal
  link`). Its token is 192 random bits; only its SHA-256 is stored. It works once, for
  `portal.link_minutes` measured on the injected clock; a cancelled account's member gets one too,
  to read why (R9.1); a deleted account's members are gone (R10.1).
- Opening it starts a **session**: a new random id (256 bits) that the browser keeps in an
  HttpOnly cookie; only its SHA-256 is stored. A session the same browser held before is ended
  (a new id at every sign-in). It ends at sign-out, after `portal.session_idle_minutes` unused,
  and `portal.session_hours` after sign-in, whichever comes first.

A session names a member, not a role: who may see what is asked again of the account at every
page (renewly.portal.pages), so that a role changed, an ownership transferred or an account
cancelled takes effect at the next click. A member removed loses their sessions (ON DELETE CASCADE).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from renewly.accounts.accounts import load_account
from renewly.accounts.rules.members import AccountStatus, validate_email
from renewly.adapters.db.tables import accounts, members, portal_links, portal_sessions
from renewly.outbox.records import audit
from renewly.ports import Ports
from renewly.shared.errors import InvalidInput, NotAllowed, NotFound

PATH = "/portal/sign-in/"
# The test clock's address, as the removal links' (accounts/removal_links.py): never real.
TEST_CLOCK_URL = "https://billing.renewly.example"
LAST_SEEN_GRANULARITY = timedelta(minutes=1)  # how often a session's last use is written


@dataclass(frozen=True)
class PortalLink:
    url: str
    member: str
    account_id: int
    expires_at: datetime


@dataclass(frozen=True)
class SignedIn:
    """A session just started: its secret id goes to the browser's cookie, and nowhere else."""

    secret: str
    account_id: int
    member: str


@dataclass(frozen=True)
class PortalSession:
    """Who a live session is: a member of one account (their role is asked of the account)."""

    session_id: int
    member_id: int
    account_id: int
    member: str


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def portal_url(app: Ports) -> str:
    """Where the portal's pages are reached: `public_url`; on the test clock, a fixed example."""
    url = app.settings.public_url or (TEST_CLOCK_URL if app.settings.clock == "test" else "")
    if not url:
        raise InvalidInput("public_url is not set: a portal link is an address on it (docs/portal.md, "
                           "RENEWLY_PUBLIC_URL)", code="portal_unconfigured")
    return url


def create_link(app: Ports, account_id: int, *, member: str, actor: str) -> PortalLink:
    """A one-time sign-in link for a member of the account (any role: what they may see is
    decided page by page)."""
    email = validate_email(member)
    base = portal_url(app)
    now = app.clock.now()
    token = secrets.token_urlsafe(24)  # 192 bits: the link fits a line of 80 columns
    expires_at = now + timedelta(minutes=app.settings.portal.link_minutes)
    with app.engine.begin() as conn:
        account = load_account(conn, account_id)
        if account.status == AccountStatus.DELETED:
            raise NotAllowed(f"account {account_id} was deleted; nobody can sign in to it any more",
                             code="account_deleted")
        member_id = conn.execute(select(members.c.id).where(members.c.account_id == account_id,
                                                            members.c.email == email)).scalar()
        if member_id is None:
            raise NotFound(f"{email} is not a member of account {account_id}", code="unknown_member")
        conn.execute(portal_links.insert().values(member_id=member_id, token_hash=digest(token), created_by=actor,
                                                  created_at=now, expires_at=expires_at))
        audit(conn, now, actor, "portal_link.created", "account", account_id, details={"member_id": member_id})
    return PortalLink(url=base + PATH + token, member=email, account_id=account_id, expires_at=expires_at)


def sign_in(app: Ports, token: str, *, replacing: str | None = None) -> SignedIn:
    """Open a link: used up now, it starts a new session; `replacing`, the session this browser
    held (if any), is ended. Refused with a stable code when the link is unknown, used or expired."""
    now = app.clock.now()
    secret = secrets.token_urlsafe(32)
    portal = app.settings.portal
    with app.engine.begin() as conn:
        link = conn.execute(select(portal_links.c.id, portal_links.c.member_id, portal_links.c.used_at,
                                   portal_links.c.expires_at, members.c.account_id, members.c.email)
                            .join(members, members.c.id == portal_links.c.member_id)
                            .where(portal_links.c.token_hash == digest(token))).first()
        if link is None:
            raise NotFound("this sign-in link is not valid", code="portal_link_invalid")
        if link.used_at is not None:
            raise NotAllowed("this sign-in link was already used", code="portal_link_used")
        if link.expires_at <= now:
            raise NotAllowed("this sign-in link expired", code="portal_link_expired")
        # Used once, even by two clicks at once: only the update that finds it unused wins.
        won = conn.execute(portal_links.update().where(portal_links.c.id == link.id, portal_links.c.used_at.is_(None))
                           .values(used_at=now)).rowcount
        if won != 1:
            raise NotAllowed("this sign-in link was already used", code="portal_link_used")
        if replacing:
            _end(conn, replacing, now)
        conn.execute(portal_sessions.insert().values(
            member_id=link.member_id, secret_hash=digest(secret), created_at=now, last_seen_at=now,
            expires_at=now + timedelta(hours=portal.session_hours)))
        audit(conn, now, f"member:{link.member_id}", "portal.signed_in", "account", link.account_id,
              details={"member_id": link.member_id})
    return SignedIn(secret=secret, account_id=link.account_id, member=link.email)


def session_of(app: Ports, secret: str) -> PortalSession | None:
    """The live session a cookie names, or None (unknown, ended, idle too long, too old)."""
    found = _live(app, secret, portal_sessions.c.id, portal_sessions.c.member_id, members.c.account_id,
                  members.c.email)
    if found is None:
        return None
    row, now = found
    if now - row.last_seen_at >= LAST_SEEN_GRANULARITY:
        with app.engine.begin() as conn:
            conn.execute(portal_sessions.update().where(portal_sessions.c.id == row.id).values(last_seen_at=now))
    return PortalSession(session_id=row.id, member_id=row.member_id, account_id=row.account_id, member=row.email)


def session_locale(app: Ports, secret: str) -> str | None:
    """The language of the account a live session's member belongs to (R12.1), for a refusal
    page shown before any route has read the member; None for no live session. Only reads: a
    refusal does not count as the member's activity."""
    found = _live(app, secret, accounts.c.locale)
    return found[0].locale if found is not None else None


def _live(app: Ports, secret: str, *columns) -> tuple[Any, datetime] | None:
    """The session a cookie names, with `columns` (of it, its member, their account), and now;
    None unless it is live: not ended, not expired, not idle for `portal.session_idle_minutes`."""
    now = app.clock.now()
    idle = timedelta(minutes=app.settings.portal.session_idle_minutes)
    with app.engine.connect() as conn:
        row = conn.execute(select(portal_sessions.c.last_seen_at, portal_sessions.c.expires_at,
                                  portal_sessions.c.ended_at, *columns)
                           .join(members, members.c.id == portal_sessions.c.member_id)
                           .join(accounts, accounts.c.id == members.c.account_id)
                           .where(portal_sessions.c.secret_hash == digest(secret))).first()
    if row is None or row.ended_at is not None or row.expires_at <= now or row.last_seen_at + idle <= now:
        return None
    return row, now


def sign_out(app: Ports, secret: str) -> None:
    with app.engine.begin() as conn:
        _end(conn, secret, app.clock.now())


def _end(conn, secret: str, now: datetime) -> None:
    conn.execute(portal_sessions.update().where(portal_sessions.c.secret_hash == digest(secret),
                                                portal_sessions.c.ended_at.is_(None)).values(ended_at=now))
