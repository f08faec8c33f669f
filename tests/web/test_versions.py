"""`Renewly-Version`: said on every answer, refusals included; an unknown one asked is refused."""

from __future__ import annotations

from renewly.web.versions import CURRENT
from tests.web.conftest import problem


def test_every_answer_says_its_version(client, anonymous):
    for response in (client.get("/v1/plans"), client.get("/v1/plans/1"), anonymous.get("/v1/plans"),
                     anonymous.get("/v1/openapi.json")):
        assert response.headers["renewly-version"] == CURRENT


def test_the_current_version_may_be_asked_for(client):
    assert client.get("/v1/plans", headers={"Renewly-Version": CURRENT}).status_code == 200


def test_an_unknown_version_is_refused_not_answered_in_another(client):
    for asked in ("2020-01-01", "latest", ""):
        body = problem(client.get("/v1/plans", headers={"Renewly-Version": asked}), 400, "unsupported_version")
        assert CURRENT in body["detail"]
