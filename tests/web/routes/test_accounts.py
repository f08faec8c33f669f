"""`/v1/accounts`: accounts with their owner, the buyer address (R1.1, R3.1), members and roles."""

from __future__ import annotations

from datetime import datetime

import pytest

from renewly.billing.invoices import show_invoice
from renewly.billing.renewals import renew_due
from tests.builders import OPERATOR, customer, subscribed
from tests.conftest import START
from tests.web.conftest import problem

ACME = {"name": "Acme", "owner_email": "Boss@Acme.test", "locale": "fr", "timezone": "Europe/Paris",
        "currency": "EUR", "country": "FR", "address": {"line1": "1 rue de la Paix", "city": "Paris"}}


def test_an_account_is_created_with_its_owner_then_read_and_listed(client):
    created = client.post("/v1/accounts", json=ACME)
    assert created.status_code == 201, created.text
    account = created.json()
    assert account == {
        "object": "account", "id": 1, "name": "Acme", "status": "active", "locale": "fr", "timezone": "Europe/Paris",
        "currency": "EUR", "owner_email": "boss@acme.test", "created_at": account["created_at"],
        "buyer": {"name": "Acme", "line1": "1 rue de la Paix", "line2": "", "postcode": "", "city": "Paris",
                  "country": "FR", "vat_id": ""}}
    assert datetime.fromisoformat(account["created_at"]) == START
    assert client.get("/v1/accounts/1").json() == account
    assert client.get("/v1/accounts").json()["data"] == [account]
    assert client.get("/v1/accounts/1/members").json()["data"] == [
        {"object": "member", "id": 1, "account_id": 1, "email": "boss@acme.test", "role": "owner",
         "created_at": account["created_at"]}]


@pytest.mark.parametrize(("change", "status", "code"), [
    ({"country": "ZZ"}, 422, "invalid_input"),  # not a country the rules accept: the document lists them
    ({"currency": "eur"}, 422, "invalid_input"),
    ({"timezone": "Mars/Olympus"}, 422, "invalid_input"),
    ({"owner_email": "boss"}, 422, "invalid_input"),
    ({"owner_email": "boss@acme"}, 400, "invalid_email"),
    ({"name": "Acme\x1b[2J"}, 400, "invalid_text"),
    ({"name": "n" * 201}, 422, "invalid_input"),
    ({"address": {"line1": "x" * 201}}, 422, "invalid_input"),
    ({"address": {"country": "FR"}}, 422, "invalid_input"),  # the country is the account's own field
    ({"locale": "de"}, 422, "invalid_input"),
])
def test_an_account_refused_at_the_door_or_by_the_rules_is_not_created(client, change, status, code):
    problem(client.post("/v1/accounts", json={**ACME, **change}), status, code)
    assert client.get("/v1/accounts").json()["data"] == []


def test_an_unknown_account_is_404_everywhere(client):
    problem(client.get("/v1/accounts/9"), 404, "unknown_account")
    problem(client.get("/v1/accounts/9/members"), 404, "unknown_account")
    problem(client.post("/v1/accounts/9/members", json={"email": "a@b.test", "role": "agent"}), 404,
            "unknown_account")
    problem(client.post("/v1/accounts/9/buyer_address", json={"acting_member": "a@b.test", "city": "Lyon"}), 404,
            "unknown_account")


def test_r3_1_the_owner_changes_the_buyer_address_for_future_invoices_only(app, client):
    account_id, _ = subscribed(app, seats=1)
    changed = client.post(f"/v1/accounts/{account_id}/buyer_address",
                          json={"acting_member": "owner@acme.test", "line1": "2 Main St", "vat_id": "FR123"})
    assert changed.status_code == 200, changed.text
    assert changed.json() == {"name": "Acme", "line1": "2 Main St", "line2": "", "postcode": "", "city": "",
                              "country": "FR", "vat_id": "FR123"}
    renew_due(app, datetime(2026, 2, 1, tzinfo=START.tzinfo))
    assert show_invoice(app, "2026-000001")["buyer"]["line1"] == ""
    assert show_invoice(app, "2026-000002")["buyer"]["line1"] == "2 Main St"


def test_r1_1_only_the_owner_changes_the_buyer_address(app, client):
    account_id = customer(app)
    client.post(f"/v1/accounts/{account_id}/members", json={"email": "ann@acme.test", "role": "admin"})
    body = problem(client.post(f"/v1/accounts/{account_id}/buyer_address",
                               json={"acting_member": "ann@acme.test", "city": "Lyon"}), 403, "owner_required")
    assert "owner@acme.test" in body["detail"]
    problem(client.post(f"/v1/accounts/{account_id}/buyer_address",
                        json={"acting_member": "stranger@other.test", "city": "Lyon"}), 403, "not_a_member")
    problem(client.post(f"/v1/accounts/{account_id}/buyer_address", json={"acting_member": "owner@acme.test"}),
            400, "nothing_to_change")
    problem(client.post(f"/v1/accounts/{account_id}/buyer_address",
                        json={"acting_member": "owner@acme.test", "country": ""}), 422, "invalid_input")
    assert client.get(f"/v1/accounts/{account_id}").json()["buyer"]["city"] == ""


def test_members_are_added_change_role_and_are_removed(app, client):
    account_id = customer(app)
    added = client.post(f"/v1/accounts/{account_id}/members", json={"email": "Ann@Acme.test", "role": "admin"})
    assert added.status_code == 201 and added.json()["email"] == "ann@acme.test" and added.json()["role"] == "admin"
    changed = client.post(f"/v1/accounts/{account_id}/members/ann@acme.test", json={"role": "agent"})
    assert changed.status_code == 200 and changed.json()["role"] == "agent"
    assert [(m["email"], m["role"]) for m in client.get(f"/v1/accounts/{account_id}/members").json()["data"]] == [
        ("owner@acme.test", "owner"), ("ann@acme.test", "agent")]
    removed = client.delete(f"/v1/accounts/{account_id}/members/Ann@Acme.test")
    assert removed.json() == {"object": "member", "account_id": account_id, "email": "ann@acme.test", "deleted": True}
    assert len(client.get(f"/v1/accounts/{account_id}/members").json()["data"]) == 1


def test_member_changes_refused(app, client):
    account_id = customer(app)
    client.post(f"/v1/accounts/{account_id}/members", json={"email": "ann@acme.test", "role": "admin"})
    members = f"/v1/accounts/{account_id}/members"
    problem(client.post(members, json={"email": "ann@acme.test", "role": "agent"}), 409, "member_exists")
    problem(client.post(members, json={"email": "bob@acme.test", "role": "owner"}), 422, "invalid_input")
    problem(client.post(f"{members}/owner@acme.test", json={"role": "admin"}), 403, "owner_required")
    problem(client.post(f"{members}/ann@acme.test", json={"role": "admin"}), 400, "role_unchanged")
    problem(client.post(f"{members}/nobody@acme.test", json={"role": "admin"}), 404, "unknown_member")
    problem(client.delete(f"{members}/owner@acme.test"), 403, "owner_required")
    problem(client.delete(f"{members}/nobody@acme.test"), 404, "unknown_member")


def test_lists_of_accounts_and_members_page_by_cursor(app, client):
    for index in range(3):
        customer(app, name=f"Account {index}", owner=f"owner{index}@acme.test")
    first = client.get("/v1/accounts", params={"limit": 2}).json()
    rest = client.get("/v1/accounts", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert [a["name"] for a in first["data"] + rest["data"]] == ["Account 0", "Account 1", "Account 2"]
    assert (first["has_more"], rest["has_more"]) == (True, False)
    assert OPERATOR  # the builders' actor; the API's is the key's
