"""An e-mail as it is sent: RFC 5322 headers over a text part, an HTML alternative and
attachments when it has them, built with the standard library (`email.message.EmailMessage`).

The bytes depend only on the `Letter`: its Message-ID, its Date and every part are fixed by the
outbox row it comes from, so that a resend after a crash is the same message, recognisable as
such by the receiving servers and clients, and `renewly outbox show ID --eml FILE` writes what
the server is sent.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.utils import format_datetime


@dataclass(frozen=True)
class Attachment:
    filename: str
    content: bytes
    media_type: str = "application/octet-stream"  # "application/pdf"


@dataclass(frozen=True)
class Letter:
    """What an e-mail says and to whom, before it is a message."""

    message_id: str  # "<renewly.outbox.42@example.com>"
    written_at: datetime  # its Date: when it was ready to leave (aware)
    sender: str  # "Billing <billing@example.com>" or an address alone
    recipients: tuple[str, ...]
    subject: str
    text: str
    html: str | None = None
    attachments: tuple[Attachment, ...] = ()
    language: str | None = None  # its Content-Language ("fr")
    headers: tuple[tuple[str, str], ...] = ()  # more, in order (List-Unsubscribe, ...)


def message_id(outbox_id: int, domain: str, *, part: int | None = None) -> str:
    """The Message-ID of the e-mail of an outbox row: the same at every send of the row; `part`:
    the recipient's place in the row, for a row sent as several messages (one per contact)."""
    return f"<renewly.outbox.{outbox_id}{'' if part is None else f'.{part}'}@{domain}>"


def build(letter: Letter) -> EmailMessage:
    message = EmailMessage(policy=policy.SMTP)  # CRLF line ends, as the wire wants them
    message["Message-ID"] = letter.message_id
    message["Date"] = format_datetime(letter.written_at)
    message["From"] = letter.sender
    message["To"] = ", ".join(letter.recipients)
    message["Subject"] = letter.subject
    # RFC 3834: written by a program; auto-responders (out of office) do not answer it.
    message["Auto-Submitted"] = "auto-generated"
    for name, value in letter.headers:
        message[name] = value
    # Quoted-printable: 7-bit lines any server takes, without asking for 8BITMIME.
    message.set_content(letter.text, cte="quoted-printable")
    if letter.html is not None:
        message.add_alternative(letter.html, subtype="html", cte="quoted-printable")
    if letter.language:  # after the content: setting it drops every Content-* header
        message["Content-Language"] = letter.language
    for attachment in letter.attachments:
        maintype, _, subtype = attachment.media_type.partition("/")
        message.add_attachment(attachment.content, maintype=maintype, subtype=subtype or "octet-stream",
                               filename=attachment.filename)
    # Boundaries from the Message-ID, not at random: a resend is the same bytes. "=_" occurs in
    # no quoted-printable nor base64 text, so no part can contain one.
    seed = hashlib.sha256(letter.message_id.encode()).hexdigest()[:24]
    for number, part in enumerate(part for part in message.walk() if part.is_multipart()):
        part.set_boundary(f"=_renewly_{seed}_{number}")
    return message


def as_bytes(letter: Letter) -> bytes:
    """The message as it goes on the wire (and into an .eml file)."""
    return build(letter).as_bytes()
