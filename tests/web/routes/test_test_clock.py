"""`/v1/test_clock`: read the clock; advance a test clock like Stripe's, with the batches due on
the way; refused on the system clock."""

from __future__ import annotations

from fastapi.testclient import TestClient

from renewly.bootstrap import bootstrap
from renewly.web.app import create_app
from renewly.web.keys import create_key
from tests.builders import subscribed
from tests.web.conftest import problem


def test_the_clock_is_read(client):
    assert client.get("/v1/test_clock").json() == {"object": "test_clock", "clock": "test",
                                                   "now": "2026-01-01T00:00:00Z"}


def test_an_advance_runs_the_batches_due_on_the_way(app, client):
    subscribed(app, seats=1)
    moved = client.post("/v1/test_clock/advance", json={"days": 31})
    assert moved.status_code == 200, moved.text
    body = moved.json()
    assert (body["object"], body["now"], body["target"], body["stopped"]) == (
        "test_clock_advance", "2026-02-01T00:00:00Z", "2026-02-01T00:00:00Z", False)
    renewals = [run for run in body["runs"] if run["batch"] == "renew" and run["report"]["invoices_issued"]]
    assert [run["at"] for run in renewals] == ["2026-02-01T00:00:00Z"]
    assert client.get("/v1/test_clock").json()["now"] == "2026-02-01T00:00:00Z"
    quiet = client.post("/v1/test_clock/advance", json={"hours": 1, "run_batches": False}).json()
    assert (quiet["now"], quiet["runs"]) == ("2026-02-01T01:00:00Z", [])


def test_an_advance_refused(client):
    problem(client.post("/v1/test_clock/advance", json={}), 400, "clock_backwards")  # zero: no move
    problem(client.post("/v1/test_clock/advance", json={"days": -1}), 422, "invalid_input")
    problem(client.post("/v1/test_clock/advance", json={"days": 3661}), 422, "invalid_input")
    problem(client.post("/v1/test_clock/advance", json={"days": 3660, "hours": 1}), 400, "advance_too_long")
    assert client.get("/v1/test_clock").json()["now"] == "2026-01-01T00:00:00Z"


def test_on_the_system_clock_time_is_read_and_never_moved(app):
    system = bootstrap(app.settings.model_copy(update={"clock": "system"}))
    secret = create_key(system, name="k", actor="test:operator")[1]
    with TestClient(create_app(system), headers={"Authorization": f"Bearer {secret}"}) as client:
        assert client.get("/v1/test_clock").json()["clock"] == "system"
        problem(client.post("/v1/test_clock/advance", json={"days": 1}), 400, "not_test_clock")
    system.engine.dispose()
