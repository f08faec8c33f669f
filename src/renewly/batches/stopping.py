"""A batch stops between slices when asked: the slice in hand always finishes.

The command line asks on the first Ctrl-C. Each batch loop looks at the flag before it claims
its next slice (or before its next phase), never inside one: a slice's transaction commits and
its gateway calls get their answers recorded, so that nothing is left pending for the janitor.
Any thread may ask or look: the batches' workers run in threads of their own on PostgreSQL.
"""

from __future__ import annotations

import threading


class StopRequest:
    """Asked once, seen by every batch loop of the application from then on."""

    def __init__(self) -> None:
        self._asked = threading.Event()

    def ask(self) -> None:
        self._asked.set()

    @property
    def asked(self) -> bool:
        return self._asked.is_set()
