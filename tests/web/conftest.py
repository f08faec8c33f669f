"""The API in this process (Starlette's TestClient over the ASGI app), on each engine, with a key."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from renewly.adapters.logs import configure_command_line_logs
from renewly.web import keys
from renewly.web.app import create_app
from renewly.web.keys import create_key
from tests.web.conformance import Documented


@pytest.fixture(autouse=True, scope="session")
def _plain_logs():
    """The logs `renewly serve` sets up, in plain text: structlog's default renders a traceback
    (a 500's) with Rich and every frame's locals, seconds each."""
    configure_command_line_logs("plain")


@pytest.fixture
def api_key(app) -> str:
    """A live secret key of the test's database."""
    return create_key(app, name="tests", actor="test:operator")[1]


@pytest.fixture
def anonymous(app):
    """A client without a key."""
    with TestClient(create_app(app), raise_server_exceptions=False) as client:
        yield client


@pytest.fixture
def client(app, api_key):
    """A client that sends the key with every request; bugs answer 500, as they would to a client."""
    with TestClient(create_app(app), raise_server_exceptions=False,
                    headers={"Authorization": f"Bearer {api_key}"}) as client:
        yield client


@pytest.fixture
def api(client) -> Documented:
    """The keyed client, each answer held to the OpenAPI document before the test reads it."""
    return Documented(client)


def problem(response, status: int, code: str) -> dict:
    """The problem+json of a refusal, checked for its status and code."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert (body["status"], body["code"], body["type"]) == (status, code, f"urn:renewly:problem:{code}")
    return body


@contextmanager
def statements_sent(app) -> Iterator[list[str]]:
    """The statements sent to the database meanwhile, but the test clock's reads (on the system
    clock an operator runs, telling the time asks the database nothing) and SQLite's BEGIN of a
    read (no round trip: that database is in the process)."""
    sent: list[str] = []

    def seen(_conn, _cursor, statement, *_args) -> None:
        if "test_clock" not in statement and not statement.startswith("BEGIN"):
            sent.append(statement)

    event.listen(app.engine, "before_cursor_execute", seen)
    try:
        yield sent
    finally:
        event.remove(app.engine, "before_cursor_execute", seen)


class TrustClock:
    """The monotonic clock a process trusts a key it found live by (web/keys.py), moved by hand."""

    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def trust_clock(monkeypatch) -> TrustClock:
    """Stopped: a key trusted stays trusted until the test moves it, however slow the machine."""
    clock = TrustClock()
    monkeypatch.setattr(keys, "monotonic", clock)
    return clock
