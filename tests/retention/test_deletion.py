"""R10: 90 days after cancellation the account's personal data goes and it can never come back;
invoices stay for the legal retention, then go too; the host product is told."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from renewly.accounts.accounts import add_member, update_buyer_address
from renewly.accounts.contacts import request_contact
from renewly.adapters.db.tables import (
    accounts,
    audit_log,
    billing_contacts,
    card_verifications,
    cards,
    dunning_cases,
    gateway_customers,
    invoice_lines,
    invoices,
    members,
    metadata,
    outbox,
    payment_attempts,
    reactivations,
    subscriptions,
)
from renewly.adapters.gateways.simulated import sim_cards, sim_customers
from renewly.billing.invoices import issue_credit_note
from renewly.billing.subscriptions import create_subscription
from renewly.bootstrap import App
from renewly.dunning.reactivation import grant_reactivation
from renewly.payments.rules.charges import Outcome
from renewly.retention.deletion import purge_due
from renewly.scheduler import advance
from renewly.shared.errors import NotAllowed
from tests.builders import OPERATOR, customer, subscribed, team_plan, with_card
from tests.builders import Outcome as CliOutcome

OWNER = "jeanne@dupont-plomberie.test"
ADMIN = "marc@dupont-plomberie.test"
CONTACT = "compta@dupont-plomberie.test"
NAME = "Dupont Plomberie"
LINE1 = "12 rue des Lilas"
CITY = "Villeurbanne"
PERSONAL = (OWNER, ADMIN, CONTACT, NAME, LINE1, CITY)
CHARGES_DECLINED = "4000000000000341"  # the card saves fine; every charge is declined
SUPPORT = "support@renewly.test"

CANCELLED_AT = datetime(2026, 1, 30, tzinfo=UTC)  # day 29 of the invoice of 1 January 2026
DELETION_DUE = CANCELLED_AT + timedelta(days=90)  # 30 April 2026
# The invoice of 1 January 2026 is kept ten years: until 1 January 2036 in the seller's Paris.
RETENTION_ENDS = datetime(2035, 12, 31, 23, tzinfo=UTC)



def unpaid_account(app: App) -> int:
    """A customer whose renewal is never paid: a team, a billing contact, an address, a card."""
    account_id = customer(app, name=NAME, owner=OWNER, country="FR")
    update_buyer_address(app, account_id, changes={"line1": LINE1, "postcode": "69100", "city": CITY},
                         acting_email=OWNER, actor=OPERATOR)
    add_member(app, account_id, email=ADMIN, role="admin", actor=OPERATOR)
    request_contact(app, account_id, email=CONTACT, requested_by=OWNER)
    with_card(app, account_id, CHARGES_DECLINED, owner=OWNER)
    create_subscription(app, account_id, plan_code=team_plan(app), seats=3, actor=OPERATOR)
    return account_id


def cancelled_account(app: App) -> int:
    account_id = unpaid_account(app)
    advance(app, CANCELLED_AT - app.clock.now())  # day 29: cancelled
    assert account(app, account_id).status == "cancelled"
    return account_id


def deleted_account(app: App) -> int:
    account_id = cancelled_account(app)
    advance(app, DELETION_DUE - app.clock.now())
    assert account(app, account_id).status == "deleted"
    return account_id


def account(app: App, account_id: int):
    with app.engine.connect() as conn:
        return conn.execute(select(accounts).where(accounts.c.id == account_id)).one()


def rows(app: App, table, *where) -> list:
    with app.engine.connect() as conn:
        return conn.execute(select(table).where(*where)).all()


def count(app: App, table, *where) -> int:
    with app.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one()


def personal_data_found(app: App) -> dict[str, set[str]]:
    """Every table, every column as text: which tables still mention whom (the audit log too: its
    entries name a deleted account's people by pseudonyms; every table and JSON value, with the
    gateway's ledger: test_audit_pseudonyms.py)."""
    found: dict[str, set[str]] = {}
    with app.engine.connect() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(select(table)):
                text = " ".join(str(value) for value in row)
                for needle in PERSONAL:
                    if needle in text:
                        found.setdefault(table.name, set()).add(needle)
    return found


def deletion_audits(app: App) -> list:
    return rows(app, audit_log, audit_log.c.action == "account.personal_data_deleted")


def test_r10_1_ninety_days_after_cancellation_the_personal_data_is_gone(app):
    account_id = cancelled_account(app)
    cancelled = account(app, account_id)
    assert (cancelled.cancelled_at, cancelled.deletion_due_at) == (CANCELLED_AT, DELETION_DUE)
    assert {"members", "billing_contacts", "accounts", "cards", "outbox", "audit_log"} <= set(personal_data_found(app))

    advance(app, DELETION_DUE - timedelta(hours=1) - app.clock.now())
    assert account(app, account_id).status == "cancelled"  # not one hour early
    advance(app, timedelta(hours=1))

    deleted = account(app, account_id)
    assert (deleted.status, deleted.deleted_at, deleted.deletion_due_at) == ("deleted", DELETION_DUE, DELETION_DUE)
    assert deleted.name == f"account {account_id} (deleted)"
    assert (deleted.buyer_name, deleted.buyer_line1, deleted.buyer_line2, deleted.buyer_postcode, deleted.buyer_city,
            deleted.buyer_country, deleted.buyer_vat_id) == ("deleted account", "", "", "", "", "", "")
    assert count(app, members, members.c.account_id == account_id) == 0
    assert count(app, billing_contacts, billing_contacts.c.account_id == account_id) == 0
    # The issued invoice keeps its buyer (R10.2); nothing else anywhere names anyone.
    assert personal_data_found(app) == {"invoices": {NAME, LINE1, CITY}}


def test_r10_1_the_deletion_is_audited_with_counts_only(app):
    account_id = deleted_account(app)
    [row] = deletion_audits(app)
    assert (row.actor, row.target_type, row.target_id) == ("system:retention", "account", str(account_id))
    assert row.details["members"] == 2 and row.details["billing_contacts"] == 1
    assert row.details["cards"] == 1 and row.details["gateway_customers"] == 1
    assert row.details["dunning_cases_written_off"] == 1 and row.details["subscriptions_cancelled"] == 1
    assert all(isinstance(value, int) for value in row.details.values())
    assert not [needle for needle in PERSONAL if needle in f"{row.reason} {row.details}"]


def test_r10_1_the_gateway_no_longer_knows_the_customer_nor_its_cards(app):
    account_id = cancelled_account(app)
    [customer_id] = [row.customer for row in rows(app, gateway_customers)]
    [card] = rows(app, cards, cards.c.account_id == account_id)
    assert app.gateway.authorize(customer_id, card.token, 100, "USD", "before-deletion").outcome == Outcome.SUCCEEDED

    advance(app, DELETION_DUE - app.clock.now())

    assert rows(app, gateway_customers) == []
    assert app.gateway.authorize(customer_id, card.token, 100, "USD", "after-deletion").outcome == Outcome.DECLINED
    with app.gateway._engine.connect() as ledger:  # the simulated gateway's own records
        assert ledger.execute(select(sim_customers.c.deleted, sim_customers.c.email)).all() == [(1, "")]
        assert ledger.execute(select(sim_cards).where(sim_cards.c.customer == customer_id)).all() == []
    assert [(c.status, c.token, c.added_by) for c in rows(app, cards)] == [("deleted", "", "")]
    assert {v.card_token for v in rows(app, card_verifications)} == {""}


def test_r10_1_a_gateway_failure_leaves_the_account_whole_for_the_next_run(app, monkeypatch):
    account_id = cancelled_account(app)
    advance(app, DELETION_DUE - app.clock.now(), run_batches=False)

    def unavailable(customer_id: str) -> None:
        raise ConnectionError("gateway unavailable")

    with monkeypatch.context() as patched:
        patched.setattr(app.gateway, "delete_customer", unavailable)
        report = purge_due(app, app.clock.now())
    assert (report.accounts_deleted, report.gateway_failures) == (0, [account_id])
    assert account(app, account_id).status == "cancelled"
    assert count(app, members, members.c.account_id == account_id) == 2
    assert count(app, gateway_customers) == 1 and deletion_audits(app) == []

    report = purge_due(app, app.clock.now())
    assert (report.accounts_deleted, report.gateway_failures) == (1, [])
    assert account(app, account_id).status == "deleted"


def test_r10_1_a_reactivation_that_ended_unpaid_does_not_move_the_deletion_date(app):
    account_id = cancelled_account(app)
    advance(app, timedelta(days=10))
    grant_reactivation(app, account_id, days=7, reason="owner called, will update the card", actor=SUPPORT)
    advance(app, timedelta(days=8))
    [window] = rows(app, reactivations)
    assert window.outcome == "expired"
    assert (account(app, account_id).status, account(app, account_id).deletion_due_at) == ("cancelled", DELETION_DUE)

    advance(app, DELETION_DUE - timedelta(minutes=1) - app.clock.now())
    assert account(app, account_id).status == "cancelled"
    advance(app, timedelta(minutes=1))
    assert account(app, account_id).status == "deleted"


def test_r10_1_a_reactivation_still_running_is_closed_by_the_deletion(app):
    account_id = cancelled_account(app)
    advance(app, DELETION_DUE - timedelta(days=2) - app.clock.now())
    grant_reactivation(app, account_id, days=7, reason="last chance", actor=SUPPORT)
    advance(app, timedelta(days=2))
    assert account(app, account_id).status == "deleted"
    [window] = rows(app, reactivations)
    assert (window.outcome, window.ended_at) == ("deleted", DELETION_DUE)


def test_r10_1_a_deleted_account_can_never_be_reactivated(app):
    account_id = deleted_account(app)
    with pytest.raises(NotAllowed) as refused:
        grant_reactivation(app, account_id, days=7, reason="the owner came back", actor=SUPPORT)
    assert refused.value.code == "account_deleted"
    assert rows(app, reactivations) == []
    advance(app, timedelta(days=60))
    assert account(app, account_id).status == "deleted"


def test_r10_1_a_deleted_account_is_billed_and_chased_no_more(app):
    account_id = deleted_account(app)
    assert {c.status for c in rows(app, dunning_cases)} == {"written_off"}
    assert {s.status for s in rows(app, subscriptions)} == {"cancelled"}
    attempts_then = count(app, payment_attempts)
    advance(app, timedelta(days=100))
    assert count(app, invoices, invoices.c.account_id == account_id) == 1
    assert count(app, payment_attempts) == attempts_then
    assert count(app, outbox, outbox.c.topic == "email") == 0


def test_r10_1_a_second_run_deletes_nothing_more(app):
    account_id = deleted_account(app)
    report = purge_due(app, app.clock.now())
    assert (report.accounts_deleted, report.invoices_purged) == (0, 0)
    assert len(deletion_audits(app)) == 1
    assert account(app, account_id).deleted_at == DELETION_DUE


def test_r10_1_an_active_account_and_one_cancelled_later_keep_their_data(app):
    doomed = cancelled_account(app)
    paying, _ = subscribed(app, name="Paying Co", owner="boss@paying.test", plan="team")
    advance(app, DELETION_DUE - app.clock.now())
    assert account(app, doomed).status == "deleted"
    assert account(app, paying).status == "active"
    assert count(app, members, members.c.account_id == paying) == 1


def test_r10_1_two_runs_at_once_delete_each_account_once(app):
    runners = 2
    plan = team_plan(app)
    ids = [subscribed(app, card=None, name=f"Shop {n}", owner=f"owner{n}@shop.test", plan=plan)[0]
           for n in range(6)]
    advance(app, CANCELLED_AT - app.clock.now())
    advance(app, DELETION_DUE - app.clock.now(), run_batches=False)
    barrier, reports = threading.Barrier(runners), []

    def run() -> None:
        barrier.wait()
        reports.append(purge_due(app, app.clock.now(), slice_size=1))

    threads = [threading.Thread(target=run) for _ in range(runners)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(report.accounts_deleted for report in reports) == len(ids)
    assert sorted(int(row.target_id) for row in deletion_audits(app)) == ids
    assert count(app, outbox, outbox.c.topic == "account.deleted") == len(ids)


def test_r10_2_invoices_are_kept_until_the_retention_ends_then_purged_and_audited(app):
    account_id = deleted_account(app)
    [invoice] = rows(app, invoices, invoices.c.account_id == account_id)
    assert (invoice.issue_date, invoice.number) == (date(2026, 1, 1), "2026-000001")

    advance(app, RETENTION_ENDS - timedelta(minutes=1) - app.clock.now(), run_batches=False)
    assert purge_due(app, app.clock.now()).invoices_purged == 0
    assert count(app, invoices) == 1 and count(app, invoice_lines) > 0

    advance(app, timedelta(minutes=1), run_batches=False)
    assert purge_due(app, app.clock.now()).invoices_purged == 1
    assert (count(app, invoices), count(app, invoice_lines), count(app, payment_attempts),
            count(app, dunning_cases)) == (0, 0, 0, 0)
    [purge] = rows(app, audit_log, audit_log.c.action == "invoices.purged")
    assert (purge.actor, purge.at) == ("system:retention", RETENTION_ENDS)
    assert (purge.details["count"], purge.details["first"], purge.details["last"]) == (1, "2026-000001", "2026-000001")
    assert not [needle for needle in PERSONAL if needle in f"{purge.target_id} {purge.reason} {purge.details}"]
    assert personal_data_found(app) == {}
    assert purge_due(app, app.clock.now()).invoices_purged == 0  # a second run: nothing left


def test_r10_2_advancing_the_clock_past_the_retention_runs_the_purge_by_itself(app):
    deleted_account(app)
    advance(app, RETENTION_ENDS - timedelta(hours=1) - app.clock.now())
    assert count(app, invoices) == 1
    advance(app, timedelta(hours=1))
    assert count(app, invoices) == 0


def test_r10_2_an_invoice_goes_with_its_later_credit_note(app):
    account_id, _ = subscribed(app)
    [invoice] = rows(app, invoices)
    advance(app, timedelta(days=400), run_batches=False)
    credit_note = issue_credit_note(app, invoice.number, reason="goodwill", amount=100, actor=OPERATOR)
    # The invoice's ten years are up, but its credit note (a year younger) still points at it.
    advance(app, RETENTION_ENDS + timedelta(days=1) - app.clock.now(), run_batches=False)
    assert purge_due(app, app.clock.now()).invoices_purged == 0
    advance(app, timedelta(days=500), run_batches=False)
    assert purge_due(app, app.clock.now()).invoices_purged == 2
    assert rows(app, invoices) == []
    purged = sorted(row.details["first"] for row in rows(app, audit_log, audit_log.c.action == "invoices.purged"))
    assert credit_note in purged and account(app, account_id).status == "active"


def test_r10_3_the_host_product_is_told_with_an_account_deleted_event(app):
    account_id = deleted_account(app)
    purge_due(app, app.clock.now())  # a second run tells it nothing twice
    [event] = rows(app, outbox, outbox.c.topic == "account.deleted")
    assert (event.account_id, event.payload, event.created_at, event.delivered_at) == (
        account_id, {"account_id": account_id}, DELETION_DUE, None)


def test_r10_3_the_account_deleted_event_takes_an_id_never_given_before(app):
    """The account's own events, the latest ones, go first: their ids are not given again (a
    webhook consumer that drops ids it has seen would drop the event)."""
    account_id = cancelled_account(app)
    advance(app, DELETION_DUE - timedelta(minutes=1) - app.clock.now())
    ever_given = max(row.id for row in rows(app, outbox))
    advance(app, timedelta(minutes=1))
    assert account(app, account_id).status == "deleted"
    [event] = rows(app, outbox, outbox.c.topic == "account.deleted")
    assert event.id > ever_given


def test_r10_1_the_retention_command_deletes_and_support_is_then_refused(app, renewly):
    account_id = cancelled_account(app)
    advance(app, DELETION_DUE - app.clock.now(), run_batches=False)
    before = renewly("retention", "--as-of", "2026-04-29", "--json")
    assert (before.code, before.json()) == (0, {"accounts_deleted": 0, "invoices_purged": 0, "sign_ins_purged": 0,
                                                  "gateway_failures": []})
    done = renewly("retention")
    assert done == CliOutcome(0, "1 account(s) deleted, 0 invoice(s) purged, 0 sign-in row(s) purged\n", "")
    refused = renewly("support", "reactivate", str(account_id), "--days", "7", "--reason", "came back")
    assert refused.code == 2 and refused.out == "" and "can never be reactivated" in refused.err
    assert len(refused.err.strip().splitlines()) == 1
    assert rows(app, reactivations) == []
