"""The removal link of a billing e-mail (R4.2): signed, expiring, single use.

Every billing e-mail to a contact who is not the owner carries one (mail/letters.py puts it in
the text and in RFC 8058's `List-Unsubscribe` headers); `renewly contacts unsubscribe TOKEN`
applies it (accounts/contacts.py: `unsubscribe_contact`), and so does the portal's page the link
opens (`/portal/billing-contacts/remove/TOKEN`, web/portal/routes.py), also to RFC 8058's one-click POST.

- **Signed** with the `secret_key` setting (itsdangerous, HMAC-SHA256): an altered token is
  refused. The key is a setting, not a value generated into the database: every process of a
  deployment (worker, command line, the portal to come) reads the same configuration, and a
  database dump handed to someone does not let them forge links. Without it, on the system
  clock, nothing that needs a link starts (one line, exit 2); the test clock (demo, tests) signs
  with a fixed key of its own, as it is allowed the demo seller.
- **Expiring**: the token's timestamp is the instant its e-mail was written (the outbox row's
  `created_at`), so that every send of one row is the same message byte for byte; it works
  `mail.removal_link_days` after that, measured on the injected clock.
- **Single use**: it names the contact's row (`billing_contacts.id`) and its account, never an
  address. Used once, that row is `removed` and the token is refused; an address re-added later
  is a new row, which an old token does not name. It removes that row and nothing else.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from itsdangerous import BadData, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

from renewly.config.settings import Settings
from renewly.shared.errors import InvalidInput

SALT = "renewly.billing-contact.removal"
PATH = "/portal/billing-contacts/remove/"  # the portal's page (docs/portal.md), under `public_url`
# What a pasted link is cut at: also the links of the releases before the page, which lacked /portal.
TOKEN_AFTER = "/billing-contacts/remove/"
# The test clock's key and address: known to all, so never accepted on the system clock.
TEST_CLOCK_KEY = "renewly-test-clock-key-known-to-everyone-never-secret"
TEST_CLOCK_URL = "https://billing.renewly.example"


@dataclass(frozen=True)
class RemovalToken:
    """What a valid token names: one billing contact's row of one account."""

    account_id: int
    contact_id: int


class RemovalLinks:
    """Makes and reads removal links with one key, base address and lifetime."""

    def __init__(self, key: str, public_url: str, lifetime: timedelta) -> None:
        self._key, self.public_url, self.lifetime = key, public_url, lifetime

    @classmethod
    def of(cls, settings: Settings) -> RemovalLinks:
        """From the settings; refused in one line when the system clock runs without them."""
        key, url = settings.secret_key.get_secret_value(), settings.public_url
        if settings.clock == "test":
            key, url = key or TEST_CLOCK_KEY, url or TEST_CLOCK_URL
        if settings.clock != "test" and key == TEST_CLOCK_KEY:
            raise InvalidInput("secret_key is the test clock's, which everyone knows: links signed with it "
                               "could be forged; set a random one (docs/mail.md, RENEWLY_SECRET_KEY)",
                               code="removal_links_unconfigured")
        missing = [name for name, value in (("secret_key", key), ("public_url", url)) if not value]
        if missing:
            raise InvalidInput(f"{' and '.join(missing)} not set: billing e-mails to contacts carry a signed "
                               "removal link (docs/mail.md, RENEWLY_SECRET_KEY, RENEWLY_PUBLIC_URL)",
                               code="removal_links_unconfigured")
        return cls(key, url, timedelta(days=settings.mail.removal_link_days))

    def token(self, account_id: int, contact_id: int, written_at: datetime) -> str:
        """The token of a contact's e-mail written at `written_at` (the same at every call)."""
        return self._serializer(written_at).dumps([account_id, contact_id])

    def url(self, account_id: int, contact_id: int, written_at: datetime) -> str:
        return self.public_url + PATH + self.token(account_id, contact_id, written_at)

    def read(self, token: str, now: datetime) -> RemovalToken:
        """The contact a token names, if it is intact and not expired at `now`; otherwise
        InvalidInput in one line (the command line's exit 2), nothing changed."""
        token = token.strip().rpartition(TOKEN_AFTER)[2]  # the whole link pasted is taken too
        try:
            value = self._serializer(now).loads(token, max_age=int(self.lifetime.total_seconds()))
        except SignatureExpired as expired:
            when = f" on {(expired.date_signed + self.lifetime):%Y-%m-%d}" if expired.date_signed else ""
            raise InvalidInput(f"this removal link expired{when}: nothing changed; ask the account's owner, "
                               "who can remove anyone", code="removal_link_expired") from None
        except BadData:
            raise InvalidInput("this removal link is not valid (altered or cut short): nothing changed",
                               code="removal_link_invalid") from None
        if (not isinstance(value, list) or len(value) != 2
                or not all(isinstance(part, int) and not isinstance(part, bool) for part in value)):
            raise InvalidInput("this removal link is not valid (altered or cut short): nothing changed",
                               code="removal_link_invalid")
        return RemovalToken(account_id=value[0], contact_id=value[1])

    def account_of(self, token: str) -> int | None:
        """The account an intact token names, expired or not (only to speak its language when
        refusing it); None for an altered one."""
        try:
            value = self._serializer(datetime.now()).loads(token.strip().rpartition(TOKEN_AFTER)[2])
        except BadData:
            return None
        return value[0] if isinstance(value, list) and value and isinstance(value[0], int) else None

    def _serializer(self, at: datetime) -> URLSafeTimedSerializer:
        # itsdangerous reads time.time() to sign and to measure age; the injected clock's
        # instant (or the e-mail's) stands in for it, so that a test clock drives expiry.
        seconds = int(at.timestamp())

        class AtInstant(TimestampSigner):
            def get_timestamp(self) -> int:
                return seconds

        return URLSafeTimedSerializer(self._key, salt=SALT, signer=AtInstant,
                                      signer_kwargs={"digest_method": hashlib.sha256})
