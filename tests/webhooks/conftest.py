from __future__ import annotations

import pytest

from tests.webhooks.receiver import Receiver


@pytest.fixture
def receiver():
    """A real HTTP server on loopback that answers 200 until a test tells it otherwise."""
    server = Receiver().start()
    yield server
    server.stop()
