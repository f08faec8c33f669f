"""`/v1/accounts/{id}/billing_contacts`: a member asks, the owner consents or refuses (R4.1); a
contact leaves by itself or by a billing e-mail's removal link, or the owner removes it, never
the owner (R4.2)."""

from __future__ import annotations

from sqlalchemy import select

from renewly.accounts.accounts import add_member
from renewly.accounts.removal_links import RemovalLinks
from renewly.adapters.db.tables import outbox
from tests.builders import OPERATOR, customer
from tests.web.conftest import problem

OWNER = "owner@acme.test"
ADMIN = "admin@acme.test"
BOOKS = "books@acme.test"


def acme(app) -> int:
    account_id = customer(app)
    add_member(app, account_id, email=ADMIN, role="admin", actor=OPERATOR)
    return account_id


def contacts(client, account_id: int, **params) -> list[tuple[str, str]]:
    listed = client.get(f"/v1/accounts/{account_id}/billing_contacts", params=params).json()["data"]
    return [(contact["email"], contact["status"]) for contact in listed]


def test_r4_1_a_members_request_waits_for_the_owners_consent(client, app):
    account_id = acme(app)
    asked = client.post(f"/v1/accounts/{account_id}/billing_contacts",
                        json={"email": "Books@Acme.test", "requested_by": ADMIN})
    assert asked.status_code == 201
    contact = asked.json()
    assert contact == {"object": "billing_contact", "id": 1, "account_id": account_id, "email": BOOKS,
                       "status": "requested", "requested_by": ADMIN, "requested_at": contact["requested_at"],
                       "decided_at": None, "removed_at": None}
    with app.engine.connect() as conn:  # the owner is asked, by e-mail
        [consent] = conn.execute(select(outbox.c.payload).where(outbox.c.topic == "email")).scalars()
    assert (consent["kind"], consent["recipients"]) == ("contact_request", [OWNER])
    problem(client.post(f"/v1/accounts/{account_id}/billing_contacts/{BOOKS}/approve",
                        json={"acting_member": ADMIN}), 403, "owner_required")
    approved = client.post(f"/v1/accounts/{account_id}/billing_contacts/{BOOKS}/approve",
                           json={"acting_member": OWNER})
    assert approved.status_code == 200 and approved.json()["status"] == "active" and approved.json()["decided_at"]
    assert contacts(client, account_id) == [(BOOKS, "active")]


def test_r4_1_the_owners_own_request_adds_at_once_and_a_refused_request_adds_nothing(client, app):
    account_id = acme(app)
    added = client.post(f"/v1/accounts/{account_id}/billing_contacts", json={"email": BOOKS, "requested_by": OWNER})
    assert (added.status_code, added.json()["status"]) == (201, "active")
    client.post(f"/v1/accounts/{account_id}/billing_contacts", json={"email": "cfo@acme.test", "requested_by": ADMIN})
    refused = client.post(f"/v1/accounts/{account_id}/billing_contacts/cfo@acme.test/refuse",
                          json={"acting_member": OWNER})
    assert (refused.status_code, refused.json()["status"]) == (200, "refused")
    assert contacts(client, account_id) == [(BOOKS, "active")]
    assert contacts(client, account_id, status="refused") == [("cfo@acme.test", "refused")]
    problem(client.post(f"/v1/accounts/{account_id}/billing_contacts/cfo@acme.test/approve",
                        json={"acting_member": OWNER}), 404, "unknown_contact_request")


def test_r4_2_a_contact_leaves_by_itself_the_owner_removes_anyone_never_the_owner(client, app):
    account_id = acme(app)
    for email in (BOOKS, "cfo@acme.test"):
        client.post(f"/v1/accounts/{account_id}/billing_contacts", json={"email": email, "requested_by": OWNER})
    problem(client.post(f"/v1/accounts/{account_id}/billing_contacts/{BOOKS}/remove",
                        json={"acting_member": ADMIN}), 403, "owner_required")
    left = client.post(f"/v1/accounts/{account_id}/billing_contacts/{BOOKS}/remove", json={"acting_member": BOOKS})
    assert (left.status_code, left.json()["status"]) == (200, "removed") and left.json()["removed_at"]
    removed = client.post(f"/v1/accounts/{account_id}/billing_contacts/cfo@acme.test/remove",
                          json={"acting_member": OWNER})
    assert removed.json()["status"] == "removed"
    problem(client.post(f"/v1/accounts/{account_id}/billing_contacts/{OWNER}/remove",
                        json={"acting_member": OWNER}), 403, "owner_is_contact")
    problem(client.post(f"/v1/accounts/{account_id}/billing_contacts/{BOOKS}/remove",
                        json={"acting_member": OWNER}), 404, "unknown_contact")
    assert contacts(client, account_id) == []
    assert contacts(client, account_id, status=["removed", "active"]) == [(BOOKS, "removed"),
                                                                           ("cfo@acme.test", "removed")]


def test_r4_2_a_removal_link_works_once(client, app):
    account_id = acme(app)
    contact_id = client.post(f"/v1/accounts/{account_id}/billing_contacts",
                             json={"email": BOOKS, "requested_by": OWNER}).json()["id"]
    link = RemovalLinks.of(app.settings).url(account_id, contact_id, app.clock.now())
    followed = client.post("/v1/billing_contacts/unsubscribe", json={"token": link})
    assert (followed.status_code, followed.json()["email"], followed.json()["status"]) == (200, BOOKS, "removed")
    problem(client.post("/v1/billing_contacts/unsubscribe", json={"token": link}), 409, "removal_link_used")
    problem(client.post("/v1/billing_contacts/unsubscribe", json={"token": link[:-3]}), 400, "removal_link_invalid")
    problem(client.post("/v1/billing_contacts/unsubscribe", json={"token": ""}), 422, "invalid_input")


def test_contacts_are_listed_a_page_at_a_time(client, app):
    account_id = acme(app)
    for number in range(3):
        client.post(f"/v1/accounts/{account_id}/billing_contacts",
                    json={"email": f"c{number}@acme.test", "requested_by": ADMIN})
    first = client.get(f"/v1/accounts/{account_id}/billing_contacts", params={"limit": 2}).json()
    assert [c["email"] for c in first["data"]] == ["c0@acme.test", "c1@acme.test"] and first["has_more"]
    rest = client.get(f"/v1/accounts/{account_id}/billing_contacts", params={"cursor": first["next_cursor"]}).json()
    assert [c["email"] for c in rest["data"]] == ["c2@acme.test"] and not rest["has_more"]


def test_billing_contacts_refused(client, app):
    account_id = acme(app)
    other = customer(app, name="Other", owner="boss@other.test")
    client.post(f"/v1/accounts/{account_id}/billing_contacts", json={"email": BOOKS, "requested_by": ADMIN})
    problem(client.post(f"/v1/accounts/{account_id}/billing_contacts", json={"email": BOOKS, "requested_by": ADMIN}),
            409, "contact_already_requested")
    problem(client.post(f"/v1/accounts/{account_id}/billing_contacts", json={"email": OWNER, "requested_by": ADMIN}),
            409, "contact_is_owner")
    # R1.2: the owner of another account decides nothing here.
    problem(client.post(f"/v1/accounts/{account_id}/billing_contacts/{BOOKS}/approve",
                        json={"acting_member": "boss@other.test"}), 403, "owner_required")
    problem(client.post(f"/v1/accounts/{other}/billing_contacts/{BOOKS}/approve",
                        json={"acting_member": "boss@other.test"}), 404, "unknown_contact_request")
    problem(client.get("/v1/accounts/9/billing_contacts"), 404, "unknown_account")
    problem(client.post("/v1/accounts/9/billing_contacts", json={"email": BOOKS, "requested_by": ADMIN}),
            404, "unknown_account")
    problem(client.post(f"/v1/accounts/{account_id}/billing_contacts/not-an-email/approve",
                        json={"acting_member": OWNER}), 400, "invalid_email")
    for body in ({"email": BOOKS}, {"email": "books", "requested_by": ADMIN},
                 {"email": "b" * 320 + "@acme.test", "requested_by": ADMIN},
                 {"email": BOOKS, "requested_by": ADMIN, "role": "admin"}):
        problem(client.post(f"/v1/accounts/{account_id}/billing_contacts", json=body), 422, "invalid_input")
    problem(client.get(f"/v1/accounts/{account_id}/billing_contacts", params={"status": "owner"}), 422,
            "invalid_input")
    problem(client.post(f"/v1/accounts/{account_id}/billing_contacts/{BOOKS}/refuse", json={}), 422, "invalid_input")
    problem(client.get("/v1/accounts/0/billing_contacts"), 422, "invalid_input")
    assert contacts(client, account_id) == [(BOOKS, "requested")]
