"""What the host product receives: the public event types, which endpoint gets which event, and
the message of an event (Standard Webhooks' recommended `{type, timestamp, data}`).

The outbox's topics (renewly.outbox.writer.TOPICS) are Renewly's own words; `PUBLIC_TYPES`
names each event topic for the host product, in this one place: docs/webhooks.md lists them, an
endpoint is registered for some of them, and tests/webhooks check that every topic has its
public type and every public type a use case that writes it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

from renewly.shared.errors import InvalidInput

# outbox topic -> public type. E-mails (topic "email") are not events: they leave over SMTP.
PUBLIC_TYPES: Mapping[str, str] = MappingProxyType({
    "account.created": "account.created",
    "account.updated": "account.updated",  # its buyer address (R3), members, owner (R6.1)
    "account.cancelled": "account.cancelled",  # dunning's last step (R8.5, R9.1)
    "account.reactivated": "account.reactivated",  # a cancelled account paid: active again (R9.3)
    "account.deleted": "account.deleted",  # its personal data deleted (R10.3)
    "account.dunning_state": "member.banner_changed",  # the banner each role now sees (R8.3, R8.4)
    "billing_contact.requested": "contact.requested",  # R4.1: waits for the owner's consent
    "billing_contact.added": "contact.added",  # R4.1
    "billing_contact.refused": "contact.refused",  # R4.1: the owner said no
    "billing_contact.removed": "contact.removed",  # R4.2
    "subscription.created": "subscription.created",
    "subscription.updated": "subscription.updated",  # its seats changed
    "subscription.cancelled": "subscription.cancelled",  # never renewed again (the API, the command line)
    "invoice.issued": "invoice.issued",
    "credit_note.issued": "credit_note.issued",
    "payment.succeeded": "payment.succeeded",
    "payment.declined": "payment.declined",
    "payment_method.updated": "payment_method.updated",
    "dunning.case_opened": "dunning.case_opened",
    "dunning.invoices_joined": "dunning.invoices_joined",
    "dunning.steps_taken": "dunning.step",  # the steps taken at once (R8.7: a late batch's missed ones)
    "dunning.recovered": "dunning.recovered",
    "dunning.closed": "dunning.closed",
    "reactivation.granted": "reactivation.granted",  # a temporary reactivation (R9.2)
    "reactivation.expired": "reactivation.expired",
    "batch.row_parked": "batch.row_parked",  # for the operator: a row a batch could not process
    "webhook_endpoint.disabled": "webhook_endpoint.disabled",  # for the operator: failing for days
})
TYPES = frozenset(PUBLIC_TYPES.values())
FAMILIES = frozenset(public.partition(".")[0] for public in TYPES)

# What an endpoint may ask for besides a type: every event ("*"), or a family ("subscription.*").
EVERYTHING = "*"
MOST_TYPES = 64


def public_type(topic: str) -> str | None:
    """The public type of an outbox topic; None for what is not an event (an e-mail)."""
    return PUBLIC_TYPES.get(topic)


def validate_event_types(given: Iterable[str]) -> list[str]:
    """The event types an endpoint asks for, checked at the door: known types, families
    (`contact.*`) or `*`; each once, sorted. At least one."""
    wanted = sorted({name.strip() for name in given})
    if not wanted or wanted == [""]:
        raise InvalidInput("an endpoint needs at least one event type (--event TYPE; `renewly webhooks types`)",
                           code="no_event_type")
    if len(wanted) > MOST_TYPES:
        raise InvalidInput(f"at most {MOST_TYPES} event types per endpoint", code="too_many_event_types")
    for name in wanted:
        family, dot, rest = name.partition(".")
        if name == EVERYTHING or name in TYPES or (rest == "*" and dot and family in FAMILIES):
            continue
        shown = name if name.isprintable() and len(name) <= 64 else repr(name[:64])
        raise InvalidInput(f"unknown event type {shown}: `renewly webhooks types` lists them",
                           code="unknown_event_type")
    return wanted


def wants(event_types: Iterable[str], public: str) -> bool:
    """Whether an endpoint registered for `event_types` wants events of type `public`."""
    family = public.partition(".")[0] + ".*"
    return any(name in (public, family, EVERYTHING) for name in event_types)


def receives(event_types: Iterable[str], registered_at: datetime, topic: str, written_at: datetime) -> bool:
    """Whether an endpoint gets an outbox event: one of its types, written once it was registered
    (as Stripe's: an endpoint is not sent the history it was not there for)."""
    public = public_type(topic)
    return public is not None and written_at >= registered_at and wants(event_types, public)


def webhook_id(outbox_id: int) -> str:
    """The webhook-id of an event's message: the outbox row's id, never given twice, so the same
    at every try, every replay and for every endpoint (a receiver drops an id it has seen)."""
    return f"msg_{outbox_id}"


def timestamp(instant: datetime) -> str:
    """An instant as the messages say it: ISO 8601, UTC, "Z"."""
    return instant.astimezone(UTC).isoformat().replace("+00:00", "Z")


def message(topic: str, written_at: datetime, account_id: int | None, payload: Mapping[str, Any]) -> dict[str, Any]:
    """The message of an outbox event: its public type, the instant of the change it reports,
    and what the topic says, with the account it is about."""
    public = public_type(topic)
    if public is None:
        raise ValueError(f"outbox topic {topic!r} is not an event for the host product")
    return {"type": public, "timestamp": timestamp(written_at), "data": {"account_id": account_id, **payload}}


def body(sent: Mapping[str, Any]) -> str:
    """The message as sent and signed: compact JSON, keys in their order, UTF-8 text as it is.
    The same bytes at every try: a receiver may compare them."""
    return json.dumps(sent, ensure_ascii=False, separators=(",", ":"))
