"""Running a batch's slices: on PostgreSQL, two workers of one process take slices side by side.

Each worker claims its own slices (`FOR UPDATE SKIP LOCKED`), so while one waits for the
database the other runs Python: on two cores that overlaps the two halves of the work. SQLite
takes one writer at a time, so there a batch runs its slices one after the other.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

from renewly.adapters.db.locks import several_writers
from renewly.ports import Ports

WORKERS = 2
Report = TypeVar("Report")


def run_slices(app: Ports, sweep: Callable[[], Report], workers: int = WORKERS) -> list[Report]:
    """Run `sweep` (a loop over slices until none is left) in `workers` threads on PostgreSQL."""
    with collecting_only_new_objects():
        if workers > 1 and several_writers(app.engine):
            pool = ThreadPoolExecutor(workers)
            try:
                done = list(pool.map(lambda _: sweep(), range(workers)))
            except KeyboardInterrupt:  # stopped at once (a second Ctrl-C): the slices under way are not waited for
                pool.shutdown(wait=False, cancel_futures=True)
                raise
            except BaseException:
                pool.shutdown(wait=True)
                raise
            pool.shutdown(wait=True)
            return done
        return [sweep()]


@contextmanager
def collecting_only_new_objects() -> Iterator[None]:
    """Each slice leaves thousands of objects alive for a while, so Python's cyclic collector runs
    full collections often; left alone, each rescans every object of the process (SQLAlchemy's,
    Babel's, the policy), a third of a batch's CPU. Frozen, those older objects are skipped until
    the batch ends (any of them that dies meanwhile is freed after it)."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
