"""The API's hot reads take turns on `api.read_threads` threads of their own (web/threads.py)."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace

import anyio
import pytest

from renewly.config.settings import Settings
from renewly.web.threads import in_a_read_thread


@pytest.mark.parametrize("read_threads", [1, 3])
def test_reads_at_once_never_run_on_more_threads_than_the_setting_allows(read_threads):
    app = SimpleNamespace(settings=Settings(api={"read_threads": read_threads}))
    running, most, threads = [0], [0], set()
    lock = threading.Lock()

    def read() -> None:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
            threads.add(threading.get_ident())
        time.sleep(0.02)
        with lock:
            running[0] -= 1

    loop_thread = []

    async def many() -> None:
        loop_thread.append(threading.get_ident())
        async with anyio.create_task_group() as group:
            for _ in range(12):
                group.start_soon(in_a_read_thread, app, read)

    # An event loop of its own, in a thread of its own: the test's thread may carry another
    # test's asyncio marks (anyio.run refuses to start there).
    runner = threading.Thread(target=anyio.run, args=(many,))
    runner.start()
    runner.join()
    assert most[0] == read_threads
    assert loop_thread and loop_thread[0] not in threads  # off the event loop's thread


def test_the_setting_is_bounded():
    for wrong in (0, 65):
        with pytest.raises(ValueError):
            Settings(api={"read_threads": wrong})
    assert Settings().api.read_threads == 1
