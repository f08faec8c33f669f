"""Which endpoints may be registered: checked at the door, the same on both engines."""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import urlsplit

from renewly.accounts.rules.members import validate_text
from renewly.shared.errors import InvalidInput

URL_LENGTH = 2000  # webhook_endpoints.url
DESCRIPTION_LENGTH = 500  # webhook_endpoints.description
REASON_LENGTH = 500
# How long a rotated secret's predecessor still signs, at most: a week to update every receiver.
MOST_OVERLAP_HOURS = 168


def validate_url(url: str) -> str:
    """An http:// or https:// URL with a host, no user or password (a secret in a URL ends up in
    logs and listings: the signature is what authenticates), no fragment (never sent)."""
    url = (url or "").strip()
    if not url:
        raise InvalidInput("an endpoint needs a URL (https://...)", code="invalid_url")
    if len(url) > URL_LENGTH:
        raise InvalidInput(f"an endpoint's URL is at most {URL_LENGTH} characters (got {len(url)})",
                           code="invalid_url")
    shown = url if url.isprintable() else repr(url)
    if not url.isprintable() or any(character.isspace() for character in url) or not url.isascii():
        raise InvalidInput(f"{shown[:100]} is not a URL: spaces, control and non-ASCII characters are "
                           "percent-encoded in one", code="invalid_url")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
    except ValueError as error:
        raise InvalidInput(f"{shown[:100]} is not a URL ({error})", code="invalid_url") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise InvalidInput(f"{shown[:100]}: webhooks are sent over http:// or https:// only", code="invalid_url")
    if not parts.hostname:
        raise InvalidInput(f"{shown[:100]} names no host", code="invalid_url")
    if parts.username is not None or parts.password is not None:
        raise InvalidInput("an endpoint's URL cannot hold a user or password: the signature authenticates "
                           "each delivery (docs/webhooks.md)", code="invalid_url")
    if parts.fragment or url.endswith("#"):
        raise InvalidInput(f"{shown[:100]}: a URL's #fragment is never sent; leave it out", code="invalid_url")
    return url


def validate_description(description: str | None) -> str:
    return validate_text(description, "an endpoint's description", DESCRIPTION_LENGTH, required=False)


def validate_reason(reason: str | None) -> str:
    return validate_text(reason, "why it is disabled", REASON_LENGTH, required=False)


def validate_overlap_hours(hours: int) -> int:
    """How long the old secret still signs beside the new one after a rotation: 0 (at once, a
    leaked secret) to a week."""
    if isinstance(hours, bool) or not isinstance(hours, int) or not 0 <= hours <= MOST_OVERLAP_HOURS:
        raise InvalidInput(f"the old secret signs for 0 to {MOST_OVERLAP_HOURS} hours after a rotation "
                           f"(got {hours!r})", code="invalid_overlap")
    return hours


def previous_secret_until(now: datetime, hours: int) -> datetime | None:
    """Until when a rotation's old secret signs beside the new one; None: it stops at once."""
    return now + timedelta(hours=hours) if hours else None


def signing_secrets(secret: str, previous: str | None, previous_until: datetime | None, now: datetime) -> list[str]:
    """The secrets a webhook sent at `now` is signed with: the endpoint's, and its predecessor's
    while the rotation's overlap lasts (the receiver may still hold the old one)."""
    if previous is not None and previous_until is not None and now < previous_until:
        return [secret, previous]
    return [secret]
