"""The scheduler: `advance` moves the test clock and runs each batch due on the way, in time order;
renewals fall due at local midnight of the renewal date, in the account's time zone."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select, update

from renewly.adapters.clock import wall_clock
from renewly.adapters.db.tables import batch_runs, dunning_steps, invoices, outbox, payment_attempts
from renewly.billing.invoices import list_invoices
from renewly.billing.subscriptions import create_subscription
from renewly.bootstrap import bootstrap
from renewly.config.settings import load_settings
from renewly.payments import collect
from renewly.scheduler import advance, run_all, run_batch, run_tick, schedule, tick_due
from renewly.shared.errors import InvalidInput
from tests.builders import OPERATOR, customer, subscribed, team_plan, with_card

HOUR = timedelta(hours=1)


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def test_advance_runs_the_batches_due_on_the_way_in_time_order_day_by_day(app):
    plan = team_plan(app)
    for n, start in enumerate((date(2026, 1, 2), date(2026, 1, 3), date(2026, 1, 5))):
        subscribed(app, plan=plan, start=start, name=f"Customer {n}", owner=f"owner{n}@acme.test")
    assert list_invoices(app) == []  # all three start later

    runs = advance(app, timedelta(days=7)).runs

    renewals = [(run.at, run.report.invoices_issued) for run in runs
                if run.batch == "renew" and run.report.invoices_issued]
    assert renewals == [(at(2026, 1, 2), 1), (at(2026, 1, 3), 1), (at(2026, 1, 5), 1)]
    assert [run.at for run in runs] == sorted(run.at for run in runs)  # time never goes back
    # One tick does everything due at its instant: the billing chain runs again while one of its
    # batches made work for another (the renewal's charge is made in the tick that issues it).
    assert [(run.batch, run.report.did_anything) for run in runs if run.at == at(2026, 1, 2)][:6] == [
        ("collect", False), ("dunning", False), ("renew", True), ("collect", True), ("dunning", False),
        ("renew", False)]
    assert [run.batch for run in runs if run.at == at(2026, 1, 2)][-3:] == [
        "void-verifications", "webhooks", "retention"]
    assert all(run.at.minute == run.at.second == 0 for run in runs)  # on the hourly ticks
    assert [(i["issue_date"], i["status"]) for i in list_invoices(app)] == [
        (date(2026, 1, 2), "paid"), (date(2026, 1, 3), "paid"), (date(2026, 1, 5), "paid")]  # collected at once
    assert app.clock.now() == at(2026, 1, 8)


def test_advance_without_batches_runs_nothing_and_one_later_run_invoices_each_missed_period_once(app):
    account_id, _ = subscribed(app)

    assert advance(app, timedelta(days=100), run_batches=False).runs == []

    assert app.clock.now() == at(2026, 4, 11)
    assert len(list_invoices(app, account_id)) == 1
    with app.engine.connect() as conn:
        assert conn.execute(select(batch_runs)).all() == []
    [renewal] = [run for run in run_all(app, app.clock.now()) if run.batch == "renew"]
    assert renewal.report.invoices_issued == 3
    [again] = [run for run in run_all(app, app.clock.now()) if run.batch == "renew"]
    assert again.report.invoices_issued == 0
    periods = [(i["number"], i["period_start"], i["period_end"]) for i in list_invoices(app, account_id)]
    assert periods == [("2026-000001", date(2026, 1, 1), date(2026, 2, 1)),
                       ("2026-000002", date(2026, 2, 1), date(2026, 3, 1)),
                       ("2026-000003", date(2026, 3, 1), date(2026, 4, 1)),
                       ("2026-000004", date(2026, 4, 1), date(2026, 5, 1))]



DECLINES = "4000000000000341"  # the card check passes, every charge is declined


class Killed(BaseException):
    """The process dies there (kill -9): no handler runs, no transaction commits."""


def story(app) -> dict[str, list]:
    """What the customer and the gateway saw, and when: e-mails, attempts, dunning steps."""
    with app.engine.connect() as conn:
        return {
            "emails": conn.execute(select(outbox.c.payload["kind"].as_string(), outbox.c.created_at)
                                   .where(outbox.c.topic == "email").order_by(outbox.c.id)).all(),
            "attempts": conn.execute(select(payment_attempts.c.status, payment_attempts.c.created_at,
                                            payment_attempts.c.settled_at).order_by(payment_attempts.c.id)).all(),
            "steps": conn.execute(select(dunning_steps.c.name, dunning_steps.c.taken_at)
                                  .order_by(dunning_steps.c.id)).all(),
        }


def test_r8_7_a_tick_killed_between_a_charge_and_its_commit_runs_again_at_its_instant_as_if_never_killed(
        databases, db_kind, monkeypatch):
    """The renewal's charge is made in the tick's second round (the first issued the invoice); the
    process dies after the gateway declined it, before the answer is recorded. The restart (a
    worker's stalled tick retried, `renewly worker` started again) finds that tick due still, and
    its janitor settles the charge at the tick's instant: the day-0 notice is sent then, and the
    next instant, three days on, sends day 2's, as without the kill. (It used to find the tick
    recorded as run by its first round: the charge was settled at the next tick, the case opened
    three days late and the two notices were one: a payment_failed e-mail fewer.)"""
    renewal, later = at(2026, 1, 2), at(2026, 1, 5)
    app = databases.fresh_app(db_kind, payments={"lease_seconds": 0})  # the dead process's lease has ended
    subscribed(app, card=DECLINES, start=renewal.date())
    advance(app, renewal - app.clock.now(), run_batches=False)

    def dies(*_args, **_kwargs):
        raise Killed

    with monkeypatch.context() as patched:
        patched.setattr(collect, "settle_attempts", dies)  # after the gateway's answer, before the commit
        with pytest.raises(Killed):
            run_tick(app, renewal)
    assert story(app)["attempts"] == [("pending", renewal, None)]  # at the gateway, not recorded

    assert tick_due(app, renewal) == renewal  # what a restart looks at: that tick is not done
    run_tick(app, renewal)
    advance(app, later - app.clock.now(), run_batches=False)
    run_tick(app, later)

    # As `renewly run` at the two instants tells it, uninterrupted (tests/dunning: R8.1, R8.2).
    assert story(app) == {
        "emails": [("invoice", renewal), ("payment_failed_1", renewal), ("payment_failed_2", later)],
        "attempts": [("declined", renewal, renewal), ("declined", later, later)],
        "steps": [("payment_failed_1", renewal), ("payment_failed_2", later)]}
    assert app.gateway.charge_count() == 2  # the first charge made once, asked again with its key



def test_r8_7_a_tick_whose_helper_died_with_a_charge_in_hand_stays_due_and_settles_it_at_its_instant(
        databases, db_kind):
    """A worker's tick shares the payment batch with helpers on other workers (renewly/worker/
    queue.py). One helper took the renewal's charge to the gateway and its worker died there: the
    tick's own run found nothing left to charge, and its chain ended. Its batch run says so
    (`left_work`); the tick is not recorded as run, the next look runs it again, at its instant."""
    renewal, later = at(2026, 1, 2), at(2026, 1, 5)
    app = databases.fresh_app(db_kind)
    subscribed(app, card=DECLINES, start=renewal.date())
    advance(app, renewal - app.clock.now(), run_batches=False)

    def runner(batch, instant):
        if batch.name != "collect" or not list_invoices(app) or story(app)["attempts"]:
            return run_batch(app, batch, instant)
        [claim] = collect.claim_slice(app, instant, 10)  # the helper's slice ...
        app.gateway.charge(claim.request)  # ... at the gateway, when its worker dies
        own = run_batch(app, batch, instant)  # the tick's: the helper's lease runs, nothing to charge
        assert not own.report.did_anything
        with app.engine.begin() as conn:  # by the time the dead worker's helper is found, its lease has ended
            conn.execute(update(payment_attempts).values(lease_expires_at=wall_clock() - timedelta(seconds=1)))
        return replace(own, left_work=True)

    run_tick(app, renewal, runner=runner)
    assert story(app)["attempts"] == [("pending", renewal, None)]

    assert tick_due(app, renewal) == renewal  # the next look runs the tick again
    run_tick(app, renewal)
    advance(app, later - app.clock.now(), run_batches=False)
    run_tick(app, later)

    assert story(app)["emails"] == [("invoice", renewal), ("payment_failed_1", renewal), ("payment_failed_2", later)]
    assert story(app)["attempts"] == [("declined", renewal, renewal), ("declined", later, later)]


@pytest.mark.parametrize("by", [timedelta(0), -HOUR])
def test_advance_refuses_to_go_backwards_or_stand_still(app, by):
    with pytest.raises(InvalidInput) as refused:
        advance(app, by)
    assert refused.value.code == "clock_backwards"
    assert app.clock.now() == at(2026, 1, 1)


def test_advance_refuses_to_move_a_system_clock(databases, db_kind, tmp_path):
    settings = load_settings(config_file=None, database_url=databases.fresh_url(db_kind), clock="system",
                             payments={"simulator_url": f"sqlite:///{tmp_path}/gateway.db"})
    system = bootstrap(settings)
    try:
        with pytest.raises(InvalidInput) as refused:
            advance(system, timedelta(days=1))
        assert refused.value.code == "not_test_clock"
    finally:
        system.engine.dispose()


def renewals_in_hourly_steps(app, until: datetime) -> dict[tuple[str, date], datetime]:
    """Walk the test clock to `until` an hour at a time; which periods were invoiced on the way, and when."""
    query = select(invoices.c.id, invoices.c.account_id, invoices.c.period_start, invoices.c.issued_at)
    with app.engine.connect() as conn:
        before = {row.id for row in conn.execute(query)}
    while app.clock.now() < until:
        advance(app, HOUR)
    with app.engine.connect() as conn:
        rows = conn.execute(query.where(invoices.c.kind == "invoice")).all()
    return {(row.account_id, row.period_start): row.issued_at for row in rows if row.id not in before}


def monthly_customers(app, anchors: list[date]) -> dict[str, int]:
    """A Paris and a Los Angeles account, each with a monthly subscription on each anchor."""
    plan = team_plan(app)
    found = {}
    for zone in ("Europe/Paris", "America/Los_Angeles"):
        owner = f"owner@{zone.split('/')[1].lower()}.test"
        found[zone] = account_id = customer(app, name=zone, owner=owner, timezone=zone)
        with_card(app, account_id, owner=owner)
        for anchor in anchors:
            create_subscription(app, account_id, plan_code=plan, seats=1, start=anchor, actor=OPERATOR)
    return found


# Paris moves to summer time on Sunday 29 March 2026 at 01:00 UTC, Los Angeles on 8 March; Paris
# goes back to winter time on Sunday 25 October 2026, Los Angeles on Sunday 1 November.
SPRING = (at(2026, 3, 1), [date(2026, 1, 29), date(2026, 1, 30), date(2026, 1, 31)],
          at(2026, 3, 28, 12), at(2026, 3, 31, 12), {
              ("Europe/Paris", date(2026, 3, 29)): at(2026, 3, 28, 23),  # midnight, still UTC+1
              ("Europe/Paris", date(2026, 3, 30)): at(2026, 3, 29, 22),  # midnight, now UTC+2
              ("Europe/Paris", date(2026, 3, 31)): at(2026, 3, 30, 22),
              ("America/Los_Angeles", date(2026, 3, 29)): at(2026, 3, 29, 7),  # UTC-7 all along
              ("America/Los_Angeles", date(2026, 3, 30)): at(2026, 3, 30, 7),
              ("America/Los_Angeles", date(2026, 3, 31)): at(2026, 3, 31, 7)})
AUTUMN = (at(2026, 10, 20), [date(2026, 9, 25), date(2026, 9, 26), date(2026, 10, 1), date(2026, 10, 2)],
          at(2026, 10, 24, 12), at(2026, 11, 2, 12), {
              ("Europe/Paris", date(2026, 10, 25)): at(2026, 10, 24, 22),  # midnight, still UTC+2
              ("Europe/Paris", date(2026, 10, 26)): at(2026, 10, 25, 23),  # midnight, now UTC+1
              ("Europe/Paris", date(2026, 11, 1)): at(2026, 10, 31, 23),
              ("Europe/Paris", date(2026, 11, 2)): at(2026, 11, 1, 23),
              ("America/Los_Angeles", date(2026, 10, 25)): at(2026, 10, 25, 7),
              ("America/Los_Angeles", date(2026, 10, 26)): at(2026, 10, 26, 7),
              ("America/Los_Angeles", date(2026, 11, 1)): at(2026, 11, 1, 7),  # midnight, still UTC-7
              ("America/Los_Angeles", date(2026, 11, 2)): at(2026, 11, 2, 8)})  # midnight, now UTC-8


@pytest.mark.parametrize(("start", "anchors", "from_", "until", "expected"), [SPRING, AUTUMN],
                         ids=["spring", "autumn"])
def test_renewals_fall_due_at_local_midnight_across_a_time_change(databases, db_kind, start, anchors, from_,
                                                                   until, expected):
    app = databases.fresh_app(db_kind, start=start)
    customers = monthly_customers(app, anchors)
    advance(app, from_ - app.clock.now())

    renewed = renewals_in_hourly_steps(app, until=until)

    assert renewed == {(customers[zone], period): issued_at for (zone, period), issued_at in expected.items()}


def test_a_batch_runs_log_line_says_its_batch_instant_seconds_and_counts():
    from renewly.payments.collect import CollectReport
    from renewly.retention.deletion import RetentionReport
    from renewly.scheduler import BatchFailed, batch_run_fields

    collect = CollectReport(attempted=3, succeeded=2, declined=1, collected={"EUR": 3800})
    assert batch_run_fields("collect", at(2026, 2, 1), collect, 0.01234) == {
        "batch": "collect", "at": "2026-02-01T00:00:00+00:00", "seconds": 0.012, "attempted": 3, "succeeded": 2,
        "declined": 1, "unknown": 0, "settled_by_janitor": 0, "collected": {"EUR": 3800}}
    retention = batch_run_fields("retention", at(2026, 2, 1), RetentionReport(gateway_failures=[4, 7]), 0.0)
    assert retention["gateway_failures"] == 2  # a list by its length
    failed = batch_run_fields("renew", at(2026, 2, 1), BatchFailed("a bug"), 1.0)
    assert failed == {"batch": "renew", "at": "2026-02-01T00:00:00+00:00", "seconds": 1.0, "reason": "a bug",
                      "did_anything": False}


def test_a_worker_runs_one_tick_at_the_boundary_of_a_batch_whose_work_has_come(app):
    subscribed(app, start=date(2026, 1, 2))

    assert tick_due(app, at(2026, 1, 1, 23, 59)) is None  # the renewal is due at midnight
    # Looked at half an hour late (a worker that was down), the tick is still midnight's: the
    # dates customers see do not depend on how often a worker looks.
    assert tick_due(app, at(2026, 1, 2, 0, 30)) == at(2026, 1, 2)
    [renew] = [item for item in schedule(app, at(2026, 1, 2, 0, 30)) if item.batch == "renew"]
    assert (renew.next_tick_at, renew.late_by, renew.last_run_at) == (at(2026, 1, 2), timedelta(minutes=30), None)

    run_tick(app, at(2026, 1, 2))

    assert tick_due(app, at(2026, 1, 2, 0, 30)) is None  # nothing left undone by that tick
    [renew] = [item for item in schedule(app, at(2026, 1, 2, 0, 30)) if item.batch == "renew"]
    assert (renew.last_run_at, renew.late_by) == (at(2026, 1, 2), timedelta(0))
    assert renew.next_tick_at is not None and renew.next_tick_at > at(2026, 1, 2)  # next month's renewal
    assert [(i["issue_date"], i["status"]) for i in list_invoices(app)] == [(date(2026, 1, 2), "paid")]


# -- the mail batch -------------------------------------------------------------------------------

def test_without_smtp_no_tick_runs_or_waits_for_a_mail_batch(app):
    from renewly.scheduler import BATCHES, WEBHOOKS, batches
    assert batches(app) == (*BATCHES[:-1], WEBHOOKS, BATCHES[-1]) and "mail" not in [batch.name for batch in BATCHES]


def test_with_smtp_a_tick_sends_what_it_wrote_before_retention_and_retries_on_the_clock(databases, db_kind):
    from datetime import timedelta

    from renewly.scheduler import advance, batches, run_all, schedule
    from tests.conftest import START
    from tests.mail.smtp_server import SmtpServer, mail_settings
    from tests.mail.test_delivery import rows, write_emails

    server = SmtpServer()  # down at first: nobody listens on its port
    app = databases.fresh_app(db_kind, mail=mail_settings(server.port, interval_minutes=5))
    assert [batch.name for batch in batches(app)][-3:] == ["mail", "webhooks", "retention"]
    write_emails(app, 3)

    [mail] = [run for run in run_all(app, app.clock.now()) if run.batch == "mail"]
    assert (mail.report.delivered, mail.report.to_retry) == (0, 3)
    [standing] = [item for item in schedule(app, app.clock.now()) if item.batch == "mail"]
    assert standing.work_at == START + timedelta(minutes=1)  # the first retry, a minute later
    assert standing.next_tick_at == START + timedelta(minutes=5)  # at the batch's next tick

    server.start()
    try:
        moved = advance(app, timedelta(minutes=10))
    finally:
        server.stop()
    assert [(run.batch, run.at) for run in moved.runs if run.batch == "mail"] == [
        ("mail", START + timedelta(minutes=5))]
    assert {row["delivered_at"] for row in rows(app).values()} == {START + timedelta(minutes=5)}
    assert len(server.mailbox.messages) == 3
