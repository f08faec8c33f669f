"""Workers under load and kill -9 (issue 11, "Tests"): `renewly worker` on PostgreSQL, counted.

    .venv/bin/python bench/worker_chaos.py            # `make worker-chaos`: 10,000 accounts, 3 months, 20 kills
    .venv/bin/python bench/worker_chaos.py --tiny     # 200 accounts, 21 days, 2 kills: tests/test_benches.py
    .venv/bin/python bench/worker_chaos.py --accounts 2000 --days 30 --kills 5 --seed 3

Accounts are brought in by `import_file` (the code `renewly import` runs), each with a monthly
subscription renewing on a day spread over the first four weeks and the gateway token of its card;
the simulated gateway's ledger is given those tokens set-based: most cards pay, some decline
every charge (R8 dunning to the end), some decline one to three charges and then pay (a flaky
card), a few accounts have no card. Every third day, owners of accounts in dunning save a card
that pays, mid-case (R7.1: the next payment batch retries).

The scenario is a list of instants, each day at 00:00 UTC (`--step`; and 01:00 after the card updates, the
payment batch's next tick, which their follow-up jobs ask for). Three runs of it, each on a
PostgreSQL database of its own (`renewly_bench_worker_chaos_<pid>_*`, copies of the imported one,
all dropped at the end, also on failure):

- reference: one process, the test clock moved to each instant and `run_all` there (what
  `renewly run` runs at that instant); its counts (invoices, charges, declines, dunning cases,
  steps, recoveries, cancellations, e-mails by kind) are kept at every checkpoint (each
  `--window` days) and at the end, and a copy of its database at each checkpoint;
- workers: three `renewly worker` processes started at once; this process only moves the test
  clock (`advance(..., run_batches=False)`, as `renewly clock advance --no-batches`) and waits
  at each instant until nothing is due and no tick or helper job is queued or running;
- kill runs (`--kills`, seeded): three workers on a copy of a reference checkpoint run the next
  window of the scenario; at a random instant of it, a random delay after the clock moved, one
  worker is killed with SIGKILL and a new one started a random moment later (its stalled jobs are
  meanwhile another's); the counts at the window's end must be the reference's there.

After each run, checks by SQL over the whole database: invoices per (subscription, period),
attempts per idempotency key, succeeded charges per invoice (Renewly's attempts and the gateway's
ledger), e-mails per (account, kind, instant), numbers per series gapless and the series counter
their last + 1; then every invariant of bench/chaos_invariants.py, and `renewly reconcile` (exit 0).
The last line is key=value pairs, for scripts; the exit code is 1 when anything broke.

Ctrl-C (or SIGTERM) finishes the slice in hand: the in-process reference run's batch stops after
its slice, the workers are stopped by SIGTERM (each finishes its slice; they run in a session of
their own, so that the terminal's Ctrl-C is the bench's to pass on), the clock moves no further;
then the bench says which runs it finished, drops every database it made and exits 130. A second
Ctrl-C stops at once (the workers killed), the databases dropped all the same.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from rich.console import Console
from rich.table import Table
from sqlalchemy import text
from sqlalchemy.engine import make_url

from renewly.adapters.db.engine import make_engine, upgrade
from renewly.billing.plans import create_plan
from renewly.bootstrap import App, bootstrap
from renewly.onboarding.importing import import_file
from renewly.payments.cards import add_card
from renewly.ports import StopRequest
from renewly.scheduler import advance, run_all, schedule, tick_due

sys.path.insert(0, str(Path(__file__).parent))
from chaos_invariants import check  # noqa: E402
from renewal import bench_settings, format_figure  # noqa: E402

RENEWLY = Path(sys.executable).with_name("renewly")
START = datetime(2026, 1, 1, tzinfo=UTC)
ACTOR = "bench:worker-chaos"
ZONES = ("UTC", "Europe/Paris", "America/New_York", "Asia/Tokyo")
COUNTRIES = ("FR", "DE", "US", "GB", "ES", "NL")
GOOD_CARD = "4242424242424242"
WORKERS = 3
# A worker looks for a tick every second, beats every half second, is taken for dead after two
# seconds of silence (the settings of tests/worker/workers.py); a payment claim's lease is a
# second, so that the charges a killed worker had in hand are the janitor's by the time its
# stalled tick runs again elsewhere.
WORKER_SETTINGS = {"RENEWLY_WORKER__CHECK_SECONDS": "1", "RENEWLY_WORKER__HEARTBEAT_SECONDS": "0.5",
                   "RENEWLY_WORKER__STALLED_SECONDS": "2", "RENEWLY_PAYMENTS__LEASE_SECONDS": "1"}
LEASE_SECONDS = 1
CARD_UPDATE_EVERY = 3  # instants
SETTLE_TIMEOUT = 600  # seconds at one instant, at most
STOP_TIMEOUT = 60  # seconds a worker has to finish its slice once asked to stop, before SIGKILL


class Interrupted(Exception):
    """Ctrl-C or SIGTERM: the bench goes no further than the slice in hand."""


class Stop:
    """The first Ctrl-C (or SIGTERM), seen by the bench's loops between two steps; passed on to
    the app whose batches run in this process (the reference's), which stop after their slice."""

    def __init__(self) -> None:
        self.asked = False
        self.apps: list[StopRequest] = []  # the stop requests of the apps open in this process

    def on_signal(self, _number, _frame) -> None:
        if self.asked:
            raise KeyboardInterrupt  # the second: at once
        self.asked = True
        for request in self.apps:
            request.ask()
        # os.write: a signal handler may run while the main thread is inside sys.stderr.write.
        os.write(2, b"bench: stopping after the slice in hand (Ctrl-C again: at once)\n")

    def check(self) -> None:
        if self.asked:
            raise Interrupted


STOP = Stop()


@dataclass(frozen=True)
class Size:
    accounts: int
    days: int
    kills: int
    window: int  # days between checkpoints: a kill run runs one window
    step: int = 1  # days from one instant to the next


# The tiny run (tests/test_benches.py) makes two kills again: the payment_failed e-mail a kill
# mid-job used to cost (a tick recorded as run by its first round, its restart doing nothing;
# docs/performance.md) is fixed, and every seeded kill run since matched the reference.
SIZES = {"full": Size(10_000, 90, 20, 10), "tiny": Size(200, 21, 2, 9, step=3)}


@dataclass
class Run:
    """One run of (part of) the scenario, and what its checks found."""

    name: str
    seconds: float = 0.0
    breaks: dict[str, int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    differs: dict[str, tuple[int, int]] = field(default_factory=dict)  # name -> (found, reference)
    reconcile_exit: int = 0
    tracebacks: int = 0
    stalled_retried: int = 0
    killed_mid_job: bool = False
    stalled_tasks: list[str] = field(default_factory=list)  # the dead worker's jobs: "tick retried", ...
    victim_said: list[str] = field(default_factory=list)  # the killed worker's last log line
    # On a difference in e-mails: each e-mail sent in one run and not the other, then the story of
    # its account in both (attempts, retries asked, case, steps, e-mails, by instant).
    email_differences: list[str] = field(default_factory=list)

    @property
    def held(self) -> bool:
        return not self.breaks and not self.differs and self.reconcile_exit == 0 and not self.tracebacks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true",
                        help="a check that the bench runs and checks its result: 200 accounts, 21 days in steps "
                             "of 3, 2 kills of 9 days")
    parser.add_argument("--accounts", type=int, default=None, help="default 10,000; --tiny 200")
    parser.add_argument("--days", type=int, default=None, help="simulated days; default 90; --tiny 21")
    parser.add_argument("--kills", type=int, default=None, help="kill runs; default 20; --tiny 2")
    parser.add_argument("--window", type=int, default=None,
                        help="days a kill run runs (checkpoints); default 10; --tiny 9")
    parser.add_argument("--step", type=int, default=None, help="days from one instant to the next; default 1; "
                                                               "--tiny 3")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres",
                        help="a server where the bench may create and drop databases")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)
    base = SIZES["tiny" if args.tiny else "full"]
    size = Size(args.accounts or base.accounts, args.days or base.days,
                base.kills if args.kills is None else args.kills, args.window or base.window, args.step or base.step)
    if size.days < size.window or size.window % size.step or size.accounts < 10:
        sys.exit("bench: expected --days >= --window, a --window of whole steps and at least 10 accounts")
    started = time.monotonic()
    console = Console(width=80, highlight=False)
    console.print(f"{size.accounts:,} accounts, {size.days} days in steps of {size.step}, {WORKERS} workers;")
    console.print(f"{size.kills} kill runs of {size.window} days; seed {args.seed}")
    runs: list[Run] = []  # those finished, in order
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, STOP.on_signal)
    interrupted = False
    with Databases(args.postgres_url) as databases, tempfile.TemporaryDirectory() as folder:
        if AUTOVACUUM_OFF:
            console.print("the server's autovacuum is off: the bench vacuums and analyzes each database at each "
                          "instant, as it would")
        try:
            scenario(databases, size, args.seed, Path(folder), console, runs)
        except (Interrupted, KeyboardInterrupt):
            interrupted = True
        finally:
            # Whatever happens from here, dropping what the bench made is not interrupted.
            for number in (signal.SIGINT, signal.SIGTERM):
                signal.signal(number, signal.SIG_IGN)
    if interrupted:
        sys.exit(interrupted_after(console, runs, size, time.monotonic() - started))
    report(console, runs)
    figures = summary(runs, size, args.seed, time.monotonic() - started)
    print(" ".join(f"{key}={format_figure(value)}" for key, value in figures.items()))
    sys.exit(1 if figures["breaks"] else 0)


# -- databases -----------------------------------------------------------------------------------

class Databases:
    """The bench's databases on the server, `renewly_bench_worker_chaos_<pid>_<name>`: created
    empty and migrated, or as copies of another (PostgreSQL's CREATE DATABASE ... TEMPLATE); all
    dropped at the end, whatever happens."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = make_url(admin_url).set(drivername="postgresql")
        self.prefix = f"renewly_bench_worker_chaos_{os.getpid()}_"
        self.made: list[str] = []

    def __enter__(self) -> Databases:
        try:
            self.admin = psycopg.connect(self.admin_url.render_as_string(False), autocommit=True)
        except psycopg.OperationalError as error:
            sys.exit(f"bench: no PostgreSQL at {self.admin_url.render_as_string()}: {str(error).strip()}")
        global AUTOVACUUM_OFF
        AUTOVACUUM_OFF = self.admin.execute("SHOW autovacuum").fetchone()[0] == "off"  # type: ignore[index]
        return self

    def __exit__(self, *_exc) -> None:
        for name in reversed(self.made):
            self.admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.admin.close()

    def url(self, name: str) -> str:
        return self.admin_url.set(drivername="postgresql+psycopg", database=self.prefix + name) \
            .render_as_string(False)

    def create(self, name: str) -> str:
        self.made.append(self.prefix + name)
        self.admin.execute(f'CREATE DATABASE "{self.prefix + name}"')
        engine = make_engine(self.url(name))
        try:
            upgrade(engine)
        finally:
            engine.dispose()
        return self.url(name)

    def copy(self, source: str, name: str) -> str:
        """A copy of `source` (nobody may be connected to it)."""
        self.made.append(self.prefix + name)
        self.admin.execute(f'CREATE DATABASE "{self.prefix + name}" TEMPLATE "{self.prefix + source}"')
        return self.url(name)

    def drop(self, name: str) -> None:
        self.admin.execute(f'DROP DATABASE IF EXISTS "{self.prefix + name}" WITH (FORCE)')
        self.made.remove(self.prefix + name)


def open_app(url: str) -> App:
    """An app on `url`; a Ctrl-C asks its batches to stop (STOP)."""
    app = bootstrap(bench_settings(database_url=url, clock="test", payments={"lease_seconds": LEASE_SECONDS}),
                    upgrade=False)
    STOP.apps.append(app.stop)
    if STOP.asked:
        app.stop.ask()
    return app


# Set at the start: whether the server's autovacuum is off (this machine's PostgreSQL has it off
# in conf.d/90-ci.conf). Then the bench vacuums and analyzes a database at each instant, as
# autovacuum would: without it, the planner took the never-analyzed tables for empty and the
# renewal batch's next-tick query took 8 to 20 s at 10,000 accounts (every look of every worker).
AUTOVACUUM_OFF = False


def as_autovacuum_would(app: App) -> None:
    """VACUUM ANALYZE the app's database where the server's autovacuum is off; nothing else."""
    if AUTOVACUUM_OFF:
        with app.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE")


def close(app: App) -> None:
    """Every connection of the app closed, its gateway's too: its database may be copied."""
    if "gateway" in vars(app):  # connected (a cached property)
        app.gateway.dispose()
    app.engine.dispose()


# -- the accounts --------------------------------------------------------------------------------

def populate(url: str, size: Size, seed: int, folder: Path) -> dict[int, str]:
    """Import the accounts, and give the gateway their cards; each account's kind of card."""
    rng = random.Random(f"{seed}:accounts")
    kinds = {n: rng.choices(("good", "declining", "flaky", "none"), weights=(82, 6, 8, 4))[0]
             for n in range(1, size.accounts + 1)}
    app = open_app(url)
    app.test_clock.set(START)
    create_plan(app, code="team", name="Team", interval="month", price=1900, currency="EUR", actor=ACTOR)
    path = folder / "accounts.jsonl"
    with path.open("w", encoding="utf-8") as file:
        for n, kind in kinds.items():
            record = {
                "key": f"crm-{n:06d}", "name": f"Customer {n} Ltd", "owner_email": owner(n),
                "locale": "fr" if n % 3 == 0 else "en", "timezone": ZONES[n % len(ZONES)], "currency": "EUR",
                "address": {"line1": f"{n} Market Street", "postcode": f"{n % 100000:05d}", "city": "Springfield",
                            "country": COUNTRIES[n % len(COUNTRIES)]},
                # Renewals spread over the first four weeks: every day has its share.
                "subscriptions": [{"plan": "team", "seats": 1 + n % 7,
                                   "next_renewal": (START + timedelta(days=n % 28)).date().isoformat()}]}
            if kind != "none":
                record["card"] = {"customer": f"cus_legacy_{n}", "token": f"pm_legacy_{n}", "brand": "visa",
                                  "last4": "4242", "exp": "12/2030"}
            file.write(json.dumps(record) + "\n")
    imported = import_file(app, path, actor=ACTOR)
    if imported.problems or imported.accounts != size.accounts:
        sys.exit(f"bench: the import wrote {imported.accounts} accounts: {imported.problems[:3]}")
    app.gateway.charge_count()  # the ledger's schema exists from here on
    behaviour = "CASE WHEN kind = 'declining' THEN 'charges_declined' ELSE 'succeeds' END"
    carded = [(n, kind) for n, kind in kinds.items() if kind != "none"]
    flaky = [(n, rng.randint(1, 3)) for n, kind in kinds.items() if kind == "flaky"]
    with app.engine.begin() as conn:
        conn.execute(text("""
            INSERT INTO renewly_simulator.sim_customers (id, account_id, email, deleted)
            SELECT 'cus_legacy_' || n, n, 'owner' || n || '@customer' || n || '.example', 0
            FROM unnest(CAST(:ids AS bigint[])) AS n"""), {"ids": [n for n, _ in carded]})
        conn.execute(text(f"""
            INSERT INTO renewly_simulator.sim_cards (token, customer, brand, last4, exp_month, exp_year, behaviour)
            SELECT 'pm_legacy_' || n, 'cus_legacy_' || n, 'visa', '4242', 12, 2030, {behaviour}
            FROM unnest(CAST(:ids AS bigint[]), CAST(:kinds AS text[])) AS t (n, kind)"""),
                     {"ids": [n for n, _ in carded], "kinds": [kind for _, kind in carded]})
        # A flaky card: its account's next one to three charges declined, then it pays.
        conn.execute(text("""
            INSERT INTO renewly_simulator.sim_faults (kind, remaining, decline_code, account_id)
            SELECT 'decline', declines, 'insufficient_funds', n
            FROM unnest(CAST(:ids AS bigint[]), CAST(:declines AS int[])) AS t (n, declines)"""),
                     {"ids": [n for n, _ in flaky], "declines": [count for _, count in flaky]})
    close(app)
    return kinds


def owner(n: int) -> str:
    return f"owner{n}@customer{n}.example"


# -- the scenario --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Instant:
    at: datetime
    card_updates: bool  # after its tick, some owners in dunning save a card that pays


def instants(days: int, step: int) -> list[Instant]:
    """Every `step` days at 00:00 UTC; every third such instant, after its tick, card updates,
    and 01:00, the payment batch's next tick, which their follow-up jobs ask for."""
    found = []
    for number, day in enumerate(range(0, days + 1, step)):
        midnight = START + timedelta(days=day)
        updates = number % CARD_UPDATE_EVERY == CARD_UPDATE_EVERY - 1 and day < days
        found.append(Instant(midnight, updates))
        if updates:
            found.append(Instant(midnight + timedelta(hours=1), False))
    return found


def interrupted_after(console: Console, runs: list[Run], size: Size, seconds: float) -> int:
    """What an interrupted bench did, said; its exit code (130, as after Ctrl-C)."""
    if runs:
        report(console, runs)
    broke = sum(not run.held for run in runs)
    print(f"bench: interrupted after {seconds:.0f} s, {len(runs)} of {2 + size.kills} runs finished"
          f"{f', {broke} of them broke' if broke else ''}; the workers are stopped, the databases dropped",
          file=sys.stderr)
    return 130


def scenario(databases: Databases, size: Size, seed: int, folder: Path, console: Console,
             runs: list[Run]) -> None:
    """The reference, the workers' run and the kill runs, each added to `runs` once finished."""
    steps = instants(size.days, size.step)
    # Checkpoints: the index of the first step of each window (a kill run runs steps[c:next c]).
    checkpoints = [i for i, step in enumerate(steps) if step.at.hour == 0 and i < len(steps) - 1
                   and (step.at - START).days % size.window == 0]
    began = time.monotonic()
    base = databases.create("base")
    kinds = populate(base, size, seed, folder)
    STOP.check()
    cards = ", ".join(f"{number} {kind}" for kind, number in sorted(Counter(kinds.values()).items()))
    console.print(f"imported in {time.monotonic() - began:.0f} s; cards: {cards}")

    reference = Run("reference")
    began = time.monotonic()
    databases.copy("base", "reference")
    app = open_app(databases.url("reference"))
    updates: dict[int, list[int]] = {}  # step -> accounts whose owner saved a card that pays
    expected: dict[int, dict[str, int]] = {}  # checkpoint -> counts there
    sent: dict[int, Counter] = {}  # checkpoint -> e-mails there, by (account, kind, instant)
    saved_at: dict[int, str] = {}  # checkpoint -> the database that holds the reference there
    rng = random.Random(f"{seed}:card-updates")
    for index, step in enumerate(steps):
        if index in checkpoints and index:
            expected[index], sent[index] = story_counts(app), sent_emails(app)
            close(app)
            databases.copy("reference", f"checkpoint_{index}")
            saved_at[index] = databases.url(f"checkpoint_{index}")
            app = open_app(databases.url("reference"))
        STOP.check()  # the clock moves no further
        move_clock_to(app, step.at)
        run_all(app, step.at)
        STOP.check()  # run_all stopped after its slice: the instant is not done
        as_autovacuum_would(app)
        if step.card_updates:
            updates[index] = in_dunning(app, rng, max(1, size.accounts // 1000))
            save_good_cards(app, updates[index])
    expected[len(steps)], sent[len(steps)] = story_counts(app), sent_emails(app)
    saved_at[len(steps)] = databases.url("reference")
    finish_checks(app, reference, folder)
    reference.counts = expected[len(steps)]
    close(app)
    reference.seconds = time.monotonic() - began
    tell(console, reference, f"{len(steps)} instants in one process")
    runs.append(reference)

    workers = Run("3 workers")
    began = time.monotonic()
    url = databases.copy("base", "workers")
    run_with_workers(url, steps, 0, len(steps), updates, workers, folder,
                     reference=(sent[len(steps)], saved_at[len(steps)]))
    workers.seconds = time.monotonic() - began
    compare(workers, expected[len(steps)])
    tell(console, workers, f"{len(steps)} instants, {WORKERS} workers started at once")
    runs.append(workers)
    databases.drop("workers")

    ends = checkpoints[1:] + [len(steps)]
    for number in range(size.kills):
        rng = random.Random(f"{seed}:kill:{number}")
        window = rng.randrange(len(checkpoints))
        first, last = checkpoints[window], ends[window]
        run = Run(f"kill {number + 1}")
        began = time.monotonic()
        source = "base" if first == 0 else f"checkpoint_{first}"
        url = databases.copy(source, f"kill_{number}")
        kill = Kill(step=rng.randrange(first, last), delay=rng.uniform(0.3, 2.5), victim=rng.randrange(WORKERS),
                    restart_after=rng.uniform(0.0, 3.0))
        run_with_workers(url, steps, first, last, updates, run, folder, kill,
                         reference=(sent[last], saved_at[last]))
        run.seconds = time.monotonic() - began
        compare(run, expected[last])
        day = (steps[kill.step].at - START).days
        tell(console, run, f"days {(steps[first].at - START).days}-{(steps[last - 1].at - START).days}, "
                           f"killed on day {day} after {kill.delay:.1f} s"
                           + (" mid-job" if run.killed_mid_job else " while idle"))
        runs.append(run)
        databases.drop(f"kill_{number}")


def move_clock_to(app: App, instant: datetime) -> None:
    """The test clock moved as `renewly clock advance --no-batches` moves it: no batch runs here."""
    if instant > app.clock.now():
        advance(app, instant - app.clock.now(), run_batches=False)


def in_dunning(app: App, rng: random.Random, count: int) -> list[int]:
    """Up to `count` accounts with an open dunning case, not cancelled, chosen at random."""
    with app.engine.connect() as conn:
        found = sorted(conn.execute(text(
            "SELECT DISTINCT c.account_id FROM dunning_cases AS c JOIN accounts AS a ON a.id = c.account_id "
            "WHERE c.status = 'open' AND a.status IN ('active', 'past_due')")).scalars())
    return rng.sample(found, min(count, len(found)))


def save_good_cards(app: App, accounts: list[int]) -> None:
    """Each owner saves a card that pays (`renewly cards add`): a card check, the follow-up queued."""
    for account_id in accounts:
        token = app.gateway.tokenize(GOOD_CARD, 12, 2030)
        add_card(app, account_id, card_token=token, acting_email=owner(account_id))


# -- workers -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Kill:
    step: int  # the instant at which a worker dies
    delay: float  # seconds after the clock reached it
    victim: int
    restart_after: float  # seconds from the kill to the new worker's start


class Workers:
    """`renewly worker` processes on one database, their logs in files (a pipe left unread would
    stop a worker that logs three months of ticks)."""

    def __init__(self, app: App, folder: Path) -> None:
        self.app, self.folder = app, folder
        self.processes: list[subprocess.Popen] = []
        self.logs: list[Path] = []
        self.victim_log: Path | None = None
        self.env = {**{name: value for name, value in os.environ.items() if not name.startswith("RENEWLY_")},
                    "RENEWLY_DATABASE_URL": app.settings.database_url, "RENEWLY_CLOCK": "test",
                    "RENEWLY_PAYMENTS__SIMULATOR_URL": app.settings.simulator_url(), **WORKER_SETTINGS}

    def start(self, count: int) -> None:
        """`count` workers started at once; each has joined the queue on return."""
        before = self._scalar("SELECT coalesce(max(id), 0) FROM procrastinate_workers")
        for _ in range(count):
            log = self.folder / f"worker-{len(self.logs)}.log"
            with log.open("w") as stderr:
                # A session of its own: the terminal's Ctrl-C is the bench's, which stops it by SIGTERM.
                self.processes.append(subprocess.Popen([str(RENEWLY), "worker"], cwd=self.folder, env=self.env,
                                                       stdout=subprocess.DEVNULL, stderr=stderr,
                                                       start_new_session=True))
            self.logs.append(log)
        self._wait(lambda: self._scalar(f"SELECT count(*) FROM procrastinate_workers WHERE id > {before}") >= count,
                   "the workers never joined the queue", 120)

    def kill(self, index: int) -> None:
        """kill -9 of one running worker: no handler runs, no transaction commits, its heartbeat stops."""
        running = [process for process in self.processes if process.poll() is None]
        victim = running[index % len(running)]
        victim.kill()
        victim.wait()
        self.victim_log = self.logs[self.processes.index(victim)]

    def settle(self) -> None:
        """Until nothing is due at the test clock's now and no tick or helper is queued or
        running (twice in a row: a look may be deferring one)."""
        calm = 0

        def settled() -> bool:
            nonlocal calm
            busy = self._scalar("SELECT count(*) FROM procrastinate_jobs WHERE task_name IN ('tick', 'slices') "
                                "AND status IN ('todo', 'doing')")
            quiet = busy == 0 and tick_due(self.app, self.app.clock.now()) is None
            calm = calm + 1 if quiet else 0
            return calm >= 2

        self._wait(settled, f"the workers never settled at {self.app.clock.now().isoformat()}", SETTLE_TIMEOUT)

    def stop(self) -> list[int]:
        """SIGTERM to each running worker: each finishes its slice and exits; the exit codes of
        those that were running (-9: killed, not done STOP_TIMEOUT seconds on, or a second Ctrl-C)."""
        running = [process for process in self.processes if process.poll() is None]
        for process in running:
            process.terminate()
        deadline = time.monotonic() + STOP_TIMEOUT
        try:
            for process in running:
                try:
                    process.wait(timeout=max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
        finally:
            self.kill_all()  # a second Ctrl-C meanwhile: at once
        return [process.returncode for process in running]

    def kill_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()

    def log_text(self) -> str:
        return "".join(log.read_text(errors="replace") for log in self.logs)

    def _scalar(self, query: str) -> int:
        with self.app.engine.connect() as conn:
            return conn.execute(text(query)).scalar_one()

    def _wait(self, condition, failure: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            STOP.check()
            for process, log in zip(self.processes, self.logs, strict=True):
                if process.poll() not in (None, -9):
                    raise RuntimeError(f"a worker exited {process.returncode}: "
                                       f"{log.read_text(errors='replace')[-2000:]}")
            if time.monotonic() > deadline:
                due = [(item.batch, item.work_at, item.next_tick_at) for item in schedule(self.app,
                                                                                          self.app.clock.now())]
                raise RuntimeError(f"{failure}; due: {due}")
            time.sleep(0.1)


def run_with_workers(url: str, steps: list[Instant], first: int, last: int, updates: dict[int, list[int]],
                     run: Run, folder: Path, kill: Kill | None = None,
                     reference: tuple[Counter, str] | None = None) -> None:
    """Three workers run steps[first:last]; this process moves the clock and saves the cards the
    reference saved; one worker dies at `kill`. Then the checks; `reference`: its e-mails at
    steps[last] and the database that holds it there, to say which e-mails differ."""
    app = open_app(url)
    logs = folder / run.name.replace(" ", "-")
    logs.mkdir()
    workers = Workers(app, logs)
    try:
        workers.start(WORKERS)
        workers.settle()  # anything due where the run begins (the first renewals are due at START)
        for index in range(first, last):
            STOP.check()  # the clock moves no further
            move_clock_to(app, steps[index].at)
            if kill is not None and index == kill.step:
                time.sleep(kill.delay)
                workers.kill(kill.victim)
                time.sleep(kill.restart_after)
                workers.start(1)
            workers.settle()
            as_autovacuum_would(app)
            if index in updates:
                save_good_cards(app, updates[index])
        codes = workers.stop()
    finally:
        workers.stop()  # interrupted: each worker finishes its slice (a second Ctrl-C: killed)
    logged = workers.log_text()
    run.tracebacks = logged.count("Traceback")
    if run.tracebacks:  # the first, whole, for whoever looks into it
        first = logged.index("Traceback")
        sys.stderr.write(f"--- {run.name}: the workers' first traceback\n{logged[max(0, first - 600):first + 4000]}\n")
    # The dead worker's jobs in hand, put back or ended by another (a look's, a tick's, a helper's).
    run.stalled_retried = logged.count("stalled job retried") + logged.count("stalled job dropped")
    run.stalled_tasks = stalled_tasks(logged)
    # Caught with a tick or a helper in hand; not a periodic look, which has no work of its own.
    run.killed_mid_job = any(task.split()[0] in ("tick", "slices") for task in run.stalled_tasks)
    if workers.victim_log is not None:  # what the killed worker said last
        run.victim_said = workers.victim_log.read_text(errors="replace").strip().splitlines()[-1:]
    if any(code != 0 for code in codes):
        run.breaks["worker_exits"] = sum(code != 0 for code in codes)
    # A tick the dead worker left is run again; its claims' leases have ended by then: nothing pending.
    time.sleep(LEASE_SECONDS)
    run.counts = story_counts(app)
    if reference is not None:
        run.email_differences = email_differences(app, *reference)
    finish_checks(app, run, folder)
    close(app)


# -- checks --------------------------------------------------------------------------------------

def story_counts(app: App) -> dict[str, int]:
    """What happened, for comparing two runs of the same scenario: documents, money, dunning and
    e-mails by kind."""
    with app.engine.connect() as conn:
        rows = conn.execute(text(STORY)).all()
    return dict(sorted((name, number) for name, number in rows))


STORY = """
    SELECT 'invoices', count(*) FROM invoices WHERE kind = 'invoice'
    UNION ALL SELECT 'paid', count(*) FROM invoices WHERE status = 'paid'
    UNION ALL SELECT 'charges', count(*) FROM renewly_simulator.sim_operations
              WHERE kind = 'charge' AND outcome = 'succeeded'
    UNION ALL SELECT 'attempts_' || status, count(*) FROM payment_attempts GROUP BY status
    UNION ALL SELECT 'cases_' || status, count(*) FROM dunning_cases GROUP BY status
    UNION ALL SELECT 'steps', count(*) FROM dunning_steps
    UNION ALL SELECT 'email_' || (payload->>'kind'), count(*) FROM outbox WHERE topic = 'email'
              GROUP BY payload->>'kind'
    UNION ALL SELECT 'event_' || topic, count(*) FROM outbox WHERE topic <> 'email' GROUP BY topic
    UNION ALL SELECT 'accounts_' || status, count(*) FROM accounts GROUP BY status"""

# Each must be 0, over the whole database.
DUPLICATES = {
    "duplicate_invoices": """
        SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM invoices WHERE kind = 'invoice'
                                             GROUP BY subscription_id, period_start) AS periods""",
    "duplicate_attempt_keys": """
        SELECT count(*) - count(DISTINCT idempotency_key) FROM payment_attempts""",
    "double_charges": """
        SELECT count(*) FROM (
            SELECT a.invoice_id FROM payment_attempts AS a
            WHERE a.status = 'succeeded' GROUP BY a.invoice_id HAVING count(*) > 1
            UNION
            SELECT a.invoice_id FROM renewly_simulator.sim_operations AS o
            JOIN payment_attempts AS a ON a.idempotency_key = o.idempotency_key
            WHERE o.kind = 'charge' AND o.outcome = 'succeeded' GROUP BY a.invoice_id HAVING count(*) > 1
        ) AS twice""",
    "duplicate_emails": """
        SELECT coalesce(sum(n - 1), 0) FROM (SELECT count(*) AS n FROM outbox WHERE topic = 'email'
                                             GROUP BY account_id, payload->>'kind', created_at) AS sent""",
    "gaps": """
        SELECT coalesce(sum(max - min + 1 - numbers + (next_sequence <> max + 1)::int), 0)
        FROM (SELECT series, min(sequence) AS min, max(sequence) AS max, count(DISTINCT sequence) AS numbers
              FROM invoices GROUP BY series) AS used
        JOIN invoice_series USING (series)""",
}


def finish_checks(app: App, run: Run, folder: Path) -> None:
    """The SQL checks above, every invariant of bench/chaos_invariants.py (settled: nothing may be
    pending, parked or held past its void), then `renewly reconcile`."""
    with app.engine.connect() as conn:
        for name, query in DUPLICATES.items():
            found = conn.execute(text(query)).scalar_one()
            if found:
                run.breaks[name] = found
    gateway = app.gateway
    invariants = check(app.engine, gateway.ledger(), settled=True, held=gateway.held_authorizations(),
                       now=app.clock.now())
    run.breaks.update(invariants.broken())
    env = {**{name: value for name, value in os.environ.items() if not name.startswith("RENEWLY_")},
           "RENEWLY_DATABASE_URL": app.settings.database_url, "RENEWLY_CLOCK": "test"}
    done = subprocess.run([str(RENEWLY), "reconcile"], cwd=folder, env=env, capture_output=True, text=True)
    run.reconcile_exit = done.returncode
    if done.returncode:
        sys.stderr.write(f"--- renewly reconcile after {run.name}: exit {done.returncode}\n{done.stdout}{done.stderr}")


def sent_emails(app: App) -> Counter:
    """The e-mails written, by (account, kind, instant)."""
    with app.engine.connect() as conn:
        return Counter((account_id, kind, at.isoformat(timespec="minutes")) for account_id, kind, at in conn.execute(
            text("SELECT account_id, payload->>'kind', created_at FROM outbox WHERE topic = 'email'")))


# An account's story, by instant: what to read beside an e-mail that one run sent and the other not.
TRAIL = """
    SELECT at, what FROM (
        SELECT a.created_at AS at, format('attempt %s #%s (%s): %s, settled %s', i.number, a.number, a.reason,
                                          a.status, coalesce(to_char(a.settled_at, 'YYYY-MM-DD HH24:MI'), '-')) AS what
        FROM payment_attempts AS a JOIN invoices AS i ON i.id = a.invoice_id WHERE a.account_id = :account
        UNION ALL SELECT r.requested_at, format('retry of %s asked: %s', i.number, r.reason)
        FROM payment_retries AS r JOIN invoices AS i ON i.id = r.invoice_id WHERE i.account_id = :account
        UNION ALL SELECT c.opened_at, format('case %s opened (day 0 %s), %s', c.id, c.day0, c.status)
        FROM dunning_cases AS c WHERE c.account_id = :account
        UNION ALL SELECT s.taken_at, format('step %s (day %s)%s%s', s.name, s.day, ' e-mail ' || s.email,
                                            CASE WHEN s.charge_requested = 1 THEN ', charge asked' ELSE '' END)
        FROM dunning_steps AS s JOIN dunning_cases AS c ON c.id = s.case_id WHERE c.account_id = :account
        UNION ALL SELECT created_at, 'e-mail ' || (payload->>'kind') FROM outbox
        WHERE topic = 'email' AND account_id = :account
    ) AS story ORDER BY at, what"""
SHOWN_ACCOUNTS = 5  # differing accounts whose story is shown


def email_differences(app: App, expected: Counter, reference_url: str) -> list[str]:
    """Lines saying each e-mail sent in one run and not in the other (account, kind, instant),
    then the story of the first accounts concerned here and in the reference."""
    found = sent_emails(app)
    lines = [f"{'only here' if side is found else 'only in the reference'}: account {account_id} {kind} at {at}"
             for side, other in ((found, expected), (expected, found))
             for (account_id, kind, at), number in sorted((side - other).items()) for _ in range(number)]
    accounts = sorted({int(line.split()[line.split().index("account") + 1]) for line in lines})[:SHOWN_ACCOUNTS]
    if not accounts:
        return []
    reference = make_engine(reference_url)
    try:
        for account_id in accounts:
            for name, engine in (("here", app.engine), ("reference", reference)):
                with engine.connect() as conn:
                    story = conn.execute(text(TRAIL), {"account": account_id}).all()
                lines.append(f"account {account_id}, {name}:")
                lines += [f"  {at:%Y-%m-%d %H:%M} {what}" for at, what in story]
    finally:
        reference.dispose()  # its database may be copied again
    return lines


def stalled_tasks(logged: str) -> list[str]:
    """The dead worker's jobs, as the workers' logs tell them: "tick retried", "slices dropped"..."""
    found = []
    for line in logged.splitlines():
        if '"stalled job' not in line:
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("event", "").startswith("stalled job"):
            found.append(f"{record.get('task')} {record['event'][len('stalled job '):].split(':')[0]}")
    return found


def compare(run: Run, expected: dict[str, int]) -> None:
    for name in sorted(set(run.counts) | set(expected)):
        if run.counts.get(name, 0) != expected.get(name, 0):
            run.differs[name] = (run.counts.get(name, 0), expected.get(name, 0))


# -- report --------------------------------------------------------------------------------------

def tell(console: Console, run: Run, what: str) -> None:
    verdict = "held" if run.held else "BROKE"
    console.print(f"{run.name}: {what}: {run.seconds:.0f} s, {verdict}")
    for name, value in run.breaks.items():
        console.print(f"  {name}: {value}")
    for name, (found, reference) in run.differs.items():
        console.print(f"  {name}: {found}, the reference {reference}")
    if run.reconcile_exit:
        console.print(f"  renewly reconcile exited {run.reconcile_exit}")
    if run.tracebacks:
        console.print(f"  {run.tracebacks} tracebacks in the workers' logs")
    if run.stalled_tasks:
        console.print(f"  the dead worker's jobs: {', '.join(run.stalled_tasks)}")
    if run.email_differences:
        console.print(f"  the killed worker's last line: {' '.join(run.victim_said)[:400]}", soft_wrap=True)
    for line in run.email_differences:
        console.print(f"  {line}", soft_wrap=True)


def report(console: Console, runs: list[Run]) -> None:
    reference = runs[0].counts
    console.print(f"reference: {reference.get('invoices', 0):,} invoices, {reference.get('charges', 0):,} charges, "
                  f"{reference.get('attempts_declined', 0):,} declines,")
    console.print(f"  {cases(reference):,} dunning cases, {emails(reference):,} e-mails")
    table = Table(title="Runs", width=80)
    for name in ("run", "seconds", "invoices", "charges", "e-mails", "breaks", "differ", "held"):
        table.add_column(name, justify="left" if name == "run" else "right")
    for run in runs:
        table.add_row(run.name, f"{run.seconds:.0f}", f"{run.counts.get('invoices', 0):,}",
                      f"{run.counts.get('charges', 0):,}", f"{emails(run.counts):,}", str(sum(run.breaks.values())),
                      str(len(run.differs)), "yes" if run.held else "NO")
    console.print(table)
    console.print("breaks: duplicates, double charges, gaps, lost or invented e-mails and")
    console.print("events, pending or parked rows (chaos_invariants.py), a worker's exit;")
    console.print("differ: counts unlike the reference's at the same instant.")


def cases(counts: dict[str, int]) -> int:
    return sum(value for name, value in counts.items() if name.startswith("cases_"))


def emails(counts: dict[str, int]) -> int:
    return sum(value for name, value in counts.items() if name.startswith("email_"))


def summary(runs: list[Run], size: Size, seed: int, seconds: float) -> dict[str, object]:
    def total(name: str) -> int:
        return sum(run.breaks.get(name, 0) for run in runs)

    kills = [run for run in runs if run.name.startswith("kill")]
    return {
        "accounts": size.accounts, "days": size.days, "workers": WORKERS, "seed": seed,
        "invoices": runs[0].counts.get("invoices", 0), "charges": runs[0].counts.get("charges", 0),
        "emails": emails(runs[0].counts),
        "duplicates": total("duplicate_invoices") + total("duplicate_attempt_keys"),
        "double_charges": total("double_charges") + total("overpaid") + total("unrecorded_charges"),
        "duplicate_emails": total("duplicate_emails") + total("duplicate_events"),
        "gaps": total("gaps"), "lost_emails": total("lost_emails") + total("phantom_emails"),
        "reconcile_failures": sum(run.reconcile_exit != 0 for run in runs),
        "differing_runs": sum(bool(run.differs) for run in runs),
        "tracebacks": sum(run.tracebacks for run in runs),
        "runs": len(kills), "kills_mid_job": sum(run.killed_mid_job for run in kills),
        "breaks": sum(not run.held for run in runs),
        "reference_s": runs[0].seconds, "workers_s": runs[1].seconds, "seconds": round(seconds),
    }


if __name__ == "__main__":
    main()
