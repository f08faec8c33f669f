"""The worker threads the API's reads run in.

The engine's connections are synchronous, so a request's database work leaves the event loop
for a worker thread and comes back. anyio lets 40 such calls run at once; under load the hot
reads then spread over many threads that all contend for Python's GIL, and each hand-over costs
wake-ups and context switches: 1.53-1.85 ms of server CPU a request with the 40, 1.24-1.27 ms
with the reads taking turns on one thread (docs/performance.md, "API"). So every request's key
lookup and the hot GET routes run on `api.read_threads` threads of their own (settings; one by
default); every other route, whose use case may wait on a lock or a gateway, keeps anyio's 40.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar
from weakref import WeakKeyDictionary

import anyio.to_thread
from anyio import CapacityLimiter

from renewly.ports import Ports

T = TypeVar("T")

# One limiter per event loop: a limiter belongs to the loop it was first used on (a server has
# one loop; a test client makes one of its own).
_limiters: WeakKeyDictionary[asyncio.AbstractEventLoop, CapacityLimiter] = WeakKeyDictionary()


async def in_a_read_thread(app: Ports, function: Callable[..., T], *args: object) -> T:
    """`function(*args)` on one of the read threads, awaited."""
    loop = asyncio.get_running_loop()
    limiter = _limiters.get(loop)
    if limiter is None:
        limiter = _limiters[loop] = CapacityLimiter(app.settings.api.read_threads)
    return await anyio.to_thread.run_sync(function, *args, limiter=limiter)
