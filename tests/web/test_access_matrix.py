"""One access matrix over the billing portal and the support console (issue 14): every role x
every page and form of both route tables x the subject account's ids and another's.

The routes are read from `web/portal/routes.py` and `web/console/routes.py`: a route missing from
POLICY fails `test_every_route_has_a_policy`, so a new page cannot escape. Each (role, route)
has its expected outcome written below, where a reviewer reads the policy; any other outcome
fails, so there is no unexpected allow. An id of another account answers 404 to whoever may use
the page (R1.2); the console's staff see every account, so their "other" id is one that names no
account.

The roles: members of the subject account (owner, admin, agent) and the owner of another
account signed in to the portal by link; support and finance signed in to the console; and
nobody. A portal session opens nothing in the console and a console session nothing in the
portal (their cookies, their paths).
"""

from __future__ import annotations

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import select

from renewly.accounts.accounts import add_member
from renewly.adapters.db.tables import invoices
from renewly.console.staff import create_staff
from renewly.web.console import routes as console_routes
from renewly.web.portal import routes as portal_routes
from tests.builders import OPERATOR, subscribed
from tests.web.console.conftest import PASSWORD
from tests.web.console.conftest import Browsers as ConsoleBrowsers
from tests.web.portal.conftest import Browsers as PortalBrowsers

OWNER, ADMIN, AGENT = "owner@acme.test", "admin@acme.test", "agent@acme.test"
OTHER_OWNER = "owner@globex.test"
SUPPORT, FINANCE = "sam@renewly.example", "fiona@renewly.example"
ROLES = ("anonymous", "owner", "admin", "agent", "other_owner", "support", "finance")

# What a route answered, from the refusal pages' markers (never a 5xx).
SIGN_IN = "sign-in"  # the portal's 401 "sign in with a link", or the console's 303 to its sign-in
OWNER_ONLY = "owner-only"  # 403: only the account owner (NAME) can... (R1.1)
READ_ONLY = "read-only"  # 403: finance reads, never acts
NOT_FOUND = "not-found"  # 404: an id this visitor may not know of (R1.2), or a token that is no link
OPEN = "open"  # past every access check: the page, or the form's own answer (done, or a rule's refusal)

MEMBERS = ("owner", "admin", "agent", "other_owner")
STAFF = ("support", "finance")


def policy(*, anonymous: str = SIGN_IN, owner: str, admin: str, agent: str, other_owner: str,
           support: str = SIGN_IN, finance: str = SIGN_IN) -> dict[str, str]:
    return {"anonymous": anonymous, "owner": owner, "admin": admin, "agent": agent, "other_owner": other_owner,
            "support": support, "finance": finance}


def portal_page(owner_only: bool) -> dict[str, str]:
    """A portal page behind a session: every member of any account reaches their own account's
    (the other owner reaches theirs, never ours); the owner pages refuse admins and agents."""
    gated = OWNER_ONLY if owner_only else OPEN
    return policy(owner=OPEN, admin=gated, agent=gated, other_owner=OPEN)


def console_page(*, acts: bool) -> dict[str, str]:
    """A console page: members are nobody there; finance reads, support reads and acts."""
    return policy(owner=SIGN_IN, admin=SIGN_IN, agent=SIGN_IN, other_owner=SIGN_IN, support=OPEN,
                  finance=READ_ONLY if acts else OPEN)


EVERYONE_OPEN = dict.fromkeys(ROLES, OPEN)
EVERYONE_NOT_FOUND = dict.fromkeys(ROLES, NOT_FOUND)

# (method, path, ids): ids "own" are the subject account's (its invoice, its account id), "other"
# another account's (portal) or an id of no account (console); None: the path has no id.
POLICY: dict[tuple[str, str, str | None], dict[str, str]] = {
    # -- portal: sign-in links, the removal link's page (R4.2), sign-out: no session needed; a
    #    token that is no link shows nothing of any account
    ("GET", "/portal/sign-in/{token}", None): EVERYONE_NOT_FOUND,
    ("GET", "/portal/billing-contacts/remove/{token}", None): EVERYONE_NOT_FOUND,
    ("POST", "/portal/billing-contacts/remove/{token}", None): EVERYONE_NOT_FOUND,
    ("POST", "/portal/sign-out", None): EVERYONE_OPEN,
    # -- portal: what every member sees
    ("GET", "/portal/", None): portal_page(owner_only=False),
    ("POST", "/portal/contact-request", None): portal_page(owner_only=False),
    # -- portal: the owner's billing pages (R1.1)
    ("GET", "/portal/invoices", None): portal_page(owner_only=True),
    ("GET", "/portal/invoices/{invoice_id}/pdf", "own"): policy(owner=OPEN, admin=OWNER_ONLY, agent=OWNER_ONLY,
                                                                other_owner=NOT_FOUND),
    ("GET", "/portal/invoices/{invoice_id}/pdf", "other"): policy(owner=NOT_FOUND, admin=OWNER_ONLY,
                                                                  agent=OWNER_ONLY, other_owner=OPEN),
    ("GET", "/portal/address", None): portal_page(owner_only=True),
    ("POST", "/portal/address", None): portal_page(owner_only=True),
    ("GET", "/portal/contacts", None): portal_page(owner_only=True),
    ("POST", "/portal/contacts/{action}", None): portal_page(owner_only=True),
    ("GET", "/portal/card", None): portal_page(owner_only=True),
    ("GET", "/portal/card/return", None): portal_page(owner_only=True),
    # -- console: its sign-in is open to anyone
    ("GET", "/console/sign-in", None): EVERYONE_OPEN,
    ("POST", "/console/sign-in", None): EVERYONE_OPEN,
    ("POST", "/console/sign-out", None): dict.fromkeys(ROLES, SIGN_IN),  # to the sign-in page, signed in or not
    # -- console: reading (both roles) and acting (support only)
    ("GET", "/console/", None): console_page(acts=False),
    ("GET", "/console/recovery", None): console_page(acts=False),
    ("GET", "/console/accounts/{account_id}", "own"): console_page(acts=False),
    ("GET", "/console/accounts/{account_id}", "other"): policy(owner=SIGN_IN, admin=SIGN_IN, agent=SIGN_IN,
                                                               other_owner=SIGN_IN, support=NOT_FOUND,
                                                               finance=NOT_FOUND),
    **{("POST", f"/console/accounts/{{account_id}}/{action}", ids): (
        console_page(acts=True) if ids == "own"
        else policy(owner=SIGN_IN, admin=SIGN_IN, agent=SIGN_IN, other_owner=SIGN_IN, support=NOT_FOUND,
                    finance=READ_ONLY))
       for action in ("reactivate", "transfer-ownership", "resend-invoices") for ids in ("own", "other")},
}

# What each form is sent: fields its use case takes (or refuses by a billing rule, never a 500).
FIELDS = {"/portal/address": {"name": "Acme", "line1": "1 Main St", "postcode": "94000", "city": "Oakland",
                              "country": "US"},
          "/portal/contacts/{action}": {"email": "nobody@acme.test"},
          "/console/sign-in": {"email": SUPPORT, "password": "not the password"},
          "/console/accounts/{account_id}/reactivate": {"reason": "asked by phone"},
          "/console/accounts/{account_id}/transfer-ownership": {"reason": "owner left", "to": ADMIN},
          "/console/accounts/{account_id}/resend-invoices": {"reason": "lost it", "month": "2026-01"}}
NO_ACCOUNT = 999_999


def route_table() -> set[tuple[str, str]]:
    return {(method, prefix + route.path)
            for prefix, router in (("/portal", portal_routes.router), ("/console", console_routes.router))
            for route in router.routes if isinstance(route, APIRoute) for method in route.methods}


def test_every_route_has_a_policy():
    """A route added to either table without its row here fails: a new page cannot escape."""
    assert {(method, path) for method, path, _ in POLICY} == route_table()
    for (method, path, ids), row in POLICY.items():
        assert set(row) == set(ROLES), (method, path)
        assert (ids is not None) == ("{invoice_id}" in path or "{account_id}" in path), (method, path)


@pytest.fixture
def world(app, cheap_argon2):
    """The subject account (owner, admin, agent, one invoice), another account with its own
    invoice, and the two staff roles."""
    account_id, _ = subscribed(app, owner=OWNER)
    add_member(app, account_id, email=ADMIN, role="admin", actor=OPERATOR)
    add_member(app, account_id, email=AGENT, role="agent", actor=OPERATOR)
    other_id, _ = subscribed(app, name="Globex", owner=OTHER_OWNER, plan="team")
    for email, role in ((SUPPORT, "support"), (FINANCE, "finance")):
        create_staff(app, email=email, name=role.title(), role=role, password=PASSWORD, actor=OPERATOR)
    with app.engine.connect() as conn:
        invoice_of = dict(conn.execute(select(invoices.c.account_id, invoices.c.id)).all())
    return {"account": account_id, "other_account": other_id, "invoice": invoice_of[account_id],
            "other_invoice": invoice_of[other_id]}


@pytest.fixture
def visitors(app, world):
    """A browser per role, each from an IP address of its own (the console's throttle counts per
    address)."""
    portal, console = PortalBrowsers(app), ConsoleBrowsers(app)
    clients = {"anonymous": portal.new()}
    for role, (account, member) in {"owner": ("account", OWNER), "admin": ("account", ADMIN),
                                    "agent": ("account", AGENT),
                                    "other_owner": ("other_account", OTHER_OWNER)}.items():
        clients[role] = portal.signed_in(world[account], member)
    for number, (role, email) in enumerate((("support", SUPPORT), ("finance", FINANCE)), start=1):
        clients[role] = console.signed_in(email, console.new(client=(f"198.51.100.{number}", 50000)))
    yield clients
    for client in portal.opened + console.opened:
        client.close()


def csrf_of(client: TestClient, surface: str) -> str:
    """The CSRF cookie of that surface (each has its own path), fetched first if need be."""
    def held() -> str | None:
        return next((cookie.value for cookie in client.cookies.jar
                     if cookie.name == "renewly_csrf" and cookie.path == surface), None)
    if held() is None:
        client.get(f"{surface}/sign-in/x" if surface == "/portal" else f"{surface}/sign-in")
    token = held()
    assert token, f"no CSRF cookie for {surface}"
    return token


def outcome(answer) -> str:
    assert answer.status_code < 500, answer.text
    if answer.status_code == 303 and answer.headers.get("location") == "/console/sign-in":
        return SIGN_IN
    if answer.status_code == 401 and 'data-problem="sign_in_required"' in answer.text:
        return SIGN_IN
    if answer.status_code == 403 and 'data-problem="owner_only"' in answer.text:
        return OWNER_ONLY
    if answer.status_code == 403 and 'data-problem="read_only"' in answer.text:
        return READ_ONLY
    if answer.status_code == 404:
        return NOT_FOUND
    # A refusal page this matrix does not name; a form's own refusal (a wrong password, a billing
    # rule: "not cancelled, nothing to reactivate") is its page with the error, past the checks.
    assert 'data-problem="' not in answer.text or answer.status_code < 400, answer.text
    return OPEN


def visit(client: TestClient, method: str, path: str, ids: str | None, world: dict[str, int]):
    surface = "/" + path.split("/")[1]
    url = (path.replace("{token}", "not-a-link").replace("{action}", "approve")
           .replace("{invoice_id}", str(world["invoice" if ids == "own" else "other_invoice"]))
           .replace("{account_id}", str(world["account"] if ids == "own" else NO_ACCOUNT)))
    if method == "GET":
        return client.get(url, follow_redirects=False)
    return client.post(url, data={"csrf_token": csrf_of(client, surface), **FIELDS.get(path, {})},
                       follow_redirects=False)


@pytest.mark.parametrize(("method", "path", "ids"), sorted(POLICY, key=str))
def test_access_matrix(world, visitors, method, path, ids):
    """Every role, in turn, on this route: what it got is what POLICY says it gets."""
    got = {role: outcome(visit(visitors[role], method, path, ids, world)) for role in ROLES}
    assert got == POLICY[(method, path, ids)]
