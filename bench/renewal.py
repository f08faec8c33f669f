"""The renewal benchmark (issue 2): N accounts renewing on the same day, on PostgreSQL.

    .venv/bin/python bench/renewal.py                      # 100,000 accounts
    .venv/bin/python bench/renewal.py --accounts 1000000
    .venv/bin/python bench/renewal.py --quick              # 10,000 accounts, a few seconds
    .venv/bin/python bench/renewal.py --tiny               # 200 accounts in slices of 64: tests/test_benches.py

It creates a database of its own on the server of --postgres-url, loads N accounts and their
subscriptions in a few set-based statements, runs the renewal batch (`renew_due`, the code
production runs) and checks the result: N invoices numbered 1..N without a gap, N lines, N
outbox rows. Then it measures a bound in the same database: COPY of as many rows of the same
shape (invoice, line, outbox) from Python into scratch tables, and prints the ratio of the two
rates. A smaller run on SQLite follows. The last line is key=value pairs, for scripts.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg.types.json import Jsonb
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource
from sqlalchemy import Engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

from renewly.adapters.clock import SystemClock
from renewly.adapters.db.engine import make_engine, upgrade
from renewly.adapters.db.tables import accounts, plans, subscriptions
from renewly.billing.renewals import renew_due
from renewly.bootstrap import App, bootstrap
from renewly.config.settings import Settings, load_settings

ANCHOR = date(2026, 1, 1)
ANCHOR_INSTANT = datetime(2026, 1, 1, tzinfo=UTC)
RENEWAL_DAY = date(2026, 2, 1)
# Noon UTC on the renewal day: past local midnight in every zone below, Tokyo to New York.
AS_OF = datetime(2026, 2, 1, 12, tzinfo=UTC)
ZONES = ("UTC", "Europe/Paris", "America/New_York", "Asia/Tokyo")
COUNTRIES = ("FR", "DE", "US", "JP", "GB", "ES", "IT", "NL")
TOTAL_PER_SEAT = 1900


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="a small run: 10,000 accounts")
    parser.add_argument("--tiny", action="store_true",
                        help="a check that the bench still runs and verifies its result, not a measure: "
                             "200 accounts, 100 on SQLite, slices of 64")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres",
                        help="a server where the bench may create and drop a database")
    parser.add_argument("--slice-size", type=int, default=None,
                        help="default: the batch setting chunk_size; --tiny: 64")
    parser.add_argument("--sqlite-accounts", type=int, default=None, help="default: min(accounts, 20000); --tiny: 100")
    args = parser.parse_args()
    count = 200 if args.tiny else 10_000 if args.quick else args.accounts
    sqlite_default = 100 if args.tiny else min(count, 20_000)
    sqlite_count = args.sqlite_accounts if args.sqlite_accounts is not None else sqlite_default

    # A tiny run takes several slices all the same: the numbering must stay gapless across them.
    slice_size = args.slice_size or (64 if args.tiny else load_settings(config_file=None).batches.chunk_size)
    with bench_database(args.postgres_url) as url:
        app = make_app(url, slice_size)
        cpu = CpuClock(app.engine)
        load_postgres(app.engine, count)
        # The bound is taken before and after the renewal and the better one kept: a slow moment
        # on a shared machine can only lower the ratio, never raise it.
        first_bound = measure(cpu, count, lambda: copy_bound(app.engine, count))
        renewal = measure(cpu, count, lambda: renew(app, count, "PostgreSQL"))
        second_bound = measure(cpu, count, lambda: copy_bound(app.engine, count))
        bound = max(first_bound, second_bound, key=lambda figures: figures["per_s"])
        app.engine.dispose()
    ratio = renewal["per_s"] / bound["per_s"]
    print(f"PostgreSQL: {renewal['per_s']:,.0f} invoices/s, COPY bound {bound['per_s']:,.0f} invoices/s, "
          f"ratio {ratio:.2f} (target >= 0.25)")
    cpu_ratio = None
    if renewal["cpu_us"] is not None:
        cpu_ratio = bound["cpu_us"] / renewal["cpu_us"]
        print(f"CPU per invoice, Python + PostgreSQL: renewal {renewal['cpu_us']:.1f} us "
              f"({renewal['client_us']:.1f} + {renewal['server_us']:.1f}), bound {bound['cpu_us']:.1f} us "
              f"({bound['client_us']:.1f} + {bound['server_us']:.1f}): ratio {cpu_ratio:.2f}")

    sqlite = {"per_s": None}
    if sqlite_count:
        with tempfile.TemporaryDirectory() as folder:
            app = make_app(f"sqlite:///{Path(folder) / 'bench.db'}", slice_size)
            upgrade(app.engine)
            load_sqlite(app.engine, sqlite_count)
            sqlite = renew(app, sqlite_count, "SQLite")
            app.engine.dispose()

    figures = {"accounts": count, "invoices_per_s": renewal["per_s"], "bound_per_s": bound["per_s"],
               "ratio": ratio, "sqlite_invoices_per_s": sqlite["per_s"], "peak_rss_mb": peak_rss_mb(),
               "rss_growth_mb": renewal["rss_growth_mb"], "seconds": renewal["seconds"], "slice": slice_size,
               "sqlite_accounts": sqlite_count, "cpu_us_per_invoice": renewal["cpu_us"],
               "bound_cpu_us_per_invoice": bound["cpu_us"], "cpu_ratio": cpu_ratio}
    print(" ".join(f"{key}={format_figure(value)}" for key, value in figures.items() if value is not None))


class bench_database:
    """A database of our own on the server, migrated, dropped at the end whatever happens; named
    after the process (and `suffix`, for a bench that makes several)."""

    def __init__(self, admin_url: str, suffix: str = "") -> None:
        self.admin_url = make_url(admin_url).set(drivername="postgresql")
        self.name = f"renewly_bench_{os.getpid()}" + (f"_{suffix}" if suffix else "")

    def __enter__(self) -> str:
        try:
            self.admin = psycopg.connect(self.admin_url.render_as_string(False), autocommit=True)
        except psycopg.OperationalError as error:
            sys.exit(f"bench: no PostgreSQL at {self.admin_url.render_as_string()}: {str(error).strip()}")
        self.admin.execute(f'CREATE DATABASE "{self.name}"')
        url = self.admin_url.set(database=self.name).render_as_string(False)
        engine = make_engine(url)
        try:
            upgrade(engine)
        except BaseException:
            self.__exit__()
            raise
        finally:
            engine.dispose()
        return url

    def __exit__(self, *_exc) -> None:
        self.admin.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
        self.admin.close()


def make_app(url: str, slice_size: int) -> App:
    settings = bench_settings(database_url=url, batches={"chunk_size": slice_size})
    return bootstrap(settings, clock=SystemClock(), upgrade=False)  # the bench migrates by itself


def bench_settings(**values: Any) -> Settings:
    """The settings of a bench's App: the values the bench gives win over the environment.

    For the program the environment comes first (settings.py), so an operator's shell that names
    its own database (RENEWLY_DATABASE_URL) made the bench run on that database instead of the one
    it had just created, and crash there."""
    return BenchSettings(**values)


class BenchSettings(Settings):
    """Settings whose given values come before the environment's RENEWLY_* (no file is read)."""

    @classmethod
    def settings_customise_sources(cls, settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource,
                                   env_settings: PydanticBaseSettingsSource, **_others: PydanticBaseSettingsSource,
                                   ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings


def load_postgres(engine: Engine, count: int) -> None:
    """N accounts, each with one subscription whose second month falls due on RENEWAL_DAY."""
    started = time.perf_counter()
    zones = "ARRAY[" + ", ".join(f"'{zone}'" for zone in ZONES) + "]"
    countries = "ARRAY[" + ", ".join(f"'{country}'" for country in COUNTRIES) + "]"
    with engine.begin() as conn:
        conn.execute(plans.insert().values(code="team", name="Team", interval="month", unit_amount=TOTAL_PER_SEAT,
                                           currency="EUR", created_at=AS_OF))
        conn.execute(text(f"""
            INSERT INTO accounts (id, name, locale, timezone, currency, status, buyer_name, buyer_line1,
                                  buyer_postcode, buyer_city, buyer_country, buyer_vat_id, created_at, updated_at)
            SELECT g, 'Account ' || g, CASE WHEN g % 3 = 0 THEN 'fr' ELSE 'en' END,
                   ({zones})[1 + g % {len(ZONES)}], 'EUR', 'active', 'Customer ' || g || ' Ltd',
                   g || ' Market Street', lpad((g % 100000)::text, 5, '0'), 'Springfield',
                   ({countries})[1 + g % {len(COUNTRIES)}], '', :at, :at
            FROM generate_series(1, :n) AS g"""), {"n": count, "at": ANCHOR_INSTANT})
        conn.execute(text("""
            INSERT INTO subscriptions (id, account_id, plan_id, seats, status, anchor_date, periods_invoiced,
                                       current_period_start, current_period_end, renews_at, created_at)
            SELECT a.id, a.id, 1, 1 + a.id % 10, 'active', :anchor, 1, :anchor, :renewal,
                   (:renewal)::timestamp AT TIME ZONE a.timezone, :at
            FROM accounts AS a"""), {"anchor": ANCHOR, "renewal": RENEWAL_DAY, "at": ANCHOR_INSTANT})
        for table in ("accounts", "subscriptions"):
            conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), :n)"), {"n": count})
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")
    print(f"PostgreSQL: loaded {count:,} accounts and subscriptions in {time.perf_counter() - started:.1f} s")


def load_sqlite(engine: Engine, count: int) -> None:
    from renewly.shared.calendar import local_midnight_utc

    due = {zone: local_midnight_utc(RENEWAL_DAY, zone) for zone in ZONES}
    with engine.begin() as conn:
        conn.execute(plans.insert().values(code="team", name="Team", interval="month", unit_amount=TOTAL_PER_SEAT,
                                           currency="EUR", created_at=AS_OF))
        conn.execute(accounts.insert(), [{
            "id": n, "name": f"Account {n}", "locale": "fr" if n % 3 == 0 else "en",
            "timezone": ZONES[n % len(ZONES)], "currency": "EUR", "status": "active",
            "buyer_name": f"Customer {n} Ltd", "buyer_line1": f"{n} Market Street",
            "buyer_postcode": f"{n % 100000:05d}",
            "buyer_city": "Springfield", "buyer_country": COUNTRIES[n % len(COUNTRIES)], "buyer_vat_id": "",
            "created_at": ANCHOR_INSTANT, "updated_at": ANCHOR_INSTANT} for n in range(1, count + 1)])
        conn.execute(subscriptions.insert(), [{
            "id": n, "account_id": n, "plan_id": 1, "seats": 1 + n % 10, "status": "active", "anchor_date": ANCHOR,
            "periods_invoiced": 1, "current_period_start": ANCHOR, "current_period_end": RENEWAL_DAY,
            "renews_at": due[ZONES[n % len(ZONES)]], "created_at": ANCHOR_INSTANT} for n in range(1, count + 1)])


def checkpoint(engine: Engine) -> None:
    """Start each timed phase with no dirty pages left by the one before (needs a superuser)."""
    if engine.dialect.name != "postgresql":
        return
    try:
        with engine.connect() as conn:
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("CHECKPOINT")
    except DBAPIError:
        pass


class CpuClock:
    """CPU seconds of this process and of its PostgreSQL backends (read in /proc when the server
    runs on this machine): unlike wall time, they hardly move when other work shares the cores."""

    def __init__(self, engine: Engine) -> None:
        self.backends: set[int] = set()
        # Only PostgreSQL has backends (an SQLite connection has no `info`): on another engine
        # the server's CPU is unknown, as where the server runs elsewhere.
        self.on_postgres = engine.dialect.name == "postgresql"
        if self.on_postgres:
            event.listen(engine, "connect", lambda dbapi_connection, _record:
                         self.backends.add(dbapi_connection.info.backend_pid))

    def read(self) -> tuple[float, float | None]:
        if not self.on_postgres:
            return time.process_time(), None
        server = 0.0
        for pid in self.backends:
            try:
                with open(f"/proc/{pid}/stat") as stat:
                    command, fields = stat.read().split(" (", 1)[1].rsplit(") ", 1)
            except OSError:  # the server runs elsewhere
                return time.process_time(), None
            if command != "postgres":
                return time.process_time(), None
            utime, stime = fields.split()[11:13]
            server += (int(utime) + int(stime)) / os.sysconf("SC_CLK_TCK")
        return time.process_time(), server


def measure(cpu: CpuClock, count: int, phase) -> dict[str, float | None]:
    """Run a phase; its figures plus CPU microseconds per invoice, client and server."""
    client_before, server_before = cpu.read()
    figures = phase()
    client_after, server_after = cpu.read()
    figures["client_us"] = (client_after - client_before) / count * 1e6
    if server_before is None or server_after is None:
        figures["server_us"] = figures["cpu_us"] = None
    else:
        figures["server_us"] = (server_after - server_before) / count * 1e6
        figures["cpu_us"] = figures["client_us"] + figures["server_us"]
    return figures


def renew(app: App, count: int, label: str) -> dict[str, float]:
    checkpoint(app.engine)
    rss = {"before": current_rss_mb(), "after_first_slice": None}

    def on_slice(_size: int) -> None:
        if rss["after_first_slice"] is None:
            rss["after_first_slice"] = current_rss_mb()

    started = time.perf_counter()
    report = renew_due(app, AS_OF, on_slice=on_slice)  # slices of the batch setting chunk_size
    elapsed = time.perf_counter() - started
    rss["after"] = current_rss_mb()
    verify(app.engine, count, report.invoices_issued, report.subscriptions_renewed)
    rate = count / elapsed
    growth = rss["after"] - rss["after_first_slice"]
    print(f"{label}: renewed {count:,} subscriptions in {elapsed:.2f} s: {rate:,.0f} invoices/s "
          f"(slices of {app.settings.batches.chunk_size}); RSS {rss['before']:.0f} MB before, "
          f"{rss['after_first_slice']:.0f} MB after the first slice, {rss['after']:.0f} MB at the end, "
          f"peak so far {peak_rss_mb():.0f} MB")
    return {"per_s": rate, "seconds": elapsed, "rss_growth_mb": growth}


def verify(engine: Engine, count: int, issued: int, renewed: int) -> None:
    with engine.connect() as conn:
        invoices = conn.execute(text(
            "SELECT count(*), count(DISTINCT sequence), min(sequence), max(sequence), count(DISTINCT subscription_id)"
            " FROM invoices WHERE series = '2026'")).one()
        lines = conn.execute(text("SELECT count(*) FROM invoice_lines")).scalar_one()
        events = conn.execute(text("SELECT count(*) FROM outbox WHERE topic = 'invoice.issued'")).scalar_one()
        left = conn.execute(text("SELECT count(*) FROM subscriptions WHERE periods_invoiced <> 2")).scalar_one()
    expected = (count, count, 1, count, count)
    problems = []
    if tuple(invoices) != expected:
        problems.append(f"invoices (count, distinct numbers, first, last, subscriptions) {tuple(invoices)}, "
                        f"expected {expected}")
    if (issued, renewed, lines, events, left) != (count, count, count, count, 0):
        problems.append(f"issued {issued}, renewed {renewed}, lines {lines}, outbox rows {events}, "
                        f"subscriptions not moved on {left}; expected {count} each and 0 left")
    if problems:
        sys.exit("bench: wrong result: " + "; ".join(problems))


def copy_bound(engine: Engine, count: int) -> dict[str, float]:
    """Invoices per second, written as COPY from Python of the same rows: invoice, line, outbox row."""
    seller = Jsonb(json.dumps(load_settings(config_file=None).seller.snapshot()), dumps=str)  # dumped once
    issued_at = AS_OF
    tables = ("invoices", "invoice_lines", "outbox")
    with engine.begin() as conn:
        for table in tables:
            # Same columns, defaults, checks and indexes as the real table (no foreign keys, no triggers).
            conn.exec_driver_sql(f"CREATE TABLE bound_{table} (LIKE {table} INCLUDING ALL)")
    checkpoint(engine)
    started = time.perf_counter()
    with engine.begin() as conn:
        cursor = conn.connection.driver_connection.cursor()
        # Binary COPY, as renew_due writes: the cheapest way there is from Python.
        with cursor.copy("COPY bound_invoices (id, number, series, sequence, kind, account_id, subscription_id, "
                         "credited_invoice_id, issue_date, period_start, period_end, currency, subtotal, tax_rate, "
                         "tax, total, locale, seller, buyer, status, issued_at, status_changed_at) "
                         "FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["int8", "varchar", "varchar", "int8", "varchar", "int8", "int8", "int8", "date", "date",
                            "date", "varchar", "int8", "varchar", "int8", "int8", "varchar", "jsonb", "jsonb",
                            "varchar", "timestamptz", "timestamptz"])
            for n in range(1, count + 1):
                subtotal = TOTAL_PER_SEAT * (1 + n % 10)
                buyer = {"name": f"Customer {n} Ltd", "line1": f"{n} Market Street", "line2": "",
                         "postcode": f"{n % 100000:05d}", "city": "Springfield",
                         "country": COUNTRIES[n % len(COUNTRIES)], "vat_id": ""}
                copy.write_row((n, f"2026-{n:06d}", "2026", n, "invoice", n, n, None, RENEWAL_DAY, RENEWAL_DAY,
                                date(2026, 3, 1), "EUR", subtotal, "20", subtotal // 5, subtotal + subtotal // 5,
                                "en", seller, buyer, "open", issued_at, None))
        with cursor.copy("COPY bound_invoice_lines (invoice_id, position, kind, description, quantity, unit_amount, "
                         "amount, period_start, period_end) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["int8", "int4", "varchar", "text", "int4", "int8", "int8", "date", "date"])
            for n in range(1, count + 1):
                seats = 1 + n % 10
                copy.write_row((n, 1, "subscription", "Team (monthly), Feb 1, 2026 – Feb 28, 2026", seats,
                                TOTAL_PER_SEAT, seats * TOTAL_PER_SEAT, RENEWAL_DAY, date(2026, 3, 1)))
        with cursor.copy("COPY bound_outbox (created_at, topic, account_id, payload, delivered_at) "
                         "FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["timestamptz", "varchar", "int8", "jsonb", "timestamptz"])
            for n in range(1, count + 1):
                total = TOTAL_PER_SEAT * (1 + n % 10) * 6 // 5
                copy.write_row((issued_at, "invoice.issued", n,
                                {"invoice_id": n, "number": f"2026-{n:06d}", "total": total, "currency": "EUR"}, None))
    elapsed = time.perf_counter() - started
    with engine.begin() as conn:
        for table in tables:
            conn.exec_driver_sql(f"DROP TABLE bound_{table}")
    rate = count / elapsed
    print(f"PostgreSQL: COPY bound, {count:,} invoices with their line and outbox row in {elapsed:.2f} s: "
          f"{rate:,.0f} invoices/s")
    return {"per_s": rate}


def current_rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kilobytes on Linux


def format_figure(value) -> str:
    if isinstance(value, float):
        return f"{value:.2f}" if value < 10 else f"{value:.0f}"
    return str(value)


if __name__ == "__main__":
    main()
