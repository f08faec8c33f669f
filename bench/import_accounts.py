"""The import benchmark (issue 10, item 13): `renewly import` of N accounts, on PostgreSQL and SQLite.

    .venv/bin/python bench/import_accounts.py                   # 10,000 accounts on each engine
    .venv/bin/python bench/import_accounts.py --accounts 100000
    .venv/bin/python bench/import_accounts.py --tiny            # 200 and 100 accounts: tests/test_benches.py

It writes a JSON lines file of N accounts, each with its owner, one other member, one
subscription and a card token (docs/import.md), creates a database of its own (on the server of
--postgres-url; a temporary file for SQLite), and imports the file with `import_file`, the code
`renewly import` runs: checked whole, then written in slices. It checks the result (N accounts,
2N members, N subscriptions, N cards, the audit entries and outbox events of the single commands)
and that a second run skips every account and writes nothing.

The bound, measured in the same run: the very rows the import wrote, read back as Python values,
written again into a second fresh database of the same engine through the same bulk writer
(`insert_rows`: binary COPY on PostgreSQL, executemany on SQLite) in one transaction, with the
same indexes and constraints. What the import costs beyond it is reading and checking the file
and building the rows. The ratio is bound time / import time (1.0: the import costs no more than
writing its rows). The last line is key=value pairs, for scripts.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select

from renewly.adapters.clock import SystemClock
from renewly.adapters.db.bulk import insert_rows
from renewly.adapters.db.engine import make_engine, upgrade
from renewly.adapters.db.tables import (
    accounts,
    audit_log,
    cards,
    gateway_customers,
    members,
    outbox,
    plans,
    subscriptions,
)
from renewly.billing.plans import create_plan
from renewly.bootstrap import App, bootstrap
from renewly.onboarding.importing import import_file

sys.path.insert(0, str(Path(__file__).parent))
from renewal import bench_database, bench_settings  # noqa: E402  (a database of its own, as bench/renewal.py)

ZONES = ("UTC", "Europe/Paris", "America/New_York", "Asia/Tokyo")
COUNTRIES = ("FR", "DE", "US", "JP", "GB", "ES", "IT", "NL")
WRITTEN = (accounts, members, subscriptions, gateway_customers, cards, audit_log, outbox)
ACTOR = "bench:import"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--sqlite-accounts", type=int, default=None, help="default: as --accounts; --tiny: 100")
    parser.add_argument("--tiny", action="store_true",
                        help="a check that the bench still runs and verifies its result, not a measure: "
                             "200 accounts on PostgreSQL, 100 on SQLite")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres",
                        help="a server where the bench may create and drop databases")
    args = parser.parse_args()
    count = 200 if args.tiny else args.accounts
    sqlite_count = args.sqlite_accounts if args.sqlite_accounts is not None else 100 if args.tiny else count

    with tempfile.TemporaryDirectory() as folder:
        figures: dict[str, float | int] = {"accounts": count}
        with bench_database(args.postgres_url) as url, bench_database(args.postgres_url, "bound") as bound_url:
            figures.update(run("PostgreSQL", url, bound_url, count, Path(folder), prefix=""))
        figures["sqlite_accounts"] = sqlite_count
        if sqlite_count:
            for name in ("import.db", "bound.db"):
                upgrade_engine(f"sqlite:///{Path(folder) / name}")
            figures.update(run("SQLite", f"sqlite:///{Path(folder) / 'import.db'}",
                               f"sqlite:///{Path(folder) / 'bound.db'}", sqlite_count, Path(folder),
                               prefix="sqlite_"))
    print(" ".join(f"{key}={format_figure(value)}" for key, value in figures.items()))


def format_figure(value: float | int) -> str:
    if isinstance(value, int) or value >= 100:
        return f"{value:.0f}"
    return f"{value:.3g}"


def upgrade_engine(url: str) -> None:
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()


def run(label: str, url: str, bound_url: str, count: int, folder: Path, *, prefix: str) -> dict[str, float]:
    app = bootstrap(bench_settings(database_url=url, clock="system"), clock=SystemClock(), upgrade=False)
    create_plan(app, code="team", name="Team", interval="month", price=1900, currency="EUR", actor=ACTOR)
    path = folder / f"accounts-{prefix or 'pg_'}{count}.jsonl"
    write_file(path, count, app.clock.now())

    started = time.perf_counter()
    checked = import_file(app, path, dry_run=True, actor=ACTOR)
    check_seconds = time.perf_counter() - started
    started = time.perf_counter()
    report = import_file(app, path, actor=ACTOR)
    seconds = time.perf_counter() - started
    verify(app, count, report)
    if checked.problems:
        sys.exit(f"bench: the dry run found problems: {checked.problems[:3]}")
    started = time.perf_counter()
    again = import_file(app, path, actor=ACTOR)
    rerun_seconds = time.perf_counter() - started
    if (again.skipped, again.accounts) != (count, 0):
        sys.exit(f"bench: wrong result: a second run skipped {again.skipped} and wrote {again.accounts}")
    rows = read_back(app)
    app.engine.dispose()
    bound_seconds = write_bound(bound_url, rows)
    ratio = bound_seconds / seconds
    print(f"{label}: imported {count:,} accounts in {seconds:.2f} s ({count / seconds:,.0f} accounts/s; "
          f"checking alone {check_seconds:.2f} s); the same rows through the bulk writer alone: "
          f"{bound_seconds:.2f} s; ratio {ratio:.2f}; a second run skipped them all in {rerun_seconds:.2f} s")
    return {f"{prefix}seconds": seconds, f"{prefix}accounts_per_s": count / seconds,
            f"{prefix}check_seconds": check_seconds, f"{prefix}bound_seconds": bound_seconds,
            f"{prefix}ratio": ratio, f"{prefix}rerun_seconds": rerun_seconds}


def write_file(path: Path, count: int, now: datetime) -> None:
    renewal = (now + timedelta(days=10)).date().isoformat()
    expiry = f"12/{now.year + 3}"
    with path.open("w", encoding="utf-8") as file:
        for n in range(1, count + 1):
            file.write(json.dumps({
                "key": f"crm-{n:07d}", "name": f"Customer {n} Ltd", "owner_email": f"owner{n}@customer{n}.example",
                "locale": "fr" if n % 3 == 0 else "en", "timezone": ZONES[n % len(ZONES)], "currency": "EUR",
                "address": {"line1": f"{n} Market Street", "postcode": f"{n % 100000:05d}", "city": "Springfield",
                            "country": COUNTRIES[n % len(COUNTRIES)]},
                "members": [{"email": f"agent{n}@customer{n}.example", "role": "agent"}],
                "subscriptions": [{"plan": "team", "seats": 1 + n % 10, "next_renewal": renewal}],
                "card": {"customer": f"cus_legacy_{n}", "token": f"pm_legacy_{n}", "brand": "visa",
                         "last4": "4242", "exp": expiry}}) + "\n")


def verify(app: App, count: int, report) -> None:
    with app.engine.connect() as conn:
        found = {table.name: conn.execute(select(func.count()).select_from(table)).scalar_one()
                 for table in WRITTEN}
        found["audit_log"] -= 1  # plan.created
    # Per account: created, one member, a gateway customer, its card, a subscription (audit);
    # account.created, account.updated (its member), payment_method.updated, subscription.created (outbox).
    expected = {"accounts": count, "members": 2 * count, "subscriptions": count, "gateway_customers": count,
                "cards": count, "audit_log": 5 * count, "outbox": 4 * count}
    reported = (report.accounts, report.members, report.subscriptions, report.cards, report.problems)
    if found != expected or reported != (count, count, count, count, []):
        sys.exit(f"bench: wrong result: rows {found}, expected {expected}; report {reported}")


def read_back(app: App) -> dict[str, tuple[list[str], list[tuple]]]:
    """Every row the import wrote, as Python values, for the bound."""
    with app.engine.connect() as conn:
        found = {}
        for table in WRITTEN:
            query = select(table)
            if table is audit_log:
                query = query.where(audit_log.c.action != "plan.created")
            result = conn.execute(query.order_by(*table.primary_key.columns))
            found[table.name] = (list(result.keys()), [tuple(row) for row in result])
    return found


def write_bound(url: str, rows: dict[str, tuple[list[str], list[tuple]]]) -> float:
    engine = make_engine(url)
    with engine.begin() as conn:  # the plan the subscriptions point at
        conn.execute(plans.insert().values(id=1, code="team", name="Team", interval="month", unit_amount=1900,
                                           currency="EUR", created_at=datetime.now(UTC)))
    started = time.perf_counter()
    with engine.begin() as conn:
        for table in WRITTEN:
            columns, values = rows[table.name]
            insert_rows(conn, table, values, columns, binary=True)
    seconds = time.perf_counter() - started
    engine.dispose()
    return seconds


if __name__ == "__main__":
    main()
