"""The dunning sweep (R8.6, R8.7, R8.8, R11.1, R7.1): recovery at any moment, late and repeated
sweeps, time zones and month ends, and the preview."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import func, select

from renewly.accounts.accounts import add_member
from renewly.adapters.db.tables import (
    accounts,
    billing_contacts,
    dunning_cases,
    dunning_steps,
    outbox,
    payment_attempts,
    payment_retries,
)
from renewly.billing.invoices import list_invoices
from renewly.dunning.preview import preview_account
from renewly.dunning.reactivation import banners_by_role
from renewly.dunning.sweep import run_dunning
from renewly.payments.collect import collect_due
from renewly.scheduler import advance, run_all
from renewly.shared.calendar import local_date
from tests.builders import OPERATOR, subscribed, team_plan, with_card
from tests.payment_builders import run_cli

DECLINES = "4000000000000341"  # the card check passes, every charge is declined
GOOD_CARD = "4242424242424242"
CONTACTS = ["owner@acme.test", "finance@acme.test"]
FAILURE_EMAILS = {"payment_failed_1", "payment_failed_2", "payment_failed_3", "suspension_warning",
                  "account_cancelled"}


def declined_team(app, card: str | None = DECLINES, **account) -> int:
    """An account whose renewal of 2026-01-01 is declined: owner, admin, agent, one more billing contact."""
    account_id, _ = subscribed(app, card=card, **account)
    add_member(app, account_id, email="admin@acme.test", role="admin", actor=OPERATOR)
    add_member(app, account_id, email="agent@acme.test", role="agent", actor=OPERATOR)
    now = app.clock.now()
    with app.engine.begin() as conn:
        conn.execute(billing_contacts.insert().values(account_id=account_id, email="finance@acme.test",
                                                      status="active", requested_by="finance@acme.test",
                                                      requested_at=now, decided_at=now))
    return account_id


def emails(app, account_id: int | None = None) -> list[dict]:
    query = select(outbox.c.created_at, outbox.c.payload).where(outbox.c.topic == "email").order_by(outbox.c.id)
    if account_id is not None:
        query = query.where(outbox.c.account_id == account_id)
    with app.engine.connect() as conn:
        # The dunning e-mails: not the invoices' (R4.3).
        return [{**payload, "at": at} for at, payload in conn.execute(query) if payload["kind"] != "invoice"]


def kinds(app, account_id: int | None = None) -> list[str]:
    return [email["kind"] for email in emails(app, account_id)]


def attempts(app, account_id: int | None = None) -> list[datetime]:
    query = select(payment_attempts.c.created_at).order_by(payment_attempts.c.id)
    if account_id is not None:
        query = query.where(payment_attempts.c.account_id == account_id)
    with app.engine.connect() as conn:
        return conn.execute(query).scalars().all()


def account_row(app, account_id: int):
    with app.engine.connect() as conn:
        return conn.execute(select(accounts).where(accounts.c.id == account_id)).one()


def banners(app, account_id: int) -> dict[str, str]:
    return {role: seen["banner"] for role, seen in banners_by_role(app, account_id).items()}


def to_day(app, day: int, hour: int = 12, *, batches: bool = True) -> None:
    """Move the test clock to `hour` o'clock (UTC) on day `day` after 2026-01-01."""
    target = datetime(2026, 1, 1, hour, tzinfo=UTC) + timedelta(days=day)
    advance(app, target - app.clock.now(), run_batches=batches)


# -- R8.6 / R11.1: a payment ends the case at any moment ----------------------------------------------

@pytest.mark.parametrize("day, banner_before, emails_before, locale, subject", [
    (3, "none", ["payment_failed_1", "payment_failed_2"], "en", "Payment received for invoice 2026-000001"),
    (25, "everyone", ["payment_failed_1", "payment_failed_2", "payment_failed_3", "suspension_warning"], "fr",
     "Paiement reçu pour la facture 2026-000001"),
])
def test_r8_6_r11_1_the_owner_s_card_update_ends_the_case(app, day, banner_before, emails_before, locale, subject):
    account_id = declined_team(app, locale=locale)
    to_day(app, day)
    assert banners(app, account_id) == {"owner": banner_before, "admin": banner_before, "agent": banner_before}
    assert kinds(app) == emails_before

    with_card(app, account_id, GOOD_CARD)
    to_day(app, day, hour=14)  # the next payment batch runs at 13:00

    account = account_row(app, account_id)
    assert (account.status, account.banner, account.cancelled_at, account.deletion_due_at) == (
        "active", "none", None, None)
    assert banners(app, account_id) == {"owner": "none", "admin": "none", "agent": "none"}
    [confirmation] = [e for e in emails(app) if e["kind"] == "payment_confirmed"]
    assert (confirmation["recipients"], confirmation["subject"], confirmation["locale"]) == (CONTACTS, subject, locale)
    with app.engine.connect() as conn:
        assert conn.execute(select(dunning_cases.c.status)).scalars().all() == ["recovered"]
    assert [i["status"] for i in list_invoices(app, account_id)] == ["paid"]

    to_day(app, 40)  # past day 29, and past the next renewal (paid by the new card)
    assert kinds(app) == emails_before + ["payment_confirmed"]
    assert account_row(app, account_id).status == "active"
    assert [i["status"] for i in list_invoices(app, account_id)] == ["paid", "paid"]


def test_r7_1_a_card_added_late_to_an_account_without_one_pays_at_the_next_batch(app):
    account_id = declined_team(app, card=None)  # no card: the renewal cannot even be attempted
    to_day(app, 5)
    assert kinds(app) == ["payment_failed_1", "payment_failed_2", "payment_failed_3"]
    assert attempts(app) == []
    assert banners(app, account_id)["admin"] == "owner_and_admins"
    with_card(app, account_id, GOOD_CARD)
    to_day(app, 5, hour=14)
    assert len(attempts(app)) == 1
    assert kinds(app)[-1] == "payment_confirmed"
    assert (account_row(app, account_id).status, banners(app, account_id)["admin"]) == ("active", "none")


def test_r7_1_a_new_card_that_still_declines_is_retried_the_owner_is_told_and_the_case_goes_on(app):
    account_id = declined_team(app)
    to_day(app, 3)
    with_card(app, account_id, DECLINES)  # another card that declines every charge
    to_day(app, 5)
    assert len(attempts(app)) == 4  # days 0 and 2, the card update on day 3, day 4
    assert kinds(app) == ["payment_failed_1", "payment_failed_2", "card_retry_declined", "payment_failed_3"]
    [told] = [email for email in emails(app) if email["kind"] == "card_retry_declined"]
    # The owner, who saved the card, alone; after the retry of the next payment batch (13:00 on day 3).
    assert (told["recipients"], told["at"]) == (["owner@acme.test"], datetime(2026, 1, 4, 13, tzinfo=UTC))
    assert told["subject"] == "Your new card was declined for invoice 2026-000001"
    assert "the card was declined by the bank" in told["body"]
    assert account_row(app, account_id).status == "past_due"


# -- R8.7: late, twice -------------------------------------------------------------------------------------

def test_r8_7_a_late_run_charges_once_then_tells_only_the_latest_step(app):
    account_id = declined_team(app)
    to_day(app, 0, hour=2)
    assert (kinds(app), len(attempts(app))) == (["payment_failed_1"], 1)

    to_day(app, 22, hour=2, batches=False)  # down from day 0 to day 22: steps of days 2, 4 and 21 missed
    assert kinds(app) == ["payment_failed_1"]
    late = app.clock.now()
    run_all(app, late)

    # One run: the sweep asks for one charge, the payment batch makes it, its decline is told.
    assert attempts(app) == [datetime(2026, 1, 1, 1, tzinfo=UTC), late]
    assert kinds(app) == ["payment_failed_1", "suspension_warning"]
    assert emails(app)[-1]["at"] == late
    with app.engine.connect() as conn:
        taken = conn.execute(select(dunning_steps.c.name, dunning_steps.c.taken_at, dunning_steps.c.email,
                                    dunning_steps.c.charge_requested).where(dunning_steps.c.step > 0)
                             .order_by(dunning_steps.c.step)).all()
    assert [tuple(row) for row in taken] == [("payment_failed_2", late, None, 0), ("payment_failed_3", late, None, 0),
                                             ("suspension_warning", late, "suspension_warning", 1)]
    assert banners(app, account_id) == {"owner": "everyone", "admin": "everyone", "agent": "everyone"}

    # Warned on day 22, a day late: the cancellation comes eight days after the warning, on day 30.
    assert "cancelled on Jan 31, 2026" in emails(app)[-1]["body"]
    to_day(app, 29, hour=23)
    assert account_row(app, account_id).status == "past_due"
    to_day(app, 31)
    assert kinds(app) == ["payment_failed_1", "suspension_warning", "account_cancelled"]
    assert len(attempts(app)) == 2
    account = account_row(app, account_id)
    assert (account.status, account.cancelled_at) == ("cancelled", datetime(2026, 1, 31, tzinfo=UTC))


def test_r8_a_run_late_past_the_cancellation_warns_first_and_moves_the_cancellation(app):
    account_id = declined_team(app)
    to_day(app, 3)
    to_day(app, 33, batches=False)  # down past day 29 and past the renewal of 1 February
    late = app.clock.now()
    run_all(app, late)
    # Nobody was warned: the run charges once for the missed steps and warns, naming both unpaid
    # invoices (February's was issued, charged and declined in the same run, and joined the case).
    assert kinds(app) == ["payment_failed_1", "payment_failed_2", "suspension_warning"]
    warning = emails(app)[-1]
    assert warning["at"] == late
    assert warning["subject"] == "Acme will be cancelled on Feb 11, 2026"  # day 33 + 8
    assert warning["invoices"] == ["2026-000001", "2026-000002"]
    assert "Invoice 2026-000001, 2026-000002 (€" not in warning["body"]  # the account bills in USD
    assert "Invoice 2026-000001, 2026-000002 ($136.80)" in warning["body"]
    assert len(attempts(app)) == 4  # days 0 and 2, then January's retry and February's first charge
    with app.engine.connect() as conn:
        [case] = conn.execute(select(dunning_cases.c.day0, dunning_cases.c.last_step_name,
                                     dunning_cases.c.last_step_day, dunning_cases.c.next_step_at)).all()
    assert tuple(case) == (date(2026, 1, 1), "suspension_warning", 21, datetime(2026, 2, 11, tzinfo=UTC))

    to_day(app, 40, hour=23)
    assert account_row(app, account_id).status == "past_due"
    to_day(app, 42)
    assert kinds(app) == ["payment_failed_1", "payment_failed_2", "suspension_warning", "account_cancelled"]
    cancellation = emails(app)[-1]
    assert cancellation["invoices"] == ["2026-000001", "2026-000002"]
    account = account_row(app, account_id)
    assert (account.status, account.cancelled_at) == ("cancelled", datetime(2026, 2, 11, tzinfo=UTC))
    # R10.1: the deletion is on the 90th local day after the cancellation's, from its local midnight.
    assert account.deletion_due_at == datetime(2026, 5, 12, tzinfo=UTC)
    assert len(attempts(app)) == 4  # nothing is charged after the cancellation


def test_r8_7_a_sweep_run_twice_at_the_same_instant_repeats_nothing(app):
    declined_team(app)
    to_day(app, 0, hour=2)
    to_day(app, 4, batches=False)
    now = app.clock.now()
    first = run_dunning(app, now)
    # The day-4 step asks for a charge; its notice waits for the answer.
    assert (first.steps_taken, first.emails, first.charges_requested, first.notices_waiting) == (2, 0, 1, 1)

    def everything():
        with app.engine.connect() as conn:
            return [conn.execute(select(func.count()).select_from(table)).scalar()
                    for table in (dunning_steps, outbox, payment_retries, dunning_cases)]

    before = everything()
    again = run_dunning(app, now)
    assert (again.cases_opened, again.steps_taken, again.emails, again.charges_requested, again.cancelled) == (
        0, 0, 0, 0, 0)
    assert everything() == before
    assert kinds(app) == ["payment_failed_1"]
    collect_due(app, now)
    assert kinds(app) == ["payment_failed_1", "payment_failed_3"]


# -- day 0 is the renewal date in the account's time zone ------------------------------------------------

def step_instants(app, account_id: int) -> list[tuple[str, datetime]]:
    with app.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(
            select(dunning_steps.c.name, dunning_steps.c.taken_at).join(dunning_cases)
            .where(dunning_cases.c.account_id == account_id).order_by(dunning_steps.c.step))]


def utc(month: int, day: int, hour: int) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=UTC)


def test_r8_steps_fall_at_local_midnight_across_daylight_saving_changes(app):
    plan = team_plan(app)
    paris, _ = subscribed(app, plan=plan, card=DECLINES, timezone="Europe/Paris", start=date(2026, 3, 1))
    los_angeles, _ = subscribed(app, plan=plan, card=DECLINES, timezone="America/Los_Angeles",
                                owner="owner@la.test", start=date(2026, 3, 1))
    advance(app, utc(3, 31, 0) - app.clock.now())

    names = ["payment_failed_1", "payment_failed_2", "payment_failed_3", "suspension_warning", "account_cancelled"]
    # Paris: UTC+1 until 29 March 2026, UTC+2 from then on (day 29 is 30 March).
    assert step_instants(app, paris) == list(zip(names, [utc(2, 28, 23), utc(3, 2, 23), utc(3, 4, 23),
                                                         utc(3, 21, 23), utc(3, 29, 22)]))
    # Los Angeles: UTC-8 until 8 March 2026, UTC-7 from then on (days 21 and 29).
    assert step_instants(app, los_angeles) == list(zip(names, [utc(3, 1, 8), utc(3, 3, 8), utc(3, 5, 8),
                                                               utc(3, 22, 7), utc(3, 30, 7)]))
    for account_id, zone in ((paris, "Europe/Paris"), (los_angeles, "America/Los_Angeles")):
        assert [local_date(at, zone) for at in attempts(app, account_id)] == [
            date(2026, 3, 1), date(2026, 3, 3), date(2026, 3, 5), date(2026, 3, 22)]
        assert [(e["kind"], local_date(e["at"], zone).day) for e in emails(app, account_id)] == [
            ("payment_failed_1", 1), ("payment_failed_2", 3), ("payment_failed_3", 5), ("suspension_warning", 22),
            ("account_cancelled", 30)]
        assert local_date(account_row(app, account_id).cancelled_at, zone) == date(2026, 3, 30)


def test_r8_a_month_end_renewal_counts_its_days_from_the_short_month_s_end(app):
    account_id, _ = subscribed(app, timezone="Europe/Paris", start=date(2026, 1, 31))  # paid with a good card
    advance(app, utc(2, 1, 0) - app.clock.now())
    with_card(app, account_id, DECLINES)  # the next renewal, on 28 February, will be declined
    advance(app, utc(4, 2, 0) - app.clock.now())

    with app.engine.connect() as conn:
        [day0] = conn.execute(select(dunning_cases.c.day0)).scalars().all()
    assert day0 == date(2026, 2, 28)
    assert [(name, local_date(at, "Europe/Paris")) for name, at in step_instants(app, account_id)] == [
        ("payment_failed_1", date(2026, 2, 28)), ("payment_failed_2", date(2026, 3, 2)),
        ("payment_failed_3", date(2026, 3, 4)), ("suspension_warning", date(2026, 3, 21)),
        ("account_cancelled", date(2026, 3, 29))]
    # Cancelled on day 29: the renewal of 31 March is not issued.
    assert [i["period_start"] for i in list_invoices(app, account_id)] == [date(2026, 1, 31), date(2026, 2, 28)]


# -- R8.8: the preview -----------------------------------------------------------------------------------

def test_r8_8_preview_of_an_account_with_an_open_case(app):
    account_id = declined_team(app)
    to_day(app, 5)
    preview = preview_account(app, account_id)
    assert (preview.status, preview.today, preview.policy_version) == ("past_due", date(2026, 1, 6),
                                                                       "r8-default-2026-11")
    [(about, days)] = preview.cases
    assert about == "invoice 2026-000001 unpaid since 2026-01-01"
    assert [(d.day, d.date) for d in days] == [(21, date(2026, 1, 22)), (29, date(2026, 1, 30)),
                                               (119, date(2026, 4, 30))]
    assert days[0].actions == ("charge attempt", "e-mail 'suspension_warning' to billing contacts if it fails",
                               "banner for every member")
    assert days[1].actions == ("e-mail 'account_cancelled' to billing contacts", "banner for every member",
                               "account cancelled: nobody can use the dashboard")


def test_r8_8_preview_of_a_healthy_account_shows_what_a_failed_next_renewal_would_do(app):
    account_id, _ = subscribed(app)
    to_day(app, 1)
    [(about, days)] = preview_account(app, account_id).cases
    assert about == "if the payment of the renewal on 2026-02-01 fails"
    assert [(d.day, d.date) for d in days] == [(0, date(2026, 2, 1)), (2, date(2026, 2, 3)), (4, date(2026, 2, 5)),
                                               (21, date(2026, 2, 22)), (29, date(2026, 3, 2)),
                                               (119, date(2026, 5, 31))]


def test_r8_8_preview_of_a_cancelled_account_shows_only_its_deletion_date(app):
    account_id = declined_team(app)
    to_day(app, 31)
    [(about, days)] = preview_account(app, account_id).cases
    assert [(d.date, d.actions) for d in days] == [
        (date(2026, 4, 30), ("personal data deleted; the account can never be reactivated (R10)",))]


# -- through the command line ----------------------------------------------------------------------------

def test_r8_the_command_line_shows_banners_by_role_e_mails_and_the_preview(app, monkeypatch, capsys):
    account_id = declined_team(app)
    to_day(app, 4)
    shown = json.loads(run_cli(app, monkeypatch, capsys, "accounts", "show", str(account_id), "--json").out)
    assert {role: seen["banner"] for role, seen in shown["banners"].items()} == {
        "owner": "owner_and_admins", "admin": "owner_and_admins", "agent": "none"}
    banner = run_cli(app, monkeypatch, capsys, "accounts", "banner", str(account_id), "--member", "agent@acme.test",
                     "--json")
    assert (banner.code, json.loads(banner.out)) == (0, {"banner": "none", "text": "", "member": "agent@acme.test",
                                                      "role": "agent", "locale": "en"})
    listed = json.loads(run_cli(app, monkeypatch, capsys, "outbox", "list", "--account", str(account_id), "--topic",
                                "email", "--json").out)
    assert [(e["payload"]["kind"], e["payload"]["recipients"]) for e in listed] == [
        ("invoice", ["owner@acme.test"]),  # issued before the contact was added (R4.3)
        ("payment_failed_1", CONTACTS), ("payment_failed_2", CONTACTS), ("payment_failed_3", CONTACTS)]
    preview = json.loads(run_cli(app, monkeypatch, capsys, "preview", str(account_id), "--json").out)
    assert [d["day"] for d in preview["cases"][0]["days"]] == [21, 29, 119]
    swept = run_cli(app, monkeypatch, capsys, "dunning", "--json")
    assert (swept.code, json.loads(swept.out)["steps_taken"]) == (0, 0)  # nothing more is due today


def test_r8_a_paying_account_has_no_case_no_e_mail_and_no_banner(app):
    account_id, _ = subscribed(app)
    to_day(app, 40)
    assert [i["status"] for i in list_invoices(app, account_id)] == ["paid", "paid"]
    assert kinds(app) == []
    assert banners(app, account_id) == {"owner": "none", "admin": "none", "agent": "none"}
