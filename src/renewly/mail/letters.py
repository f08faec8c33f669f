"""An outbox row's e-mail as it leaves: its Message-ID fixed by the row, its sender from the
settings, its text (and HTML, attachments, when the row has them) as the row was written.

The row format (outbox/writer.py) holds the rendered `subject` and `body` today; an `html`
part is taken when a row has one. Attachments (an invoice's PDF) come with the rows that carry
them: `Letter` takes them already.
"""

from __future__ import annotations

from email.headerregistry import Address
from email.utils import getaddresses, parseaddr
from typing import Any

from renewly.adapters.mail.message import Letter, as_bytes, message_id
from renewly.adapters.mail.port import Envelope
from renewly.config.settings import MailSettings, SellerIdentity


class Unsendable(ValueError):
    """A row whose e-mail cannot be made (no recipient, an address that is none): it is marked
    failed with this reason, as a server's 5xx would."""


def sender_of(settings: MailSettings, seller: SellerIdentity) -> str:
    """Who e-mails are from: `mail.from_address`; while no SMTP is configured (an e-mail read
    with `renewly outbox show`), the seller's support address."""
    if settings.from_address:
        return settings.from_address
    return str(Address(display_name=seller.name, addr_spec=seller.support_email))


def letter_of(row: Any, settings: MailSettings, seller: SellerIdentity) -> Letter:
    """The e-mail of an outbox row (id, created_at, payload)."""
    payload = row.payload
    sender = sender_of(settings, seller)
    domain = settings.message_id_domain or parseaddr(sender)[1].rpartition("@")[2]
    recipients = payload.get("recipients") if isinstance(payload, dict) else None
    if not recipients or not isinstance(recipients, list):
        raise Unsendable("the e-mail names no recipient")
    for recipient in recipients:
        _check_address(recipient)
    subject, text = payload.get("subject"), payload.get("body")
    if not isinstance(subject, str) or not isinstance(text, str):
        raise Unsendable("the e-mail has no subject or no body")
    html = payload.get("html")
    return Letter(message_id=message_id(row.id, domain), written_at=row.created_at, sender=sender,
                  recipients=tuple(recipients), subject=subject, text=text,
                  html=html if isinstance(html, str) else None,
                  language=payload.get("locale") if isinstance(payload.get("locale"), str) else None)


def envelope_of(letter: Letter) -> Envelope:
    return Envelope(sender=parseaddr(letter.sender)[1], recipients=letter.recipients, message=as_bytes(letter))


def _check_address(recipient: Any) -> None:
    if not isinstance(recipient, str):
        raise Unsendable(f"recipient {recipient!r} is not an address")
    found = getaddresses([recipient])
    if len(found) != 1 or found[0][1] != recipient.strip() or "@" not in recipient:
        raise Unsendable(f"recipient {recipient!r} is not an address")
    try:
        Address(addr_spec=recipient)
    except (ValueError, IndexError):
        raise Unsendable(f"recipient {recipient!r} is not an address") from None
