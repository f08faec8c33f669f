"""The payment benchmark (issue 3): N due invoices charged through the simulated gateway, on PostgreSQL.

    .venv/bin/python bench/collect.py            # 10,000 invoices: about 100 s at the cap, 2 min in all
    .venv/bin/python bench/collect.py --quick    # 1,000 invoices, a smoke run (the 0.95 target is not checked)
    .venv/bin/python bench/collect.py --tiny     # 50 invoices, 20 ms, a cap of 40/s: tests/test_benches.py

Run 1, at the cap: the simulated gateway answers after 200 ms, like a real one over the network,
and a real gateway caps writes (Stripe: 100 per second). The payment batch (`collect_due`, the
code production runs) charges N open invoices, each on an account with a saved card. The gateway
is wrapped to record when each call reaches it; the busiest one-second window of those instants
must hold at most the cap, and the sustained rate (charges / wall time of the batch) is printed
as a ratio of the cap. Target: at least 0.95, never above. Renewly's token bucket is sized from
the cap (see `limiter`): no second can hold more than cap - 1 tokens, one of margin for the
moment between a token and the gateway, and a thread that wakes a few ms late for its token
(the machine is busy, the GIL is held) keeps its slot instead of losing that time.
Run 2, no latency and no cap: charges per second of the same batch, next to the renewal bound of
bench/renewal.py (COPY of an invoice, its line and its outbox row from Python, in the same
database). Run 3: the same batch against a gateway that answers at once with no ledger, to
tell Renewly's own cost from the simulated gateway's.
Runs 4 and 5, what a failure e-mail costs: every account is in dunning, its day-2 step just taken
and its charge asked for, and every charge is declined (the simulated gateway, no latency, no
cap, as run 2). In run 4 the step's notice was already given; in run 5 it waits for the
charge's answer, so that the payment batch writes it (the e-mail to the billing contacts, naming
the decline) as it settles each slice. Target: run 5's cost per attempt at most 1.2 times run
4's (the best of --email-repeat runs each). The same pair against the instant gateway gives
Renewly's own cost per attempt with and without the e-mail, printed without a target.

Each run creates a database of its own on the server of --postgres-url and drops it at the end;
the gateway's ledger is a SQLite file in a temporary folder. The last line is key=value pairs.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
import threading
import time
from bisect import bisect_left
from datetime import timedelta
from pathlib import Path

from sqlalchemy import Engine, func, select, text

from renewly.adapters.clock import SystemClock
from renewly.adapters.db.engine import make_engine
from renewly.adapters.db.tables import invoices, payment_attempts
from renewly.adapters.gateways.simulated import SimulatedGateway, ledger_metadata, sim_cards, sim_customers
from renewly.bootstrap import bootstrap
from renewly.payments.collect import collect_due
from renewly.payments.rate_limit import TokenBucket
from renewly.payments.rules.charges import ChargeRequest, GatewayResult, LedgerCharge, Outcome

sys.path.insert(0, str(Path(__file__).parent))
from renewal import bench_database, bench_settings, copy_bound  # noqa: E402  (a database, and the renewal bound, as bench/renewal.py)

NO_CAP = 1e9  # operations per second: a token bucket that never waits
SETTINGS_MOST_RATE = 100_000  # the largest payments.rate_limit_per_second the settings accept
LATENESS = 0.005  # seconds a thread may wake late for its token without losing it: the GIL's switch interval


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=10_000)
    parser.add_argument("--quick", action="store_true", help="a small run: 1,000 invoices")
    parser.add_argument("--tiny", action="store_true",
                        help="a check that the bench still runs and verifies its results, not a measure: "
                             "50 invoices in slices of 20, 20 ms latency, a cap of 40/s (the 0.95 target is "
                             "not checked, the cap is), a bound of 1,000 rows")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres",
                        help="a server where the bench may create and drop databases")
    parser.add_argument("--latency-ms", type=int, default=None, help="the gateway's answer time in run 1 "
                                                                     "(default 200; --tiny: 20)")
    parser.add_argument("--cap", type=int, default=None, help="the gateway's cap, operations per second "
                                                              "(default 100; --tiny: 40)")
    parser.add_argument("--concurrency", type=int, default=32, help="calls in flight (latency x cap = 20)")
    parser.add_argument("--slice-size", type=int, default=None,
                        help="default: the payments setting slice_size; --tiny: 20")
    parser.add_argument("--bound-rows", type=int, default=None, help="rows of the renewal COPY bound "
                                                                     "(default 100,000; --tiny: 1,000)")
    parser.add_argument("--email-repeat", type=int, default=None, help="runs 4 and 5, each timed this many times "
                                                                       "(the best is kept; default 3, --tiny 1)")
    args = parser.parse_args()
    count = 50 if args.tiny else 1_000 if args.quick else args.invoices
    # Tiny: about 1.3 s at the cap, over three slices, so that the cap and the overlapping slices
    # are still exercised; the other defaults are those of the measure.
    if args.latency_ms is None:
        args.latency_ms = 20 if args.tiny else 200
    if args.cap is None:
        args.cap = 40 if args.tiny else 100
    if args.slice_size is None and args.tiny:
        args.slice_size = 20
    if args.bound_rows is None:
        args.bound_rows = 1_000 if args.tiny else 100_000
    figures: dict[str, float | int] = {"invoices": count}

    capped = run(args.postgres_url, count, "at the cap", latency_ms=args.latency_ms,
                 bucket=limiter(args.cap), concurrency=args.concurrency, slice_size=args.slice_size)
    figures["charges_per_s_capped"] = capped["charges_per_s"]
    figures["cap"] = args.cap
    figures["max_ops_in_any_1s_window"] = capped["max_ops_in_any_1s_window"]
    figures["ratio"] = capped["charges_per_s"] / args.cap
    print(f"at the cap: {capped['charges_per_s']:.1f} charges/s sustained, ratio {figures['ratio']:.3f} of the cap "
          f"of {args.cap}/s (target >= 0.95); busiest second {capped['max_ops_in_any_1s_window']} operations "
          f"(must be <= {args.cap})")

    free = run(args.postgres_url, count, "no latency, no cap", latency_ms=0, bucket=TokenBucket(NO_CAP),
               concurrency=args.concurrency, slice_size=args.slice_size, bound_rows=args.bound_rows)
    figures["charges_per_s"] = free["charges_per_s"]
    figures["renewal_bound_per_s"] = free["renewal_bound_per_s"]
    figures["charges_to_bound"] = free["charges_per_s"] / free["renewal_bound_per_s"]
    print(f"no latency, no cap: {free['charges_per_s']:,.0f} charges/s; renewal bound "
          f"{free['renewal_bound_per_s']:,.0f} invoices/s; ratio {figures['charges_to_bound']:.3f}")
    # How much of that is Renewly's own work (claim, pending attempts, settle) and how much the
    # simulated gateway's SQLite ledger: the same batch against a gateway that answers at once.
    alone = run(args.postgres_url, count, "instant gateway", latency_ms=0, bucket=TokenBucket(NO_CAP),
                concurrency=args.concurrency, slice_size=args.slice_size, instant=True)
    figures["charges_per_s_instant_gateway"] = alone["charges_per_s"]

    # What the failure e-mail written as each slice settles costs: the same declines with the
    # notice given before and waiting for them; interleaved, the best of each.
    repeat = args.email_repeat or (1 if args.tiny else 3)
    for gateway_kind, instant in (("simulated", False), ("instant", True)):
        best: dict[str, float] = {}
        for _ in range(repeat):
            for dunning in ("told", "awaiting"):
                rate = run(args.postgres_url, count, f"declines, {gateway_kind} gateway, notice {dunning}",
                           latency_ms=0, bucket=TokenBucket(NO_CAP), concurrency=args.concurrency,
                           slice_size=args.slice_size, instant=instant, dunning=dunning)["charges_per_s"]
                best[dunning] = max(best.get(dunning, 0.0), rate)
        prefix = "" if gateway_kind == "simulated" else "instant_"
        figures[f"{prefix}us_per_decline_without_email"] = 1e6 / best["told"]
        figures[f"{prefix}us_per_decline_with_email"] = 1e6 / best["awaiting"]
        figures[f"{prefix}email_cost_ratio"] = best["told"] / best["awaiting"]
        print(f"declines, {gateway_kind} gateway: {1e6 / best['told']:,.0f} µs per attempt without a failure e-mail, "
              f"{1e6 / best['awaiting']:,.0f} µs with one: ratio {best['told'] / best['awaiting']:.3f}"
              + (" (target <= 1.2)" if not instant else " (Renewly's own cost: no target)"))

    failures = []
    if figures["max_ops_in_any_1s_window"] > args.cap:
        failures.append(f"{figures['max_ops_in_any_1s_window']} gateway operations in one second, above the cap")
    # Not for --quick: in a 10 s run the first claim, the last call's 200 ms and the last settle weigh 3 %;
    # nor for --tiny, where they weigh more still.
    if figures["ratio"] < 0.95 and not (args.quick or args.tiny):
        failures.append(f"sustained rate {figures['ratio']:.3f} of the cap, below the 0.95 target")
    if figures["email_cost_ratio"] > 1.2 and not (args.quick or args.tiny):
        failures.append(f"a failure e-mail costs {figures['email_cost_ratio']:.3f} times an attempt without one, "
                        "above the 1.2 target")
    print(" ".join(f"{key}={format_figure(value)}" for key, value in figures.items()))
    if failures:
        sys.exit("bench: " + "; ".join(failures))


def run(admin_url: str, count: int, label: str, *, latency_ms: int, bucket: TokenBucket, concurrency: int,
        slice_size: int | None, bound_rows: int = 0, instant: bool = False,
        dunning: str | None = None) -> dict[str, float]:
    """One payment batch over `count` invoices, checked; `dunning`: each account in dunning, its
    step's notice "told" already or "awaiting" the charge's answer, and every charge declined."""
    suffix = label.replace(",", "").replace(" ", "_")
    with bench_database(admin_url, f"collect_{suffix}") as url, tempfile.TemporaryDirectory() as folder:
        ledger_url = f"sqlite:///{Path(folder) / 'gateway.db'}"
        payments = {"simulator_url": ledger_url, "simulator_latency_ms": latency_ms,
                    # the settings' own cap (the bucket passed to the batch is what paces it)
                    "rate_limit_per_second": min(bucket.rate, SETTINGS_MOST_RATE), "concurrency": concurrency,
                    **({"slice_size": slice_size} if slice_size else {})}
        settings = bench_settings(database_url=url, payments=payments)
        clock = SystemClock()
        simulated = SimulatedGateway(ledger_url, clock, latency=latency_ms / 1000)
        gateway = CountingGateway(InstantGateway(simulated, declining=dunning is not None) if instant else simulated)
        app = bootstrap(settings, clock=clock, gateway=gateway, upgrade=False)
        engine = app.engine
        load(engine, make_engine(ledger_url), count, clock.now(), dunning=dunning)

        limit = "none" if bucket.rate == NO_CAP else f"{bucket.rate:.2f}/s, burst {bucket.capacity:.2f}"
        slices = []
        started = time.monotonic()
        report = collect_due(app, clock.now(), bucket=bucket,
                             on_slice=slices.append)
        elapsed = time.monotonic() - started
        if dunning is None:
            verify(engine, gateway.inner, count, report)
        else:
            verify_declines(engine, gateway.inner, count, report, emails=count if dunning == "awaiting" else 0)
        rate_seen = count / elapsed
        print(f"{label}: charged {count:,} invoices in {elapsed:.2f} s: {rate_seen:,.1f} charges/s "
              f"({len(slices)} slices of {settings.payments.slice_size}, concurrency {concurrency}, "
              f"at most {gateway.most_in_flight} calls in flight, latency {latency_ms} ms, "
              f"rate limit {limit}); "
              f"first call at +{min(gateway.starts) - started:.2f} s, "
              f"last answer {started + elapsed - gateway.last_answer:.2f} s before the end")
        figures = {"charges_per_s": rate_seen, "max_ops_in_any_1s_window": most_in_window(gateway.starts, 1.0)}
        if bound_rows:
            # Best of two, as bench/renewal.py does: a slow moment on a shared machine only lowers it.
            figures["renewal_bound_per_s"] = max(copy_bound(engine, bound_rows)["per_s"] for _ in range(2))
        engine.dispose()
        return figures


def limiter(cap: int) -> TokenBucket:
    """Renewly's token bucket for a gateway that allows `cap` operations a second.

    A bucket of rate r and burst b lets a one-second window hold fewer than b + r tokens. With
    b = 1 + r * LATENESS, a thread that wakes up to LATENESS late still takes its token on
    time; with r = (cap - 1) / (1 + LATENESS), b + r = cap, so no second holds more than
    cap - 1 tokens, the last one of margin for the time between a token and the gateway.
    """
    rate = (cap - 1) / (1 + LATENESS)
    return TokenBucket(rate, burst=1 + rate * LATENESS)


def load(engine: Engine, ledger: Engine, count: int, now, *, dunning: str | None = None) -> None:
    """N accounts, each with an owner, a gateway customer, a saved card, a subscription and the
    open invoice of its current month; with `dunning`, each in dunning (see `in_dunning`)."""
    started = time.perf_counter()
    at = now - timedelta(days=1)
    seller = '{"name": "Renewly Bench SAS", "country": "FR"}'
    statements = [
        "INSERT INTO plans (id, code, name, interval, unit_amount, currency, created_at) "
        "VALUES (1, 'team', 'Team', 'month', 1900, 'EUR', :at)",
        """INSERT INTO accounts (id, name, locale, timezone, currency, status, buyer_name, buyer_country,
                                 created_at, updated_at)
           SELECT g, 'Account ' || g, 'en', 'UTC', 'EUR', 'active', 'Customer ' || g || ' Ltd', 'FR', :at, :at
           FROM generate_series(1, :n) AS g""",
        """INSERT INTO members (account_id, email, role, created_at)
           SELECT g, 'owner' || g || '@example.com', 'owner', :at FROM generate_series(1, :n) AS g""",
        """INSERT INTO gateway_customers (account_id, gateway, customer, created_at)
           SELECT g, 'simulated', 'cus_bench_' || g, :at FROM generate_series(1, :n) AS g""",
        """INSERT INTO cards (account_id, token, brand, last4, exp_month, exp_year, status, added_by, added_at)
           SELECT g, 'pm_bench_' || g, 'visa', '4242', 12, 2040, 'active', 'owner' || g || '@example.com', :at
           FROM generate_series(1, :n) AS g""",
        # Since migration 0006 an invoice must name its subscription, of the same account (check
        # ck_invoices_parent, foreign key (account_id, subscription_id)): each account renewed
        # yesterday, its first month invoiced and not paid yet.
        """INSERT INTO subscriptions (id, account_id, plan_id, seats, status, anchor_date, periods_invoiced,
                                      current_period_start, current_period_end, renews_at, created_at)
           SELECT g, g, 1, 1 + g % 10, 'active', CAST(:at AS date), 1, CAST(:at AS date),
                  (CAST(:at AS date) + interval '1 month')::date,
                  (CAST(:at AS date) + interval '1 month')::timestamp AT TIME ZONE 'UTC', :at
           FROM generate_series(1, :n) AS g""",
        # 19.00 EUR a seat, 1 to 10 seats, 20 % VAT.
        """INSERT INTO invoices (id, number, series, sequence, kind, account_id, subscription_id, issue_date,
                                 period_start, period_end, currency, subtotal, tax_rate, tax, total, locale, seller,
                                 buyer, status, issued_at)
           SELECT g, 'B-' || lpad(g::text, 7, '0'), 'B', g, 'invoice', g, g, CAST(:at AS date), CAST(:at AS date),
                  (CAST(:at AS date) + interval '1 month')::date, 'EUR', 1900 * (1 + g % 10), '20',
                  380 * (1 + g % 10), 2280 * (1 + g % 10), 'en', CAST(:seller AS jsonb),
                  jsonb_build_object('name', 'Customer ' || g || ' Ltd', 'country', 'FR'), 'open', :at
           FROM generate_series(1, :n) AS g""",
        "INSERT INTO invoice_series (series, next_sequence) VALUES ('B', :n + 1)",
        "SELECT setval(pg_get_serial_sequence('plans', 'id'), 1)",
        "SELECT setval(pg_get_serial_sequence('accounts', 'id'), :n)",
        "SELECT setval(pg_get_serial_sequence('subscriptions', 'id'), :n)",
        "SELECT setval(pg_get_serial_sequence('invoices', 'id'), :n)",
    ]
    if dunning is not None:
        statements += in_dunning(awaiting=dunning == "awaiting")
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement), {"n": count, "at": at, "seller": seller})
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")
    # The gateway's side of the same customers and cards, as if each card had been saved through it.
    ledger_metadata.create_all(ledger)
    with ledger.begin() as conn:
        conn.execute(sim_customers.insert(), [{"id": f"cus_bench_{n}", "account_id": n,
                                               "email": f"owner{n}@example.com", "deleted": 0}
                                              for n in range(1, count + 1)])
        conn.execute(sim_cards.insert(), [{"token": f"pm_bench_{n}", "customer": f"cus_bench_{n}", "brand": "visa",
                                           "last4": "4242", "exp_month": 12, "exp_year": 2040,
                                           # In dunning, the card declines every charge (Stripe's 0341).
                                           "behaviour": "charges_declined" if dunning else "succeeds"}
                                          for n in range(1, count + 1)])
    ledger.dispose()
    print(f"loaded {count:,} accounts with a card, a subscription and an open invoice in "
          f"{time.perf_counter() - started:.1f} s")


def in_dunning(*, awaiting: bool) -> list[str]:
    """Each account in dunning since yesterday (day 0), its renewal's charge declined then, its
    day-2 step taken now with a charge asked for: the step's notice given already, or awaiting
    the charge's answer. One account in five has a billing contact besides the owner."""
    return [
        """UPDATE accounts SET status = 'past_due'""",
        """INSERT INTO billing_contacts (account_id, email, status, requested_by, requested_at, decided_at)
           SELECT g, 'finance' || g || '@example.com', 'active', 'finance' || g || '@example.com', :at, :at
           FROM generate_series(1, :n) AS g WHERE g % 5 = 0""",
        """INSERT INTO payment_attempts (id, invoice_id, account_id, number, idempotency_key, card_id, amount,
                                         currency, status, decline_code, reason, created_at, settled_at,
                                         lease_expires_at)
           SELECT g, g, g, 1, 'bench-invoice-' || g || '-attempt-1', g, 2280 * (1 + g % 10), 'EUR', 'declined',
                  'card_declined', 'issued', :at, :at, :at
           FROM generate_series(1, :n) AS g""",
        "SELECT setval(pg_get_serial_sequence('payment_attempts', 'id'), :n)",
        f"""INSERT INTO dunning_cases (id, account_id, day0, status, last_step_name, last_step_day, next_step_at,
                                       awaiting_step_name, opened_at)
            SELECT g, g, CAST(:at AS date), 'open', 'payment_failed_2', 2, CAST(:at AS date) + interval '4 days',
                   {"'payment_failed_2'" if awaiting else 'NULL'}, :at
            FROM generate_series(1, :n) AS g""",
        "SELECT setval(pg_get_serial_sequence('dunning_cases', 'id'), :n)",
        """INSERT INTO dunning_case_invoices (invoice_id, case_id, added_at)
           SELECT g, g, :at FROM generate_series(1, :n) AS g""",
        """INSERT INTO payment_retries (invoice_id, reason, requested_at)
           SELECT g, format('dunning:%s:1', g), :at FROM generate_series(1, :n) AS g""",
    ]


class InstantGateway:
    """Charges answered at once (succeeded, or declined), with no ledger to write; its ledger is
    the list of the charges it answered, so that the run is checked like the others."""

    def __init__(self, simulated: SimulatedGateway, *, declining: bool = False) -> None:
        self.simulated = simulated
        self.name = simulated.name
        self.outcome = Outcome.DECLINED if declining else Outcome.SUCCEEDED
        self.charged: list[tuple[ChargeRequest, str]] = []

    def charge(self, request: ChargeRequest) -> GatewayResult:
        reference = f"ch_instant_{secrets.token_hex(10)}"
        self.charged.append((request, reference))
        return GatewayResult(self.outcome, reference=reference, amount=request.amount,
                             decline_code="card_declined" if self.outcome == Outcome.DECLINED else None)

    def ledger(self) -> list[LedgerCharge]:
        return [LedgerCharge(reference=reference, idempotency_key=request.idempotency_key, amount=request.amount,
                             currency=request.currency, outcome=self.outcome)
                for request, reference in self.charged]

    def __getattr__(self, name: str):
        return getattr(self.simulated, name)


class CountingGateway:
    """The gateway, with the instant each call reaches it (time.monotonic) and the calls in flight."""

    def __init__(self, inner: SimulatedGateway) -> None:
        self.inner = inner
        self.name = inner.name
        self.starts: list[float] = []
        self.last_answer = 0.0
        self.in_flight = 0
        self.most_in_flight = 0
        self._lock = threading.Lock()

    def _call(self, operation: str, *args):
        with self._lock:
            self.starts.append(time.monotonic())
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            return getattr(self.inner, operation)(*args)
        finally:
            with self._lock:
                self.in_flight -= 1
                self.last_answer = time.monotonic()

    def charge(self, request):
        return self._call("charge", request)

    def authorize(self, *args):
        return self._call("authorize", *args)

    def void(self, *args):
        return self._call("void", *args)

    def find(self, *args):
        return self._call("find", *args)

    def __getattr__(self, name: str):  # what is not an operation under the cap: ledger, tokenize, ...
        return getattr(self.inner, name)


def most_in_window(instants: list[float], width: float) -> int:
    """The most instants in any half-open window [t, t + width)."""
    ordered = sorted(instants)
    return max((bisect_left(ordered, start + width, lo=i) - i for i, start in enumerate(ordered)), default=0)


def verify(engine: Engine, gateway: SimulatedGateway | InstantGateway, count: int, report) -> None:
    """Every invoice paid once, the gateway's ledger and Renewly's records agreeing to the cent."""
    with engine.connect() as conn:
        paid, billed = conn.execute(select(func.count(), func.coalesce(func.sum(invoices.c.total), 0))
                                    .where(invoices.c.status == "paid")).one()
        attempts, attempted = conn.execute(select(func.count(), func.coalesce(func.sum(payment_attempts.c.amount), 0))
                                           .where(payment_attempts.c.status == "succeeded")).one()
        expected = conn.execute(select(func.sum(invoices.c.total))).scalar_one()
    ledger = list(gateway.ledger())
    charged = sum(charge.amount for charge in ledger if charge.outcome == Outcome.SUCCEEDED)
    keys = {charge.idempotency_key for charge in ledger}
    seen = (report.attempted, report.succeeded, paid, attempts, len(ledger), len(keys), billed, attempted, charged)
    wanted = (count, count, count, count, count, count, expected, expected, expected)
    if seen != wanted:
        sys.exit(f"bench: wrong result: (attempted, succeeded, invoices paid, attempts succeeded, ledger charges, "
                 f"distinct keys, paid total, attempted total, charged total) = {seen}, expected {wanted}")


def verify_declines(engine: Engine, gateway: SimulatedGateway | InstantGateway, count: int, report, *,
                    emails: int) -> None:
    """Every invoice attempted once more and declined, its retry request fulfilled, and `emails`
    failure e-mails: the day-2 step's, to the owner and the billing contact, naming the attempt."""
    with engine.connect() as conn:
        declined = conn.execute(text("SELECT count(*) FROM payment_attempts WHERE number = 2 AND status = 'declined'"
                                     )).scalar_one()
        open_retries = conn.execute(text("SELECT count(*) FROM payment_retries WHERE attempt_id IS NULL")).scalar_one()
        written = conn.execute(text(
            "SELECT count(*), count(DISTINCT account_id), count(*) FILTER (WHERE payload->>'kind' = 'payment_failed_2'"
            " AND payload->>'reason' = 'card_declined' AND (payload->'attempts'->>0)::bigint = "
            "(SELECT id FROM payment_attempts AS a WHERE a.account_id = outbox.account_id AND a.number = 2))"
            " FROM outbox WHERE topic = 'email'")).one()
        awaiting = conn.execute(text("SELECT count(*) FROM dunning_cases WHERE awaiting_step_name IS NOT NULL")
                                ).scalar_one()
    seen = (report.attempted, report.declined, declined, open_retries, len(list(gateway.ledger())), tuple(written),
            awaiting)
    wanted = (count, count, count, 0, count, (emails, emails, emails), 0)
    if seen != wanted:
        sys.exit(f"bench: wrong result: (attempted, declined, attempts declined, retries open, ledger charges, "
                 f"(e-mails, accounts, failure e-mails naming their attempt), notices awaiting) = {seen}, "
                 f"expected {wanted}")


def format_figure(value) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if value < 10 else f"{value:.1f}"
    return str(value)


if __name__ == "__main__":
    main()
