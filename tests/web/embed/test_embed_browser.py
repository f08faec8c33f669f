"""The banner embed in a real browser (Debian's Chromium, as tests/web/portal/test_browser.py):
a host product's dashboard, on an origin the operator allows, drops in the web component with a
token its backend got; Chromium runs the script, frames the page under its CSP, and the admin
reads their day-4 banner (R8.3), styled by the embed's own file; an agent sees nothing on day 4
and the cancellation warning on day 21 (R8.4); another origin is refused the frame."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import expect

from renewly.portal.banner_tokens import create_banner_token
from tests.builders import team_plan
from tests.web.portal import test_browser as portal_browser
from tests.web.test_dunning import DAY_4_TEXT, DAY_21_TEXT, declined, to_day

ADMIN, AGENT = "admin@acme.test", "agent@acme.test"
# The portal's browser test's fixtures: Debian's Chromium, and `renewly serve`'s app in a thread.
browser_type_launch_args, served = portal_browser.browser_type_launch_args, portal_browser.served


class Dashboards:
    """The host product's web server on the loopback (as Renewly's: Chromium lets a page reach
    the loopback only from it): `/dashboard?script=...&token=...` drops in the web component."""

    def __init__(self) -> None:
        self.pages: dict[str, str] = {}
        shown = self.pages

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = shown.get(self.path, "").encode()
                self.send_response(200 if body else 404)
                self.send_header("content-type", "text/html; charset=utf-8")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def show(self, page, served: str, token: str) -> None:
        """The dashboard dropping in the script and the element as docs/portal.md says."""
        self.pages["/dashboard"] = (f'<!doctype html><title>Dashboard</title><h1>Dashboard</h1>'
                                    f'<script src="{served}/embed/renewly-banner.js" defer></script>'
                                    f'<renewly-banner token="{token}"></renewly-banner>')
        page.goto(f"{self.origin}/dashboard")


@pytest.fixture
def host() -> Iterator[Dashboards]:
    found = Dashboards()
    yield found
    found.server.shutdown()
    found.server.server_close()


@pytest.fixture
def other_host() -> Iterator[Dashboards]:
    found = Dashboards()
    yield found
    found.server.shutdown()
    found.server.server_close()


@pytest.fixture
def app(databases, db_kind, host):
    return databases.fresh_app(db_kind, embed={"allowed_origins": [host.origin]})


def test_r8_3_the_host_s_dashboard_shows_the_admin_s_banner_through_the_web_component(app, served, page, host):
    account_id = declined(app, plan=team_plan(app))
    to_day(app, 4)
    host.show(page, served, create_banner_token(app, account_id, member=ADMIN).token)
    banner = page.frame_locator("renewly-banner iframe").locator('[data-banner="owner_and_admins"]')
    expect(banner).to_have_text(DAY_4_TEXT)
    assert banner.evaluate("element => getComputedStyle(element).borderTopStyle") == "solid"  # embed.css applied
    assert page.locator("renewly-banner iframe").get_attribute("sandbox") == ""  # no script, form or navigation


def test_r8_4_the_host_s_dashboard_shows_the_agent_nothing_on_day_4_and_the_cancellation_warning_on_day_21(
        app, served, page, host):
    account_id = declined(app, plan=team_plan(app))
    to_day(app, 4)
    host.show(page, served, create_banner_token(app, account_id, member=AGENT).token)
    framed = page.frame_locator("renewly-banner iframe")
    nothing = framed.locator('[data-banner="none"]')
    expect(nothing).to_have_count(1)  # the embed's page came (so what follows is not read too early)...
    expect(nothing).to_be_hidden()  # ...with nothing to show
    expect(framed.get_by_role("alert")).to_have_count(0)

    to_day(app, 21)  # the morning's token long expired: the host's backend gets another
    host.show(page, served, create_banner_token(app, account_id, member=AGENT).token)
    expect(framed.locator('[data-banner="everyone"]')).to_have_text(DAY_21_TEXT)
    expect(framed.get_by_role("alert")).to_be_visible()


def test_a_dashboard_on_an_origin_not_allowed_is_refused_the_frame(app, served, page, other_host):
    account_id = declined(app, plan=team_plan(app))
    to_day(app, 4)
    with page.expect_console_message(lambda said: "frame-ancestors" in said.text):  # Chromium's refusal
        other_host.show(page, served, create_banner_token(app, account_id, member=ADMIN).token)
    expect(page.locator("renewly-banner iframe")).to_have_count(1)
    assert all(DAY_4_TEXT not in framed.content() for framed in page.frames[1:])
