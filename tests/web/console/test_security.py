"""The console's guards: every form refused without its CSRF token (sign-in included), the
portal's security headers on every answer (no script at all in its pages), refusals as pages in
the browser's language, no console without a secret key."""

from __future__ import annotations

import re

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from renewly.web.app import create_app
from renewly.web.console import routes
from tests.builders import customer, database_rows
from tests.web.console.conftest import PASSWORD, SUPPORT, csrf_token, shown

FORMS = sorted(route.path for route in routes.router.routes if isinstance(route, APIRoute) and "POST" in route.methods)


@pytest.mark.parametrize("path", FORMS)
def test_every_form_without_its_csrf_token_is_refused_and_changes_nothing(app, staff, browsers, path):
    account_id = customer(app)
    browser = browsers.signed_in(SUPPORT)
    url = "/console" + path.replace("{account_id}", str(account_id))
    fields = {"email": SUPPORT, "password": PASSWORD, "reason": "x", "days": "1", "to": SUPPORT, "month": "2026-01",
              "evidence": "ticket 4821"}
    before = database_rows(app)
    shown(browser.post(url, data=fields), 403, 'data-problem="csrf"')
    shown(browser.post(url, data={**fields, "csrf_token": "forged"}), 403, 'data-problem="csrf"')
    other = browsers.new()  # another browser's token, with this browser's cookie
    shown(browser.post(url, data={**fields, "csrf_token": csrf_token(other)}), 403, 'data-problem="csrf"')
    assert database_rows(app) == before


def test_every_answer_has_the_security_headers(app, staff, browsers):
    browser = browsers.signed_in(SUPPORT)
    for path in ("/console/", "/console/sign-in", "/console/nothing", "/console/static/console.css"):
        headers = browser.get(path).headers
        policy = headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy and "unsafe" not in policy
        assert headers["x-frame-options"] == "DENY" and headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"
    assert browser.get("/console/").headers["cache-control"] == "no-store"


def test_the_templates_hold_no_script_inline_style_or_event_handler():
    for template in routes.TEMPLATES.glob("*.html"):
        source = template.read_text()
        assert not re.search(r"<script|<style|\sstyle=|\son[a-z]+=|javascript:", source), template.name


def test_refusals_are_pages_in_the_browser_s_language(app, staff, browsers):
    browser = browsers.signed_in(SUPPORT)
    shown(browser.get("/console/accounts/not-a-number"), 400, 'data-problem="invalid"')
    shown(browser.get("/console/sign-out"), 405, 'data-problem="not_found"')
    shown(browser.get("/console/accounts/999", headers={"Accept-Language": "fr"}), 404, "Cette page n")
    shown(browsers.new().get("/console/sign-in", headers={"Accept-Language": "fr-FR,fr"}), 200, "Se connecter")
    too_large = browser.post("/console/sign-in", data={"email": "x" * 70_000})
    shown(too_large, 413, 'data-problem="too_large"')


def test_without_a_secret_key_on_the_system_clock_the_console_is_not_configured(databases, db_kind):
    app = databases.fresh_app(db_kind)
    app.settings = app.settings.model_copy(update={"clock": "system"})
    with TestClient(create_app(app), base_url="https://billing.example.com") as browser:
        shown(browser.get("/console/sign-in"), 503, 'data-problem="unconfigured"')
