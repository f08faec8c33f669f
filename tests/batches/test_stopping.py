"""Asked to stop (the first Ctrl-C), a batch finishes the slice in hand and starts no other: what
it did stays done, nothing is left pending, and the rest stays due for the next run."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from renewly.adapters.db.tables import batch_runs
from renewly.billing.invoices import list_invoices
from renewly.billing.renewals import renew_due
from renewly.payments.collect import collect_due
from renewly.ports import StopRequest
from renewly.scheduler import advance, run_all, still_due
from tests.builders import subscribed, team_plan
from tests.payment_builders import attempts, paying_customer


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def test_the_stop_request_is_seen_from_any_thread_once_asked():
    import threading

    stop = StopRequest()
    assert not stop.asked
    asker = threading.Thread(target=stop.ask)
    asker.start(), asker.join()
    assert stop.asked


def test_a_renewal_batch_asked_to_stop_finishes_its_slice_and_leaves_the_rest_due(app):
    plan = team_plan(app)
    for n in range(3):
        subscribed(app, plan=plan, card=None, name=f"Customer {n}", owner=f"owner{n}@acme.test")
    advance(app, timedelta(days=31), run_batches=False)  # three renewals due

    report = renew_due(app, app.clock.now(), slice_size=1, on_slice=lambda _: app.stop.ask(), workers=1)

    assert (report.invoices_issued, report.subscriptions_renewed) == (1, 1)
    assert "renew" in still_due(app, app.clock.now())
    app.stop = StopRequest()  # the next run
    assert renew_due(app, app.clock.now(), slice_size=1, workers=1).invoices_issued == 2
    assert len(list_invoices(app)) == 6


def test_a_payment_batch_asked_to_stop_records_every_answer_of_the_slices_at_the_gateway(databases, db_kind):
    app = databases.fresh_app(db_kind, payments={"slice_size": 1})
    plan = team_plan(app)
    for n in range(4):
        paying_customer(app, plan=plan, name=f"Customer {n}", owner=f"owner{n}@acme.test")

    report = collect_due(app, app.clock.now(), on_slice=lambda _: app.stop.ask())

    # The slice asked to stop in, and the next one already at the gateway (the batch claims a
    # slice while the one before is being answered): both answered and recorded, none after.
    assert (report.attempted, report.succeeded) == (2, 2)
    assert sorted(a["status"] for a in attempts(app)) == ["succeeded", "succeeded"]
    assert sorted(i["status"] for i in list_invoices(app)) == ["open", "open", "paid", "paid"]
    assert still_due(app, app.clock.now()) == ["collect"]
    app.stop = StopRequest()
    assert collect_due(app, app.clock.now()).attempted == 2
    assert {i["status"] for i in list_invoices(app)} == {"paid"}


def test_an_advance_asked_to_stop_leaves_the_clock_at_the_last_tick_begun_and_runs_no_other_batch(app):
    plan = team_plan(app)
    for n, start in enumerate((date(2026, 1, 2), date(2026, 1, 3), date(2026, 1, 5))):
        subscribed(app, plan=plan, start=start, name=f"Customer {n}", owner=f"owner{n}@acme.test")

    def stop_after_the_first_renewal(run) -> None:
        if run.batch == "renew" and run.report.did_anything:
            app.stop.ask()

    moved = advance(app, timedelta(days=7), on_run=stop_after_the_first_renewal)

    assert (moved.stopped, moved.now, moved.target) == (True, at(2026, 1, 2), at(2026, 1, 8))
    assert app.clock.now() == at(2026, 1, 2)  # not past what the batches did
    assert [(run.batch, run.report.did_anything) for run in moved.runs] == [
        ("collect", False), ("dunning", False), ("renew", True)]  # no other batch after it
    assert [(i["issue_date"], i["status"]) for i in list_invoices(app)] == [(date(2026, 1, 2), "open")]
    assert attempts(app) == []  # nothing pending: the charge was never asked
    assert still_due(app, app.clock.now()) == ["collect"]

    app.stop = StopRequest()  # the next run finishes that tick, the next advance goes on
    assert [run.batch for run in run_all(app, app.clock.now())] == [
        "collect", "dunning", "renew", "void-verifications", "webhooks", "retention"]
    assert still_due(app, app.clock.now()) == []
    assert advance(app, timedelta(days=6)).now == at(2026, 1, 8)
    assert [(i["issue_date"], i["status"]) for i in list_invoices(app)] == [
        (date(2026, 1, 2), "paid"), (date(2026, 1, 3), "paid"), (date(2026, 1, 5), "paid")]


def test_a_run_asked_to_stop_reports_only_the_batches_that_ran(app):
    subscribed(app, card=None)
    advance(app, timedelta(days=31), run_batches=False)
    app.stop.ask()  # before anything: nothing runs, nothing is recorded
    assert run_all(app, app.clock.now()) == []
    assert "renew" in still_due(app, app.clock.now())
    with app.engine.connect() as conn:
        assert conn.execute(select(batch_runs)).all() == []


def test_an_advance_stopped_in_its_last_tick_does_not_move_the_clock_past_it(app):
    """The work its last tick left falls due again only at the next tick, past the target: the
    clock must stay at the tick stopped short all the same, not jump to the target."""
    subscribed(app, start=date(2026, 1, 2))

    def stop_after_the_renewal(run) -> None:
        if run.batch == "renew" and run.report.did_anything:
            app.stop.ask()

    moved = advance(app, timedelta(days=1, minutes=30), on_run=stop_after_the_renewal)

    assert (moved.stopped, moved.now, app.clock.now()) == (True, at(2026, 1, 2), at(2026, 1, 2))
    assert still_due(app, app.clock.now()) == ["collect"]


def test_a_dunning_sweep_asked_to_stop_takes_no_further_slice(databases, db_kind, monkeypatch):
    from renewly.dunning import sweep as dunning

    app = databases.fresh_app(db_kind)
    plan = team_plan(app)
    for n in range(3):
        subscribed(app, plan=plan, card=None, name=f"Customer {n}", owner=f"owner{n}@acme.test")
    applied = dunning.apply_decisions

    def apply_then_stop(*args, **named) -> None:
        applied(*args, **named)
        app.stop.ask()

    monkeypatch.setattr(dunning, "apply_decisions", apply_then_stop)
    report = dunning.run_dunning(app, app.clock.now(), slice_size=1, workers=1)
    assert (report.cases_opened, report.steps_taken) == (3, 1)
    monkeypatch.setattr(dunning, "apply_decisions", applied)
    app.stop = StopRequest()
    assert dunning.run_dunning(app, app.clock.now(), slice_size=1, workers=1).steps_taken == 2
