"""R10.1: after the deletion no table keeps anything personal of the account but what the law
keeps with its invoices (R10.2); its audit entries stay, its people in them as pseudonyms.

The scan reads every table the database and the simulated gateway's ledger hold, every text and
every string (and key) of every JSON value, for every personal value the account ever had."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, inspect, select, text

from renewly.accounts.accounts import add_member, remove_member, transfer_ownership, update_buyer_address
from renewly.accounts.contacts import approve_contact, refuse_contact, remove_contact, request_contact
from renewly.adapters.db.tables import audit_log, cards, gateway_customers, members, parked_rows, reactivations
from renewly.batches.parking import Subject, park, resolve
from renewly.billing.invoices import issue_credit_note, resend_invoices_of_month
from renewly.billing.subscriptions import create_subscription
from renewly.bootstrap import App
from renewly.dunning.reactivation import grant_reactivation
from renewly.retention.deletion import purge_due
from renewly.scheduler import advance
from tests.builders import OPERATOR, customer, subscribed, team_plan, with_card

CANCELLED_AT = datetime(2026, 1, 30, tzinfo=UTC)  # day 29 of the unpaid invoice of 1 January 2026
DELETION_DUE = CANCELLED_AT + timedelta(days=90)
SUPPORT = "support:alice"
CHARGES_DECLINED = "4000000000000341"  # saves fine, every charge declined: the account goes to deletion

# Everything the doomed account ever had, by what it is.
PEOPLE = {
    "owner": "jeanne@dupont-plomberie.test",
    "admin, then owner": "marc@dupont-plomberie.test",
    "agent, removed": "lea@dupont-plomberie.test",
    "contact": "compta@dupont-plomberie.test",
    "who asked for the contacts": "cabinet@expert-comptable.test",
    "contact refused": "refus@dupont-plomberie.test",
    "contact who left": "ancien@dupont-plomberie.test",
}
NAME = "Dupont Plomberie"
ADDRESS = {"line1": "12 rue des Lilas", "line2": "Bâtiment Ø", "postcode": "69100", "city": "Villeurbanne",
           "vat_id": "FR40123456824"}
MOVED = {"name": "Dupont & Fils SARL", "line1": "3 impasse Müller", "city": "Vaulx-en-Velin"}
LAST4 = CHARGES_DECLINED[-4:]
CONTROL_OWNER = "boss@paying.test"

# What may stay, where, and why. Nothing else may.
KEPT = {
    ("invoices", "buyer", "account name"): "an issued invoice keeps its buyer during the legal retention (R10.2)",
    ("invoices", "buyer", "line1"): "the same",
    ("invoices", "buyer", "line2"): "the same",
    ("invoices", "buyer", "postcode"): "the same",
    ("invoices", "buyer", "city"): "the same",
    ("invoices", "buyer", "vat_id"): "the same",
    ("invoice_lines", "description", "owner"): "the credit note's line says what support wrote as its reason: "
                                               "an issued document never changes (R2.4) and is kept (R10.2)",
    ("sim_customers", "id", "gateway customer"): "the gateway keeps the deleted customer's id as a tombstone, "
                                                 "without its e-mail (as Stripe does)",
    ("sim_operations", "customer", "gateway customer"): "the gateway's own record of its charges",
    ("sim_operations", "card", "card token"): "the gateway's own record of its charges; the card itself is gone",
}


def doomed_account(app: App, plan: str | None = None) -> int:
    """A customer who does everything once, then never pays: support steps in, writes its people
    into reasons, then the account is cancelled and deleted."""
    owner, admin, agent = PEOPLE["owner"], PEOPLE["admin, then owner"], PEOPLE["agent, removed"]
    account_id = customer(app, name=NAME, owner=owner, country="FR")
    update_buyer_address(app, account_id, changes=ADDRESS, acting_email=owner, actor=OPERATOR)
    add_member(app, account_id, email=admin, role="admin", actor=OPERATOR)
    add_member(app, account_id, email=agent, role="agent", actor=OPERATOR)
    request_contact(app, account_id, email=PEOPLE["contact"], requested_by=PEOPLE["who asked for the contacts"])
    approve_contact(app, account_id, email=PEOPLE["contact"], acting_email=owner)
    request_contact(app, account_id, email=PEOPLE["contact refused"], requested_by=PEOPLE["who asked for the contacts"])
    refuse_contact(app, account_id, email=PEOPLE["contact refused"], acting_email=owner)
    request_contact(app, account_id, email=PEOPLE["contact who left"], requested_by=owner)
    remove_contact(app, account_id, email=PEOPLE["contact who left"], acting_email=PEOPLE["contact who left"])
    with_card(app, account_id, CHARGES_DECLINED, owner=owner)
    subscription_id = create_subscription(app, account_id, plan_code=plan or team_plan(app), seats=3, actor=OPERATOR)
    remove_member(app, account_id, email=agent, actor=OPERATOR)
    update_buyer_address(app, account_id, changes=MOVED, acting_email=owner, actor=OPERATOR)
    transfer_ownership(app, account_id, to_email=admin, actor=SUPPORT,
                       reason=f"{owner.upper()} left {NAME}; {admin} takes over (ticket from {PEOPLE['contact']})")
    resend_invoices_of_month(app, account_id, year=2026, month=1, actor=SUPPORT,
                             reason=f"{PEOPLE['contact']} lost it; sent to {ADDRESS['line1']}")
    issue_credit_note(app, "2026-000001", amount=100, actor=SUPPORT, reason=f"goodwill, asked by {owner}")
    # A row a batch left aside, its reason an error message naming someone, put back by support.
    park(app, "renewals", "subscription", Subject(subscription_id, account_id),
         f"IntegrityError: Key (email)=({PEOPLE['contact']}) already exists", app.clock.now())
    [problem] = [row.id for row in rows(app, parked_rows)]
    resolve(app, problem, actor=SUPPORT, note=f"checked with {admin}, card ending {LAST4}")
    advance(app, CANCELLED_AT + timedelta(days=3) - app.clock.now())
    grant_reactivation(app, account_id, days=2, actor=SUPPORT, reason=f"{owner} called for {NAME}")
    return account_id


def rows(app: App, table, *where) -> list:
    with app.engine.connect() as conn:
        return conn.execute(select(table).where(*where).order_by(*table.primary_key.columns)).all()


def personal_values(app: App, account_id: int) -> dict[str, str]:
    """Every personal value the account has had, by label: people, names, both addresses, the card,
    the gateway's customer."""
    [card] = rows(app, cards, cards.c.account_id == account_id)
    [gateway] = rows(app, gateway_customers, gateway_customers.c.account_id == account_id)
    return {**PEOPLE, "account name": NAME, **ADDRESS, **{f"moved {key}": value for key, value in MOVED.items()},
            "card last4": LAST4, "card token": card.token, "gateway customer": gateway.customer}


def every_text(engine: Engine) -> Iterator[tuple[str, str, str]]:
    """(table, column, text) for every text, JSON string and JSON key of every table there is."""
    with engine.connect() as conn:
        for table in inspect(engine).get_table_names():
            for row in conn.execute(text(f'SELECT * FROM "{table}"')):
                for column, value in row._mapping.items():
                    for found in _texts(value):
                        yield table, column, found


def _texts(value) -> Iterator[str]:
    if isinstance(value, str) and value[:1] in "{[":
        try:  # SQLite keeps JSON as text, with \u escapes: read it as JSON
            value = json.loads(value)
        except ValueError:
            pass
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield key
            yield from _texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from _texts(item)


def _mentions(found: str, value: str) -> bool:
    if value.isdigit():  # a postcode, the last four digits: as a whole word, not inside a random token
        return any(word == value for word in "".join(c if c.isalnum() else " " for c in found).split())
    return value.lower() in found.lower()


def where_found(app: App, values: dict[str, str]) -> set[tuple[str, str, str]]:
    """(table, column, label) of every place, in Renewly's database and in the gateway's ledger,
    that still holds one of `values`."""
    return {(table, column, label)
            for engine in (app.engine, app.gateway._engine)
            for table, column, found in every_text(engine)
            for label, value in values.items() if _mentions(found, value)}


def test_r10_1_after_the_deletion_nothing_personal_stays_anywhere_but_with_the_invoices(app):
    account_id = doomed_account(app)
    values = personal_values(app, account_id)
    before = where_found(app, values)
    # The scan sees them all, in the audit log too, before.
    assert {label for table, _, label in before if table == "audit_log"} >= set(PEOPLE) | {"account name", "line1"}
    assert {table for table, _, _ in before} >= {"members", "billing_contacts", "accounts", "cards", "outbox",
                                                  "reactivations", "parked_rows", "sim_customers", "gateway_customers"}

    advance(app, DELETION_DUE - app.clock.now())

    found = where_found(app, values)
    assert {place: "not allowed to stay" for place in found if place not in KEPT} == {}
    assert {("invoices", "buyer", "account name"), ("sim_operations", "card", "card token")} <= found


def test_r10_1_the_audit_entries_stay_with_one_pseudonym_per_person_and_staff_named(app):
    account_id = doomed_account(app)
    values = personal_values(app, account_id)
    before = {row.id: row for row in rows(app, audit_log)}
    personal = {i for i, row in before.items() if any(_mentions(found, value) for value in values.values()
                                                     for found in [row.actor, row.reason, *_texts(row.details)])}
    advance(app, DELETION_DUE - app.clock.now())
    after = {row.id: row for row in rows(app, audit_log)}

    # Nothing went, nothing moved: who did what, when, to what.
    assert {i: (r.at, r.action, r.target_type, r.target_id) for i, r in before.items()} == \
           {i: (r.at, r.action, r.target_type, r.target_id) for i, r in after.items() if i in before}
    by_action = {}
    for row in after.values():
        by_action.setdefault(row.action, []).append(row)
    owner = by_action["account.created"][0].details["owner"]
    [transfer] = by_action["ownership.transferred"]
    [card] = by_action["card.updated"]
    assert owner.startswith(f"account-{account_id}/person-")
    assert transfer.details["from"] == card.actor == owner
    assert transfer.details["to"] == by_action["member.added"][0].details["email"] != owner
    assert (transfer.actor, by_action["account.created"][0].actor) == (SUPPORT, OPERATOR)  # staff, as named
    assert transfer.reason == (f"{owner} left [deleted]; {transfer.details['to']} takes over "
                               f"(ticket from {by_action['billing_contact.added'][0].details['email']})")
    assert card.details["last4"] == ""
    [requested, refused_request] = by_action["billing_contact.requested"]
    assert requested.actor == refused_request.actor not in (owner, transfer.details["to"])
    [deletion] = by_action["account.personal_data_deleted"]
    assert {i for i in before if before[i] != after[i]} == personal
    assert deletion.details["audit_entries_pseudonymised"] == len(personal)
    [window] = rows(app, reactivations)
    assert (window.granted_by, window.reason) == (SUPPORT, f"{owner} called for [deleted]")
    [parked] = rows(app, parked_rows)
    contact = by_action["billing_contact.added"][0].details["email"]
    assert (parked.resolved_by, parked.reason) == (SUPPORT, f"IntegrityError: Key (email)=({contact}) already exists")


def test_r10_1_another_account_keeps_its_people_even_one_it_shares_with_the_deleted_one(app):
    shared = PEOPLE["contact"]
    paying, _ = subscribed(app, name="Paying Co", owner=CONTROL_OWNER, plan=team_plan(app))
    add_member(app, paying, email=shared, role="admin", actor=OPERATOR)
    doomed = doomed_account(app, plan="team")

    def about(account_id: int) -> list:
        return rows(app, audit_log, audit_log.c.target_type == "account", audit_log.c.target_id == str(account_id))

    paying_before = about(paying)
    advance(app, DELETION_DUE - app.clock.now())

    assert {row.email for row in rows(app, members, members.c.account_id == paying)} == {CONTROL_OWNER, shared}
    assert about(paying) == paying_before
    assert {"email": shared, "role": "admin"} in [row.details for row in paying_before]
    assert shared not in json.dumps([[row.actor, row.reason, row.details] for row in about(doomed)])


def test_r10_1_accounts_deleted_in_one_slice_each_get_their_own_pseudonyms(app):
    plan = team_plan(app)
    ids = [subscribed(app, card=None, name=f"Shop {n}", owner=f"owner{n}@shop.test", plan=plan)[0] for n in range(5)]
    for n, account_id in enumerate(ids):
        add_member(app, account_id, email=f"admin{n}@shop.test", role="admin", actor=OPERATOR)
    advance(app, CANCELLED_AT - app.clock.now())
    advance(app, DELETION_DUE - app.clock.now(), run_batches=False)
    assert purge_due(app, app.clock.now(), slice_size=2).accounts_deleted == len(ids)

    for account_id in ids:
        about = rows(app, audit_log, audit_log.c.target_type == "account", audit_log.c.target_id == str(account_id))
        assert [row.details for row in about if row.action in ("account.created", "member.added")] == [
            {"owner": f"account-{account_id}/person-1"}, {"email": f"account-{account_id}/person-2", "role": "admin"}]
    assert where_found(app, {"the shops' people": "@shop.test"}) == set()
