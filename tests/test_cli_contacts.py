"""`renewly contacts ...` (R4): the command shapes, and every refusal as one line on stderr, exit 2,
nothing changed."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from renewly.accounts.accounts import add_member
from renewly.adapters.db.tables import accounts, outbox
from tests.builders import OPERATOR, Outcome, customer, database_rows

OWNER = "owner@acme.test"
ADMIN = "admin@acme.test"
ACCOUNTANT = "books@accountants.test"


def database(app) -> dict[str, list]:
    return database_rows(app)


@pytest.fixture
def acme(app) -> str:
    account_id = customer(app)
    add_member(app, account_id, email=ADMIN, role="admin", actor=OPERATOR)
    return str(account_id)


def test_r4_1_request_then_the_owners_approval_through_the_command_line(app, renewly, acme):
    assert renewly("contacts", "request", acme, "--email", ACCOUNTANT, "--by", ADMIN) == Outcome(
        0, f"account {acme}: {ACCOUNTANT} requested; waiting for the owner's consent\n", "")
    listed = renewly("contacts", "list", acme, "--json")
    assert [(r["email"], r["status"], r["owner"]) for r in listed.json()] == [
        (OWNER, "active", True), (ACCOUNTANT, "requested", False)]
    assert renewly("contacts", "approve", acme, "--email", ACCOUNTANT, "--as", OWNER) == Outcome(
        0, f"account {acme}: {ACCOUNTANT} is now a billing contact\n", "")
    assert [(r["email"], r["status"]) for r in renewly("contacts", "list", acme, "--json").json()] == [
        (OWNER, "active"), (ACCOUNTANT, "active")]
    table = renewly("contacts", "list", acme)
    assert table.code == 0 and "owner" in table.out and ACCOUNTANT in table.out
    with app.engine.connect() as conn:
        kinds = [p["kind"] for p in conn.execute(select(outbox.c.payload).where(outbox.c.topic == "email")
                                                 .order_by(outbox.c.id)).scalars()]
    assert kinds == ["contact_request", "contact_added"]


def test_r4_1_the_owner_refuses_through_the_command_line(app, renewly, acme):
    renewly("contacts", "request", acme, "--email", ACCOUNTANT, "--by", ADMIN)
    assert renewly("contacts", "refuse", acme, "--email", ACCOUNTANT, "--as", OWNER) == Outcome(
        0, f"account {acme}: the request for {ACCOUNTANT} was refused\n", "")
    assert [r["email"] for r in renewly("contacts", "list", acme, "--json").json()] == [OWNER]


def test_r4_2_removal_of_oneself_and_by_the_owner_through_the_command_line(app, renewly, acme):
    for address in (ACCOUNTANT, "cfo@acme.test"):
        renewly("contacts", "request", acme, "--email", address, "--by", ADMIN)
        renewly("contacts", "approve", acme, "--email", address, "--as", OWNER)
    assert renewly("contacts", "remove", acme, "--email", ACCOUNTANT, "--as", ACCOUNTANT) == Outcome(
        0, f"account {acme}: {ACCOUNTANT} is no longer a billing contact\n", "")
    assert renewly("contacts", "remove", acme, "--email", "cfo@acme.test", "--as", OWNER).code == 0
    assert [r["email"] for r in renewly("contacts", "list", acme, "--json").json()] == [OWNER]


REFUSALS = {
    "not an e-mail": (["request", "{acme}", "--email", "not-an-email", "--by", ADMIN], "is not an e-mail address"),
    "duplicate request": (["request", "{acme}", "--email", "pending@acme.test", "--by", ADMIN], "already requested"),
    "the owner as a contact": (["request", "{acme}", "--email", OWNER, "--by", ADMIN], "always receives"),
    "unknown request": (["approve", "{acme}", "--email", ACCOUNTANT, "--as", OWNER], "no pending"),
    "approval by a non-owner": (["approve", "{acme}", "--email", "pending@acme.test", "--as", ADMIN],
                                f"only the account owner ({OWNER})"),
    "refusal by a non-owner": (["refuse", "{acme}", "--email", "pending@acme.test", "--as", ADMIN],
                               f"only the account owner ({OWNER})"),
    "removing the owner": (["remove", "{acme}", "--email", OWNER, "--as", OWNER], "cannot be removed"),
    "removing someone else": (["remove", "{acme}", "--email", "pending@acme.test", "--as", ADMIN],
                              f"or the account owner ({OWNER})"),
    "unknown account": (["request", "999", "--email", ACCOUNTANT, "--by", ADMIN], "no account 999"),
    "missing --by": (["request", "{acme}", "--email", ACCOUNTANT], "--by"),
}


@pytest.mark.parametrize("case", REFUSALS, ids=list(REFUSALS))
def test_r4_1_bad_requests_are_one_line_on_stderr_exit_2_and_change_nothing(app, renewly, acme, case):
    assert renewly("contacts", "request", acme, "--email", "pending@acme.test", "--by", ADMIN).code == 0
    args, reason = REFUSALS[case]
    before = database(app)
    refused = renewly("contacts", *[arg.format(acme=acme) for arg in args])
    assert (refused.code, refused.out) == (2, "")
    assert refused.err.startswith("error: ") and refused.err.count("\n") == 1 and reason in refused.err
    assert database(app) == before


def test_r4_1_a_deleted_account_refuses_contact_commands(app, renewly, acme):
    with app.engine.begin() as conn:  # as the deletion batch (R10) leaves it
        conn.execute(accounts.update().where(accounts.c.id == int(acme)).values(status="deleted"))
    before = database(app)
    for args in (["request", acme, "--email", ACCOUNTANT, "--by", ADMIN], ["list", acme],
                 ["remove", acme, "--email", ACCOUNTANT, "--as", ACCOUNTANT]):
        refused = renewly("contacts", *args)
        assert (refused.code, refused.out) == (2, "") and "was deleted" in refused.err
    assert database(app) == before


def test_r4_1_billing_show_lists_a_request_waiting_for_the_owner_apart_from_the_contacts(app, renewly, acme):
    renewly("contacts", "request", acme, "--email", ACCOUNTANT, "--by", ADMIN)
    shown = renewly("billing", "show", acme, "--as", OWNER).out
    assert f"billing contacts: {OWNER}" in shown.splitlines()  # the request is not among them
    assert f"waiting for your consent: {ACCOUNTANT} (asked by {ADMIN} on 2026-" in " ".join(shown.split())
    assert max(len(line) for line in shown.splitlines()) <= 80
    renewly("contacts", "approve", acme, "--email", ACCOUNTANT, "--as", OWNER)
    shown = renewly("billing", "show", acme, "--as", OWNER).out.splitlines()
    assert f"billing contacts: {OWNER}, {ACCOUNTANT}" in shown
    assert not any(line.startswith("waiting for your consent") for line in shown)
