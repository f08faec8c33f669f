"""Every refusal is application/problem+json with the command line's stable code; the door names
the fields it refuses, never their values; a card number is never echoed."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError

from renewly.web.app import create_app
from renewly.web.keys import create_key
from renewly.web.problems import problem_response
from tests.conftest import drop_the_pool
from tests.web.conftest import problem

PLAN = {"code": "team", "name": "Team", "interval": "month", "unit_amount": 1900, "currency": "USD"}


def test_a_use_case_s_refusal_keeps_its_code_and_its_status_follows_its_kind(client):
    problem(client.get("/v1/plans/7"), 404, "unknown_plan")
    assert client.post("/v1/plans", json=PLAN).status_code == 201
    problem(client.post("/v1/plans", json=PLAN), 409, "plan_exists")
    problem(client.post("/v1/plans", json={**PLAN, "code": "x", "name": "tab\there"}), 400, "invalid_text")


def test_the_door_names_each_field_it_refuses_without_repeating_it(client):
    body = problem(client.post("/v1/plans", json={"code": "BAD CODE", "name": "n" * 201, "interval": "week",
                                                   "unit_amount": 10**12, "currency": "USD", "extra": 1}),
                   422, "invalid_input")
    assert sorted(error["field"] for error in body["errors"]) == [
        "body.code", "body.extra", "body.interval", "body.name", "body.unit_amount"]
    assert "BAD CODE" not in body["detail"] and "n" * 201 not in str(body)


def test_a_query_parameter_the_operation_does_not_take_is_refused_as_an_unknown_field_is(client):
    # A filter misspelt must not answer as if there were none.
    body = problem(client.get("/v1/plans", params={"limit": 2, "acount_id": 1, "": "x"}), 422, "invalid_input")
    assert body["errors"] == [{"field": "query.", "message": "Extra inputs are not permitted"},
                              {"field": "query.acount_id", "message": "Extra inputs are not permitted"}]
    assert client.get("/v1/plans", params={"limit": 2}).status_code == 200


def test_a_malformed_body_is_422_not_a_server_error(client):
    for content in (b"{", b"[]", b"null", b"\xff\xfe", b'{"code": "\\ud800"}'):
        response = client.post("/v1/plans", content=content, headers={"Content-Type": "application/json"})
        assert response.status_code in (400, 422), (content, response.text)
        assert response.headers["content-type"] == "application/problem+json"


def test_a_card_number_is_never_echoed(client):
    body = problem(client.post("/v1/plans", json={**PLAN, "currency": "4242 4242 4242 4242"}), 422, "invalid_input")
    assert "4242" not in str(body)
    body = problem(client.post("/v1/plans", json={**PLAN, "code": "x", "name": "4242424242424242\x07"}),
                   400, "invalid_text")
    assert "4242424242424242" not in str(body) and "[card number withheld]" in body["detail"]
    # A key of the body is the name of the field refused: a card number sent as one is withheld too.
    body = problem(client.post("/v1/plans", json={**PLAN, "4242424242424242": "12/30"}), 422, "invalid_input")
    assert "4242424242424242" not in str(body) and body["errors"] == [
        {"field": "body.[card number withheld]", "message": "Extra inputs are not permitted"}]


def test_a_database_that_cannot_be_used_is_503_and_a_bug_is_500_without_its_traceback(client, monkeypatch):
    def down(*_args, **_kwargs):
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    monkeypatch.setattr("renewly.web.routes.plans.create_plan", down)
    response = client.post("/v1/plans", json=PLAN)
    problem(response, 503, "database_unavailable")
    assert response.headers["retry-after"] == "5"

    def bug(*_args, **_kwargs):
        raise KeyError("secret internals")

    monkeypatch.setattr("renewly.web.routes.plans.create_plan", bug)
    body = problem(client.post("/v1/plans", json=PLAN), 500, "internal_error")
    assert "secret internals" not in str(body)


def test_an_unknown_method_is_a_problem_too(client):
    problem(client.delete("/v1/plans"), 405, "method_not_allowed")


def test_a_lone_surrogate_quoted_in_a_detail_is_written_as_its_json_escape():
    response = problem_response(400, "invalid_text", "a name holds a control character ('\ud800')")
    assert b"\\ud800" in response.body
    assert json.loads(response.body)["detail"] == "a name holds a control character ('\ud800')"


def test_numbers_booleans_and_dates_are_taken_as_json_says_them_not_coerced(app, client):
    for unit_amount in (True, "1900", 19.5):
        problem(client.post("/v1/plans", json={**PLAN, "unit_amount": unit_amount}), 422, "invalid_input")
    assert client.post("/v1/plans", json={**PLAN, "unit_amount": 1900.0}).json()["unit_amount"] == 1900
    for change in ({"start": 0}, {"start": "2026-01-01T00:00:00"}, {"backdate": "yes"}, {"backdate": 1}):
        problem(client.post("/v1/subscriptions", json={"account_id": 1, "plan": "team", **change}), 422,
                "invalid_input")
    problem(client.post("/v1/test_clock/advance", json={"days": False, "hours": 1}), 422, "invalid_input")


def test_after_the_database_dropped_every_connection_a_read_answers_503_at_most_once(pg_app):
    """A restart of PostgreSQL: the connection a request finds dead answers 503 (Retry-After);
    the pool then replaces them all, and the next requests are answered (adapters/db/engine.py)."""
    key = create_key(pg_app, name="tests", actor="test:operator")[1]
    with TestClient(create_app(pg_app), raise_server_exceptions=False,
                    headers={"Authorization": f"Bearer {key}"}) as client:
        assert client.get("/v1/plans").status_code == 200
        drop_the_pool(pg_app.engine)
        first, *then = [client.get("/v1/plans") for _ in range(4)]
    if first.status_code != 200:
        problem(first, 503, "database_unavailable")
    assert [answer.status_code for answer in then] == [200, 200, 200]
