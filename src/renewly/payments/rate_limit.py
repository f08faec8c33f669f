"""Gateway calls, concurrently and under a rate cap: real gateways cap writes (Stripe: 100/s).

The cap counts every call of the merchant account, whichever process makes it: where several
workers may run batches at once (PostgreSQL), they share one cap through the database
(`adapters/db/rate_cap.py`); where one worker runs alone (SQLite), an in-process token bucket
is that cap. `gateway_rate_cap` is the one place that chooses.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, Protocol, TypeVar

from renewly.adapters.db.locks import several_writers
from renewly.adapters.db.rate_cap import SharedRateCap
from renewly.ports import Ports

Request = TypeVar("Request")
Answer = TypeVar("Answer")


class RateCap(Protocol):
    """What a gateway call waits for first: `acquire()` returns when the call may be made."""

    def acquire(self) -> None: ...


def gateway_rate_cap(app: Ports) -> RateCap:
    """The cap of `payments.rate_limit_per_second` gateway calls a second, for every worker
    together: shared through the database where other workers may be calling too, in this
    process alone where no other worker can run."""
    rate = app.settings.payments.rate_limit_per_second
    # The gateway is connected by the first acquisition, before its slot: connected by the first
    # calls (the simulated one prepares its ledger, a tenth of a second), it held every call that
    # had its slot meanwhile, and they left together (bench/scaleout.py --cap: 7 calls in 0.1 ms).
    # Not before: a batch with nothing to charge connects nothing.
    def connect() -> object:
        return app.gateway

    if several_writers(app.engine):
        return SharedRateCap(app.engine, rate, prepare=connect)
    return TokenBucket(rate, prepare=connect)


class TokenBucket:
    """At most `rate` acquisitions per second on average, bursts of at most `burst`.

    Tokens are counted at the moment a thread takes one, so a stalled process cannot release a
    pile of calls at once afterwards. With the default burst of one, acquisitions are at least
    1/rate apart: no window of one second holds more than `rate` of them, which is what a
    gateway's cap counts (a burst of b lets a second hold about rate + b). One thread at a time
    waits for the next token, the others queue on the lock: no herd of threads waking together
    for one token, whose scramble would delay it (5 % of the rate, measured with 25 threads).
    """

    def __init__(self, rate: float, burst: float = 1.0, *, prepare: Callable[[], object] | None = None) -> None:
        self.rate = rate
        self._prepare = prepare  # called once, before the first token (SharedRateCap says why)
        self.capacity = burst
        self._tokens = self.capacity
        self._updated = time.monotonic()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        with self._lock:
            if self._prepare is not None:
                self._prepare()
                self._prepare = None
                self._updated = time.monotonic()  # the connection's time saves up no burst
            self._refill()
            while self._tokens < 1:
                time.sleep((1 - self._tokens) / self.rate)
                self._refill()
            self._tokens -= 1

    def _refill(self) -> None:
        now = time.monotonic()
        self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
        self._updated = now


def call_concurrently(call: Callable[[Request], Answer], requests: Sequence[Request], *, concurrency: int,
                      bucket: RateCap | None) -> list[Answer]:
    """Answers in the order of the requests; each call waits for a token first."""
    if concurrency == 1 or len(requests) <= 1:
        return [_limited(call, bucket, request) for request in requests]
    with GatewayCalls(call, concurrency=min(concurrency, len(requests)), bucket=bucket) as calls:
        return [future.result() for future in calls.submit(requests)]


class GatewayCalls(Generic[Request, Answer]):
    """A pool of `concurrency` threads calling the gateway under the bucket, for as many slices as
    the batch has: the next slice's calls, submitted while a slice is in flight, start as soon as
    threads free up, so the gateway is not left idle while a slice is settled and the next claimed."""

    def __init__(self, call: Callable[[Request], Answer], *, concurrency: int, bucket: RateCap | None) -> None:
        self._call = call
        self._bucket = bucket
        self._pool = ThreadPoolExecutor(max_workers=concurrency)

    def submit(self, requests: Sequence[Request]) -> list[Future[Answer]]:
        return [self._pool.submit(_limited, self._call, self._bucket, request) for request in requests]

    def __enter__(self) -> GatewayCalls[Request, Answer]:
        return self

    def __exit__(self, exc_type, *_exc) -> None:
        # On an error, calls not started yet are not sent: their attempts stay pending, for the janitor.
        # Stopped at once (a second Ctrl-C), the calls under way are not waited for either.
        self._pool.shutdown(wait=exc_type is not KeyboardInterrupt, cancel_futures=exc_type is not None)


def _limited(call: Callable[[Request], Answer], bucket: RateCap | None, request: Request) -> Answer:
    if bucket is not None:
        bucket.acquire()
    return call(request)
