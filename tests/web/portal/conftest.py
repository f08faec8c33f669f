"""The portal as a browser uses it: one client (one cookie jar) per person, over HTTPS, signed
in by opening a one-time link the way the host product hands it over."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from renewly.portal.sessions import create_link
from renewly.web.app import create_app
from tests.builders import OPERATOR

BASE = "https://billing.renewly.example"
TOKEN_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def path_of(url: str) -> str:
    return urlsplit(url).path


class Browsers:
    def __init__(self, app) -> None:
        self.app, self.opened = app, []

    def new(self, base_url: str = BASE) -> TestClient:
        client = TestClient(create_app(self.app), base_url=base_url, raise_server_exceptions=False)
        self.opened.append(client)
        return client

    def signed_in(self, account_id: int, member: str, client: TestClient | None = None) -> TestClient:
        """A browser that opened a fresh link of the member's (a new one, or `client`)."""
        client = client or self.new()
        link = create_link(self.app, account_id, member=member, actor=OPERATOR)
        opened = client.get(path_of(link.url), follow_redirects=False)
        assert (opened.status_code, opened.headers["location"]) == (303, "/portal/"), opened.text
        return client


@pytest.fixture
def browsers(app):
    found = Browsers(app)
    yield found
    for client in found.opened:
        client.close()


def csrf_token(client: TestClient, page: str = "/portal/") -> str:
    """The token a page's forms carry, as a browser reads it from the page."""
    shown = client.get(page)
    found = TOKEN_FIELD.search(shown.text)
    assert found, shown.text
    return found.group(1)


def submit(client: TestClient, page: str, action: str, fields: dict[str, str], **headers: str):
    """Fill a form of `page` and send it, with the token the page carries."""
    return client.post(action, data={"csrf_token": csrf_token(client, page), **fields}, headers=headers,
                       follow_redirects=False)


def shown(response, status: int, marker: str) -> str:
    """An HTML page (never JSON) of this status holding `marker`."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html"), response.headers["content-type"]
    assert marker in response.text, response.text
    return response.text
