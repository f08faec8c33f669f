"""`/v1/plans`: the catalogue, prices per seat in integer minor units."""

from __future__ import annotations

from datetime import datetime

from tests.conftest import START
from tests.web.conftest import problem

PLAN = {"code": "team", "name": "Team", "interval": "month", "unit_amount": 1900, "currency": "USD"}


def test_a_plan_is_created_read_and_listed(client):
    created = client.post("/v1/plans", json=PLAN)
    assert created.status_code == 201
    plan = created.json()
    assert plan == {"object": "plan", "id": 1, "code": "team", "name": "Team", "interval": "month",
                    "unit_amount": 1900, "currency": "USD", "created_at": plan["created_at"]}
    assert datetime.fromisoformat(plan["created_at"]) == START
    assert client.get("/v1/plans/1").json() == plan
    assert client.get("/v1/plans").json()["data"] == [plan]


def test_a_plan_refused(client):
    assert client.post("/v1/plans", json=PLAN).status_code == 201
    problem(client.post("/v1/plans", json=PLAN), 409, "plan_exists")
    problem(client.post("/v1/plans", json={**PLAN, "code": "other", "currency": "ZZZ"}), 422, "invalid_input")
    problem(client.post("/v1/plans", json={**PLAN, "code": "other", "currency": "usd"}), 422, "invalid_input")
    problem(client.post("/v1/plans", json={**PLAN, "code": "other", "name": " "}), 400, "invalid_plan")
    problem(client.post("/v1/plans", json={**PLAN, "code": "other", "unit_amount": -1}), 422, "invalid_input")
    problem(client.post("/v1/plans", json={**PLAN, "code": "other", "unit_amount": 1.5}), 422, "invalid_input")
    problem(client.get("/v1/plans/2"), 404, "unknown_plan")
    problem(client.get(f"/v1/plans/{2**53}"), 422, "invalid_input")  # past what JSON readers keep exactly
    problem(client.get("/v1/plans/0"), 422, "invalid_input")
