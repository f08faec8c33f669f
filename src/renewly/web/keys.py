"""Secret API keys: made (shown once), listed, revoked, and recognised on every request.

A key is `rnw_sk_` and 43 characters of `secrets.token_urlsafe(32)`: 256 random bits. Only
its SHA-256 is stored, and a request's key is found by that hash (a unique index). A password
hash (argon2, bcrypt) exists to slow down guessing of low-entropy secrets that people choose;
nobody can guess 256 random bits, so it would only add tens of milliseconds and a lot of memory
to every request for no protection, and would forbid finding a key by its hash. Looking a hash
up leaks nothing either: its timing says which hashes exist, not which secret makes one.

`last_used_at` is written at most once a minute per key (USE_RECORDED_EVERY), so that a read
does not become a write: what an operator wants from it ("is this key still in use?") needs no
finer grain.

A key found live is trusted by the process that found it for TRUSTED_FOR_SECONDS (one second)
without asking the database again (`recognised`): a host product sends all its requests with one
key, and its lookup was a fifth of the CPU of an API read (docs/performance.md, "API"). So a key
revoked with `renewly apikeys revoke` is refused by every server process within a second; a
revocation made in a process forgets what that process trusted, at once.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from time import monotonic
from typing import Any

from sqlalchemy import bindparam, or_, select

from renewly.accounts.rules.members import validate_text
from renewly.adapters.db.engine import reading
from renewly.adapters.db.tables import api_keys
from renewly.outbox.records import audit
from renewly.ports import Ports
from renewly.shared.errors import Conflict, NotFound

KEY_PREFIX = "rnw_sk_"
NAME_LENGTH = 100  # api_keys.name
SHOWN_PREFIX_LENGTH = 12  # api_keys.prefix: "rnw_sk_" and five characters of the secret
# The longest Authorization value worth hashing: a key is 50 characters; anything much longer
# is not one.
LONGEST_SECRET = 200
USE_RECORDED_EVERY = timedelta(minutes=1)
TRUSTED_FOR_SECONDS = 1.0
TRUSTED_AT_MOST = 1000  # keys a process trusts at once; beyond, it forgets them all


@dataclass(frozen=True)
class ApiKey:
    """The key a request came with (what the routes and the audit log know of it)."""

    id: int
    name: str
    prefix: str

    @property
    def actor(self) -> str:
        """Who the audit log names for what this key did."""
        return f"api:key-{self.id}"


def secret_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(app: Ports, *, name: str, actor: str) -> tuple[dict[str, Any], str]:
    """A new key named `name`: its row (as `list_keys` gives it) and the secret, which is never
    shown again (only its hash is kept)."""
    name = validate_text(name, "a key's name", NAME_LENGTH)
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    now = app.clock.now()
    with app.engine.begin() as conn:
        key_id = conn.execute(api_keys.insert().values(
            name=name, prefix=secret[:SHOWN_PREFIX_LENGTH], secret_hash=secret_hash(secret), created_at=now,
        ).returning(api_keys.c.id)).scalar_one()
        audit(conn, now, actor, "api_key.created", "api_key", key_id, details={"name": name})
    return describe_key(app, key_id), secret


def describe_key(app: Ports, key_id: int) -> dict[str, Any]:
    with reading(app.engine) as conn:
        row = conn.execute(_listed().where(api_keys.c.id == key_id)).first()
    if row is None:
        raise NotFound(f"no API key {key_id}", code="unknown_api_key")
    return dict(row._mapping)


def list_keys(app: Ports) -> list[dict[str, Any]]:
    with reading(app.engine) as conn:
        return [dict(row._mapping) for row in conn.execute(_listed().order_by(api_keys.c.id))]


def _listed():
    return select(api_keys.c.id, api_keys.c.name, api_keys.c.prefix, api_keys.c.created_at,
                  api_keys.c.last_used_at, api_keys.c.revoked_at)


def revoke_key(app: Ports, key_id: int, *, actor: str) -> dict[str, Any]:
    """From now on, requests with this key are refused (401). A key revoked stays revoked."""
    now = app.clock.now()
    with app.engine.begin() as conn:
        row = conn.execute(select(api_keys.c.revoked_at).where(api_keys.c.id == key_id)).first()
        if row is None:
            raise NotFound(f"no API key {key_id}", code="unknown_api_key")
        if row.revoked_at is not None:
            raise Conflict(f"API key {key_id} was revoked on {row.revoked_at.isoformat()}", code="api_key_revoked")
        conn.execute(api_keys.update().where(api_keys.c.id == key_id).values(revoked_at=now))
        audit(conn, now, actor, "api_key.revoked", "api_key", key_id)
    _trusted.forget_all()
    return describe_key(app, key_id)


# Built once: every request asks it, and building it took a tenth of the lookup's time.
_LIVE_KEY = (select(api_keys.c.id, api_keys.c.name, api_keys.c.prefix, api_keys.c.last_used_at)
             .where(api_keys.c.secret_hash == bindparam("secret_hash"), api_keys.c.revoked_at.is_(None)))


class _TrustedKeys:
    """The keys this process found live lately, by database and the hash of each one's secret:
    each with the monotonic time until which it is trusted without a lookup, counted from the
    moment before the lookup that found it. Written from the read threads, read on the event
    loop: one dictionary operation at a time, which the GIL keeps whole.

    `revocations` counts this process's revocations: a lookup that read a key live before one was
    made does not trust it afterwards, so that a revocation here is seen at once."""

    def __init__(self) -> None:
        self.found: dict[tuple[str, str], tuple[ApiKey, float]] = {}
        self.revocations = 0

    def forget_all(self) -> None:
        self.revocations += 1
        self.found.clear()  # revocations are rare: forgetting every key costs one lookup each


_trusted = _TrustedKeys()


def recognised(app: Ports, secret: str) -> ApiKey | None:
    """The live key this secret was found to be less than a second ago, with no lookup (no I/O:
    for the event loop); None if it was not (`authenticate` then says what it is)."""
    if not _may_be_a_key(secret):
        return None
    found = _trusted.found.get((app.settings.database_url, secret_hash(secret)))
    if found is None or monotonic() >= found[1]:
        return None
    return found[0]


def authenticate(app: Ports, secret: str) -> ApiKey | None:
    """The live key this secret is, or None (unknown, revoked, or not a key at all), from the
    database. Records its use, at most once a minute, and trusts it for a second."""
    if not _may_be_a_key(secret):
        return None
    hashed = secret_hash(secret)
    # Before the lookup: the second a key is trusted for starts before the read that found it
    # live, and a revocation made meanwhile in this process is seen.
    looked_up_at, revocations = monotonic(), _trusted.revocations
    with reading(app.engine) as conn:
        row = conn.execute(_LIVE_KEY, {"secret_hash": hashed}).first()
    if row is None:
        return None
    now = app.clock.now()
    if row.last_used_at is None or row.last_used_at <= now - USE_RECORDED_EVERY:
        _record_use(app, row.id, now)
    key = ApiKey(row.id, row.name, row.prefix)
    if len(_trusted.found) >= TRUSTED_AT_MOST:
        _trusted.found.clear()  # more live keys in use at once than a host product has: start again
    if _trusted.revocations == revocations:
        _trusted.found[(app.settings.database_url, hashed)] = (key, looked_up_at + TRUSTED_FOR_SECONDS)
    return key


def _may_be_a_key(secret: str) -> bool:
    return secret.startswith(KEY_PREFIX) and len(secret) <= LONGEST_SECRET and secret.isascii()


def _record_use(app: Ports, key_id: int, now: datetime) -> None:
    # Conditional: of requests at once with a stale mark, one writes it, the others change no row.
    with app.engine.begin() as conn:
        conn.execute(api_keys.update().where(
            api_keys.c.id == key_id,
            or_(api_keys.c.last_used_at.is_(None), api_keys.c.last_used_at <= now - USE_RECORDED_EVERY),
        ).values(last_used_at=now))
