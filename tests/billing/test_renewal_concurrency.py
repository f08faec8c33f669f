"""Issue 2: running the renewal batch twice, late, or in two processes at once issues no second
invoice and leaves no gap in the numbers (R2.1)."""

from __future__ import annotations

import multiprocessing
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from renewly.adapters.db.tables import accounts, invoice_series, invoices, plans, subscriptions
from renewly.billing.renewals import renew_due
from renewly.bootstrap import App, bootstrap
from renewly.config.settings import load_settings
from renewly.scheduler import advance, run_all

ZONES = ("Europe/Paris", "America/Los_Angeles", "Pacific/Auckland", "UTC")
ANCHOR = date(2025, 12, 1)
# Past local midnight of 1 January in every zone above: each subscription owes December and January.
AS_OF = datetime(2026, 1, 1, 12, tzinfo=UTC)


def load_due_subscriptions(app: App, count: int, anchor: date = ANCHOR) -> None:
    """`count` accounts in the zones above, each with a monthly subscription starting on `anchor`
    that nothing has invoiced yet: set-based, as a data migration would bring them in."""
    now = app.clock.now()
    with app.engine.begin() as conn:
        plan_id = conn.execute(plans.insert().values(code="team", name="Team", interval="month", unit_amount=1900,
                                                     currency="EUR", created_at=now).returning(plans.c.id)).scalar_one()
        account_ids = conn.execute(accounts.insert().returning(accounts.c.id, sort_by_parameter_order=True), [{
            "name": f"Customer {n}", "locale": "fr" if n % 2 else "en", "timezone": ZONES[n % len(ZONES)],
            "currency": "EUR", "status": "active", "buyer_name": f"Customer {n} SAS",
            "buyer_country": "FR" if n % 3 else "US", "created_at": now, "updated_at": now,
        } for n in range(count)]).scalars().all()
        conn.execute(subscriptions.insert(), [{
            "account_id": account_id, "plan_id": plan_id, "seats": 1 + n % 5, "status": "active",
            "anchor_date": anchor, "periods_invoiced": 0, "created_at": now,
            "renews_at": datetime.combine(anchor, datetime.min.time(), ZoneInfo(ZONES[n % len(ZONES)])),
        } for n, account_id in enumerate(account_ids)])


def assert_invoiced_once_without_gaps(app: App, count: int, periods: list[date]) -> None:
    """Each subscription invoiced exactly once for each of `periods`, numbered 1..N in one series."""
    with app.engine.connect() as conn:
        rows = conn.execute(select(invoices.c.subscription_id, invoices.c.period_start, invoices.c.series,
                                   invoices.c.sequence).where(invoices.c.kind == "invoice")).all()
        counters = dict(conn.execute(select(invoice_series.c.series, invoice_series.c.next_sequence)).all())
        moved_on = conn.execute(select(func.count()).select_from(subscriptions)
                                .where(subscriptions.c.periods_invoiced == len(periods))).scalar_one()
    invoiced = sorted((row.subscription_id, row.period_start) for row in rows)
    assert len(invoiced) == len(set(invoiced)), "a (subscription, period) was invoiced twice"
    assert {period for _, period in invoiced} == set(periods)
    assert len(invoiced) == count * len(periods) and moved_on == count
    assert {row.series for row in rows} == {"2026"}
    assert sorted(row.sequence for row in rows) == list(range(1, len(rows) + 1)), "a gap in the numbers"
    assert counters == {"2026": len(rows) + 1}


def renew_in_another_process(url: str, gateway_url: str, as_of: datetime, ready, results) -> None:
    """A second (or first) `renewly renew` worker: its own process, engine and connections."""
    try:
        app = bootstrap(load_settings(config_file=None, database_url=url, clock="test",
                                      batches={"chunk_size": 100}, payments={"simulator_url": gateway_url}))
        slices = []
        ready.wait(timeout=120)  # both start together, so that their slices interleave
        report = renew_due(app, as_of, on_slice=slices.append)
        app.engine.dispose()
        results.put((report.invoices_issued, len(slices)))
    except Exception as error:  # reported to the test, which fails with it instead of waiting
        results.put(repr(error))
        raise


def renew_in_two_processes_at_once(app: App, tmp_path) -> list[tuple[int, int]]:
    spawn = multiprocessing.get_context("spawn")
    ready, results = spawn.Barrier(2), spawn.Queue()
    workers = [spawn.Process(target=renew_in_another_process,
                             args=(app.settings.database_url, f"sqlite:///{tmp_path}/gateway-{n}.db", AS_OF,
                                   ready, results)) for n in range(2)]
    for worker in workers:
        worker.start()
    reports = [results.get(timeout=300) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    assert [worker.exitcode for worker in workers] == [0, 0], reports
    return reports


def test_r2_1_two_processes_renewing_at_once_on_postgresql_share_the_work_and_issue_each_invoice_once(
        pg_app, tmp_path):
    load_due_subscriptions(pg_app, 3000)

    reports = renew_in_two_processes_at_once(pg_app, tmp_path)

    assert sum(issued for issued, _ in reports) == 6000
    assert all(issued > 0 for issued, _ in reports), f"one process did all the work: {reports}"
    assert_invoiced_once_without_gaps(pg_app, 3000, [date(2025, 12, 1), date(2026, 1, 1)])


def test_r2_1_two_processes_renewing_at_once_on_sqlite_take_turns_and_issue_each_invoice_once(databases, tmp_path):
    app = databases.fresh_app("sqlite")
    load_due_subscriptions(app, 1000)

    reports = renew_in_two_processes_at_once(app, tmp_path)

    assert sum(issued for issued, _ in reports) == 2000
    assert_invoiced_once_without_gaps(app, 1000, [date(2025, 12, 1), date(2026, 1, 1)])


def test_r2_1_running_the_batch_twice_in_a_row_issues_nothing_the_second_time(app):
    load_due_subscriptions(app, 200)

    first = renew_due(app, AS_OF, slice_size=30)
    second = renew_due(app, AS_OF, slice_size=30)

    assert (first.invoices_issued, first.subscriptions_renewed) == (400, 200)
    assert (second.invoices_issued, second.subscriptions_renewed) == (0, 0)
    assert_invoiced_once_without_gaps(app, 200, [date(2025, 12, 1), date(2026, 1, 1)])


def test_r2_1_a_late_batch_invoices_each_missed_period_once_and_the_next_run_nothing(app):
    load_due_subscriptions(app, 200, anchor=date(2026, 1, 1))
    advance(app, timedelta(days=75), run_batches=False)  # the service was down until 17 March

    late = renew_due(app, app.clock.now(), slice_size=30)
    [again] = [run.report for run in run_all(app, app.clock.now()) if run.batch == "renew"]
    advance(app, timedelta(hours=6))  # nor do the batches on the next ticks

    assert (late.invoices_issued, again.invoices_issued) == (600, 0)
    assert_invoiced_once_without_gaps(app, 200, [date(2026, 1, 1), date(2026, 2, 1), date(2026, 3, 1)])
