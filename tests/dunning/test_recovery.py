"""What customers are told, and when, as their charges are answered (R8, R8.6, R8.7, R7.1, R9, R10.1,
R11.1): a charging step attempts first and tells after; an answer that comes late is told when it
comes; one case per account, whatever number of invoices it chases; no cancellation without the
warning, and no charge after it; the daily cron of a new operator."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from renewly.accounts.accounts import require_access
from renewly.adapters.db.tables import (
    accounts,
    dunning_case_invoices,
    dunning_cases,
    outbox,
    payment_attempts,
    payment_retries,
)
from renewly.adapters.gateways.simulated import Fault
from renewly.billing.invoices import issue_credit_note, list_invoices
from renewly.billing.subscriptions import create_subscription
from renewly.dunning.preview import preview_account
from renewly.dunning.reactivation import banners_by_role, grant_reactivation
from renewly.scheduler import advance, run_all
from renewly.shared.calendar import local_date
from renewly.shared.errors import Conflict, NotAllowed
from tests.builders import OPERATOR, customer, database_rows, subscribed, team_plan, with_card

DECLINES = "4000000000000341"  # the card check passes, every charge is declined
GOOD_CARD = "4242424242424242"
OWNER = "owner@acme.test"
DAY0 = datetime(2026, 1, 1, tzinfo=UTC)


def to_day(app, day: int, hour: int = 12, *, batches: bool = True) -> None:
    advance(app, DAY0 + timedelta(days=day, hours=hour) - app.clock.now(), run_batches=batches)


def emails(app) -> list[dict]:
    with app.engine.connect() as conn:
        return [{**payload, "at": at} for at, payload in conn.execute(
            select(outbox.c.created_at, outbox.c.payload).where(outbox.c.topic == "email").order_by(outbox.c.id))
            if payload["kind"] != "invoice"]  # the dunning e-mails: not the invoices' (R4.3)


def kinds(app) -> list[str]:
    return [email["kind"] for email in emails(app)]


def attempts(app) -> list[tuple[int, str]]:
    """(day, status) of every charge attempt."""
    with app.engine.connect() as conn:
        return [((at - DAY0).days, status) for at, status in conn.execute(
            select(payment_attempts.c.created_at, payment_attempts.c.status).order_by(payment_attempts.c.id))]


def banners(app, account_id: int) -> set[str]:
    return {seen["banner"] for seen in banners_by_role(app, account_id).values()}


def account_status(app, account_id: int) -> tuple:
    with app.engine.connect() as conn:
        row = conn.execute(select(accounts).where(accounts.c.id == account_id)).one()
    return row.status, row.cancelled_at


# -- attempt, then tell ----------------------------------------------------------------------------------

def test_r8_6_declined_on_day_0_paid_on_day_2_one_failure_e_mail_one_confirmation_no_banner(app):
    account_id = customer(app)
    with_card(app, account_id, GOOD_CARD)
    app.gateway.script(Fault.DECLINE, 1, decline_code="insufficient_funds", account_id=account_id)
    create_subscription(app, account_id, plan_code=team_plan(app), seats=3, actor=OPERATOR)
    seen = set()
    for day in range(0, 6):
        to_day(app, day)
        seen |= banners(app, account_id)

    assert attempts(app) == [(0, "declined"), (2, "succeeded")]
    assert kinds(app) == ["payment_failed_1", "payment_confirmed"]
    failure, confirmation = emails(app)
    assert "the card has insufficient funds" in failure["body"]
    assert "We will try again on Jan 3, 2026" in failure["body"]
    assert confirmation["at"] == datetime(2026, 1, 3, tzinfo=UTC)  # the day-2 charge, at local midnight
    assert seen == {"none"}
    assert account_status(app, account_id) == ("active", None)


def test_r8_an_answer_lost_tells_nothing_until_the_janitor_settles_it_then_the_right_e_mail(app):
    account_id, _ = subscribed(app, card=DECLINES)
    to_day(app, 1)
    app.gateway.script(Fault.TIMEOUT_AFTER)  # the day-2 charge is declined, and the answer is lost
    app.gateway.script(Fault.SERVER_ERROR)  # and the janitor's question in the same tick gets no answer either
    to_day(app, 2, hour=0)
    assert attempts(app) == [(0, "declined"), (2, "unknown")]
    assert kinds(app) == ["payment_failed_1"]  # nothing is known: nothing is said
    assert banners(app, account_id) == {"none"}
    to_day(app, 2, hour=3)
    assert attempts(app) == [(0, "declined"), (2, "declined")]
    [_, told] = emails(app)
    assert (told["kind"], told["at"]) == ("payment_failed_2", datetime(2026, 1, 3, 1, tzinfo=UTC))  # the janitor's
    with app.engine.connect() as conn:
        settled = conn.execute(select(payment_attempts.c.settled_at).order_by(payment_attempts.c.id.desc())).scalar()
    assert settled <= told["at"]


# -- one case per account ------------------------------------------------------------------------------------

def two_invoices_in_dunning(app) -> int:
    """A customer with two subscriptions whose renewals (days 0 and 9) are both declined."""
    account_id = customer(app)
    with_card(app, account_id, DECLINES)
    plan = team_plan(app)
    create_subscription(app, account_id, plan_code=plan, seats=3, actor=OPERATOR)
    create_subscription(app, account_id, plan_code=plan, seats=1, start=date(2026, 1, 10), actor=OPERATOR)
    return account_id


def test_r8_an_invoice_issued_during_the_case_joins_it_and_follows_its_track(app):
    two_invoices_in_dunning(app)
    to_day(app, 25)
    with app.engine.connect() as conn:
        cases = conn.execute(select(dunning_cases.c.id, dunning_cases.c.day0)).all()
        chased = conn.execute(select(dunning_case_invoices.c.invoice_id)).scalars().all()
    assert [tuple(case)[1:] for case in cases] == [(date(2026, 1, 1),)]  # one case, one track from day 0
    assert sorted(chased) == [1, 2]
    # Day 9's invoice was charged when issued, declined, and joined the case: no new day-0 e-mail.
    assert kinds(app) == ["payment_failed_1", "payment_failed_2", "payment_failed_3", "suspension_warning"]
    warning = emails(app)[-1]
    assert warning["invoices"] == ["2026-000001", "2026-000002"]
    assert "Invoice 2026-000001, 2026-000002 ($91.20)" in warning["body"]  # 68.40 + 22.80
    assert warning["at"] == datetime(2026, 1, 22, tzinfo=UTC)
    assert [day for day, _ in attempts(app)] == [0, 2, 4, 9, 21, 21]  # both retried on day 21


def test_r8_5_r11_1_two_unpaid_invoices_one_cancellation_naming_both_one_confirmation(app):
    account_id = two_invoices_in_dunning(app)
    to_day(app, 30)
    assert kinds(app)[-1] == "account_cancelled"
    cancellation = emails(app)[-1]
    assert cancellation["invoices"] == ["2026-000001", "2026-000002"]
    assert cancellation["subject"] == "Acme has been cancelled"
    assert "Invoice 2026-000001, 2026-000002 ($91.20) was not paid" in cancellation["body"]

    grant_reactivation(app, account_id, days=None, reason="the owner called", actor="support:test")
    with_card(app, account_id, GOOD_CARD)
    to_day(app, 30, hour=14)
    assert kinds(app).count("payment_confirmed") == 1
    confirmation = emails(app)[-1]
    assert (confirmation["kind"], confirmation["invoices"]) == ("payment_confirmed", ["2026-000001", "2026-000002"])
    assert "we received $91.20" in confirmation["body"]
    assert account_status(app, account_id) == ("active", None)
    with app.engine.connect() as conn:
        assert conn.execute(select(dunning_cases.c.status)).scalars().all() == ["recovered"]


# -- no surprise cancellation, no charge after it --------------------------------------------------------

def test_r8_down_from_before_day_0_to_day_22_one_attempt_one_e_mail(app):
    account_id, _ = subscribed(app, card=DECLINES, start=date(2026, 1, 2))  # day 0 is 2 January
    to_day(app, 0, batches=False)
    advance(app, datetime(2026, 1, 24, 12, tzinfo=UTC) - app.clock.now(), run_batches=False)  # day 22
    run_all(app, app.clock.now())
    assert len(attempts(app)) == 1
    [warning] = emails(app)
    assert warning["kind"] == "suspension_warning"
    assert warning["subject"] == "Acme will be cancelled on Feb 1, 2026"  # day 30: eight days after the warning
    assert banners(app, account_id) == {"everyone"}


def test_r8_down_from_before_day_0_to_day_30_warns_moves_the_cancellation_and_charges_nothing_after(app):
    account_id, _ = subscribed(app, card=DECLINES, start=date(2026, 1, 2))  # day 0 is 2 January
    to_day(app, 0, batches=False)
    advance(app, datetime(2026, 2, 1, 12, tzinfo=UTC) - app.clock.now(), run_batches=False)  # day 30
    run_all(app, app.clock.now())
    assert kinds(app) == ["suspension_warning"]
    assert emails(app)[0]["subject"] == "Acme will be cancelled on Feb 9, 2026"  # day 38
    assert account_status(app, account_id)[0] == "past_due"

    advance(app, datetime(2026, 3, 20, tzinfo=UTC) - app.clock.now())
    status, cancelled_at = account_status(app, account_id)
    assert (status, cancelled_at) == ("cancelled", datetime(2026, 2, 9, tzinfo=UTC))
    assert kinds(app) == ["suspension_warning", "account_cancelled"]
    # February's renewal (2 February, day 31) was charged and joined the case; nothing after.
    with app.engine.connect() as conn:
        tried = conn.execute(select(payment_attempts.c.created_at)).scalars().all()
    assert sorted(tried) == [datetime(2026, 2, 1, 12, tzinfo=UTC), datetime(2026, 2, 2, tzinfo=UTC)]
    assert all(at < cancelled_at for at in tried)
    assert emails(app)[-1]["invoices"] == ["2026-000001", "2026-000002"]
    assert len(list_invoices(app, account_id)) == 2  # no renewal is issued for a cancelled account


def test_r9_a_cancelled_account_is_charged_only_for_a_retry_asked_during_a_reactivation(app):
    account_id, _ = subscribed(app, card=DECLINES)
    to_day(app, 30)
    before = attempts(app)
    to_day(app, 45)
    assert attempts(app) == before  # cancelled: nothing is charged
    grant_reactivation(app, account_id, days=None, reason="asked", actor="support:test")
    to_day(app, 46)
    assert attempts(app) == before  # a window alone charges nothing: the owner's card update does
    with_card(app, account_id, GOOD_CARD)
    to_day(app, 47)
    # January's retry pays the account back to active; then February, not billed while it was
    # cancelled, is renewed and paid.
    assert attempts(app) == [*before, (46, "succeeded"), (46, "succeeded")]


def test_r9_a_retry_asked_during_another_accounts_reactivation_charges_nothing(app):
    plan = team_plan(app)
    locked, _ = subscribed(app, plan=plan, card=DECLINES, name="Acme", owner=OWNER)
    reactivated, _ = subscribed(app, plan=plan, card=DECLINES, name="Globex", owner="owner@globex.test")
    to_day(app, 45)
    assert account_status(app, locked)[0] == account_status(app, reactivated)[0] == "cancelled"
    grant_reactivation(app, reactivated, days=None, reason="asked", actor="support:test")
    before = attempts(app)
    # A retry left on the locked account's unpaid invoice, asked while the other account's window
    # is open: only a window of its own lets a cancelled account be charged (R9.2).
    [unpaid] = [invoice for invoice in list_invoices(app, locked) if invoice["status"] == "open"]
    with app.engine.begin() as conn:
        conn.execute(payment_retries.insert().values(invoice_id=unpaid["id"], reason="left_over",
                                                     requested_at=app.clock.now()))
    to_day(app, 46)
    assert attempts(app) == before


# -- dates a customer reads ----------------------------------------------------------------------------

def test_r10_1_a_paris_account_reads_one_deletion_date_in_its_e_mail_its_banner_and_its_refusal(app):
    account_id, _ = subscribed(app, card=DECLINES, timezone="Europe/Paris", locale="fr", currency="EUR",
                               plan=team_plan(app, currency="EUR"), start=date(2026, 1, 2))
    to_day(app, 35)
    cancellation = emails(app)[-1]
    assert cancellation["kind"] == "account_cancelled"
    # Cancelled on 31 January (day 29) at local midnight, 23:00 UTC on the 30th; deleted 90 local days later.
    assert "Ses données seront supprimées le 1 mai 2026" in cancellation["body"]
    with app.engine.connect() as conn, pytest.raises(NotAllowed) as refused:
        require_access(conn, account_id, OWNER, app.clock.now(), support_email="support@renewly.example")
    assert "was cancelled on 2026-01-31" in refused.value.message
    assert "its data will be deleted on 2026-05-01" in refused.value.message
    assert local_date(datetime(2026, 4, 30, 22, tzinfo=UTC), "Europe/Paris") == date(2026, 5, 1)


# -- what the preview shows ----------------------------------------------------------------------------

def test_r8_8_preview_shows_an_unpaid_invoice_whose_charge_is_not_answered_yet(app):
    account_id, _ = subscribed(app, card=DECLINES, start=date(2026, 1, 2))
    app.gateway.script(Fault.TIMEOUT_BEFORE, 2)  # the renewal's charge and the janitor's question: no answer
    to_day(app, 1, hour=0, batches=False)
    advance(app, timedelta(hours=1))  # the tick at local midnight of 2 January
    preview = preview_account(app, account_id)
    [(about, days)] = preview.cases
    assert about == "if the payment of invoice 2026-000001 fails"
    assert [d.date for d in days][:2] == [date(2026, 1, 2), date(2026, 1, 4)]


def test_r8_8_preview_of_a_case_with_two_invoices_names_both(app):
    account_id = two_invoices_in_dunning(app)
    to_day(app, 10)
    [(about, days)] = preview_account(app, account_id).cases
    assert about == "invoices 2026-000001, 2026-000002 unpaid since 2026-01-01"
    assert [(d.day, d.date) for d in days] == [(21, date(2026, 1, 22)), (29, date(2026, 1, 30)),
                                               (119, date(2026, 4, 30))]


# -- a credit note ---------------------------------------------------------------------------------------

def test_r8_a_credit_note_that_leaves_nothing_unpaid_ends_the_case_without_a_confirmation(app):
    account_id, _ = subscribed(app, card=DECLINES)
    to_day(app, 5)
    issue_credit_note(app, "2026-000001", reason="goodwill", actor=OPERATOR)
    with app.engine.connect() as conn:
        assert conn.execute(select(dunning_cases.c.status)).scalars().all() == ["recovered"]
    assert account_status(app, account_id) == ("active", None)
    assert banners(app, account_id) == {"none"}
    sent = kinds(app)
    to_day(app, 30)
    assert kinds(app) == sent  # nothing more is chased


# -- charges in flight, and the ends of windows ------------------------------------------------------

def test_r8_5_a_cancellation_waits_for_a_charge_in_flight_which_then_pays_the_account(app):
    """The owner's new card is charged on day 28 and the answer is lost: day 29 does not cancel
    an account that may have paid; the answer, when it comes, tells which."""
    account_id, _ = subscribed(app, card=DECLINES)
    to_day(app, 28)
    with_card(app, account_id, GOOD_CARD)
    app.gateway.script(Fault.TIMEOUT_BEFORE, 50)  # nothing reaches the gateway for two days (a try an hour)
    to_day(app, 30)
    assert account_status(app, account_id) == ("past_due", None)
    assert "account_cancelled" not in kinds(app)
    to_day(app, 31)  # the gateway answers again: the janitor sends the charge, which pays
    assert account_status(app, account_id) == ("active", None)
    assert kinds(app)[-1] == "payment_confirmed"
    assert "account_cancelled" not in kinds(app)


def test_r8_5_a_cancellation_that_waited_for_a_declined_charge_comes_with_its_answer(app):
    account_id, _ = subscribed(app, card=DECLINES)
    to_day(app, 28)
    with_card(app, account_id, DECLINES)
    app.gateway.script(Fault.TIMEOUT_BEFORE, 50)
    to_day(app, 30)
    assert account_status(app, account_id)[0] == "past_due"
    to_day(app, 31)
    status, cancelled_at = account_status(app, account_id)
    assert status == "cancelled"
    assert datetime(2026, 1, 31, 12, tzinfo=UTC) < cancelled_at < datetime(2026, 2, 1, tzinfo=UTC)  # the answer's
    # The cancellation tells everyone; the owner's card notice gives way to it.
    assert kinds(app)[-1] == "account_cancelled"
    assert kinds(app).count("card_retry_declined") == 0
    assert [status for _, status in attempts(app)].count("declined") == 5


def test_r9_2_a_card_saved_in_the_last_hour_of_a_window_is_charged_after_it_ends(app):
    account_id, _ = subscribed(app, card=DECLINES)
    to_day(app, 30)
    ends_at = grant_reactivation(app, account_id, days=1, reason="asked", actor="support:test")
    advance(app, ends_at - timedelta(minutes=30) - app.clock.now())  # 23:30 on the window's last day
    with_card(app, account_id, GOOD_CARD)  # as the banner says
    advance(app, timedelta(hours=2))
    assert account_status(app, account_id) == ("active", None)
    assert attempts(app)[-1][1] == "succeeded"


def test_r9_a_credit_note_waits_for_the_answer_of_a_charge_in_flight(app):
    subscribed(app, card=DECLINES)
    to_day(app, 1)
    app.gateway.script(Fault.TIMEOUT_BEFORE, 2)  # the day-2 charge and the janitor's question: no answer
    to_day(app, 2, hour=0)
    before = database_rows(app)
    with pytest.raises(Conflict, match="has a charge whose answer is not known yet") as refused:
        issue_credit_note(app, "2026-000001", reason="goodwill", actor=OPERATOR)
    assert refused.value.code == "payment_in_flight"
    assert database_rows(app) == before


def test_r8_a_backdated_subscription_s_catch_up_invoice_is_chased_from_the_day_it_was_issued(app):
    """Nobody is late for a period before their subscription existed: day 0 is the day the
    catch-up invoice was issued, not the first period's start, seven months earlier."""
    account_id = customer(app)
    create_subscription(app, account_id, plan_code=team_plan(app), seats=1, start=date(2025, 6, 1), backdate=True,
                        actor=OPERATOR)
    to_day(app, 3)
    assert kinds(app) == ["payment_failed_1", "payment_failed_2"]  # no card: days 0 and 2, no warning yet
    with app.engine.connect() as conn:
        assert conn.execute(select(dunning_cases.c.day0)).scalars().all() == [date(2026, 1, 1)]
