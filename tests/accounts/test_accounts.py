from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from renewly.accounts.accounts import (
    add_member,
    change_member_role,
    create_account,
    describe_account,
    remove_member,
    update_buyer_address,
)
from renewly.adapters.db.tables import outbox
from renewly.billing.invoices import show_invoice
from renewly.billing.renewals import renew_due
from renewly.shared.errors import Conflict, InvalidInput, NotAllowed, NotFound
from tests.builders import OPERATOR, customer, subscribed


def members_of(app, account_id: int) -> list[tuple[str, str]]:
    return [(m["role"], m["email"]) for m in describe_account(app, account_id)["members"]]


def test_r1_an_account_is_created_with_exactly_one_owner(app):
    account_id = create_account(app, name=" Acme ", owner_email="Boss@Acme.test", locale="fr",
                                timezone="Europe/Paris", currency="eur", country="fr", actor=OPERATOR)
    account = describe_account(app, account_id)
    assert account["members"] == [{"email": "boss@acme.test", "role": "owner"}]
    assert (account["name"], account["locale"], account["timezone"], account["currency"], account["status"]) == (
        "Acme", "fr", "Europe/Paris", "EUR", "active")
    assert account["buyer"]["name"] == "Acme" and account["buyer"]["country"] == "FR"


def test_r1_admins_and_agents_join_beside_the_owner(app):
    account_id = customer(app)
    add_member(app, account_id, email="admin@acme.test", role="admin", actor=OPERATOR)
    add_member(app, account_id, email="agent@acme.test", role="agent", actor=OPERATOR)
    assert members_of(app, account_id) == [("owner", "owner@acme.test"), ("admin", "admin@acme.test"),
                                           ("agent", "agent@acme.test")]


def test_r1_adding_a_second_owner_is_refused(app):
    account_id = customer(app)
    with pytest.raises(InvalidInput) as refused:
        add_member(app, account_id, email="other@acme.test", role="owner", actor=OPERATOR)
    assert refused.value.code == "second_owner"
    assert members_of(app, account_id) == [("owner", "owner@acme.test")]


def test_r1_the_owner_cannot_be_removed(app):
    account_id = customer(app)
    with pytest.raises(NotAllowed) as refused:
        remove_member(app, account_id, email="owner@acme.test", actor=OPERATOR)
    assert refused.value.code == "owner_required"
    assert members_of(app, account_id) == [("owner", "owner@acme.test")]


def test_r1_other_members_can_be_removed(app):
    account_id = customer(app)
    add_member(app, account_id, email="agent@acme.test", role="agent", actor=OPERATOR)
    remove_member(app, account_id, email="Agent@Acme.test", actor=OPERATOR)
    assert members_of(app, account_id) == [("owner", "owner@acme.test")]
    with pytest.raises(NotFound):
        remove_member(app, account_id, email="agent@acme.test", actor=OPERATOR)


@pytest.mark.parametrize("email", ["agent@acme.test", "AGENT@acme.test", "owner@acme.test"])
def test_r1_a_member_cannot_be_added_twice(app, email):
    account_id = customer(app)
    add_member(app, account_id, email="agent@acme.test", role="agent", actor=OPERATOR)
    with pytest.raises(Conflict) as refused:
        add_member(app, account_id, email=email, role="admin", actor=OPERATOR)
    assert refused.value.code == "member_exists"
    assert members_of(app, account_id) == [("owner", "owner@acme.test"), ("agent", "agent@acme.test")]


def test_r1_the_same_person_may_be_a_member_of_two_accounts(app):
    first, second = customer(app, name="Acme"), customer(app, name="Globex", owner="boss@globex.test")
    add_member(app, first, email="consultant@example.test", role="agent", actor=OPERATOR)
    add_member(app, second, email="consultant@example.test", role="admin", actor=OPERATOR)
    assert ("agent", "consultant@example.test") in members_of(app, first)
    assert ("admin", "consultant@example.test") in members_of(app, second)


def test_members_of_an_unknown_account_are_refused(app):
    with pytest.raises(NotFound) as refused:
        add_member(app, 99, email="a@acme.test", role="agent", actor=OPERATOR)
    assert refused.value.code == "unknown_account"


@pytest.mark.parametrize("field, value, code", [
    ("owner_email", "not-an-email", "invalid_email"), ("locale", "de", "unsupported_locale"),
    ("timezone", "Mars/Olympus_Mons", "unknown_timezone"), ("currency", "ABC", "unknown_currency"),
    ("country", "XX", "unknown_country"), ("name", " ", "invalid_name")])
def test_an_account_with_bad_input_is_refused_and_nothing_is_created(app, field, value, code):
    request = dict(name="Acme", owner_email="owner@acme.test", locale="en", timezone="UTC", currency="USD",
                   country="FR") | {field: value}
    with pytest.raises(InvalidInput) as refused:
        create_account(app, **request, actor=OPERATOR)
    assert refused.value.code == code
    with pytest.raises(NotFound):
        describe_account(app, 1)


def test_r3_1_a_new_buyer_address_is_on_later_invoices_and_not_on_earlier_ones(app):
    account_id, _ = subscribed(app, name="Acme SAS", country="FR")
    update_buyer_address(app, account_id, acting_email="owner@acme.test", actor=OPERATOR, changes={
        "name": "Acme GmbH", "line1": "Hauptstraße 1", "postcode": "10115", "city": "Berlin", "country": "de",
        "vat_id": "DE123456789"})
    renew_due(app, datetime(2026, 2, 1, tzinfo=UTC))
    before, after = show_invoice(app, "2026-000001"), show_invoice(app, "2026-000002")
    assert before["buyer"] == {"name": "Acme SAS", "line1": "", "line2": "", "postcode": "", "city": "",
                               "country": "FR", "vat_id": ""}
    assert after["buyer"] == {"name": "Acme GmbH", "line1": "Hauptstraße 1", "line2": "", "postcode": "10115",
                              "city": "Berlin", "country": "DE", "vat_id": "DE123456789"}
    assert (before["tax_rate"], after["tax_rate"]) == ("20", "19")  # the tax follows the buyer's country


@pytest.mark.parametrize("changes", [{"country": "XX"}, {"name": ""}, {"phone": "0123"}])
def test_r3_1_a_bad_buyer_address_is_refused_and_the_old_one_kept(app, changes):
    account_id = customer(app, name="Acme SAS", country="FR")
    before = describe_account(app, account_id)["buyer"]
    with pytest.raises(InvalidInput):
        update_buyer_address(app, account_id, changes=changes, acting_email="owner@acme.test", actor=OPERATOR)
    assert describe_account(app, account_id)["buyer"] == before


def test_r8_an_admin_becomes_an_agent_and_back(app):
    account_id = customer(app)
    add_member(app, account_id, email="ann@acme.test", role="admin", actor=OPERATOR)
    change_member_role(app, account_id, email="Ann@Acme.test", role="agent", actor=OPERATOR)
    assert ("agent", "ann@acme.test") in members_of(app, account_id)
    change_member_role(app, account_id, email="ann@acme.test", role="admin", actor=OPERATOR)
    assert ("admin", "ann@acme.test") in members_of(app, account_id)
    with app.engine.connect() as conn:  # the host product is told, as of every change of members
        told = conn.execute(select(outbox.c.payload).where(outbox.c.topic == "account.updated")).scalars().all()
    assert told[-2:] == [{"account_id": account_id, "changed": ["members"]}] * 2


@pytest.mark.parametrize(("email", "role", "error", "code"), [
    ("owner@acme.test", "agent", NotAllowed, "owner_required"),  # only a transfer changes the owner
    ("ann@acme.test", "owner", InvalidInput, "second_owner"),
    ("ann@acme.test", "admin", InvalidInput, "role_unchanged"),
    ("ann@acme.test", "boss", InvalidInput, "unknown_role"),
    ("nobody@acme.test", "agent", NotFound, "unknown_member"),
])
def test_r1_a_role_change_refused_changes_nothing(app, email, role, error, code):
    account_id = customer(app)
    add_member(app, account_id, email="ann@acme.test", role="admin", actor=OPERATOR)
    before = members_of(app, account_id)
    with pytest.raises(error) as refused:
        change_member_role(app, account_id, email=email, role=role, actor=OPERATOR)
    assert refused.value.code == code and members_of(app, account_id) == before


def test_r3_1_an_address_change_with_nothing_to_change_is_refused(app):
    account_id = customer(app)
    with pytest.raises(InvalidInput) as refused:
        update_buyer_address(app, account_id, changes={}, acting_email="owner@acme.test", actor=OPERATOR)
    assert refused.value.code == "nothing_to_change"
