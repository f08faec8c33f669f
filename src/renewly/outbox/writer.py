"""The outbox writer: the one way a row gets into `outbox`, so that delivery has one contract to read.

A use case builds its rows with `event` or `email` and writes them with `write` (one row, one
INSERT) or `write_many` (a batch's slice: one COPY on PostgreSQL, one executemany on SQLite,
never a statement per row), on the connection of the transaction that makes the change they
report, and only after that change: a failure e-mail is written in the transaction that records
the declined attempt, never before it. Nothing else inserts into `outbox`.

Row shape (`OutboxRow`, a named tuple in the table's column order, so that a slice's thousands
go straight to COPY):
- `created_at`: the instant of the change, from the injected clock (aware; UTC in the database);
- `topic`: what happened, one of `TOPICS`; `"email"` for an e-mail;
- `account_id`: the account concerned (every topic today names one);
- `payload`: a JSON object, what the topic says. The table adds `id` (increasing, never given
  twice, even after the retention batch deleted rows: a consumer may drop an id it has seen),
  `delivered_at` (NULL until a relay delivers the row: for an event, once the webhooks batch has
  made its deliveries to the endpoints that want it, renewly.webhooks.delivery), and for e-mails
  what delivery keeps of its tries (`attempts`, `next_attempt_at`, `claimed_until`, `failed_at`,
  `last_error`: renewly.mail.delivery).

An e-mail's payload is `{"kind", "locale", "recipients", "subject", "body", "html", **about}`: its
subject, text and HTML parts rendered from the templates of `kind` (outbox/rendering.py: a dunning
step's e-mail named in the policy, `payment_confirmed`, `card_retry_declined`,
`card_verification_failed`, `invoice`, `contact_request`, `contact_added`, `contact_removed`,
`contact_consent_recorded`) in the account's language, at the moment of the change: the row says
what was true then, even if templates, translations or settings change before it leaves. The
context says what it is about (case, step, invoices, attempts, reason, contact...), never a key of
the text. Two keys are for delivery: `contacts` (recipients who are billing contacts, not the
owner: address -> `billing_contacts.id`) and `attachments` (`[{"invoice_id", "filename"}]`: an
invoice's PDF, by reference). Delivery sends the parts as they are, with a Message-ID fixed by the
row's id (renewly.mail.letters): one message to the recipients not in `contacts`, and one to each
contact, with its removal link (R4.2) in a footer and in `List-Unsubscribe`; attachments are the
invoices' stored PDFs (billing.documents: rendered at first need).

Idempotency: the writer adds no key of its own. Each row is written once because the change it
reports happens once: the transaction that writes it also commits the change under that change's
own exactly-once guard (a unique step per case, a settled attempt, a row lock), and rolls back
with it. A consumer that must not act twice keys on the row's `id`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, NamedTuple, cast

from sqlalchemy import Connection

from renewly.adapters.db.bulk import insert_rows
from renewly.adapters.db.tables import outbox

EMAIL = "email"

# Every topic written. An event of another topic is refused: a new one is added here, where
# delivery reads what it has to handle (and the demo, `renewly outbox list`, what they show),
# and given its public name for webhooks (renewly.webhooks.rules.events.PUBLIC_TYPES).
TOPICS = frozenset({
    EMAIL,
    "account.created", "account.updated", "account.dunning_state", "account.cancelled", "account.reactivated",
    "account.deleted",
    "billing_contact.requested", "billing_contact.added", "billing_contact.refused", "billing_contact.removed",
    "subscription.created", "subscription.updated", "subscription.cancelled",
    "invoice.issued", "credit_note.issued",
    "payment.succeeded", "payment.declined", "payment_method.updated",
    "dunning.case_opened", "dunning.invoices_joined", "dunning.steps_taken", "dunning.recovered", "dunning.closed",
    "reactivation.granted", "reactivation.expired",
    "batch.row_parked", "webhook_endpoint.disabled",
})

COLUMNS = ("created_at", "topic", "account_id", "payload")
_EVENT_TOPICS = TOPICS - {EMAIL}


class OutboxRow(NamedTuple):
    """One row of `outbox`, as written (`id` and `delivered_at` are the table's)."""

    created_at: datetime
    topic: str
    account_id: int | None
    payload: dict[str, Any]


# `OutboxRow(...)` without the named tuple's own `__new__`, a Python call: a mass-decline day
# builds three rows per case, a million cases at once.
_row = cast(Callable[[type[OutboxRow], tuple[Any, ...]], OutboxRow], tuple.__new__)


def event(at: datetime, topic: str, account_id: int | None, payload: dict[str, Any]) -> OutboxRow:
    """An event for the host product: `topic` says what happened, `payload` the details."""
    if topic not in _EVENT_TOPICS:
        raise ValueError("an e-mail is built by `email`" if topic == EMAIL else f"no outbox topic {topic!r}")
    return _row(OutboxRow, (at, topic, account_id, payload))


def email(at: datetime, account_id: int, *, kind: str, locale: str, recipients: list[str], subject: str, body: str,
          html: str, about: dict[str, Any] | None = None, contacts: Mapping[str, int] | None = None,
          removal_footer: Mapping[str, str] | None = None, attachments: Sequence[Mapping[str, Any]] = ()) -> OutboxRow:
    """An e-mail, rendered: its template's name (`kind`), language, recipients, subject, text
    (`body`) and HTML parts, then what it is `about` (case, step, invoices..., after the parts).

    `contacts`: the recipients who are billing contacts but not the owner, with their row's id
    (`billing_contacts.id`): each gets a message of its own with a removal link (R4.2) at the end
    of its text and HTML, `removal_footer` (`{"text", "html"}`, rendered with the link's slot:
    outbox/rendering.py), required with them.
    `attachments`: what delivery attaches, by reference (`{"invoice_id": 17, "filename": ...}`:
    the invoice's stored PDF), never the bytes."""
    payload: dict[str, Any] = {"kind": kind, "locale": locale, "recipients": recipients, "subject": subject,
                               "body": body, "html": html}
    if contacts:
        strangers = set(contacts) - set(recipients)
        if strangers:
            raise ValueError(f"contacts that are not recipients: {sorted(strangers)}")
        if not removal_footer or set(removal_footer) != {"text", "html"}:
            raise ValueError("an e-mail to billing contacts needs its removal footer (text and html)")
        payload["contacts"] = dict(contacts)
        payload["removal_footer"] = dict(removal_footer)
    if attachments:
        payload["attachments"] = [dict(attachment) for attachment in attachments]
    if about:
        size = len(payload)
        payload.update(about)
        if len(payload) != size + len(about):
            raise ValueError(f"what an e-mail is about cannot replace its text: {sorted(about)}")
    return _row(OutboxRow, (at, EMAIL, account_id, payload))


def write(conn: Connection, row: OutboxRow) -> None:
    """One row, one INSERT: for a use case that reports one change."""
    conn.execute(outbox.insert().values(row._asdict()))


def write_many(conn: Connection, rows: Iterable[OutboxRow]) -> None:
    """Rows in bulk, in their order: one COPY (PostgreSQL) or executemany (SQLite) for a batch's
    slice. `rows` may be a generator: PostgreSQL consumes it while the COPY streams."""
    # Binary COPY: every value has its column's Python type (aware datetime, str, int, dict).
    insert_rows(conn, outbox, rows, COLUMNS, binary=True)
