"""The banner embed in the host product's dashboard: its backend gets a short-lived signed token
(POST /v1/banner_tokens, API key), the dashboard frames /embed/banner with it, and the member sees
their banner of today by role and day (R8.3, R8.4) in the account's language, or nothing; a token
altered, foreign, of a removed member or expired gets a small page saying so. Only the operator's
origins may frame it, and it never sets a cookie."""

from __future__ import annotations

import base64
import html
import json
import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from itsdangerous import URLSafeSerializer

from renewly.accounts.accounts import remove_member
from renewly.portal.banner_tokens import SALT, create_banner_token
from renewly.web.app import create_app
from tests.builders import OPERATOR, team_plan
from tests.web.conftest import problem
from tests.web.test_dunning import DAY_4_TEXT, DAY_21_TEXT, declined, to_day

OWNER, ADMIN, AGENT = "owner@acme.test", "admin@acme.test", "agent@acme.test"
HOST = "https://app.acme-saas.test"
ORIGINS = [HOST, "http://localhost:8080"]
BASE = "https://billing.renewly.example"  # the test clock's public_url


@pytest.fixture
def app(databases, db_kind):
    """The test's application, its operator allowing the host product's origins to frame the embed."""
    return databases.fresh_app(db_kind, embed={"allowed_origins": ORIGINS})


@pytest.fixture
def dashboard(app):
    """The member's browser showing the host's dashboard: it opens the iframe's address, no cookie."""
    with TestClient(create_app(app), base_url=BASE, raise_server_exceptions=False) as browser:
        yield browser


def embed_path(url: str) -> str:
    assert url.startswith(BASE + "/embed/banner?token="), url
    return url.removeprefix(BASE)


def framed(dashboard, app, account_id: int, member: str) -> str | None:
    """The banner the member sees in the dashboard's iframe ("none": nothing visible)."""
    page = dashboard.get(embed_path(create_banner_token(app, account_id, member=member).url))
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    found = re.search(r'data-banner="([a-z_]+)"', page.text)
    assert found, page.text
    return found.group(1)


def refused(response, status: int, kind: str) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("text/html")
    assert f'data-problem="{kind}"' in response.text, response.text
    assert "set-cookie" not in response.headers
    return response.text


def test_the_host_s_backend_gets_a_token_and_the_iframe_s_address_with_its_api_key(app, api, anonymous):
    account_id = declined(app, plan=team_plan(app))
    answer = api.post("/v1/banner_tokens", json={"account_id": account_id, "member": "Agent@Acme.test"})
    assert answer.status_code == 201, answer.text
    made = answer.json()
    assert (made["object"], made["account_id"], made["member"]) == ("banner_token", account_id, AGENT)
    assert made["url"] == f"{BASE}/embed/banner?token={made['token']}"
    assert made["expires_at"].startswith((app.clock.now() + timedelta(minutes=5)).strftime("%Y-%m-%dT%H:%M"))
    problem(anonymous.post("/v1/banner_tokens", json={"account_id": account_id, "member": AGENT}), 401,
            "unauthorized")
    problem(api.post("/v1/banner_tokens", json={"account_id": account_id, "member": "nobody@acme.test"}), 404,
            "unknown_member")
    problem(api.post("/v1/banner_tokens", json={"account_id": account_id + 1, "member": AGENT}), 404,
            "unknown_account")


def test_r8_3_r8_4_through_the_embed_each_member_sees_the_banner_of_their_role_and_day(app, dashboard):
    account_id = declined(app, plan=team_plan(app))
    to_day(app, 3)
    assert {member: framed(dashboard, app, account_id, member) for member in (OWNER, ADMIN, AGENT)} == dict.fromkeys(
        (OWNER, ADMIN, AGENT), "none")
    to_day(app, 4)
    assert {member: framed(dashboard, app, account_id, member) for member in (OWNER, ADMIN, AGENT)} == {
        OWNER: "owner_and_admins", ADMIN: "owner_and_admins", AGENT: "none"}
    admin_page = dashboard.get(embed_path(create_banner_token(app, account_id, member=ADMIN).url)).text
    assert DAY_4_TEXT in html.unescape(admin_page)
    agent_page = dashboard.get(embed_path(create_banner_token(app, account_id, member=AGENT).url)).text
    assert '<p class="none" data-banner="none" hidden></p>' in agent_page and "Your last payment" not in agent_page
    to_day(app, 21)
    assert {member: framed(dashboard, app, account_id, member) for member in (OWNER, ADMIN, AGENT)} == dict.fromkeys(
        (OWNER, ADMIN, AGENT), "everyone")
    agent_page = dashboard.get(embed_path(create_banner_token(app, account_id, member=AGENT).url)).text
    assert DAY_21_TEXT in html.unescape(agent_page)


def test_r12_1_the_embed_shows_the_api_s_banner_in_the_account_s_language(app, api, dashboard):
    account_id = declined(app, plan=team_plan(app), locale="fr")
    to_day(app, 4)
    said = api.get(f"/v1/accounts/{account_id}/banner", params={"member": ADMIN}).json()["banner"]
    page = dashboard.get(embed_path(create_banner_token(app, account_id, member=ADMIN).url)).text
    assert '<html lang="fr">' in page and f"<title>{html.escape(said['name'])}</title>" in page
    assert said["text"] in html.unescape(page)


def test_a_token_works_a_few_minutes_then_says_it_expired(app, dashboard):
    account_id = declined(app, plan=team_plan(app))
    path = embed_path(create_banner_token(app, account_id, member=ADMIN).url)
    app.test_clock.set(app.clock.now() + timedelta(minutes=4, seconds=59))
    assert dashboard.get(path).status_code == 200
    app.test_clock.set(app.clock.now() + timedelta(seconds=1))
    page = refused(dashboard.get(path), 403, "banner_token_expired")
    assert "reload the page" in page


def payload_of(token: str) -> list:
    part = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def with_payload(token: str, payload: list) -> str:
    """The token with another payload and its own signature: what a member who edits it gets."""
    part = base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")
    return part + "." + token.split(".", 1)[1]


def test_a_token_altered_to_name_another_member_or_account_or_made_with_another_key_shows_nothing(app, dashboard):
    account_id = declined(app, plan=team_plan(app))
    to_day(app, 4)
    token = create_banner_token(app, account_id, member=AGENT).token
    account, member, expires = payload_of(token)
    assert (account, member) == (account_id, AGENT)
    forged = [with_payload(token, [account_id, ADMIN, expires]), with_payload(token, [account_id + 1, AGENT, expires]),
              with_payload(token, [account_id, AGENT, expires + 3600]), token[:-2], token + "x", "", "not-a-token",
              URLSafeSerializer("another-key-" + "x" * 32, salt=SALT).dumps([account_id, ADMIN, expires]),
              URLSafeSerializer(app.settings.secret_key.get_secret_value() or "renewly-test-clock-key-known-to-"
                                "everyone-never-secret", salt="another.salt").dumps([account_id, ADMIN, expires])]
    for bad in forged:
        page = refused(dashboard.get("/embed/banner", params={"token": bad}), 404, "banner_token_invalid")
        assert "data-banner" not in page and DAY_4_TEXT not in html.unescape(page)
    refused(dashboard.get("/embed/banner"), 404, "banner_token_invalid")
    assert framed(dashboard, app, account_id, AGENT) == "none"  # the genuine token still shows only theirs


def test_a_member_removed_after_the_token_was_made_sees_nothing(app, dashboard):
    account_id = declined(app, plan=team_plan(app))
    to_day(app, 4)
    path = embed_path(create_banner_token(app, account_id, member=ADMIN).url)
    remove_member(app, account_id, email=ADMIN, actor=OPERATOR)
    refused(dashboard.get(path), 404, "banner_token_invalid")


def test_only_the_operator_s_origins_may_frame_it_no_script_and_no_cookie(app, dashboard):
    account_id = declined(app, plan=team_plan(app))
    to_day(app, 4)
    pages = [dashboard.get(embed_path(create_banner_token(app, account_id, member=ADMIN).url)),
             dashboard.get("/embed/banner?token=forged"), dashboard.get("/embed/nothing-here")]
    assert [page.status_code for page in pages] == [200, 404, 404]
    for page in pages:
        policy = page.headers["content-security-policy"]
        assert policy.endswith(f"frame-ancestors {HOST} http://localhost:8080"), policy
        assert "default-src 'none'" in policy and "script-src" not in policy and "unsafe" not in policy
        assert "x-frame-options" not in page.headers and "set-cookie" not in page.headers
        assert (page.headers["referrer-policy"], page.headers["cache-control"]) == ("no-referrer", "no-store")
        assert "<script" not in page.text and " style=" not in page.text
    assert not dashboard.cookies


def test_without_allowed_origins_nothing_may_frame_it_and_no_token_is_made(databases, db_kind):
    application = databases.fresh_app(db_kind)
    with TestClient(create_app(application), base_url=BASE) as browser:
        policy = browser.get("/embed/banner?token=x").headers["content-security-policy"]
    assert policy.endswith("frame-ancestors 'none'")
    account_id = declined(application, plan=team_plan(application))
    with pytest.raises(Exception, match="embed.allowed_origins is empty") as refusal:
        create_banner_token(application, account_id, member=ADMIN)
    assert getattr(refusal.value, "code", None) == "embed_unconfigured"


def test_the_web_component_script_is_a_cached_file_that_makes_the_iframe(dashboard):
    for name, kind in (("renewly-banner.js", "text/javascript"), ("embed.css", "text/css")):
        answer = dashboard.get(f"/embed/{name}")
        assert answer.status_code == 200
        assert answer.headers["content-type"] == f"{kind}; charset=utf-8"
        assert answer.headers["cache-control"] == "public, max-age=3600" and answer.headers["etag"]
        assert "set-cookie" not in answer.headers
    script = dashboard.get("/embed/renewly-banner.js").text
    assert 'customElements.define("renewly-banner"' in script and 'new URL("banner", base)' in script
    assert "innerHTML" not in script and "eval(" not in script
