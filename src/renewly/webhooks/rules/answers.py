"""What an endpoint's answer means for its delivery, when a failed one is tried again, and when a
failing endpoint is disabled.

A 2xx status is delivery. Anything else, a status (3xx: redirects are not followed; 4xx; 5xx),
a timeout, a connection refused or dropped, is a failed attempt: the delivery is tried again
after the schedule's next wait (Standard Webhooks' schedule, spanning three days by default:
settings `webhooks.retry_schedule_seconds`), as many times as it has waits, so that an endpoint
down for hours loses nothing; then it has failed (the operator may replay it). A replay asked by
the operator is one more try, whatever its schedule said. An endpoint whose every attempt has
failed for `webhooks.disable_after_hours` (three days) is disabled.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

# How much of a response the log keeps: enough to read an error page's message, never a body's
# megabytes (the rest is not even read).
EXCERPT_CHARACTERS = 500
ERROR_CHARACTERS = 300


class Status(StrEnum):
    """Where a delivery stands (webhook_deliveries.status)."""

    PENDING = "pending"  # its schedule runs: tried at next_attempt_at
    REPLAY = "replay"  # the operator asked for one more try
    DELIVERED = "delivered"
    FAILED = "failed"  # its schedule is spent: only a replay tries it again

    @property
    def due(self) -> bool:
        return self in (Status.PENDING, Status.REPLAY)


@dataclass(frozen=True)
class Answer:
    """What one POST came to: the HTTP status (None: no response), or what went wrong instead (a
    timeout, a connection refused or dropped), how long it took, the start of the response."""

    status: int | None
    error: str | None
    latency_ms: int
    excerpt: str = ""

    @property
    def delivered(self) -> bool:
        return self.status is not None and 200 <= self.status < 300

    def describe(self) -> str:
        """One line: "HTTP 503", "timed out after 15 s", "connection refused"."""
        if self.status is not None:
            return f"HTTP {self.status}"
        return self.error or "no response"


def bounded(text: str, limit: int) -> str:
    """At most `limit` characters of `text`, said to be cut when it is."""
    return text if len(text) <= limit else text[:limit - 1] + "…"


@dataclass(frozen=True)
class Next:
    """A delivery after an attempt: its status, and when it is tried again (pending only)."""

    status: Status
    retry_at: datetime | None


def after_attempt(status: Status, attempts: int, answer: Answer, at: datetime,
                  schedule: Sequence[timedelta]) -> Next:
    """What becomes of a delivery whose attempt (its `attempts`-th, this one counted) got
    `answer` at `at`: delivered; failed once a replay's try or the schedule is spent; else tried
    again after the schedule's wait for this failure (the first failure waits the first value)."""
    if answer.delivered:
        return Next(Status.DELIVERED, None)
    if status is Status.REPLAY:
        return Next(Status.FAILED, None)
    wait = retry_wait(attempts, schedule)
    return Next(Status.FAILED, None) if wait is None else Next(Status.PENDING, at + wait)


def retry_wait(failures: int, schedule: Sequence[timedelta]) -> timedelta | None:
    """The wait after a delivery's `failures`-th failed attempt (1, 2, ...); None once spent."""
    if failures < 1:
        raise ValueError("a wait follows a failed attempt: failures start at 1")
    return schedule[failures - 1] if failures <= len(schedule) else None


def retry_span(schedule: Sequence[timedelta]) -> timedelta:
    """How long after its first attempt a delivery's last one comes, if all fail."""
    return sum(schedule, timedelta(0))


@dataclass(frozen=True)
class EndpointHealth:
    """An endpoint after a slice of attempts: failing since when (None: its last attempt
    succeeded), and whether it is to be disabled now."""

    failing_since: datetime | None
    disable: bool


def endpoint_health(failing_since: datetime | None, answers: Sequence[Answer], at: datetime,
                    disable_after: timedelta) -> EndpointHealth:
    """An endpoint is failing from its first failed attempt after its last success; any success
    ends that. Failing for `disable_after` (every attempt of that time failed), it is disabled."""
    if not answers:
        raise ValueError("an endpoint's health follows attempts: none given")
    if any(answer.delivered for answer in answers):
        return EndpointHealth(None, False)
    since = at if failing_since is None else failing_since
    return EndpointHealth(since, at - since >= disable_after)
