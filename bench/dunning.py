"""The dunning benchmark (issue 4): the daily sweep follows the due work, on PostgreSQL.

    .venv/bin/python bench/dunning.py             # 10,000 due among 1,000,000 accounts; 1,000,000 due at once
    .venv/bin/python bench/dunning.py --quick     # 10,000 due among 100,000 accounts; 10,000 due at once
    .venv/bin/python bench/dunning.py --tiny      # 50 due among 500 accounts; 200 at once: tests/test_benches.py

Scenario 1, the ratio: the same 10,000 cases fall due today (day 2 of their renewal: a charge
request each; the step's e-mail waits for the charge's answer, which the payment batch gives).
The sweep (`run_dunning`, the code production runs) is timed with those 10,000 accounts alone in
the database, then again after 990,000 more accounts are loaded among them (the due ones are
every 100th account id): healthy ones with a paid renewal invoice, and one in ten in dunning with
a step still to come, so that the case table is not trivially small. Target: time(1,000,000
accounts) / time(10,000 accounts) <= 1.5.
Scenario 2, a mass-decline day: 1,000,000 cases due at once, on the same day-2 step, in a
database of their own. Target: <= 60 s without gateway latency (the sweep only records charge
requests; the payment batch makes the calls), i.e. >= 16,000 cases/s.

Every account has an owner, a card, a subscription and its renewal invoice with a first charge
attempt (declined where in dunning); one in five has a billing contact besides the owner; four
time zones, two languages. The data is loaded with INSERT ... SELECT generate_series. Every sweep
is checked (one dunning_steps row per due case naming its e-mail, one payment_retries row per
charge request, no e-mail yet, each case awaiting its charge's answer and then day 4 at local
midnight, nothing done to the cases not due), then undone, so that it can be timed again: the
best of --repeat runs is kept, as other work on a shared machine can only slow a run down. Each
sweep also prints its CPU time per case, Python and PostgreSQL backends (read in /proc, as
bench/renewal.py does), which moves much less than wall time when the cores are shared. The last
line is key=value pairs, for scripts.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import Engine, text

from renewly.bootstrap import App, bootstrap
from renewly.config.settings import load_settings
from renewly.dunning.sweep import WORKERS, DunningReport, run_dunning

sys.path.insert(0, str(Path(__file__).parent))
from renewal import (  # noqa: E402  (the database, CPU and RSS helpers of bench/renewal.py)
    COUNTRIES,
    ZONES,
    CpuClock,
    bench_database,
    bench_settings,
    checkpoint,
    current_rss_mb,
    format_figure,
    peak_rss_mb,
)

DAY0 = date(2026, 2, 1)  # the renewal date of every due case
# Noon UTC on day 2: past local midnight in every zone, Tokyo to New York, and before day 3's.
AS_OF = datetime(2026, 2, 3, 12, tzinfo=UTC)
DUE_STEP = 1  # day 2 of the default policy: a charge attempt, then the e-mail payment_failed_2; next, day 4
DEFAULT_POLICY_STEPS = ("payment_failed_1", "payment_failed_2")  # the names of its first two steps
TOTAL_PER_SEAT = 2280  # 19.00 EUR and 20 % VAT


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="a small run: 10,000 due among 100,000 accounts, 10,000 due at once")
    parser.add_argument("--tiny", action="store_true",
                        help="a check that the bench still runs and verifies its sweeps, not a measure: 50 due "
                             "among 500 accounts, 200 due at once, one sweep each, slices of 20")
    parser.add_argument("--due", type=int, default=None, help="cases due today in scenario 1 "
                                                              "(default 10,000; --tiny 50)")
    parser.add_argument("--accounts", type=int, default=None, help="accounts in scenario 1's large run "
                                                                   "(default 1,000,000; --quick 100,000; --tiny 500)")
    parser.add_argument("--not-due", type=int, default=None, help="about this many of them in dunning, their "
                                                                  "next step to come (default: a tenth)")
    parser.add_argument("--mass", type=int, default=None, help="cases due at once in scenario 2 "
                                                               "(default 1,000,000; --quick 10,000; --tiny 200; "
                                                               "0: skip)")
    parser.add_argument("--repeat", type=int, default=None, help="timed sweeps per run of scenario 1 (the best is "
                                                                 "kept; default 3, --tiny 1)")
    parser.add_argument("--mass-repeat", type=int, default=1, help="timed sweeps of scenario 2 (the best is kept)")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres",
                        help="a server where the bench may create and drop a database")
    parser.add_argument("--slice-size", type=int, default=None,
                        help="default: the batch setting chunk_size; --tiny: 20")
    args = parser.parse_args()
    due = args.due if args.due is not None else 50 if args.tiny else 10_000
    total = args.accounts or (500 if args.tiny else 100_000 if args.quick else 1_000_000)
    mass = args.mass if args.mass is not None else 200 if args.tiny else 10_000 if args.quick else 1_000_000
    repeat = args.repeat if args.repeat is not None else 1 if args.tiny else 3
    not_due = args.not_due if args.not_due is not None else total // 10
    if not 0 < due <= total or not 0 <= not_due <= total - due:
        sys.exit("bench: expected 0 < --due <= --accounts and --not-due <= --accounts - --due")
    # The due accounts are every stride-th one, so that they are spread over the whole table.
    layout = Layout(due=due, stride=total // due, later_every=total // not_due if not_due else 0)
    # A tiny run takes several slices all the same, so that a sweep split in slices is what is checked.
    slice_size = args.slice_size or (20 if args.tiny else load_settings(config_file=None).batches.chunk_size)

    with tempfile.TemporaryDirectory() as folder, bench_database(args.postgres_url) as url:
        app, cpu = make_app(url, slice_size, folder)
        load(app, layout, f"SELECT k * {layout.stride} AS g FROM generate_series(1, {layout.due}) AS k")
        small = measure_sweep(app, cpu, layout, repeat, f"{layout.due:,} due among {layout.due:,} accounts")
        load(app, layout, f"SELECT g FROM generate_series(1, {total}) AS g "
                          f"WHERE g % {layout.stride} <> 0 OR g > {layout.due * layout.stride}")
        not_due = count_not_due(app.engine)
        large = measure_sweep(app, cpu, layout, repeat, f"{layout.due:,} due among {total:,} accounts")
        app.engine.dispose()
    t_small, t_large = small["seconds"], large["seconds"]
    ratio = t_large / t_small
    print(f"scenario 1: {t_small:.3f} s with {layout.due:,} accounts, {t_large:.3f} s with {total:,} accounts "
          f"({not_due:,} more in dunning, not due today): ratio {ratio:.2f} (target <= 1.5)")

    mass_s, mass_cpu = 0.0, {"python_us": 0.0, "postgres_us": 0.0}
    if mass:
        everyone = Layout(due=mass, stride=1, later_every=0)
        with tempfile.TemporaryDirectory() as folder, bench_database(args.postgres_url) as url:
            app, cpu = make_app(url, slice_size, folder)
            load(app, everyone, f"SELECT g FROM generate_series(1, {mass}) AS g")
            mass_cpu = measure_sweep(app, cpu, everyone, args.mass_repeat, f"mass decline, {mass:,} due at once")
            mass_s = mass_cpu["seconds"]
            app.engine.dispose()
        print(f"scenario 2: {mass:,} cases in {mass_s:.2f} s: {mass / mass_s:,.0f} cases/s "
              f"(target >= 16,000 cases/s, 1,000,000 in <= 60 s)")

    figures = {"due": layout.due, "accounts": total, "not_due": not_due, "t_small_s": t_small, "t_large_s": t_large,
               "ratio": ratio, "small_cpu_us": small["python_us"] + small["postgres_us"],
               "large_cpu_us": large["python_us"] + large["postgres_us"], "mass_cases": mass, "mass_s": mass_s,
               "mass_cases_per_s": mass / mass_s if mass else 0.0, "mass_python_us": mass_cpu["python_us"],
               "mass_postgres_us": mass_cpu["postgres_us"], "slice": slice_size, "workers": WORKERS,
               "peak_rss_mb": peak_rss_mb()}
    print(" ".join(f"{key}={format_figure(value)}" for key, value in figures.items()))


@dataclass(frozen=True)
class Layout:
    """Which account is which, by its id g (also the id of its card, subscription, invoice and case)."""

    due: int  # g is due today when g % stride = 0 and g <= due * stride
    stride: int
    later_every: int  # otherwise, g is in dunning with a step still to come when g % later_every = 1; else healthy

    def part(self) -> str:
        later = f"WHEN g % {self.later_every} = 1 THEN 'later' " if self.later_every else ""
        return (f"(CASE WHEN g % {self.stride} = 0 AND g <= {self.due * self.stride} THEN 'due' "
                f"{later}ELSE 'healthy' END)")

    def is_due(self, column: str = "id") -> str:
        return f"({column} % {self.stride} = 0 AND {column} <= {self.due * self.stride})"


def make_app(url: str, slice_size: int, folder: str) -> tuple[App, CpuClock]:
    """The App the sweep runs with (test clock at AS_OF), and a CPU clock that knows all its backends."""
    settings = bench_settings(database_url=url, clock="test", batches={"chunk_size": slice_size},
                              payments={"simulator_url": f"sqlite:///{Path(folder) / 'gateway.db'}"})
    app = bootstrap(settings, upgrade=False)  # bench_database has migrated it
    cpu = CpuClock(app.engine)  # before the first connection
    app.test_clock.set(AS_OF)
    return app, cpu


def load(app: App, layout: Layout, ids: str) -> None:
    """Accounts numbered by the query `ids`, each with an owner, a card, a subscription and its renewal invoice.

    Due ones: the invoice of DAY0 declined, a case that took step 0 and is due today. Later
    ones: in dunning too, their next step to come (day 0 yesterday, or day 4 already taken).
    Healthy ones: the invoice paid. One account in five has a billing contact besides the owner.
    """
    started = time.perf_counter()
    policy = app.policy
    zones = "ARRAY[" + ", ".join(f"'{zone}'" for zone in ZONES) + "]"
    countries = "ARRAY[" + ", ".join(f"'{country}'" for country in COUNTRIES) + "]"
    part = layout.part()
    # Its renewal date, the last step its case took, its time zone.
    day0 = f"(CASE WHEN {part} = 'later' AND g / {max(layout.later_every, 1)} % 2 = 0 THEN DATE '2026-02-02' " \
           f"WHEN {part} = 'later' THEN DATE '2026-01-20' ELSE DATE '2026-02-01' END)"
    last_step = f"(CASE WHEN {part} = 'later' AND g / {max(layout.later_every, 1)} % 2 = 1 THEN 2 ELSE 0 END)"
    zone = f"({zones})[1 + g % {len(ZONES)}]"
    issued = f"(({day0})::timestamp AT TIME ZONE {zone})"  # local midnight of day 0
    steps = policy.steps
    next_step_day = f"({day0} + (ARRAY[{', '.join(str(s.day) for s in steps)}])[{last_step} + 2])"
    source = f"({ids}) AS source"
    statements = [
        f"""INSERT INTO accounts (id, name, locale, timezone, currency, status, buyer_name, buyer_line1,
                                  buyer_postcode, buyer_city, buyer_country, created_at, updated_at, banner)
            SELECT g, 'Account ' || g, CASE WHEN g % 3 = 0 THEN 'fr' ELSE 'en' END, {zone}, 'EUR',
                   CASE WHEN {part} = 'healthy' THEN 'active' ELSE 'past_due' END, 'Customer ' || g || ' Ltd',
                   g || ' Market Street', lpad((g % 100000)::text, 5, '0'), 'Springfield',
                   ({countries})[1 + g % {len(COUNTRIES)}], :created, :created,
                   CASE WHEN {last_step} = 2 THEN 'owner_and_admins' ELSE 'none' END
            FROM {source}""",
        f"""INSERT INTO members (account_id, email, role, created_at)
            SELECT g, 'owner' || g || '@example.com', 'owner', :created FROM {source}""",
        f"""INSERT INTO billing_contacts (account_id, email, status, requested_by, requested_at, decided_at)
            SELECT g, 'finance' || g || '@example.com', 'active', 'finance' || g || '@example.com', :created,
                   :created
            FROM {source} WHERE g % 5 = 0""",
        f"""INSERT INTO cards (id, account_id, token, brand, last4, exp_month, exp_year, status, added_by, added_at)
            SELECT g, g, 'pm_bench_' || g, 'visa', '0341', 12, 2040, 'active', 'owner' || g || '@example.com',
                   :created
            FROM {source}""",
        f"""INSERT INTO subscriptions (id, account_id, plan_id, seats, status, anchor_date, periods_invoiced,
                                       current_period_start, current_period_end, renews_at, created_at)
            SELECT g, g, 1, 1 + g % 10, 'active', ({day0} - interval '1 month')::date, 2, {day0},
                   ({day0} + interval '1 month')::date,
                   ({day0} + interval '1 month')::timestamp AT TIME ZONE {zone}, :created
            FROM {source}""",
        f"""INSERT INTO invoices (id, number, series, sequence, kind, account_id, subscription_id, issue_date,
                                  period_start, period_end, currency, subtotal, tax_rate, tax, total, locale,
                                  seller, buyer, status, issued_at, status_changed_at)
            SELECT g, '2026-' || lpad(g::text, 7, '0'), '2026', g, 'invoice', g, g, {day0}, {day0},
                   ({day0} + interval '1 month')::date, 'EUR', 1900 * (1 + g % 10), '20', 380 * (1 + g % 10),
                   {TOTAL_PER_SEAT} * (1 + g % 10), CASE WHEN g % 3 = 0 THEN 'fr' ELSE 'en' END,
                   CAST(:seller AS jsonb),
                   jsonb_build_object('name', 'Customer ' || g || ' Ltd', 'line1', g || ' Market Street',
                                      'line2', '', 'postcode', lpad((g % 100000)::text, 5, '0'),
                                      'city', 'Springfield', 'country', ({countries})[1 + g % {len(COUNTRIES)}],
                                      'vat_id', ''),
                   CASE WHEN {part} = 'healthy' THEN 'paid' ELSE 'open' END, {issued},
                   CASE WHEN {part} = 'healthy' THEN {issued} + interval '1 hour' END
            FROM {source}""",
        f"""INSERT INTO payment_attempts (id, invoice_id, account_id, number, idempotency_key, card_id, amount,
                                          currency, status, decline_code, reason, created_at, settled_at,
                                          lease_expires_at)
            SELECT g, g, g, 1, 'invoice-' || g || '-attempt-1', g, {TOTAL_PER_SEAT} * (1 + g % 10), 'EUR',
                   CASE WHEN {part} = 'healthy' THEN 'succeeded' ELSE 'declined' END,
                   CASE WHEN {part} = 'healthy' THEN NULL ELSE 'card_declined' END, 'issued',
                   {issued} + interval '1 hour', {issued} + interval '1 hour', {issued} + interval '1 hour'
            FROM {source}""",
        f"""INSERT INTO dunning_cases (id, account_id, day0, status, last_step_name, last_step_day, next_step_at,
                                       opened_at)
            SELECT g, g, {day0}, 'open', (CAST(:names AS text[]))[{last_step} + 1],
                   (CAST(:days AS int[]))[{last_step} + 1], ({next_step_day})::timestamp AT TIME ZONE {zone},
                   {issued} + interval '1 hour'
            FROM {source} WHERE {part} <> 'healthy'""",
        f"""INSERT INTO dunning_case_invoices (invoice_id, case_id, added_at)
            SELECT g, g, {issued} + interval '1 hour' FROM {source} WHERE {part} <> 'healthy'""",
        # The steps each case already took, on their day, as a sweep on time would have recorded them.
        f"""INSERT INTO dunning_steps (case_id, step, name, day, policy_version, taken_at, email, charge_requested)
            SELECT c.id, s.i, (CAST(:names AS text[]))[s.i + 1], (CAST(:days AS int[]))[s.i + 1], :version,
                   c.opened_at + make_interval(days => (CAST(:days AS int[]))[s.i + 1]),
                   (CAST(:emails AS text[]))[s.i + 1], CASE WHEN s.i = 0 THEN 0 ELSE 1 END
            FROM {source} JOIN dunning_cases AS c ON c.id = source.g, generate_series(0, {last_step}) AS s(i)""",
        # Scheduled under the policy in force: the sweep measured reschedules nothing.
        """INSERT INTO dunning_schedule (id, schedule_key, policy_version, changed_at)
           VALUES (1, :schedule, :version, :created) ON CONFLICT DO NOTHING""",
    ]
    params = {"created": datetime(2025, 6, 1, tzinfo=UTC), "seller": json.dumps(app.settings.seller.snapshot()),
              "names": [s.name for s in steps], "days": [s.day for s in steps], "emails": [s.email for s in steps],
              "version": policy.version, "schedule": policy.schedule_key}
    with app.engine.begin() as conn:
        conn.execute(text("INSERT INTO plans (id, code, name, interval, unit_amount, currency, created_at) "
                          "VALUES (1, 'team', 'Team', 'month', 1900, 'EUR', :created) ON CONFLICT DO NOTHING"), params)
        for statement in statements:
            conn.execute(text(statement), params)
        for table in ("accounts", "cards", "subscriptions", "invoices", "payment_attempts", "dunning_cases"):
            conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"))
        conn.execute(text("INSERT INTO invoice_series (series, next_sequence) SELECT '2026', max(sequence) + 1 "
                          "FROM invoices ON CONFLICT (series) DO UPDATE SET next_sequence = excluded.next_sequence"))
        count = conn.execute(text(f"SELECT count(*) FROM {source}")).scalar_one()
    vacuum(app.engine)
    print(f"loaded {count:,} accounts in {time.perf_counter() - started:.1f} s")


def count_not_due(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(text("SELECT count(*) FROM dunning_cases WHERE status = 'open' AND next_step_at > :at"),
                            {"at": AS_OF}).scalar_one()


def vacuum(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")


def measure_sweep(app: App, cpu: CpuClock, layout: Layout, repeat: int, label: str) -> dict[str, float]:
    """The best of `repeat` sweeps of the same due cases, each checked, then undone; with the CPU
    time per case of this process and of the PostgreSQL backends in the best one."""
    runs = []
    for run in range(repeat):
        checkpoint(app.engine)
        rss = current_rss_mb()
        client, server = cpu.read()
        started = time.perf_counter()
        report = run_dunning(app, AS_OF)
        elapsed = time.perf_counter() - started
        client_after, server_after = cpu.read()
        verify(app.engine, layout, report)
        undo_sweep(app.engine, layout)
        python_us = (client_after - client) / layout.due * 1e6
        server_us = (server_after - server) / layout.due * 1e6 if server is not None and server_after is not None \
            else float("nan")
        runs.append({"seconds": elapsed, "python_us": python_us, "postgres_us": server_us})
        print(f"{label}: sweep {run + 1} in {elapsed:.3f} s, {layout.due / elapsed:,.0f} cases/s, CPU per case "
              f"{python_us:.1f} µs Python + {server_us:.1f} µs PostgreSQL; RSS {rss:.0f} MB before, "
              f"{current_rss_mb():.0f} MB after, peak so far {peak_rss_mb():.0f} MB")
    return min(runs, key=lambda figures: figures["seconds"])


def verify(engine: Engine, layout: Layout, report: DunningReport) -> None:
    """Each due case took step 1 once: one step row, one charge request, its e-mail waiting for the
    charge's answer (none written yet); nothing happened to the others."""
    due = layout.due
    params = {"at": AS_OF, "step": DUE_STEP, "name": DEFAULT_POLICY_STEPS[DUE_STEP]}
    with engine.connect() as conn:
        steps = conn.execute(text(
            f"SELECT count(*), count(DISTINCT case_id), count(*) FILTER (WHERE {layout.is_due('case_id')} AND"
            f" step = :step AND charge_requested = 1 AND email = 'payment_failed_2')"
            f" FROM dunning_steps WHERE taken_at = :at"), params).one()
        retries = conn.execute(text(
            f"SELECT count(*), count(DISTINCT invoice_id), count(*) FILTER (WHERE {layout.is_due('invoice_id')})"
            f" FROM payment_retries WHERE requested_at = :at"), params).one()
        emails = conn.execute(text(
            f"SELECT count(*), count(DISTINCT (payload->>'case_id')::bigint),"
            f" count(*) FILTER (WHERE payload->>'kind' = 'payment_failed_2' AND {layout.is_due('account_id')}),"
            f" coalesce(sum(jsonb_array_length(payload->'recipients')), 0)"
            f" FROM outbox WHERE topic = 'email' AND created_at = :at"), params).one()
        # Each due case now awaits its charge's answer, then day 4 (local midnight in its account's zone).
        cases = conn.execute(text(
            f"SELECT count(*) FILTER (WHERE {layout.is_due('c.id')} AND c.last_step_name = :name AND"
            f" c.awaiting_step_name = :name AND c.next_step_at = (c.day0 + 4)::timestamp AT TIME ZONE a.timezone),"
            f" count(*) FILTER (WHERE c.next_step_at <= :at)"
            f" FROM dunning_cases AS c JOIN accounts AS a ON a.id = c.account_id"), params).one()
    seen = (tuple(steps), tuple(retries), tuple(emails), tuple(cases),
            (report.cases_opened, report.steps_taken, report.emails, report.charges_requested, report.notices_waiting,
             report.cancelled))
    wanted = ((due, due, due), (due, due, due), (0, 0, 0, 0), (due, 0), (0, due, 0, due, due, 0))
    if seen != wanted:
        sys.exit(f"bench: wrong result after the sweep: (steps, retries, e-mails, cases, report) = {seen}, "
                 f"expected {wanted}")


def undo_sweep(engine: Engine, layout: Layout) -> None:
    """Back to the loaded state: the due cases on step 0 and due again, nothing written at AS_OF."""
    with engine.begin() as conn:
        for table, column in (("dunning_steps", "taken_at"), ("payment_retries", "requested_at"),
                              ("outbox", "created_at")):
            conn.execute(text(f"DELETE FROM {table} WHERE {column} = :at"), {"at": AS_OF})
        conn.execute(text(f"UPDATE dunning_cases SET last_step_name = :first, last_step_day = 0, "
                          f"awaiting_step_name = NULL, next_step_at = (day0 + 2)::timestamp AT TIME ZONE a.timezone "
                          f"FROM accounts AS a WHERE a.id = dunning_cases.account_id AND "
                          f"{layout.is_due('dunning_cases.id')}"), {"first": DEFAULT_POLICY_STEPS[0]})
        conn.execute(text(f"UPDATE accounts SET status = 'past_due', banner = 'none' WHERE {layout.is_due()}"))
    vacuum(engine)


if __name__ == "__main__":
    main()
