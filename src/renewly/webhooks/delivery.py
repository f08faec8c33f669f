"""The webhooks batch: every outbox event reaches the endpoints that want it, signed, at least once
(docs/webhooks.md).

Two phases, slice by slice, until nothing is left or a stop is asked:

1. **hand over**: claim the events not handed over yet (FOR UPDATE SKIP LOCKED on PostgreSQL),
   make one delivery per endpoint that receives each (webhooks.rules.events.receives), in bulk,
   and mark the events handed over (`outbox.delivered_at`), in one transaction: each event is
   handed over once, whoever runs the batch. With no endpoint enabled, events wait: an endpoint
   registered later receives only what is written from then on.
2. **deliver**: claim the deliveries due (pending or replayed, `next_attempt_at` reached, their
   endpoint enabled, claimed by no live process) under a wall-clock lease committed before any
   POST, so that no lock is held while endpoints answer; POST them at once (adapters/webhooks.py:
   signed, at most `webhooks.concurrency` in flight, each within `webhooks.timeout_seconds`);
   then, for the deliveries still under this batch's lease, log each attempt and write what
   its answer means (webhooks.rules.answers): delivered, tried again later, or failed; and an
   endpoint failing for too long is disabled, the operator told (endpoints.disable_failing).

A process that dies between a POST and its mark leaves its deliveries claimed until the lease
ends; they are then sent again with the same webhook-id: at least once, and a repeat is
recognisable by the receiver.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import Connection, func, or_, select, text

from renewly.adapters.clock import wall_clock
from renewly.adapters.db.bulk import among, insert_rows, update_rows
from renewly.adapters.db.locks import claim_unheld, hold_rows, hold_until_commit
from renewly.adapters.db.tables import (
    DELIVERY_DUE,
    EVENTS_DUE,
    outbox,
    webhook_deliveries,
    webhook_delivery_attempts,
    webhook_endpoints,
)
from renewly.adapters.webhooks import Post, Reply, post_all, sign
from renewly.batches.reports import Reported
from renewly.ports import Ports
from renewly.webhooks.endpoints import disable_failing
from renewly.webhooks.rules.answers import (
    ERROR_CHARACTERS,
    EXCERPT_CHARACTERS,
    Answer,
    Status,
    after_attempt,
    bounded,
    endpoint_health,
)
from renewly.webhooks.rules.endpoints import signing_secrets
from renewly.webhooks.rules.events import body, message, receives, webhook_id

log = structlog.get_logger(__name__)


@dataclass
class WebhookReport(Reported):
    handed_over: int = 0  # events handed to the endpoints that want them
    deliveries_made: int = 0  # one per endpoint that wants an event
    delivered: int = 0
    to_retry: int = 0  # failed attempts, tried again later
    failed: int = 0  # deliveries whose schedule is spent: `renewly webhooks deliveries --failed`
    resent: int = 0  # of the delivered, those tried before (the receiver may have had them already)
    endpoints_disabled: int = 0
    last_error: str = ""  # the last failed attempt's answer

    @property
    def did_anything(self) -> bool:
        return bool(self.handed_over or self.delivered or self.failed)

    @property
    def left_undone(self) -> bool:
        return bool(self.to_retry or self.failed or self.endpoints_disabled)

    def describe(self) -> str:
        line = f"{self.delivered} webhook(s) delivered"
        if self.handed_over:
            line = f"{self.handed_over} event(s) handed over, " + line
        if self.to_retry:
            line += f", {self.to_retry} to try again ({self.last_error})"
        if self.failed:
            line += f", {self.failed} failed (renewly webhooks deliveries --failed)"
        if self.endpoints_disabled:
            line += f", {self.endpoints_disabled} endpoint(s) disabled (renewly webhooks list)"
        return line


def deliver_due(app: Ports, as_of: datetime, on_slice: Callable[[WebhookReport], None] | None = None
                ) -> WebhookReport:
    """Hand over the new events, then send every delivery due by now (`as_of` at the latest: a
    tick's instant), slice by slice, until none is left or a stop is asked. `on_slice` is told
    the report after each slice."""
    report = WebhookReport()
    while not app.stop.asked and _hand_over(app, as_of, report):
        pass
    settings = app.settings.webhooks
    while not app.stop.asked:
        lease = wall_clock() + timedelta(seconds=settings.lease_seconds)
        now = max(as_of, app.clock.now())
        work = _claim(app, now, lease, settings.slice_size)
        if not work:
            break
        replies = post_all([_post(row, now) for row in work], concurrency=settings.concurrency,
                           timeout=settings.timeout_seconds, excerpt_bytes=EXCERPT_CHARACTERS * 4)
        _mark(app, work, replies, max(as_of, app.clock.now()), lease, report)
        if on_slice is not None:
            on_slice(report)
    return report


_DELIVERY_COLUMNS = ("endpoint_id", "outbox_id", "status", "attempts", "created_at", "next_attempt_at")


def _hand_over(app: Ports, as_of: datetime, report: WebhookReport) -> bool:
    """One slice of events handed over; False when none was left (or no endpoint is enabled)."""
    with app.engine.begin() as conn:
        events = conn.execute(claim_unheld(
            select(outbox.c.id, outbox.c.created_at, outbox.c.topic)
            # EVENTS_DUE as text, so that PostgreSQL sees its partial index's own condition.
            .where(text(EVENTS_DUE)).order_by(outbox.c.id).limit(app.settings.webhooks.slice_size), conn)).all()
        if not events:
            return False
        # After the events: an endpoint committed before an event it should receive is seen here.
        endpoints = conn.execute(select(webhook_endpoints.c.id, webhook_endpoints.c.event_types,
                                        webhook_endpoints.c.events_from)
                                 .where(webhook_endpoints.c.disabled_at.is_(None))).all()
        if not endpoints:
            return False  # they wait; an endpoint registered later receives what is written after
        now = max(as_of, app.clock.now())
        made = [(endpoint.id, event.id, Status.PENDING.value, 0, now, now)
                for event in events for endpoint in endpoints
                if receives(endpoint.event_types, endpoint.events_from, event.topic, event.created_at)]
        insert_rows(conn, webhook_deliveries, made, _DELIVERY_COLUMNS, binary=True)
        conn.execute(outbox.update().where(among(conn, outbox.c.id, [event.id for event in events]))
                     .values(delivered_at=now))
    report.handed_over += len(events)
    report.deliveries_made += len(made)
    return True


def _claim(app: Ports, now: datetime, lease: datetime, size: int) -> Sequence[Any]:
    query = (select(webhook_deliveries.c.id, webhook_deliveries.c.endpoint_id, webhook_deliveries.c.outbox_id,
                    webhook_deliveries.c.status, webhook_deliveries.c.attempts, webhook_deliveries.c.delivered_at,
                    webhook_endpoints.c.url, webhook_endpoints.c.secret, webhook_endpoints.c.previous_secret,
                    webhook_endpoints.c.previous_secret_until, outbox.c.created_at, outbox.c.topic,
                    outbox.c.account_id, outbox.c.payload)
             .select_from(webhook_deliveries
                          .join(webhook_endpoints, webhook_endpoints.c.id == webhook_deliveries.c.endpoint_id)
                          .join(outbox, outbox.c.id == webhook_deliveries.c.outbox_id))
             # DELIVERY_DUE as text, so that PostgreSQL sees its partial index's own condition.
             .where(text(DELIVERY_DUE), webhook_deliveries.c.next_attempt_at <= now,
                    or_(webhook_deliveries.c.claimed_until.is_(None),
                        webhook_deliveries.c.claimed_until < wall_clock()),
                    webhook_endpoints.c.disabled_at.is_(None))
             .order_by(webhook_deliveries.c.next_attempt_at, webhook_deliveries.c.id).limit(size))
    with app.engine.begin() as conn:
        # What another batch claims is its own; only the deliveries' rows are locked.
        rows = conn.execute(claim_unheld(query, conn, of=webhook_deliveries)).all()
        if rows:
            conn.execute(webhook_deliveries.update()
                         .where(among(conn, webhook_deliveries.c.id, [row.id for row in rows]))
                         .values(claimed_until=lease))
    return rows


def _post(row: Any, now: datetime) -> Post:
    sent = body(message(row.topic, row.created_at, row.account_id, row.payload))
    keys = signing_secrets(row.secret, row.previous_secret, row.previous_secret_until, now)
    return Post(row.url, sign(keys, webhook_id(row.outbox_id), sent), sent.encode("utf-8"))


def _answer(reply: Reply) -> Answer:
    return Answer(reply.status, bounded(reply.error, ERROR_CHARACTERS) if reply.error else None, reply.latency_ms,
                  bounded(reply.text, EXCERPT_CHARACTERS))


def _mark(app: Ports, work: Sequence[Any], replies: Sequence[Reply], at: datetime, lease: datetime,
          report: WebhookReport) -> None:
    """Log each attempt and write what it means, for the deliveries still under this batch's
    lease; then each endpoint's health, disabling those failing for too long."""
    settings = app.settings.webhooks
    schedule = [timedelta(seconds=wait) for wait in settings.retry_schedule_seconds]
    with app.engine.begin() as conn:
        # Endpoints first, as the operator's acts lock them before their deliveries: no deadlock.
        hold_rows(conn, webhook_endpoints, {row.endpoint_id for row in work})
        ours = _still_claimed(conn, [row.id for row in work], lease)
        changes, attempts = [], []
        by_endpoint: dict[int, list[Answer]] = {}
        for row, reply in zip(work, replies):
            if row.id not in ours:
                continue  # its lease ran out and another batch took it over: its answer is the other's
            answer, status = _answer(reply), Status(row.status)
            after = after_attempt(status, row.attempts + 1, answer, at, schedule)
            changes.append({"id": row.id, "status": after.status.value, "attempts": row.attempts + 1,
                            "next_attempt_at": after.retry_at, "claimed_until": None,
                            "delivered_at": at if answer.delivered else row.delivered_at,
                            "failed_at": at if after.status is Status.FAILED else None})
            attempts.append((row.id, at, status is Status.REPLAY, answer.status, answer.error, answer.latency_ms,
                             answer.excerpt))
            by_endpoint.setdefault(row.endpoint_id, []).append(answer)
            if answer.delivered:
                report.delivered += 1
                report.resent += row.attempts > 0
            elif after.status is Status.FAILED:
                report.failed += 1
                report.last_error = answer.describe()
            else:
                report.to_retry += 1
                report.last_error = answer.describe()
        update_rows(conn, webhook_deliveries, changes)
        insert_rows(conn, webhook_delivery_attempts, attempts,
                    ("delivery_id", "at", "replay", "http_status", "error", "latency_ms", "response_excerpt"))
        report.endpoints_disabled += _endpoints_after(conn, by_endpoint, at,
                                                      timedelta(hours=settings.disable_after_hours))
    if report.to_retry or report.failed:
        log.warning("webhooks not delivered", to_retry=report.to_retry, failed=report.failed,
                    reason=report.last_error)


def _endpoints_after(conn: Connection, by_endpoint: dict[int, list[Answer]], at: datetime,
                     disable_after: timedelta) -> int:
    """Each endpoint's failing_since after these answers; those failing for too long disabled.
    The endpoints are locked by the caller. Returns how many were disabled."""
    if not by_endpoint:
        return 0
    rows = conn.execute(select(webhook_endpoints.c.id, webhook_endpoints.c.url, webhook_endpoints.c.failing_since,
                               webhook_endpoints.c.disabled_at)
                        .where(among(conn, webhook_endpoints.c.id, sorted(by_endpoint)))).all()
    changed, disabled = [], []
    for row in rows:
        health = endpoint_health(row.failing_since, by_endpoint[row.id], at, disable_after)
        if health.failing_since != row.failing_since:
            changed.append({"id": row.id, "failing_since": health.failing_since})
        if health.disable and row.disabled_at is None and health.failing_since is not None:
            disabled.append((row.id, row.url, health.failing_since))
    update_rows(conn, webhook_endpoints, changed)
    disable_failing(conn, disabled, at)
    return len(disabled)


def _still_claimed(conn: Connection, ids: list[int], lease: datetime) -> set[int]:
    """The deliveries still under `lease`, locked to the end of the transaction: one whose lease
    ran out may have been taken over (and sent) by another batch."""
    query = select(webhook_deliveries.c.id).where(among(conn, webhook_deliveries.c.id, ids),
                                                  webhook_deliveries.c.claimed_until == lease)
    return set(conn.execute(hold_until_commit(query, conn)).scalars())


def next_webhook_at(conn: Connection, app: Ports) -> datetime | None:
    """When the batch next has work: an event to hand over (while an endpoint is enabled), or
    a delivery due to an enabled endpoint."""
    enabled = select(webhook_endpoints.c.id).where(webhook_endpoints.c.disabled_at.is_(None)).limit(1)
    if conn.execute(enabled).first() is None:
        return None
    moments = [
        conn.execute(select(outbox.c.created_at).where(text(EVENTS_DUE)).order_by(outbox.c.id).limit(1)).scalar(),
        conn.execute(select(func.min(webhook_deliveries.c.next_attempt_at))
                     .join(webhook_endpoints, webhook_endpoints.c.id == webhook_deliveries.c.endpoint_id)
                     .where(text(DELIVERY_DUE), webhook_endpoints.c.disabled_at.is_(None))).scalar(),
    ]
    found = [moment for moment in moments if moment is not None]
    return min(found) if found else None


def due_count(app: Ports, now: datetime) -> int:
    """How many deliveries are due by `now` (a progress bar's total; new events not counted)."""
    with app.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(webhook_deliveries)
                            .join(webhook_endpoints, webhook_endpoints.c.id == webhook_deliveries.c.endpoint_id)
                            .where(text(DELIVERY_DUE), webhook_deliveries.c.next_attempt_at <= now,
                                   webhook_endpoints.c.disabled_at.is_(None))).scalar_one()
