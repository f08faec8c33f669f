"""The deliveries of events to endpoints, their log of attempts, and a replay: one more try of a
delivery, with the same webhook-id, by the next webhooks batch (`renewly webhooks send` or the
worker's)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from renewly.adapters.clock import wall_clock
from renewly.adapters.db.locks import hold_until_commit
from renewly.adapters.db.tables import outbox, webhook_deliveries, webhook_delivery_attempts, webhook_endpoints
from renewly.outbox.records import audit
from renewly.ports import Ports
from renewly.shared.errors import Conflict, InvalidInput, NotAllowed, NotFound
from renewly.webhooks.rules.answers import Status
from renewly.webhooks.rules.events import public_type, webhook_id

MOST_LISTED = 1000


def list_deliveries(app: Ports, *, endpoint_id: int | None = None, failed: bool = False,
                    event_id: int | None = None, limit: int = 50, before: int | None = None) -> list[dict[str, Any]]:
    """Deliveries, newest first: of one endpoint, of one outbox event, only the failed ones. At
    most `limit`, with ids below `before` (the last one of the page before: a cursor)."""
    if not 1 <= limit <= MOST_LISTED:
        raise InvalidInput(f"a page lists from 1 to {MOST_LISTED} deliveries (got {limit})", code="invalid_limit")
    query = (select(*_COLUMNS).join(outbox, outbox.c.id == webhook_deliveries.c.outbox_id)
             .order_by(webhook_deliveries.c.id.desc()).limit(limit))
    if endpoint_id is not None:
        query = query.where(webhook_deliveries.c.endpoint_id == endpoint_id)
    if event_id is not None:
        query = query.where(webhook_deliveries.c.outbox_id == event_id)
    if failed:
        query = query.where(webhook_deliveries.c.status == Status.FAILED.value)
    if before is not None:
        query = query.where(webhook_deliveries.c.id < before)
    with app.engine.connect() as conn:
        if endpoint_id is not None and conn.execute(
                select(webhook_endpoints.c.id).where(webhook_endpoints.c.id == endpoint_id)).first() is None:
            raise NotFound(f"no webhook endpoint {endpoint_id} (renewly webhooks list)",
                           code="unknown_webhook_endpoint")
        return [_shown(row) for row in conn.execute(query)]


def get_delivery(app: Ports, delivery_id: int) -> dict[str, Any]:
    """One delivery, with its attempts, oldest first (the delivery log)."""
    with app.engine.connect() as conn:
        row = conn.execute(select(*_COLUMNS).join(outbox, outbox.c.id == webhook_deliveries.c.outbox_id)
                           .where(webhook_deliveries.c.id == delivery_id)).first()
        if row is None:
            raise _unknown(delivery_id)
        attempts = conn.execute(select(webhook_delivery_attempts.c.at, webhook_delivery_attempts.c.replay,
                                       webhook_delivery_attempts.c.http_status, webhook_delivery_attempts.c.error,
                                       webhook_delivery_attempts.c.latency_ms,
                                       webhook_delivery_attempts.c.response_excerpt)
                                .where(webhook_delivery_attempts.c.delivery_id == delivery_id)
                                .order_by(webhook_delivery_attempts.c.id)).all()
    return {**_shown(row), "attempts": [dict(attempt._mapping) for attempt in attempts]}


def replay_delivery(app: Ports, delivery_id: int, *, actor: str) -> dict[str, Any]:
    """One more try of a delivery, whatever became of it (delivered, failed, still trying), with
    the same webhook-id, by the next webhooks batch. Its endpoint must be enabled."""
    now = app.clock.now()
    with app.engine.begin() as conn:
        row = conn.execute(hold_until_commit(
            select(webhook_deliveries.c.id, webhook_deliveries.c.endpoint_id, webhook_deliveries.c.claimed_until,
                   webhook_endpoints.c.disabled_at)
            .join(webhook_endpoints, webhook_endpoints.c.id == webhook_deliveries.c.endpoint_id)
            .where(webhook_deliveries.c.id == delivery_id), conn, of=webhook_deliveries)).first()
        if row is None:
            raise _unknown(delivery_id)
        if row.disabled_at is not None:
            raise NotAllowed(f"webhook endpoint {row.endpoint_id} is disabled: `renewly webhooks enable "
                             f"{row.endpoint_id}` first", code="endpoint_disabled")
        if row.claimed_until is not None and row.claimed_until > wall_clock():
            # Its answer, on its way, would be written over the replay's.
            raise Conflict(f"webhook delivery {delivery_id} is being sent right now; ask again once it is "
                           "answered", code="delivery_in_flight")
        conn.execute(webhook_deliveries.update().where(webhook_deliveries.c.id == delivery_id)
                     .values(status=Status.REPLAY.value, next_attempt_at=now, failed_at=None))
        audit(conn, now, actor, "webhook_delivery.replayed", "webhook_delivery", delivery_id,
              details={"endpoint_id": row.endpoint_id})
    return get_delivery(app, delivery_id)


_COLUMNS = (webhook_deliveries.c.id, webhook_deliveries.c.endpoint_id, webhook_deliveries.c.outbox_id,
            outbox.c.topic, outbox.c.account_id, webhook_deliveries.c.status, webhook_deliveries.c.attempts,
            webhook_deliveries.c.created_at, webhook_deliveries.c.next_attempt_at,
            webhook_deliveries.c.delivered_at, webhook_deliveries.c.failed_at)


def _shown(row) -> dict[str, Any]:
    found = dict(row._mapping)
    topic = found.pop("topic")
    if found["status"] not in (Status.PENDING, Status.REPLAY):
        found["next_attempt_at"] = None  # no attempt comes
    return {"id": found.pop("id"), "webhook_id": webhook_id(row.outbox_id), "type": public_type(topic), **found}


def _unknown(delivery_id: int) -> NotFound:
    return NotFound(f"no webhook delivery {delivery_id} (renewly webhooks deliveries)",
                    code="unknown_webhook_delivery")
