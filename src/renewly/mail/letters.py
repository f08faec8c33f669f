"""An outbox row's e-mails as they leave: Message-IDs fixed by the row, the sender from the
settings, the text (and HTML when the row has one) as the row was written, its attachments.

The row format (outbox/writer.py) holds the rendered `subject` and `body`; an `html` part is
taken when a row has one. Two keys of the payload shape the messages (`letters_of`):

- `attachments` (`[{"invoice_id", "filename"}]`): each invoice's PDF as first stored
  (billing.documents, given here as `documents`), rendered when an e-mail first needs it, so
  that the renewal batch never waits on a layout engine and every send carries the same bytes;
- `contacts` (address -> `billing_contacts.id`): each billing contact who is not the owner gets
  a message of its own, with its removal link (R4.2, accounts/removal_links.py) in the row's
  `removal_footer` (rendered from the templates when the row was written, the link a slot
  filled here) at the end of the text and of the HTML's body, and in RFC 8058's
  `List-Unsubscribe` and `List-Unsubscribe-Post` headers; the other recipients (the owner)
  share one message without them. The link is signed at the row's `created_at`, so that a
  row's messages are the same bytes at every send.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from email.headerregistry import Address
from email.utils import getaddresses, parseaddr
from html import escape
from typing import Any

from renewly.accounts.removal_links import RemovalLinks
from renewly.accounts.rules.members import SUPPORTED_LOCALES
from renewly.adapters.mail.message import Attachment, Letter, as_bytes, message_id
from renewly.adapters.mail.port import Envelope
from renewly.config.settings import MailSettings, SellerIdentity
from renewly.outbox.rendering import REMOVAL_URL, RemovalFooter, mail_templates


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


def letters_of(row: Any, settings: MailSettings, seller: SellerIdentity, *, links: RemovalLinks | None = None,
               documents: Mapping[int, bytes] | None = None) -> list[Letter]:
    """The messages of an outbox row: one to the recipients who are not contacts (the owner),
    then one to each contact with its removal link; each with the row's attachments.
    `documents`: the attached invoices' PDFs by id (`attached_invoices` says which);
    `links`: required when the row names contacts."""
    letter = letter_of(row, settings, seller)
    payload = row.payload
    attachments = []
    for attached in payload.get("attachments") or ():
        invoice_id = attached.get("invoice_id") if isinstance(attached, dict) else None
        content = (documents or {}).get(invoice_id) if isinstance(invoice_id, int) else None
        if content is None:
            raise Unsendable(f"the invoice (id {invoice_id}) it attaches no longer exists")
        attachments.append(Attachment(str(attached.get("filename") or f"{invoice_id}.pdf"), content,
                                      "application/pdf"))
    letter = replace(letter, attachments=tuple(attachments))
    contacts = payload.get("contacts") or {}
    if not contacts:
        return [letter]
    if links is None:
        raise ValueError("a row with contacts needs removal links")
    domain = letter.message_id.rpartition("@")[2].rstrip(">")
    others = tuple(recipient for recipient in letter.recipients if recipient not in contacts)
    found = [replace(letter, recipients=others)] if others else []
    footer = _removal_footer(payload, letter.language)
    for part, recipient in enumerate(letter.recipients):
        contact_id = contacts.get(recipient)
        if not isinstance(contact_id, int):
            continue
        url = links.url(row.account_id, contact_id, row.created_at)
        found.append(replace(
            letter, recipients=(recipient,), message_id=message_id(row.id, domain, part=part),
            text=letter.text.rstrip("\n") + "\n\n-- \n" + footer.text.replace(REMOVAL_URL, url) + "\n",
            html=None if letter.html is None else _before_body_end(letter.html,
                                                                   footer.html.replace(REMOVAL_URL, escape(url))),
            # RFC 8058: a POST of "List-Unsubscribe=One-Click" to this HTTPS address removes the contact.
            headers=(*letter.headers, ("List-Unsubscribe", f"<{url}>"),
                     ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))))
    return found


def _removal_footer(payload: Any, language: str | None) -> RemovalFooter:
    """The footer the row was written with (outbox/rendering.py: the catalogue's sentence in the
    row's language, its link a slot); a row written before rows kept one takes the shipped one."""
    kept = payload.get("removal_footer")
    if isinstance(kept, dict) and isinstance(kept.get("text"), str) and isinstance(kept.get("html"), str):
        return RemovalFooter(kept["text"], kept["html"])
    return mail_templates().removal_footer(language if language in SUPPORTED_LOCALES else "en")


def _before_body_end(html: str, footer: str) -> str:
    """The footer at the end of the HTML's body, where mail/layout.html puts it."""
    head, end, tail = html.rpartition("</body>")
    return f"{head}{footer}\n{end}{tail}" if end else html + footer


def attached_invoices(payload: Any) -> set[int]:
    """The invoice ids whose PDFs an e-mail attaches."""
    if not isinstance(payload, dict):
        return set()
    return {attached["invoice_id"] for attached in payload.get("attachments") or ()
            if isinstance(attached, dict) and isinstance(attached.get("invoice_id"), int)}


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
