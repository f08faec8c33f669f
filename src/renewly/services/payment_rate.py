"""Gateway calls, concurrently and under a rate cap: real gateways cap writes (Stripe: 100/s)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

Request = TypeVar("Request")
Answer = TypeVar("Answer")


class TokenBucket:
    """At most `rate` acquisitions per second on average, bursts of at most `burst`."""

    def __init__(self, rate: float, burst: float | None = None) -> None:
        self.rate = rate
        self.capacity = burst if burst is not None else max(1.0, rate / 10)
        self._tokens = self.capacity
        self._updated = time.monotonic()
        self._lock = threading.Lock()

    def acquire(self) -> None:
        while True:
            with self._lock:
                now = time.monotonic()
                self._tokens = min(self.capacity, self._tokens + (now - self._updated) * self.rate)
                self._updated = now
                if self._tokens >= 1:
                    self._tokens -= 1
                    return
                wait = (1 - self._tokens) / self.rate
            time.sleep(wait)


def call_concurrently(call: Callable[[Request], Answer], requests: Sequence[Request], *, concurrency: int,
                      bucket: TokenBucket | None) -> list[Answer]:
    """Answers in the order of the requests; each call waits for a token first."""
    def limited(request: Request) -> Answer:
        if bucket is not None:
            bucket.acquire()
        return call(request)

    if concurrency == 1 or len(requests) <= 1:
        return [limited(request) for request in requests]
    with ThreadPoolExecutor(max_workers=min(concurrency, len(requests))) as pool:
        return list(pool.map(limited, requests))
