"""No route answers without a live secret key: a missing, unknown or revoked one is 401."""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from renewly.web.app import ROUTERS, create_app
from renewly.web.authentication import PUBLIC_PATHS
from renewly.web.keys import revoke_key
from tests.web.conftest import problem


def every_operation(application):
    """(method, path with its parameters filled) of every route of the API: those of each router
    mounted (documented or not) and every operation of the OpenAPI document."""
    found = {(method, "/v1" + route.path) for router in ROUTERS for route in router.routes
             if isinstance(route, APIRoute) for method in route.methods}
    with TestClient(create_app(application)) as client:
        document = client.get("/v1/openapi.json").json()
    found |= {(method.upper(), path) for path, operations in document["paths"].items() for method in operations}
    return sorted((method, re.sub(r"\{[^}]+\}", "1", path)) for method, path in found)


def test_no_route_answers_without_a_key(app, anonymous):
    walked = list(every_operation(app))
    assert len(walked) >= 3  # the walk saw the routes
    for method, path in walked:
        response = anonymous.request(method, path, json={})
        assert response.status_code == 401, (method, path, response.text)
        problem(response, 401, "unauthorized")
        assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize("authorization", ["Bearer rnw_sk_" + "x" * 43, "Bearer not-a-key", "Basic dXNlcjpwYXNz",
                                           "Bearer " + "rnw_sk_" * 100, "Bearer"])
def test_an_unknown_key_is_refused_on_every_route(app, anonymous, authorization):
    for method, path in every_operation(app):
        response = anonymous.request(method, path, json={}, headers={"Authorization": authorization})
        problem(response, 401, "unauthorized")


def test_a_revoked_key_is_refused_from_then_on(app, client):
    assert client.get("/v1/plans").status_code == 200
    revoke_key(app, 1, actor="test:operator")
    body = problem(client.get("/v1/plans"), 401, "unauthorized")
    assert "revoked" in body["detail"]


def test_an_unknown_path_without_a_key_is_401_not_404(anonymous, client):
    problem(anonymous.get("/v1/no-such-thing"), 401, "unauthorized")
    problem(client.get("/v1/no-such-thing"), 404, "not_found")


def test_the_openapi_document_and_the_docs_page_need_no_key(app, anonymous):
    assert PUBLIC_PATHS == {"/v1/openapi.json", "/docs"}
    document = anonymous.get("/v1/openapi.json")
    assert document.status_code == 200 and document.json()["openapi"].startswith("3.1")
    assert anonymous.get("/docs").status_code == 200
    # Only to read them: a POST there is a request like any other.
    problem(anonymous.post("/v1/openapi.json"), 401, "unauthorized")


def test_every_operation_says_it_wants_a_bearer_key(anonymous):
    document = anonymous.get("/v1/openapi.json").json()
    assert document["components"]["securitySchemes"]["HTTPBearer"] == {
        "type": "http", "scheme": "bearer", "description": "A secret API key: `renewly apikeys create NAME`."}
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            assert operation["security"] == [{"HTTPBearer": []}], (method, path)
            assert "401" in operation["responses"]


def test_each_client_sees_the_key_it_came_with(app, api_key):
    with TestClient(create_app(app)) as client:
        response = client.get("/v1/plans", headers={"Authorization": f"bearer  {api_key} "})
    assert response.status_code == 200  # the scheme in any case, spaces around the key
