"""The support console as staff use it: one client (one cookie jar) per person, over HTTPS,
signed in with an e-mail and a password through the sign-in form."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from renewly.console.staff import create_staff
from renewly.web.app import create_app
from tests.builders import OPERATOR

BASE = "https://billing.renewly.example"
TOKEN_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')
SUPPORT, FINANCE = "sam@renewly.example", "fiona@renewly.example"
PASSWORD = "correct horse battery staple"


@pytest.fixture
def staff(app, cheap_argon2) -> dict[str, int]:
    """A support and a finance staff member, by e-mail: their ids."""
    return {SUPPORT: create_staff(app, email=SUPPORT, name="Sam Support", role="support", password=PASSWORD,
                                  actor=OPERATOR).id,
            FINANCE: create_staff(app, email=FINANCE, name="Fiona Finance", role="finance", password=PASSWORD,
                                  actor=OPERATOR).id}


class Browsers:
    def __init__(self, app) -> None:
        self.app, self.opened = app, []

    def new(self, base_url: str = BASE, client: tuple[str, int] = ("203.0.113.7", 50000)) -> TestClient:
        client_ = TestClient(create_app(self.app), base_url=base_url, raise_server_exceptions=False, client=client)
        self.opened.append(client_)
        return client_

    def signed_in(self, email: str, client: TestClient | None = None) -> TestClient:
        """A browser whose staff member signed in with the form (a new one, or `client`)."""
        client = client or self.new()
        answer = sign_in(client, email, PASSWORD)
        assert (answer.status_code, answer.headers.get("location")) == (303, "/console/"), answer.text
        return client


@pytest.fixture
def browsers(app):
    found = Browsers(app)
    yield found
    for client in found.opened:
        client.close()


def csrf_token(client: TestClient, page: str = "/console/sign-in") -> str:
    """The token a page's forms carry, as a browser reads it from the page."""
    shown = client.get(page)
    found = TOKEN_FIELD.search(shown.text)
    assert found, shown.text
    return found.group(1)


def sign_in(client: TestClient, email: str, password: str):
    return client.post("/console/sign-in", data={"csrf_token": csrf_token(client), "email": email,
                                                 "password": password}, follow_redirects=False)


def submit(client: TestClient, page: str, action: str, fields: dict[str, str]):
    """Fill a form of `page` and send it, with the token the page carries."""
    return client.post(action, data={"csrf_token": csrf_token(client, page), **fields}, follow_redirects=False)


def shown(response, status: int, marker: str) -> str:
    """An HTML page (never JSON) of this status holding `marker`."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html"), response.headers["content-type"]
    assert marker in response.text, response.text
    return response.text
