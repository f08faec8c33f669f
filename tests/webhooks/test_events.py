"""The story's events: every public type has a use case that writes it, in the transaction of the
change it reports; the ones the host product needed and the outbox lacked (an account updated,
cancelled, reactivated; a subscription updated) are written where the change is made."""

from __future__ import annotations

import ast
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from renewly.accounts.accounts import add_member, remove_member, transfer_ownership, update_buyer_address
from renewly.adapters.db.tables import accounts, outbox
from renewly.billing.subscriptions import change_seats
from renewly.dunning.reactivation import grant_reactivation
from renewly.scheduler import advance, run_all
from renewly.webhooks.rules.events import PUBLIC_TYPES
from tests.builders import OPERATOR, subscribed, with_card

SOURCE = Path(__file__).resolve().parents[2] / "src" / "renewly"
DECLINES = "4000000000000341"
OWNER, ADMIN = "owner@acme.test", "admin@acme.test"


def written_topics() -> list[re.Pattern]:
    """The topics every `writer.event(at, TOPIC, ...)` call of Renewly writes, as patterns (an
    f-string's values stand for any name: f"payment.{outcome}")."""
    patterns = []
    for path in SOURCE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "event"
                    and isinstance(node.func.value, ast.Name) and node.func.value.id == "writer"):
                continue
            topic = node.args[1]
            for written in (topic.body, topic.orelse) if isinstance(topic, ast.IfExp) else (topic,):
                if isinstance(written, ast.Constant):
                    patterns.append(re.compile(re.escape(written.value)))
                elif isinstance(written, ast.JoinedStr):
                    patterns.append(re.compile("".join(re.escape(part.value) if isinstance(part, ast.Constant)
                                                       else "[a-z_]+" for part in written.values)))
    return patterns


def test_every_public_event_type_has_a_use_case_that_writes_it():
    patterns = written_topics()
    assert [topic for topic in PUBLIC_TYPES if not any(pattern.fullmatch(topic) for pattern in patterns)] == []


def events(app, topic: str) -> list[dict]:
    with app.engine.connect() as conn:
        return list(conn.execute(select(outbox.c.payload).where(outbox.c.topic == topic).order_by(outbox.c.id))
                    .scalars())


def test_an_account_updated_by_its_members_address_or_owner_and_a_subscription_by_its_seats(app):
    account_id, subscription_id = subscribed(app)
    add_member(app, account_id, email=ADMIN, role="admin", actor=OPERATOR)
    update_buyer_address(app, account_id, changes={"city": "Lyon"}, acting_email=OWNER, actor=OPERATOR)
    transfer_ownership(app, account_id, to_email=ADMIN, reason="owner left", actor=OPERATOR)
    remove_member(app, account_id, email=OWNER, actor=OPERATOR)
    change_seats(app, subscription_id, seats=5, actor=OPERATOR)

    assert [event["changed"] for event in events(app, "account.updated")] == [
        ["members"], ["buyer_address"], ["owner"], ["members"]]
    assert events(app, "subscription.updated") == [{"subscription_id": subscription_id, "seats": 5,
                                                    "previous_seats": 3}]


def to_day(app, day: int) -> None:
    advance(app, datetime(2026, 1, 1, 12, tzinfo=UTC) + timedelta(days=day) - app.clock.now())


def test_r9_the_host_product_is_told_an_account_is_cancelled_then_reactivated_once_it_pays(app):
    account_id, _ = subscribed(app, card=DECLINES)
    to_day(app, 30)
    with app.engine.connect() as conn:
        cancelled = conn.execute(select(accounts).where(accounts.c.id == account_id)).one()
    [told] = events(app, "account.cancelled")
    assert told["account_id"] == account_id and told["deletion_due_at"] == cancelled.deletion_due_at.isoformat()

    grant_reactivation(app, account_id, days=None, reason="owner called", actor=OPERATOR)
    assert events(app, "account.reactivated") == []  # a window to pay in: not active yet (R9.2)
    with_card(app, account_id)
    run_all(app, app.clock.now())

    [reactivated] = events(app, "account.reactivated")
    assert reactivated["account_id"] == account_id
    with app.engine.connect() as conn:
        assert conn.execute(select(accounts.c.status).where(accounts.c.id == account_id)).scalar_one() == "active"
