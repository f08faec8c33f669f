"""The portal's guards: a form without its CSRF token is refused before anything changes; every
answer carries a Content-Security-Policy without inline scripts and forbids framing; refusals
are pages for people, never JSON; htmx is the vendored file, served by the portal itself."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from renewly.accounts.accounts import add_member
from renewly.accounts.contacts import list_contacts, request_contact
from renewly.web.portal import rendering
from tests.builders import OPERATOR, customer
from tests.web.portal.conftest import csrf_token, shown

OWNER = "owner@acme.test"
STATIC = Path(rendering.__file__).parent / "static"
HTMX_SHA256 = "d6fdc75f204e6bdefa99b69bf1e6d4ac69b8a364f77929f45c13476b4000f717"


@pytest.mark.parametrize("sent", ["no token", "another browser's token", "an altered token"])
def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(app, browsers, sent):
    account_id = customer(app)
    add_member(app, account_id, email="admin@acme.test", role="admin", actor=OPERATOR)
    request_contact(app, account_id, email="books@acme.test", requested_by="admin@acme.test")
    browser = browsers.signed_in(account_id, OWNER)
    token = csrf_token(browser, "/portal/contacts")
    fields = {"email": "books@acme.test"}
    if sent == "another browser's token":
        fields["csrf_token"] = csrf_token(browsers.signed_in(account_id, OWNER), "/portal/contacts")
    elif sent == "an altered token":
        fields["csrf_token"] = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    refused = browser.post("/portal/contacts/approve", data=fields, follow_redirects=False)
    shown(refused, 403, 'data-problem="csrf"')
    assert [c["status"] for c in list_contacts(app, account_id)] == ["active", "requested"]
    # The same form with the page's token goes through.
    accepted = browser.post("/portal/contacts/approve", data={**fields, "csrf_token": token}, follow_redirects=False)
    assert accepted.status_code == 303
    assert [c["status"] for c in list_contacts(app, account_id)] == ["active", "active"]


def test_htmx_may_send_the_token_in_its_header(app, browsers):
    account_id = customer(app)
    add_member(app, account_id, email="admin@acme.test", role="admin", actor=OPERATOR)
    request_contact(app, account_id, email="books@acme.test", requested_by="admin@acme.test")
    browser = browsers.signed_in(account_id, OWNER)
    answer = browser.post("/portal/contacts/approve", data={"email": "books@acme.test"},
                          headers={"X-CSRFToken": csrf_token(browser, "/portal/contacts"), "HX-Request": "true"})
    assert answer.status_code == 200 and 'data-contact="books@acme.test"' in answer.text


def test_a_form_too_large_is_refused_with_a_page(app, browsers):
    browser = browsers.signed_in(customer(app), OWNER)
    shown(browser.post("/portal/address", data={"name": "x" * 70_000}), 413, 'data-problem="too_large"')


def test_every_answer_forbids_inline_scripts_framing_and_caching(app, browsers):
    browser = browsers.signed_in(customer(app), OWNER)
    for path in ("/portal/", "/portal/address", "/portal/no-such-page", "/portal/static/htmx.min.js"):
        headers = browser.get(path).headers
        policy = headers["content-security-policy"]
        assert "script-src 'self'" in policy and "frame-ancestors 'none'" in policy and "unsafe" not in policy
        assert headers["x-frame-options"] == "DENY" and headers["x-content-type-options"] == "nosniff"
        assert headers["referrer-policy"] == "no-referrer"
    assert browser.get("/portal/").headers["cache-control"] == "no-store"


def test_the_templates_hold_no_inline_script_style_or_event_handler():
    """What the Content-Security-Policy would block, and htmx attributes that evaluate code."""
    for template in (Path(rendering.TEMPLATES)).glob("*.html"):
        source = template.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)", source), template.name
        assert not re.search(r"<style|\sstyle=|\son[a-z]+=|hx-on|javascript:", source), template.name


def test_refusals_are_pages_for_people_in_their_language_not_json(app, browsers):
    anonymous = browsers.new()
    shown(anonymous.get("/portal/"), 401, "Please sign in")
    shown(anonymous.get("/portal/nothing-here"), 404, 'data-problem="not_found"')
    french = anonymous.get("/portal/", headers={"Accept-Language": "fr-FR,fr;q=0.9,en;q=0.8"})
    shown(french, 401, "Veuillez vous connecter")
    browser = browsers.signed_in(customer(app), OWNER)
    shown(browser.get("/portal/invoices/not-a-number/pdf"), 400, 'data-problem="invalid"')
    shown(browser.get("/portal/sign-out"), 405, 'data-problem="not_found"')


def test_htmx_2_is_the_vendored_file_with_its_version_and_licence(app, browsers):
    served = browsers.new().get("/portal/static/htmx.min.js")
    assert served.status_code == 200 and "javascript" in served.headers["content-type"]
    assert hashlib.sha256(served.content).hexdigest() == HTMX_SHA256
    assert f'version:"{rendering.HTMX_VERSION}"' in served.text and rendering.HTMX_VERSION.startswith("2.")
    notes = (STATIC / "README.md").read_text()
    assert rendering.HTMX_VERSION in notes and HTMX_SHA256 in notes and "0BSD" in notes
    assert "Zero-Clause BSD" in (STATIC / "htmx.LICENSE").read_text()


def test_without_a_secret_key_on_the_system_clock_every_page_says_the_portal_is_not_configured(databases, db_kind):
    from fastapi.testclient import TestClient

    from renewly.web.app import create_app
    app = databases.fresh_app(db_kind)
    app.settings = app.settings.model_copy(update={"clock": "system"})
    with TestClient(create_app(app), base_url="https://billing.example.com") as browser:
        shown(browser.get("/portal/"), 503, 'data-problem="unconfigured"')
