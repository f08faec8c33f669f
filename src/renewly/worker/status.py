"""`renewly worker status`: where each batch stands (its last run, its next tick, how late that
tick is) on either engine; on SQLite whether a worker runs; on PostgreSQL the queue's own section
(queued and failed jobs per task, live workers), which the queue module gives; and the webhook
endpoints no batch sends to, disabled (docs/webhooks.md)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from renewly.adapters.db.locks import EmbeddedWorker, embedded_worker, several_writers
from renewly.ports import Ports
from renewly.scheduler import BatchSchedule, schedule
from renewly.webhooks.endpoints import disabled_endpoints


class QueueSection(Protocol):
    """What `renewly.worker.queue.queue_status(app)` answers on PostgreSQL: the queued and failed
    jobs of each task and the live workers, as JSON and as lines of at most 80 columns."""

    def as_json(self) -> dict[str, Any]: ...

    def describe(self) -> list[str]: ...


@dataclass(frozen=True)
class WorkerStatus:
    now: datetime
    clock: str  # "test" or "system"
    shared_queue: bool  # PostgreSQL: workers share the queue (else SQLite's one worker)
    batches: list[BatchSchedule]
    embedded: EmbeddedWorker | None  # SQLite's worker (None: in memory, or PostgreSQL)
    # PostgreSQL: the queue's section; None on SQLite.
    queue: QueueSection | None
    # Webhook endpoints not sent to (disabled by the operator, or by the webhooks batch after days
    # of failure): id, url, disabled_at, disabled_reason.
    disabled_endpoints: list[dict[str, Any]]


def worker_status(app: Ports) -> WorkerStatus:
    now = app.clock.now()
    embedded = queue = None
    if several_writers(app.engine):  # PostgreSQL: workers share the queue
        queue = queue_section(app)
    else:
        embedded = embedded_worker(app.engine)
    return WorkerStatus(now, "test" if app.test_clock else "system", several_writers(app.engine),
                        schedule(app, now), embedded, queue, disabled_endpoints(app))


def queue_section(app: Ports) -> QueueSection:
    """PostgreSQL's queue section: `renewly.worker.queue.queue_status(app)` (imported here, on
    PostgreSQL only: procrastinate is not for SQLite's reads to load)."""
    from renewly.worker.queue import queue_status
    status: QueueSection = queue_status(app)
    return status
