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

The subject account's state is the third dimension: active, cancelled for an unpaid invoice
(day 29), or cancelled and temporarily reactivated by support. Cancelled, every member of it sees
why and how to ask support on every page (R9.1; the legacy FAQ: "plus aucun accès au portail");
reactivated, the owner alone reaches the billing pages, to update the card (R9.2: "permettre au
propriétaire du compte de mettre la méthode de paiement à jour"); the console's staff reach the
account in every state (support grants the reactivation from its page).
"""

from __future__ import annotations

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import select

from renewly.accounts.accounts import add_member
from renewly.adapters.db.tables import accounts, invoices
from renewly.console.staff import create_staff
from renewly.dunning.reactivation import grant_reactivation
from renewly.web.console import routes as console_routes
from renewly.web.portal import routes as portal_routes
from tests.builders import GOOD_CARD, OPERATOR, subscribed
from tests.web.console.conftest import PASSWORD
from tests.web.console.conftest import Browsers as ConsoleBrowsers
from tests.web.portal.conftest import Browsers as PortalBrowsers
from tests.web.test_dunning import DECLINES, to_day

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

CANCELLED = "cancelled"  # 403: this account is cancelled, why, and how to ask support (R9.1)

MEMBERS = ("owner", "admin", "agent", "other_owner")
STAFF = ("support", "finance")
STATES = ("active", "cancelled", "reactivated")  # the subject account's; the other account stays active


def policy(*, anonymous: str = SIGN_IN, owner: str, admin: str, agent: str, other_owner: str,
           support: str = SIGN_IN, finance: str = SIGN_IN) -> dict[str, str]:
    return {"anonymous": anonymous, "owner": owner, "admin": admin, "agent": agent, "other_owner": other_owner,
            "support": support, "finance": finance}


def by_state(*, active: dict[str, str], cancelled: dict[str, str], reactivated: dict[str, str]
             ) -> dict[str, dict[str, str]]:
    return {"active": active, "cancelled": cancelled, "reactivated": reactivated}


def in_every_state(row: dict[str, str]) -> dict[str, dict[str, str]]:
    """What the subject account's state changes nothing of: pages without a session, the other
    owner's own account, the console (staff reach a cancelled account: support reactivates it)."""
    return dict.fromkeys(STATES, row)


def portal_page(owner_only: bool) -> dict[str, dict[str, str]]:
    """A portal page behind a session: every member of any account reaches their own account's
    (the other owner reaches theirs, never ours); the owner pages refuse admins and agents.
    Cancelled, every member of ours is told why and how to ask support (R9.1); reactivated, the
    owner alone has the billing pages back (his home is their overview), admins and agents are
    still told it is cancelled (R9.2)."""
    gated = OWNER_ONLY if owner_only else OPEN
    return by_state(active=policy(owner=OPEN, admin=gated, agent=gated, other_owner=OPEN),
                    cancelled=policy(owner=CANCELLED, admin=CANCELLED, agent=CANCELLED, other_owner=OPEN),
                    reactivated=policy(owner=OPEN, admin=CANCELLED, agent=CANCELLED, other_owner=OPEN))


def console_page(*, acts: bool) -> dict[str, dict[str, str]]:
    """A console page: members are nobody there; finance reads, support reads and acts."""
    return in_every_state(policy(owner=SIGN_IN, admin=SIGN_IN, agent=SIGN_IN, other_owner=SIGN_IN, support=OPEN,
                                 finance=READ_ONLY if acts else OPEN))


def console_unknown_account(*, acts: bool) -> dict[str, dict[str, str]]:
    """An id that names no account: staff are told so (finance, asking to act, is refused first)."""
    return in_every_state(policy(owner=SIGN_IN, admin=SIGN_IN, agent=SIGN_IN, other_owner=SIGN_IN,
                                 support=NOT_FOUND, finance=READ_ONLY if acts else NOT_FOUND))


EVERYONE_OPEN = in_every_state(dict.fromkeys(ROLES, OPEN))
EVERYONE_NOT_FOUND = in_every_state(dict.fromkeys(ROLES, NOT_FOUND))

# (method, path, ids) -> state -> role -> outcome. ids "own" are the subject account's (its
# invoice, its account id), "other" another account's (portal) or an id of no account (console);
# None: the path has no id.
POLICY: dict[tuple[str, str, str | None], dict[str, dict[str, str]]] = {
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
    ("GET", "/portal/invoices/{invoice_id}/pdf", "own"): by_state(
        active=policy(owner=OPEN, admin=OWNER_ONLY, agent=OWNER_ONLY, other_owner=NOT_FOUND),
        cancelled=policy(owner=CANCELLED, admin=CANCELLED, agent=CANCELLED, other_owner=NOT_FOUND),
        reactivated=policy(owner=OPEN, admin=CANCELLED, agent=CANCELLED, other_owner=NOT_FOUND)),
    ("GET", "/portal/invoices/{invoice_id}/pdf", "other"): by_state(
        active=policy(owner=NOT_FOUND, admin=OWNER_ONLY, agent=OWNER_ONLY, other_owner=OPEN),
        cancelled=policy(owner=CANCELLED, admin=CANCELLED, agent=CANCELLED, other_owner=OPEN),
        reactivated=policy(owner=NOT_FOUND, admin=CANCELLED, agent=CANCELLED, other_owner=OPEN)),
    ("GET", "/portal/address", None): portal_page(owner_only=True),
    ("POST", "/portal/address", None): portal_page(owner_only=True),
    ("GET", "/portal/contacts", None): portal_page(owner_only=True),
    ("POST", "/portal/contacts/{action}", None): portal_page(owner_only=True),
    ("GET", "/portal/card", None): portal_page(owner_only=True),
    ("GET", "/portal/card/return", None): portal_page(owner_only=True),
    # -- console: its sign-in is open to anyone
    ("GET", "/console/sign-in", None): EVERYONE_OPEN,
    ("POST", "/console/sign-in", None): EVERYONE_OPEN,
    ("POST", "/console/sign-out", None): in_every_state(dict.fromkeys(ROLES, SIGN_IN)),  # signed in or not
    # -- console: reading (both roles) and acting (support only), whatever the account's state
    ("GET", "/console/", None): console_page(acts=False),
    ("GET", "/console/recovery", None): console_page(acts=False),
    ("GET", "/console/accounts/{account_id}", "own"): console_page(acts=False),
    ("GET", "/console/accounts/{account_id}", "other"): console_unknown_account(acts=False),
    **{("POST", f"/console/accounts/{{account_id}}/{action}", ids): (
        console_page(acts=True) if ids == "own" else console_unknown_account(acts=True))
       for action in ("reactivate", "transfer-ownership", "resend-invoices", "contacts/consent", "contacts/remove")
       for ids in ("own", "other")},
}

# What each form is sent: fields its use case takes (or refuses by a billing rule, never a 500).
FIELDS = {"/portal/address": {"name": "Acme", "line1": "1 Main St", "postcode": "94000", "city": "Oakland",
                              "country": "US"},
          "/portal/contacts/{action}": {"email": "nobody@acme.test"},
          "/console/sign-in": {"email": SUPPORT, "password": "not the password"},
          "/console/accounts/{account_id}/reactivate": {"reason": "asked by phone"},
          "/console/accounts/{account_id}/transfer-ownership": {"reason": "owner left", "to": ADMIN},
          "/console/accounts/{account_id}/resend-invoices": {"reason": "lost it", "month": "2026-01"},
          "/console/accounts/{account_id}/contacts/consent": {"email": "books@acme.test", "evidence": "ticket 4821"},
          # The owner: refused by the rule (403 on the account's page), past every access check.
          "/console/accounts/{account_id}/contacts/remove": {"email": OWNER, "evidence": "ticket 4822"}}
NO_ACCOUNT = 999_999


def route_table() -> set[tuple[str, str]]:
    return {(method, prefix + route.path)
            for prefix, router in (("/portal", portal_routes.router), ("/console", console_routes.router))
            for route in router.routes if isinstance(route, APIRoute) for method in route.methods}


def test_every_route_has_a_policy():
    """A route added to either table without its row here fails: a new page cannot escape."""
    assert {(method, path) for method, path, _ in POLICY} == route_table()
    for (method, path, ids), rows in POLICY.items():
        assert tuple(rows) == STATES, (method, path)
        for state, row in rows.items():
            assert set(row) == set(ROLES), (method, path, state)
        assert (ids is not None) == ("{invoice_id}" in path or "{account_id}" in path), (method, path)


@pytest.fixture
def world(app, cheap_argon2, state):
    """The subject account (owner, admin, agent, one invoice) in `state`, another account with
    its own invoice (active), and the two staff roles. Cancelled: its card declines the renewal
    of day 0 and day 29 cancels it (R8); reactivated: then support grants the window (R9.2)."""
    account_id, _ = subscribed(app, owner=OWNER, card=GOOD_CARD if state == "active" else DECLINES)
    add_member(app, account_id, email=ADMIN, role="admin", actor=OPERATOR)
    add_member(app, account_id, email=AGENT, role="agent", actor=OPERATOR)
    other_id, _ = subscribed(app, name="Globex", owner=OTHER_OWNER, plan="team")
    for email, role in ((SUPPORT, "support"), (FINANCE, "finance")):
        create_staff(app, email=email, name=role.title(), role=role, password=PASSWORD, actor=OPERATOR)
    if state != "active":
        to_day(app, 29)
    if state == "reactivated":
        grant_reactivation(app, account_id, days=None, reason="asked by phone", actor=OPERATOR)
    with app.engine.connect() as conn:
        status_of = dict(conn.execute(select(accounts.c.id, accounts.c.status)).all())
        invoice_of = dict(conn.execute(select(invoices.c.account_id, invoices.c.id)).all())
    assert (status_of[account_id], status_of[other_id]) == ("active" if state == "active" else "cancelled", "active")
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
    if answer.status_code == 403 and 'data-problem="cancelled"' in answer.text:
        return CANCELLED
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


@pytest.mark.parametrize("state", ["active"])
@pytest.mark.parametrize(("method", "path", "ids"), sorted(POLICY, key=str))
def test_access_matrix(world, visitors, state, method, path, ids):
    """Every role, in turn, on this route, the subject account active: what it got is what
    POLICY says it gets."""
    assert_policy_holds(world, visitors, state, method, path, ids)


# The other states on one engine: who may open what is decided in Python, the same on both, and
# each state's world is built anew for each route (a month of the test clock): on both engines
# they would add two minutes of CPU to the suite.
@pytest.mark.parametrize("db_kind", ["sqlite"])
@pytest.mark.parametrize("state", [state for state in STATES if state != "active"])
@pytest.mark.parametrize(("method", "path", "ids"), sorted(POLICY, key=str))
def test_r9_1_r9_2_access_matrix_of_a_cancelled_or_reactivated_account(world, visitors, state, method, path, ids):
    """Every role, in turn, on this route, the subject account cancelled (R9.1) or temporarily
    reactivated (R9.2): what it got is what POLICY says it gets."""
    assert_policy_holds(world, visitors, state, method, path, ids)


def assert_policy_holds(world, visitors, state: str, method: str, path: str, ids: str) -> None:
    got = {role: outcome(visit(visitors[role], method, path, ids, world)) for role in ROLES}
    assert got == POLICY[(method, path, ids)][state]
