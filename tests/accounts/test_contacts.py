"""R4 billing contacts: added only with the owner's consent (approved by the owner, or recorded by
support), removable by themselves (by link or through support) or the owner, and then on every
billing e-mail."""

from __future__ import annotations

from datetime import timedelta
from html import unescape

import pytest
from sqlalchemy import select

from renewly.accounts.accounts import add_member
from renewly.accounts.contacts import (
    approve_contact,
    list_contacts,
    record_owner_consent,
    refuse_contact,
    remove_contact,
    remove_contact_on_request,
    request_contact,
)
from renewly.adapters.db.tables import accounts, audit_log, billing_contacts, metadata, outbox
from renewly.outbox.emails import addressees
from renewly.scheduler import advance
from renewly.shared.errors import Conflict, InvalidInput, NotAllowed, NotFound
from tests.builders import OPERATOR, customer, subscribed, with_card

OWNER = "owner@acme.test"
ADMIN = "admin@acme.test"
ACCOUNTANT = "books@accountants.test"


def emails(app, kind: str | None = None) -> list[dict]:
    with app.engine.connect() as conn:
        payloads = conn.execute(select(outbox.c.payload).where(outbox.c.topic == "email").order_by(outbox.c.id))
        return [p for p in payloads.scalars() if kind is None or p["kind"] == kind]


def events(app, topic: str) -> list[dict]:
    with app.engine.connect() as conn:
        return list(conn.execute(select(outbox.c.payload).where(outbox.c.topic == topic)
                                 .order_by(outbox.c.id)).scalars())


def recipients(app, account_id: int) -> list[str]:
    with app.engine.connect() as conn:
        return addressees(conn, [account_id])[account_id].emails


def listed(app, account_id: int) -> list[tuple[str, str]]:
    return [(row["email"], "owner" if row["owner"] else row["status"]) for row in list_contacts(app, account_id)]


def everything(app) -> dict[str, list]:
    with app.engine.connect() as conn:
        return {table.name: conn.execute(select(table).order_by(*table.primary_key.columns)).all()
                for table in metadata.sorted_tables}


def acme_with_admin(app, locale: str = "en") -> int:
    account_id = customer(app, locale=locale)
    add_member(app, account_id, email=ADMIN, role="admin", actor=OPERATOR)
    return account_id


# -- R4.1 a request waits for the owner's consent ------------------------------------------------------

def test_r4_1_a_request_adds_nothing_and_asks_the_owner_for_consent(app):
    account_id = acme_with_admin(app)
    assert request_contact(app, account_id, email="Books@Accountants.test", requested_by=ADMIN) == "requested"
    assert recipients(app, account_id) == [OWNER]
    assert listed(app, account_id) == [(OWNER, "owner"), (ACCOUNTANT, "requested")]
    [consent] = emails(app)
    assert (consent["kind"], consent["locale"], consent["recipients"]) == ("contact_request", "en", [OWNER])
    assert ADMIN in consent["subject"] and ACCOUNTANT in consent["subject"]
    assert ADMIN in consent["body"] and ACCOUNTANT in consent["body"] and "consent" in consent["body"]
    assert events(app, "billing_contact.added") == []
    assert events(app, "billing_contact.requested") == [{"account_id": account_id, "email": ACCOUNTANT,
                                                         "requested_by": ADMIN}]


def test_r4_1_the_consent_email_is_in_the_accounts_language(app):
    account_id = acme_with_admin(app, locale="fr")
    request_contact(app, account_id, email=ACCOUNTANT, requested_by=ADMIN)
    [consent] = emails(app, "contact_request")
    assert consent["locale"] == "fr"
    assert consent["subject"] == f"{ADMIN} demande d'ajouter {ACCOUNTANT} aux contacts de facturation de Acme"
    assert "Rien ne change sans votre accord" in consent["body"]


def test_r4_1_a_stranger_may_ask_for_their_own_address(app):
    account_id = customer(app)
    request_contact(app, account_id, email=ACCOUNTANT, requested_by=ACCOUNTANT)
    [consent] = emails(app, "contact_request")
    assert consent["recipients"] == [OWNER] and ACCOUNTANT in consent["subject"]
    assert recipients(app, account_id) == [OWNER]


def test_r4_1_the_owners_approval_adds_the_contact_audited_announced_and_welcomed(app):
    account_id = acme_with_admin(app)
    request_contact(app, account_id, email=ACCOUNTANT, requested_by=ADMIN)
    approve_contact(app, account_id, email=ACCOUNTANT, acting_email="Owner@Acme.test")
    assert recipients(app, account_id) == [OWNER, ACCOUNTANT]
    assert listed(app, account_id) == [(OWNER, "owner"), (ACCOUNTANT, "active")]
    assert events(app, "billing_contact.added") == [{"account_id": account_id, "email": ACCOUNTANT}]
    [welcome] = emails(app, "contact_added")
    assert (welcome["recipients"], welcome["locale"]) == ([ACCOUNTANT], "en")
    assert welcome["subject"] == "You are now a billing contact of Acme" and OWNER in welcome["body"]
    with app.engine.connect() as conn:
        trail = conn.execute(select(audit_log.c.actor, audit_log.c.action, audit_log.c.details)
                             .where(audit_log.c.action.like("billing_contact.%")).order_by(audit_log.c.id)).all()
    assert [tuple(row) for row in trail] == [(ADMIN, "billing_contact.requested", {"email": ACCOUNTANT}),
                                             (OWNER, "billing_contact.added", {"email": ACCOUNTANT})]


def test_r4_1_only_the_owner_may_approve_and_the_refusal_names_the_owner(app):
    account_id = acme_with_admin(app)
    request_contact(app, account_id, email=ACCOUNTANT, requested_by=ADMIN)
    before = everything(app)
    for someone in (ADMIN, ACCOUNTANT, "owner@other.test"):
        with pytest.raises(NotAllowed) as refused:
            approve_contact(app, account_id, email=ACCOUNTANT, acting_email=someone)
        assert refused.value.code == "owner_required" and OWNER in refused.value.message
    assert everything(app) == before
    assert recipients(app, account_id) == [OWNER]


def test_r4_1_the_owner_may_refuse_and_the_address_gets_nothing(app):
    account_id = acme_with_admin(app)
    request_contact(app, account_id, email=ACCOUNTANT, requested_by=ADMIN)
    with pytest.raises(NotAllowed):
        refuse_contact(app, account_id, email=ACCOUNTANT, acting_email=ADMIN)
    refuse_contact(app, account_id, email=ACCOUNTANT, acting_email=OWNER)
    assert events(app, "billing_contact.refused") == [{"account_id": account_id, "email": ACCOUNTANT}]
    assert recipients(app, account_id) == [OWNER]
    assert listed(app, account_id) == [(OWNER, "owner")]
    assert emails(app, "contact_added") == []
    with pytest.raises(NotFound):  # a refused request cannot be approved afterwards
        approve_contact(app, account_id, email=ACCOUNTANT, acting_email=OWNER)
    # Asking again is a new request, which waits for the owner again.
    assert request_contact(app, account_id, email=ACCOUNTANT, requested_by=ACCOUNTANT) == "requested"
    assert len(emails(app, "contact_request")) == 2


def test_r4_1_the_owners_own_request_is_consent_and_adds_at_once(app):
    account_id = customer(app)
    assert request_contact(app, account_id, email=ACCOUNTANT, requested_by=OWNER) == "active"
    assert recipients(app, account_id) == [OWNER, ACCOUNTANT]
    assert emails(app, "contact_request") == []
    assert [e["recipients"] for e in emails(app, "contact_added")] == [[ACCOUNTANT]]


def test_r4_1_approving_an_unknown_request_is_refused(app):
    account_id = customer(app)
    before = everything(app)
    with pytest.raises(NotFound) as refused:
        approve_contact(app, account_id, email=ACCOUNTANT, acting_email=OWNER)
    assert refused.value.code == "unknown_contact_request" and ACCOUNTANT in refused.value.message
    assert everything(app) == before


@pytest.mark.parametrize("address", ["not-an-email", "", "two@@acme.test", "me@localhost"])
def test_r4_1_an_address_that_is_not_an_email_is_refused(app, address):
    account_id = customer(app)
    before = everything(app)
    with pytest.raises(InvalidInput) as refused:
        request_contact(app, account_id, email=address, requested_by=ADMIN)
    assert refused.value.code == "invalid_email"
    assert everything(app) == before


def test_r4_1_a_duplicate_request_or_an_existing_contact_or_the_owner_is_refused(app):
    account_id = acme_with_admin(app)
    request_contact(app, account_id, email=ACCOUNTANT, requested_by=ADMIN)
    before = everything(app)
    with pytest.raises(Conflict) as refused:
        request_contact(app, account_id, email=ACCOUNTANT.upper(), requested_by=ACCOUNTANT)
    assert refused.value.code == "contact_already_requested"
    with pytest.raises(Conflict) as refused:
        request_contact(app, account_id, email=OWNER, requested_by=ADMIN)
    assert refused.value.code == "contact_is_owner"
    assert everything(app) == before
    approve_contact(app, account_id, email=ACCOUNTANT, acting_email=OWNER)
    with pytest.raises(Conflict) as refused:
        request_contact(app, account_id, email=ACCOUNTANT, requested_by=ADMIN)
    assert refused.value.code == "contact_exists"


def test_r4_1_a_request_on_an_unknown_account_is_refused(app):
    with pytest.raises(NotFound) as refused:
        request_contact(app, 404, email=ACCOUNTANT, requested_by=ADMIN)
    assert refused.value.code == "unknown_account"


def test_r4_1_a_deleted_account_refuses_every_contact_change(app):
    account_id = acme_with_admin(app)
    request_contact(app, account_id, email=ACCOUNTANT, requested_by=ADMIN)
    request_contact(app, account_id, email="cfo@acme.test", requested_by=OWNER)
    with app.engine.begin() as conn:  # as the deletion batch (R10) leaves it
        conn.execute(accounts.update().where(accounts.c.id == account_id).values(status="deleted"))
    before = everything(app)
    attempts = [
        lambda: request_contact(app, account_id, email="new@acme.test", requested_by=ADMIN),
        lambda: approve_contact(app, account_id, email=ACCOUNTANT, acting_email=OWNER),
        lambda: refuse_contact(app, account_id, email=ACCOUNTANT, acting_email=OWNER),
        lambda: remove_contact(app, account_id, email="cfo@acme.test", acting_email=OWNER),
        lambda: record_owner_consent(app, account_id, email=ACCOUNTANT, actor="console:staff-7", evidence="ticket"),
        lambda: remove_contact_on_request(app, account_id, email="cfo@acme.test", actor="console:staff-7",
                                          evidence="ticket"),
        lambda: list_contacts(app, account_id),
    ]
    for attempt in attempts:
        with pytest.raises(NotAllowed) as refused:
            attempt()
        assert refused.value.code == "account_deleted"
    assert everything(app) == before


# -- R4.2 removal: oneself, or anyone by the owner; never the owner ----------------------------------------

def approved(app, account_id: int, *addresses: str) -> None:
    for address in addresses:
        request_contact(app, account_id, email=address, requested_by=ADMIN)
        approve_contact(app, account_id, email=address, acting_email=OWNER)


def test_r4_2_a_contact_removes_themselves(app):
    account_id = acme_with_admin(app)
    approved(app, account_id, ACCOUNTANT, "cfo@acme.test")
    remove_contact(app, account_id, email=ACCOUNTANT, acting_email="Books@Accountants.test")
    assert recipients(app, account_id) == [OWNER, "cfo@acme.test"]
    assert events(app, "billing_contact.removed") == [{"account_id": account_id, "email": ACCOUNTANT}]
    with pytest.raises(NotFound) as refused:  # already off the list
        remove_contact(app, account_id, email=ACCOUNTANT, acting_email=ACCOUNTANT)
    assert refused.value.code == "unknown_contact"


def test_r4_2_the_owner_removes_anyone(app):
    account_id = acme_with_admin(app)
    approved(app, account_id, ACCOUNTANT, "cfo@acme.test")
    remove_contact(app, account_id, email="cfo@acme.test", acting_email=OWNER)
    assert listed(app, account_id) == [(OWNER, "owner"), (ACCOUNTANT, "active")]
    assert recipients(app, account_id) == [OWNER, ACCOUNTANT]
    # The removed address is told, once, by whom (its last billing e-mail).
    [told] = emails(app, "contact_removed")
    assert told["recipients"] == ["cfo@acme.test"] and told["contact"] == "cfo@acme.test"
    assert told["subject"] == "You are no longer a billing contact of Acme"
    assert f"{OWNER} removed cfo@acme.test from Acme's billing contacts" in told["body"]


def test_r4_2_no_one_else_removes_a_contact(app):
    account_id = acme_with_admin(app)
    approved(app, account_id, ACCOUNTANT, "cfo@acme.test")
    before = everything(app)
    for someone in (ADMIN, "cfo@acme.test"):
        with pytest.raises(NotAllowed) as refused:
            remove_contact(app, account_id, email=ACCOUNTANT, acting_email=someone)
        assert refused.value.code == "owner_required" and OWNER in refused.value.message
    assert everything(app) == before


def test_r4_2_the_owner_cannot_be_removed_by_anyone(app):
    account_id = acme_with_admin(app)
    approved(app, account_id, ACCOUNTANT)
    before = everything(app)
    for someone in (OWNER, ADMIN, ACCOUNTANT):
        with pytest.raises(NotAllowed) as refused:
            remove_contact(app, account_id, email=OWNER, acting_email=someone)
        assert refused.value.code == "owner_is_contact"
    assert everything(app) == before
    assert recipients(app, account_id) == [OWNER, ACCOUNTANT]


def test_r4_2_a_requested_address_withdraws_its_request_and_can_ask_again(app):
    account_id = acme_with_admin(app)
    request_contact(app, account_id, email=ACCOUNTANT, requested_by=ADMIN)
    remove_contact(app, account_id, email=ACCOUNTANT, acting_email=ACCOUNTANT)
    assert listed(app, account_id) == [(OWNER, "owner")]
    with pytest.raises(NotFound):
        approve_contact(app, account_id, email=ACCOUNTANT, acting_email=OWNER)
    request_contact(app, account_id, email=ACCOUNTANT, requested_by=ACCOUNTANT)
    approve_contact(app, account_id, email=ACCOUNTANT, acting_email=OWNER)
    assert recipients(app, account_id) == [OWNER, ACCOUNTANT]
    with app.engine.connect() as conn:
        history = conn.execute(select(billing_contacts.c.status).order_by(billing_contacts.c.id)).scalars().all()
    assert history == ["removed", "active"]


def test_r4_2_the_list_shows_the_owner_first_then_active_then_requested(app):
    account_id = acme_with_admin(app)
    request_contact(app, account_id, email="later@acme.test", requested_by=ADMIN)
    approved(app, account_id, ACCOUNTANT)
    request_contact(app, account_id, email="refused@acme.test", requested_by=ADMIN)
    refuse_contact(app, account_id, email="refused@acme.test", acting_email=OWNER)
    rows = list_contacts(app, account_id)
    assert [(r["email"], r["status"], r["owner"], r["requested_by"]) for r in rows] == [
        (OWNER, "active", True, None), (ACCOUNTANT, "active", False, ADMIN),
        ("later@acme.test", "requested", False, ADMIN)]


# -- R4.1, R4.2 through support: the seed's e-mails to support, the owner in CC --------------------------

STAFF = "console:staff-7"  # as the console names its staff member (web/console/routes.py)
EVIDENCE = "owner's e-mail of 27 Nov, ticket 4821"


def trail(app) -> list[tuple]:
    with app.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(
            select(audit_log.c.actor, audit_log.c.action, audit_log.c.reason, audit_log.c.details)
            .where(audit_log.c.action.like("billing_contact.%")).order_by(audit_log.c.id))]


def test_r4_1_support_records_the_owner_s_consent_to_a_waiting_request_and_tells_the_owner(app):
    account_id = acme_with_admin(app)
    request_contact(app, account_id, email=ACCOUNTANT, requested_by=ADMIN)
    record_owner_consent(app, account_id, email="Books@Accountants.test", actor=STAFF, evidence=f"  {EVIDENCE} ")
    assert recipients(app, account_id) == [OWNER, ACCOUNTANT]
    assert listed(app, account_id) == [(OWNER, "owner"), (ACCOUNTANT, "active")]
    assert trail(app)[1:] == [
        (STAFF, "billing_contact.consent_recorded", EVIDENCE,
         {"email": ACCOUNTANT, "evidence": EVIDENCE, "requested_by": ADMIN, "was": "requested"}),
        (STAFF, "billing_contact.added", "", {"email": ACCOUNTANT})]
    assert events(app, "billing_contact.added") == [{"account_id": account_id, "email": ACCOUNTANT}]
    [welcome] = emails(app, "contact_added")
    assert welcome["recipients"] == [ACCOUNTANT] and welcome["contacts"] == {ACCOUNTANT: contact_row(app)}
    # The owner learns what support did on its behalf, the evidence quoted, and how to undo it.
    [told] = emails(app, "contact_consent_recorded")
    assert (told["recipients"], told["locale"], told["contact"]) == ([OWNER], "en", ACCOUNTANT)
    assert told["subject"] == f"Support added {ACCOUNTANT} to Acme's billing contacts with your consent"
    assert f"At the request of {ADMIN}, support added {ACCOUNTANT}" in told["body"]
    assert f"Your consent, as support recorded it: {EVIDENCE}" in told["body"]
    assert "remove" in told["body"] and EVIDENCE in unescape(told["html"])
    assert not told.get("contacts")  # the owner's message has no removal link


def contact_row(app) -> int:
    with app.engine.connect() as conn:
        return conn.execute(select(billing_contacts.c.id).where(billing_contacts.c.email == ACCOUNTANT,
                                                                billing_contacts.c.status == "active")).scalar_one()


def test_r4_1_support_records_the_owner_s_consent_for_an_address_that_asked_support_only(app):
    account_id = customer(app)
    record_owner_consent(app, account_id, email=ACCOUNTANT, actor=STAFF, evidence=EVIDENCE)
    assert recipients(app, account_id) == [OWNER, ACCOUNTANT]
    with app.engine.connect() as conn:
        row = conn.execute(select(billing_contacts.c.status, billing_contacts.c.requested_by)).one()
    assert tuple(row) == ("active", ACCOUNTANT)  # it asked support itself
    assert trail(app)[0][1:] == ("billing_contact.consent_recorded", EVIDENCE,
                                 {"email": ACCOUNTANT, "evidence": EVIDENCE, "requested_by": ACCOUNTANT, "was": None})
    assert emails(app, "contact_request") == []  # the owner consented already: nothing to approve
    assert [e["recipients"] for e in emails(app)] == [[ACCOUNTANT], [OWNER]]
    [told] = emails(app, "contact_consent_recorded")
    assert f"At the request of {ACCOUNTANT}, support added {ACCOUNTANT}" in told["body"]


def test_r4_1_the_owner_is_told_of_a_recorded_consent_in_the_account_s_language(app):
    account_id = acme_with_admin(app, locale="fr")
    record_owner_consent(app, account_id, email=ACCOUNTANT, actor=STAFF, evidence="ticket 4821")
    [told] = emails(app, "contact_consent_recorded")
    assert told["locale"] == "fr"
    assert told["subject"] == f"Le support a ajouté {ACCOUNTANT} aux contacts de facturation de Acme avec votre accord"
    assert "Votre accord, tel que le support l'a enregistré : ticket 4821" in told["body"]


@pytest.mark.parametrize(("email", "evidence", "code"), [
    (OWNER, EVIDENCE, "contact_is_owner"),
    (ACCOUNTANT, EVIDENCE, "contact_exists"),  # approved already
    ("not-an-email", EVIDENCE, "invalid_email"),
    ("new@acme.test", "", "evidence_required"),
    ("new@acme.test", "   ", "evidence_required"),
    ("new@acme.test", "x" * 2001, "text_too_long"),  # as a reactivation's reason
    ("new@acme.test", "ticket\x1b[2J 4821", "invalid_text"),
])
def test_r4_1_a_consent_for_the_owner_an_active_contact_or_without_evidence_is_refused(app, email, evidence, code):
    account_id = acme_with_admin(app)
    approved(app, account_id, ACCOUNTANT)
    before = everything(app)
    with pytest.raises((Conflict, InvalidInput)) as refused:
        record_owner_consent(app, account_id, email=email, actor=STAFF, evidence=evidence)
    assert refused.value.code == code
    assert everything(app) == before


def test_r4_2_support_removes_a_contact_at_its_request_which_is_told(app):
    account_id = acme_with_admin(app)
    approved(app, account_id, ACCOUNTANT, "cfo@acme.test")
    remove_contact_on_request(app, account_id, email=ACCOUNTANT, actor=STAFF, evidence="its e-mail, ticket 4822")
    assert recipients(app, account_id) == [OWNER, "cfo@acme.test"]
    assert events(app, "billing_contact.removed") == [{"account_id": account_id, "email": ACCOUNTANT}]
    assert trail(app)[-1] == (STAFF, "billing_contact.removed", "its e-mail, ticket 4822",
                              {"email": ACCOUNTANT, "was": "active", "evidence": "its e-mail, ticket 4822",
                               "at_request_of": ACCOUNTANT})
    [told] = emails(app, "contact_removed")
    assert told["recipients"] == [ACCOUNTANT]
    assert f"As you asked, {ACCOUNTANT} was removed from Acme's billing contacts" in told["body"]
    assert f"As you asked, {ACCOUNTANT} was removed" in told["html"]


def test_r4_2_support_withdraws_a_waiting_request_at_its_request_and_no_one_is_e_mailed(app):
    account_id = acme_with_admin(app)
    request_contact(app, account_id, email=ACCOUNTANT, requested_by=ACCOUNTANT)
    remove_contact_on_request(app, account_id, email=ACCOUNTANT, actor=STAFF, evidence="ticket 4823")
    assert listed(app, account_id) == [(OWNER, "owner")]
    assert emails(app, "contact_removed") == [] and events(app, "billing_contact.removed") == []
    assert trail(app)[-1][:3] == (STAFF, "billing_contact.removed", "ticket 4823")


@pytest.mark.parametrize(("email", "evidence", "code"), [
    (OWNER, EVIDENCE, "owner_is_contact"),
    ("stranger@acme.test", EVIDENCE, "unknown_contact"),
    (ACCOUNTANT, " ", "evidence_required"),
])
def test_r4_2_support_never_removes_the_owner_nor_without_evidence(app, email, evidence, code):
    account_id = acme_with_admin(app)
    approved(app, account_id, ACCOUNTANT)
    before = everything(app)
    with pytest.raises((NotAllowed, NotFound, InvalidInput)) as refused:
        remove_contact_on_request(app, account_id, email=email, actor=STAFF, evidence=evidence)
    assert refused.value.code == code
    assert everything(app) == before


# -- R4.3 billing e-mails go to the owner and every active contact ------------------------------------------

def test_r4_3_addressees_are_the_owner_and_the_active_contacts_only(app):
    account_id = acme_with_admin(app)
    other_id = customer(app, name="Other", owner="boss@other.test")
    approved(app, account_id, ACCOUNTANT, "cfo@acme.test")
    request_contact(app, account_id, email="waiting@acme.test", requested_by=ADMIN)
    request_contact(app, account_id, email="refused@acme.test", requested_by=ADMIN)
    refuse_contact(app, account_id, email="refused@acme.test", acting_email=OWNER)
    remove_contact(app, account_id, email="cfo@acme.test", acting_email="cfo@acme.test")
    with app.engine.connect() as conn:
        found = addressees(conn, [account_id, other_id])
        accountant_row = conn.execute(select(billing_contacts.c.id).where(
            billing_contacts.c.email == ACCOUNTANT)).scalar_one()
    assert {account: them.emails for account, them in found.items()} == {
        account_id: [OWNER, ACCOUNTANT], other_id: ["boss@other.test"]}
    assert found[account_id].contacts == {ACCOUNTANT: accountant_row}  # their removal link's row; not the owner's


def test_r4_3_a_payment_failure_email_goes_to_the_owner_and_every_approved_contact(app):
    account_id, _ = subscribed(app, card="4000000000000341")  # saved, but every charge is declined
    add_member(app, account_id, email=ADMIN, role="admin", actor=OPERATOR)
    approved(app, account_id, ACCOUNTANT)
    request_contact(app, account_id, email="waiting@acme.test", requested_by=ADMIN)
    advance(app, timedelta(hours=2))  # the payment batch is declined, dunning takes day 0
    [failure] = emails(app, "payment_failed_1")
    assert failure["recipients"] == [OWNER, ACCOUNTANT]


def test_r4_3_the_payment_confirmation_goes_to_every_contact_too(app):
    account_id, _ = subscribed(app, card="4000000000000341")
    approved(app, account_id, ACCOUNTANT)
    advance(app, timedelta(hours=2))
    remove_contact(app, account_id, email=ACCOUNTANT, acting_email=ACCOUNTANT)
    approved(app, account_id, "cfo@acme.test")
    with_card(app, account_id)  # a good card: the next payment batch retries and succeeds (R7.1)
    advance(app, timedelta(hours=2))
    [confirmation] = emails(app, "payment_confirmed")
    assert confirmation["recipients"] == [OWNER, "cfo@acme.test"]
