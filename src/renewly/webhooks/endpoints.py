"""The endpoints the host product receives events at: registered, listed, disabled, enabled,
removed, their secret rotated (`renewly webhooks ...`, the API's /v1/webhook_endpoints). Each
operator's act is audited; a secret is given once, when it is made, and never shown again."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy import Connection, func, select

from renewly.adapters.db.locks import hold_until_commit
from renewly.adapters.db.tables import webhook_deliveries, webhook_endpoints
from renewly.adapters.webhooks import new_secret
from renewly.outbox import writer
from renewly.outbox.records import audit
from renewly.ports import Ports
from renewly.shared.errors import NotAllowed, NotFound
from renewly.webhooks.rules.answers import Status
from renewly.webhooks.rules.endpoints import (
    previous_secret_until,
    validate_description,
    validate_overlap_hours,
    validate_reason,
    validate_url,
)
from renewly.webhooks.rules.events import validate_event_types

log = structlog.get_logger(__name__)

TARGET = "webhook_endpoint"  # the audit log's target type


@dataclass(frozen=True)
class NewEndpoint:
    """A registered endpoint, with its secret: shown this once, to configure the receiver."""

    id: int
    url: str
    event_types: list[str]
    description: str
    secret: str
    created_at: datetime


def add_endpoint(app: Ports, *, url: str, event_types: list[str], description: str = "",
                 actor: str) -> NewEndpoint:
    """Register an endpoint for some event types (exact, `family.*` or `*`): it receives the events
    written from now on. Its signing secret is made here and returned once."""
    url, wanted, description = validate_url(url), validate_event_types(event_types), validate_description(description)
    secret, now = new_secret(), app.clock.now()
    with app.engine.begin() as conn:
        endpoint_id = conn.execute(webhook_endpoints.insert().values(
            url=url, secret=secret, event_types=wanted, description=description, created_at=now,
            events_from=now)
            .returning(webhook_endpoints.c.id)).scalar_one()
        audit(conn, now, actor, "webhook_endpoint.added", TARGET, endpoint_id,
              details={"url": url, "event_types": wanted})
    return NewEndpoint(endpoint_id, url, wanted, description, secret, now)


def list_endpoints(app: Ports, *, after: int = 0, limit: int | None = None) -> list[dict[str, Any]]:
    """The endpoints, oldest first, without their secret, with their deliveries by status: every
    one, or at most `limit` with ids above `after` (the last one of the page before: a cursor)."""
    query = select(*_SHOWN).where(webhook_endpoints.c.id > after).order_by(webhook_endpoints.c.id)
    with app.engine.connect() as conn:
        rows = conn.execute(query if limit is None else query.limit(limit)).all()
        counts = _counts(conn, [row.id for row in rows])
    return [_shown(row, counts.get(row.id, {})) for row in rows]


def get_endpoint(app: Ports, endpoint_id: int) -> dict[str, Any]:
    """One endpoint, without its secret, with its deliveries by status."""
    with app.engine.connect() as conn:
        row = conn.execute(select(*_SHOWN).where(webhook_endpoints.c.id == endpoint_id)).first()
        if row is None:
            raise _unknown(endpoint_id)
        return _shown(row, _counts(conn, [endpoint_id]).get(endpoint_id, {}))


def disable_endpoint(app: Ports, endpoint_id: int, *, reason: str = "", actor: str) -> None:
    """Stop sending to an endpoint: it gets no new event, its pending deliveries wait (their
    next attempt comes once it is enabled again)."""
    reason = validate_reason(reason) or f"disabled by {actor}"
    now = app.clock.now()
    with app.engine.begin() as conn:
        endpoint = _locked(conn, endpoint_id)
        if endpoint.disabled_at is not None:
            raise NotAllowed(f"webhook endpoint {endpoint_id} is already disabled", code="endpoint_disabled")
        conn.execute(webhook_endpoints.update().where(webhook_endpoints.c.id == endpoint_id)
                     .values(disabled_at=now, disabled_reason=reason))
        audit(conn, now, actor, "webhook_endpoint.disabled", TARGET, endpoint_id, reason=reason)


def enable_endpoint(app: Ports, endpoint_id: int, *, actor: str) -> int:
    """Send to an endpoint again: the events written from now on, and its deliveries that waited,
    tried at once (their schedule goes on where it was). Returns how many waited."""
    now = app.clock.now()
    with app.engine.begin() as conn:
        endpoint = _locked(conn, endpoint_id)
        if endpoint.disabled_at is None:
            raise NotAllowed(f"webhook endpoint {endpoint_id} is not disabled", code="endpoint_enabled")
        # Events written while it was disabled were never meant for it; from now on they are.
        conn.execute(webhook_endpoints.update().where(webhook_endpoints.c.id == endpoint_id)
                     .values(disabled_at=None, disabled_reason=None, failing_since=None, events_from=now))
        waiting = conn.execute(webhook_deliveries.update()
                               .where(webhook_deliveries.c.endpoint_id == endpoint_id,
                                      webhook_deliveries.c.status.in_([Status.PENDING, Status.REPLAY]))
                               .values(next_attempt_at=now)).rowcount
        audit(conn, now, actor, "webhook_endpoint.enabled", TARGET, endpoint_id, details={"waiting": waiting})
    return waiting


@dataclass(frozen=True)
class RotatedSecret:
    """An endpoint's new secret, shown this once, and until when its old one still signs too."""

    id: int
    secret: str
    previous_secret_until: datetime | None


def rotate_secret(app: Ports, endpoint_id: int, *, overlap_hours: int = 24, actor: str) -> RotatedSecret:
    """Give an endpoint a new signing secret. For `overlap_hours` (0: none, a leaked secret) every
    webhook is signed with the new secret and the old one, so the receiver can switch to the new
    one without refusing an event meanwhile; then with the new one alone. A rotation during an
    overlap ends the older secret at once: two secrets sign at most."""
    overlap_hours = validate_overlap_hours(overlap_hours)
    secret, now = new_secret(), app.clock.now()
    until = previous_secret_until(now, overlap_hours)
    with app.engine.begin() as conn:
        endpoint = _locked(conn, endpoint_id)
        conn.execute(webhook_endpoints.update().where(webhook_endpoints.c.id == endpoint_id)
                     .values(secret=secret, previous_secret=endpoint.secret if until else None,
                             previous_secret_until=until))
        audit(conn, now, actor, "webhook_endpoint.secret_rotated", TARGET, endpoint_id,
              details={"previous_secret_until": until.isoformat() if until else None})
    return RotatedSecret(endpoint_id, secret, until)


def remove_endpoint(app: Ports, endpoint_id: int, *, actor: str) -> None:
    """Remove an endpoint, with its deliveries and their log."""
    now = app.clock.now()
    with app.engine.begin() as conn:
        endpoint = _locked(conn, endpoint_id)
        conn.execute(webhook_endpoints.delete().where(webhook_endpoints.c.id == endpoint_id))
        audit(conn, now, actor, "webhook_endpoint.removed", TARGET, endpoint_id, details={"url": endpoint.url})


def disable_failing(conn: Connection, endpoints: list[tuple[int, str, datetime]], at: datetime) -> None:
    """Endpoints failing for too long, disabled by the webhooks batch in its transaction, the
    operator told: an outbox event (which other endpoints may want), a warning in the log, and
    `renewly worker status` lists disabled endpoints. `endpoints`: (id, url, failing since)."""
    for endpoint_id, url, since in endpoints:
        reason = f"every attempt failed since {since.isoformat()}"
        conn.execute(webhook_endpoints.update().where(webhook_endpoints.c.id == endpoint_id)
                     .values(disabled_at=at, disabled_reason=reason))
        writer.write(conn, writer.event(at, "webhook_endpoint.disabled", None,
                                        {"endpoint_id": endpoint_id, "url": url, "failing_since": since.isoformat()}))
        log.warning("webhook endpoint disabled: every attempt failed for too long; `renewly webhooks enable` "
                    "sends to it again", endpoint_id=endpoint_id, url=url, failing_since=since.isoformat())


def disabled_endpoints(app: Ports) -> list[dict[str, Any]]:
    """The endpoints not sent to, with why (`renewly worker status`)."""
    with app.engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(
            select(webhook_endpoints.c.id, webhook_endpoints.c.url, webhook_endpoints.c.disabled_at,
                   webhook_endpoints.c.disabled_reason)
            .where(webhook_endpoints.c.disabled_at.is_not(None)).order_by(webhook_endpoints.c.id))]


_SHOWN = (webhook_endpoints.c.id, webhook_endpoints.c.url, webhook_endpoints.c.event_types,
          webhook_endpoints.c.description, webhook_endpoints.c.created_at, webhook_endpoints.c.events_from,
          webhook_endpoints.c.disabled_at,
          webhook_endpoints.c.disabled_reason, webhook_endpoints.c.failing_since,
          webhook_endpoints.c.previous_secret_until)


def _shown(row, counts: dict[str, int]) -> dict[str, Any]:
    return {**row._mapping, "deliveries": {status.value: counts.get(status.value, 0) for status in Status}}


def _counts(conn: Connection, endpoint_ids: list[int]) -> dict[int, dict[str, int]]:
    """The deliveries of these endpoints by status (of these only: the table holds millions)."""
    if not endpoint_ids:
        return {}
    query = (select(webhook_deliveries.c.endpoint_id, webhook_deliveries.c.status, func.count())
             .where(webhook_deliveries.c.endpoint_id.in_(endpoint_ids))
             .group_by(webhook_deliveries.c.endpoint_id, webhook_deliveries.c.status))
    counts: dict[int, dict[str, int]] = {}
    for found_id, status, count in conn.execute(query):
        counts.setdefault(found_id, {})[status] = count
    return counts


def _locked(conn: Connection, endpoint_id: int):
    """The endpoint's row, held to the end of the transaction (the batch may be disabling it)."""
    row = conn.execute(hold_until_commit(select(webhook_endpoints).where(webhook_endpoints.c.id == endpoint_id),
                                         conn)).first()
    if row is None:
        raise _unknown(endpoint_id)
    return row


def _unknown(endpoint_id: int) -> NotFound:
    return NotFound(f"no webhook endpoint {endpoint_id} (renewly webhooks list)", code="unknown_webhook_endpoint")
