"""The public event types: every outbox event has one, an endpoint gets the ones it asked for,
and its message is Standard Webhooks' `{type, timestamp, data}`."""

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from renewly.outbox.writer import EMAIL, TOPICS
from renewly.shared.errors import InvalidInput
from renewly.webhooks.rules.events import (
    PUBLIC_TYPES,
    TYPES,
    body,
    message,
    public_type,
    receives,
    validate_event_types,
    wants,
    webhook_id,
)

AT = datetime(2026, 1, 31, 9, 30, tzinfo=UTC)

# What issue 13 says the host product must be told of, by name or family.
STORY = ["account.created", "account.updated", "account.cancelled", "account.reactivated", "account.deleted",
         "subscription.*", "invoice.issued", "payment.succeeded", "payment.declined", "dunning.step",
         "member.banner_changed", "contact.*"]


def test_every_outbox_event_has_its_public_type_and_e_mails_are_not_events():
    assert set(PUBLIC_TYPES) == TOPICS - {EMAIL}
    assert public_type(EMAIL) is None


def test_the_story_s_events_are_all_public_types():
    for name in STORY:
        family, _, rest = name.partition(".")
        assert name in TYPES or (rest == "*" and any(public.startswith(f"{family}.") for public in TYPES)), name


def test_an_endpoint_asks_for_types_families_or_everything_each_once_sorted():
    assert validate_event_types([" invoice.issued", "contact.*", "invoice.issued"]) == ["contact.*", "invoice.issued"]
    assert validate_event_types(["*"]) == ["*"]


@pytest.mark.parametrize(("given", "code"), [
    ([], "no_event_type"), ([""], "no_event_type"), (["invoice.paid"], "unknown_event_type"),
    (["billing_contact.added"], "unknown_event_type"), (["nothing.*"], "unknown_event_type"),
    (["invoice"], "unknown_event_type"), (["**"], "unknown_event_type"),
    ([f"type{n}.*" for n in range(65)], "too_many_event_types")])
def test_an_unknown_type_or_none_at_all_is_refused(given, code):
    with pytest.raises(InvalidInput) as refused:
        validate_event_types(given)
    assert refused.value.code == code


def test_an_endpoint_wants_its_types_its_families_or_everything():
    assert wants(["invoice.issued"], "invoice.issued") and not wants(["invoice.issued"], "credit_note.issued")
    assert wants(["contact.*"], "contact.removed") and not wants(["contact.*"], "account.created")
    assert all(wants(["*"], public) for public in TYPES)


def test_an_endpoint_receives_its_types_written_once_it_was_registered_only():
    registered = AT
    assert receives(["member.banner_changed"], registered, "account.dunning_state", AT)
    assert not receives(["member.banner_changed"], registered, "account.dunning_state", AT - timedelta(seconds=1))
    assert not receives(["*"], registered, EMAIL, AT)
    assert not receives(["account.*"], registered, "invoice.issued", AT)


def test_the_message_is_type_timestamp_and_data_with_its_account_and_its_id_is_the_event_s():
    paris = timezone(timedelta(hours=1))
    sent = message("billing_contact.added", AT.astimezone(paris), 7, {"email": "compta@acme.test"})
    assert sent == {"type": "contact.added", "timestamp": "2026-01-31T09:30:00Z",
                    "data": {"account_id": 7, "email": "compta@acme.test"}}
    assert json.loads(body(sent)) == sent and " " not in body(sent).replace("contact.added", "")
    assert body(message("account.created", AT, 3, {"name": "Café"})).endswith('"name":"Café"}}')
    assert webhook_id(42) == "msg_42"
    with pytest.raises(ValueError):
        message(EMAIL, AT, 1, {})
