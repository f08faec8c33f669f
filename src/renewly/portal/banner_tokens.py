"""Banner tokens: what lets the host product's dashboard show a member their banner of today in
an iframe (`/embed/banner?token=...`, docs/portal.md), without a session or a cookie.

The host's backend asks for one per page it renders (`POST /v1/banner_tokens`, API key). A token
names one member of one account and when it stops working (`embed.token_minutes`, 5 by default,
on the injected clock), signed with `secret_key` (itsdangerous, a salt of its own): nothing is
stored, and changing any character of it, or the key, makes it worthless. It shows nothing but
that member's banner, and only while they are a member: who sees what is asked of the account when
the page is opened (R8.3, R8.4, R9), as for the portal's pages.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from itsdangerous import BadSignature, URLSafeSerializer
from sqlalchemy import select

from renewly.accounts.accounts import load_account
from renewly.accounts.removal_links import TEST_CLOCK_KEY
from renewly.accounts.rules.members import AccountStatus, validate_email
from renewly.adapters.db.tables import members
from renewly.portal.sessions import portal_url
from renewly.ports import Ports
from renewly.shared.errors import InvalidInput, NotAllowed, NotFound

SALT = "renewly.banner-embed"
PATH = "/embed/banner"


@dataclass(frozen=True)
class BannerToken:
    token: str
    url: str
    account_id: int
    member: str
    expires_at: datetime


@dataclass(frozen=True)
class Bearer:
    """Whom a valid token shows a banner to."""

    account_id: int
    member: str


def embed_secret(app: Ports) -> str:
    """`secret_key`; on the test clock its known key when none is set. Empty: the embed is not
    configured (the test clock's key is never accepted on the system clock)."""
    key = app.settings.secret_key.get_secret_value()
    if app.settings.clock == "test":
        return key or TEST_CLOCK_KEY
    return "" if key == TEST_CLOCK_KEY else key


def _serializer(app: Ports) -> URLSafeSerializer:
    secret = embed_secret(app)
    if not secret:
        raise InvalidInput("secret_key is not set: banner tokens are signed with it (docs/portal.md, "
                           "RENEWLY_SECRET_KEY)", code="embed_unconfigured")
    return URLSafeSerializer(secret, salt=SALT)


def create_banner_token(app: Ports, account_id: int, *, member: str) -> BannerToken:
    """A token that shows this member their banner in the host's dashboard for a few minutes."""
    if not app.settings.embed.allowed_origins:
        raise InvalidInput("embed.allowed_origins is empty: no page may show the banner (docs/portal.md)",
                           code="embed_unconfigured")
    signer = _serializer(app)
    email = validate_email(member)
    base = portal_url(app)
    with app.engine.connect() as conn:
        account = load_account(conn, account_id)
        if account.status == AccountStatus.DELETED:
            raise NotAllowed(f"account {account_id} was deleted; its members are gone", code="account_deleted")
        known = conn.execute(select(members.c.id).where(members.c.account_id == account_id,
                                                        members.c.email == email)).scalar()
    if known is None:
        raise NotFound(f"{email} is not a member of account {account_id}", code="unknown_member")
    expires_at = app.clock.now() + timedelta(minutes=app.settings.embed.token_minutes)
    token = signer.dumps([account_id, email, int(expires_at.timestamp())])
    return BannerToken(token=token, url=f"{base}{PATH}?token={token}", account_id=account_id, member=email,
                       expires_at=expires_at.replace(microsecond=0))


def bearer_of(app: Ports, token: str) -> Bearer:
    """Who a token shows a banner to; refused with a stable code when it is altered, made with
    another key, or expired."""
    try:
        account_id, member, expires = _serializer(app).loads(token)
        if not (isinstance(account_id, int) and isinstance(member, str) and isinstance(expires, int)):
            raise ValueError(token)
    except (BadSignature, ValueError, TypeError):
        raise NotFound("this banner token is not valid", code="banner_token_invalid") from None
    if datetime.fromtimestamp(expires, UTC) <= app.clock.now():
        raise NotAllowed("this banner token expired", code="banner_token_expired")
    return Bearer(account_id=account_id, member=member)
