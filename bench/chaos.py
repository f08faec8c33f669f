"""The reliability suite (issue 9): races, kill -9 and a faulty gateway, counted.

    .venv/bin/python bench/chaos.py                  # `make chaos`: a few minutes on 2 cores
    .venv/bin/python bench/chaos.py --tiny           # a check that it runs: tests/test_benches.py
    .venv/bin/python bench/chaos.py --part kill --seed 7

Three parts, each on PostgreSQL (a database of its own on the server of --postgres-url, dropped
at the end) and on SQLite (a temporary folder), smaller there:

- concurrency: N processes at once, `renewly clock advance` and `renewly run`, with now and then
  a single batch, a card update, a reactivation, a gateway fault or a credit note among them
  (two at once on one invoice every fourth round), over A accounts, round after round;
- kill: a `renewly clock advance` of 5 to 20 days (and a `renewly run`, a `cards add` beside
  it) killed with SIGKILL at a random moment, again and again; on PostgreSQL every other time its connections
  are dropped instead (pg_terminate_backend); then a last run after the payment lease;
- faults: the batches in this process, through a gateway that fails on purpose: an exception
  before the call, a timeout after the charge was made, an answer lost, slow answers, requests
  sent twice; and the simulated gateway's own scripted faults (`renewly gateway fault`).

Whatever happened, the database must hold (bench/chaos_invariants.py): no invoice twice, no gap
in the numbers, no double charge, no e-mail or event lost or invented, nothing left pending or
parked after a last run, and `renewly reconcile` agreeing with the gateway. A trial is a round,
a kill or a tick with faults; it held when every check held right after it. Tracebacks are
stderr outputs of the processes (or errors of this process's batches) holding "Traceback".
The exit code is 1 when anything broke; the last line is key=value pairs, for scripts.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

import structlog
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from sqlalchemy import select, text

from renewly.accounts.accounts import create_account
from renewly.adapters.db.tables import accounts, invoices
from renewly.adapters.gateways.simulated import Fault, SimulatedGateway, sim_faults
from renewly.billing.plans import create_plan
from renewly.billing.subscriptions import create_subscription
from renewly.bootstrap import App, bootstrap
from renewly.payments.cards import add_card
from renewly.payments.reconcile import reconcile
from renewly.payments.rules.charges import ChargeRequest, GatewayResult, Outcome
from renewly.scheduler import BatchFailed, advance, run_all

sys.path.insert(0, str(Path(__file__).parent))
from chaos_invariants import Counts, check  # noqa: E402
from renewal import bench_database, bench_settings  # noqa: E402  (a database of our own, as bench/renewal.py)

RENEWLY = Path(sys.executable).with_name("renewly")
START = datetime(2026, 1, 1, tzinfo=UTC)
ACTOR = "bench:chaos"
ZONES = ("UTC", "Europe/Paris", "America/New_York", "Asia/Tokyo")
GOOD_CARD, DECLINING_CARD = "4242424242424242", "4000000000000341"  # the second saves, then declines
# The payment lease: a killed batch's attempts are the janitor's this soon, and a batch slower
# than this between its claim and its answer sees a janitor elsewhere take its attempts over.
LEASE_SECONDS = 1
ENGINES = {"pg": "PostgreSQL", "sqlite": "SQLite"}
PARTS = ("concurrency", "kill", "faults")


@dataclass(frozen=True)
class Size:
    accounts: int
    processes: int = 0
    rounds: int = 0  # concurrency: rounds; kill: kills per seed; faults: ticks
    seeds: int = 1
    wait: tuple[float, float] = (1.0, 4.0)  # kill: seconds before the kill (an interpreter starts in 1 s)
    # The last run in this process (`run_all`, what `renewly run` runs) rather than in one of its
    # own: --tiny saves the start of an interpreter per part.
    last_run_here: bool = False

    def describe(self, part: str) -> str:
        if part == "concurrency":
            return f"{self.processes} processes x {self.rounds} rounds x {self.accounts} accounts"
        if part == "kill":
            return f"{self.seeds} seeds x {self.rounds} kills x {self.accounts} accounts"
        return f"{self.rounds} ticks x {self.accounts} accounts"


SIZES = {
    # part: {engine: (tiny, full)}; full: about 5 minutes in all on 2 cores
    "concurrency": {"pg": (Size(30, 2, 2, last_run_here=True), Size(150, 4, 12)),
                    "sqlite": (Size(15, 2, 1, last_run_here=True), Size(60, 3, 6))},
    "kill": {"pg": (Size(20, rounds=2, wait=(0.5, 1.2), last_run_here=True), Size(80, rounds=4, seeds=3)),
             "sqlite": (Size(10, rounds=1, wait=(0.5, 1.2), last_run_here=True), Size(40, rounds=3, seeds=2))},
    "faults": {"pg": (Size(20, rounds=3), Size(150, rounds=30)), "sqlite": (Size(10, rounds=2), Size(60, rounds=15))},
}


@dataclass
class Result:
    part: str
    engine: str
    size: str
    tried: int = 0
    held: int = 0
    tracebacks: int = 0
    processes: int = 0
    failures: int = 0  # processes that exited otherwise than expected, batches that failed
    counts: Counts = field(default_factory=Counts)  # the last check's
    worst: dict[str, int] = field(default_factory=dict)  # the largest count of each break seen
    notes: list[str] = field(default_factory=list)
    commands: dict[str, tuple[int, int]] = field(default_factory=dict)  # command -> (exit 0, started)
    paid_void: int = 0  # invoices voided by a credit note after they were charged: reconcile names them

    def record(self, counts: Counts) -> bool:
        self.counts = counts
        self.paid_void = max(self.paid_void, counts.paid_void)
        for name, value in counts.broken().items():
            self.worst[name] = max(self.worst.get(name, 0), value)
        return not counts.broken()

    def figure(self, name: str) -> int:
        return self.worst.get(name, 0)

    @property
    def broke(self) -> bool:
        return bool(self.worst) or self.tracebacks > 0 or self.held < self.tried


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="a check that the suite runs, in seconds")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--part", choices=PARTS, action="append", help="default: all three; may be repeated")
    parser.add_argument("--engine", choices=sorted(ENGINES), action="append", help="default: both")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres",
                        help="a server where the suite may create and drop databases")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # each part's counts as it ends, even into a file
    parts, engines = args.part or list(PARTS), args.engine or ["pg", "sqlite"]
    started = time.monotonic()
    console = Console(width=80, highlight=False)
    plan = [(part, engine, SIZES[part][engine][0 if args.tiny else 1]) for part in parts for engine in engines]
    results: list[Result] = []
    with Progress(TextColumn("{task.description}"), BarColumn(bar_width=20), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=Console(stderr=True, width=80), transient=True,
                  disable=not sys.stderr.isatty()) as progress:
        for part, engine, size in plan:
            trials = size.rounds * size.seeds + size.seeds
            task = progress.add_task(f"{part} on {ENGINES[engine]}", total=trials)
            runner = {"concurrency": concurrency, "kill": kill, "faults": faults}[part]
            result = Result(part, engine, size.describe(part))
            began = time.monotonic()
            with storage(engine, args.postgres_url, part) as urls:
                runner(urls, size, random.Random(f"{args.seed}:{part}:{engine}"), result,
                       lambda task=task: progress.advance(task))
            results.append(result)
            console.print(f"{part} on {ENGINES[engine]}: {result.size}")
            console.print(f"  tried {result.tried}, held {result.held}"
                          + (f", {result.processes} processes" if result.processes else "")
                          + f", {time.monotonic() - began:.0f} s")
            seen = result.counts
            # What the last database went through (the last seed's, in the kill part).
            result.notes[:0] = [f"{seen.invoices} invoices, {seen.credit_notes} credit notes, {seen.charges} charges, "
                                f"{seen.declines} declines;",
                                f"{seen.cases} dunning cases, {seen.recoveries} recovered, {seen.cancellations} "
                                f"cancelled, {seen.step_emails} step e-mails"]
            if result.commands:
                result.notes[:0] = textwrap.wrap("exit 0 of all: " + ", ".join(
                    f"{command} {done}/{all_}" for command, (done, all_) in sorted(result.commands.items())), 76)
            if result.paid_void:
                result.notes.append(f"{result.paid_void} invoices credited while charged (reconcile names them)")
            for note in result.notes:
                console.print(f"  {note}")
    report(console, results)
    breaks = sum(result.broke for result in results)
    figures = {"seed": args.seed, "breaks": breaks, "seconds": round(time.monotonic() - started)}
    for result in results:
        prefix = f"{result.part}_{result.engine}"
        figures.update({f"{prefix}_tried": result.tried, f"{prefix}_held": result.held,
                        f"{prefix}_duplicates": result.figure("duplicate_invoices") + result.figure("duplicate_events"),
                        f"{prefix}_double_charges": result.figure("double_charges") + result.figure("overpaid")
                        + result.figure("unrecorded_charges"),
                        f"{prefix}_gaps": result.figure("gaps"),
                        f"{prefix}_lost_emails": result.figure("lost_emails") + result.figure("phantom_emails"),
                        f"{prefix}_tracebacks": result.tracebacks})
    print(" ".join(f"{key}={value}" for key, value in figures.items()))
    sys.exit(1 if breaks else 0)


def report(console: Console, results: list[Result]) -> None:
    table = Table(title="Counts (the largest seen after any trial)", width=80)
    for name in ("part", "engine", "tried", "held", "dup", "double", "gaps", "lost", "tb"):
        table.add_column(name, justify="left" if name in ("part", "engine") else "right")
    for result in results:
        table.add_row(result.part, ENGINES[result.engine], str(result.tried), str(result.held),
                      str(result.figure("duplicate_invoices") + result.figure("duplicate_events")),
                      str(result.figure("double_charges") + result.figure("overpaid")
                          + result.figure("unrecorded_charges")),
                      str(result.figure("gaps")), str(result.figure("lost_emails") + result.figure("phantom_emails")),
                      str(result.tracebacks))
    console.print(table)
    console.print("dup: invoices or events twice; double: charged twice, beyond the total or")
    console.print("without a record; lost: e-mails or events missing or invented; tb: tracebacks.")
    for result in results:
        others = {name: value for name, value in result.worst.items()
                  if name in ("over_credited", "pending_attempts", "parked", "held_authorizations")}
        if others or result.failures or result.held < result.tried:
            console.print(f"{result.part} on {ENGINES[result.engine]}: held {result.held} of {result.tried}; "
                          + ", ".join(f"{name} {value}" for name, value in {**others,
                                                                             "failures": result.failures}.items()))


# -- storage -----------------------------------------------------------------------------------------

@contextmanager
def storage(engine: str, admin_url: str, part: str):
    """Yields a function that gives a fresh database URL (one per seed): dropped or deleted after."""
    if engine == "pg":
        opened = []

        def fresh(n: int) -> str:
            database = bench_database(admin_url, f"{part}_{n}")
            opened.append(database)
            return database.__enter__()
        try:
            yield fresh
        finally:
            for database in opened:
                database.__exit__()
        return
    with tempfile.TemporaryDirectory(prefix="renewly-chaos-") as folder:
        def fresh_file(n: int) -> str:
            return f"sqlite:///{Path(folder) / f'chaos-{n}.db'}"
        yield fresh_file


def make_app(url: str, gateway=None) -> App:
    settings = bench_settings(database_url=url, clock="test",
                              payments={"lease_seconds": LEASE_SECONDS})
    app = bootstrap(settings, gateway=gateway)
    return app


def populate(app: App, count: int, rng: random.Random) -> None:
    """`count` accounts on a test clock at START, subscribed on days spread over the last month,
    their first invoice issued: most with a card that pays, some with one that declines (dunning
    to the end), some without a card, some whose next charges decline a few times, then pay."""
    app.test_clock.set(START)
    create_plan(app, code="team", name="Team", interval="month", price=1900, currency="EUR", actor=ACTOR)
    simulator = simulated(app)
    for n in range(count):
        owner = f"owner{n}@chaos.test"
        account_id = create_account(app, name=f"Chaos {n}", owner_email=owner, currency="EUR",
                                    country=("FR", "DE", "US")[n % 3], locale=("en", "fr")[n % 2],
                                    timezone=ZONES[n % len(ZONES)], actor=ACTOR)
        kind = rng.choices(("good", "declining", "none", "flaky"), weights=(70, 10, 10, 10))[0]
        if kind != "none":
            token = simulator.tokenize(DECLINING_CARD if kind == "declining" else GOOD_CARD, 12, 2035)
            add_card(app, account_id, card_token=token, acting_email=owner)
        create_subscription(app, account_id, plan_code="team", seats=1 + n % 5,
                            start=START.date() - timedelta(days=rng.randrange(28)), actor=ACTOR)
        if kind == "flaky":
            simulator.script(Fault.DECLINE, rng.randint(1, 3), decline_code="insufficient_funds",
                             account_id=account_id)


def simulated(app: App) -> SimulatedGateway:
    gateway = app.gateway
    return gateway.inner if isinstance(gateway, FaultyGateway) else gateway


def verify(app: App, result: Result, *, settled: bool) -> bool:
    gateway = simulated(app)
    return result.record(check(app.engine, gateway.ledger(), settled=settled, held=gateway.held_authorizations(),
                               now=app.clock.now()))


def finish(app: App, result: Result, run, tick, *, after_lease: bool = False) -> None:
    """A last `renewly run`, the gateway well again (after the payment lease when a process may
    have died holding attempts): nothing due may be left undone. Then every check, settled, and reconciliation:
    the last trial of each seed."""
    with simulated(app)._engine.begin() as conn:  # scripted faults not used up: the gateway is well again
        conn.execute(sim_faults.update().values(remaining=0))
    if after_lease:
        time.sleep(LEASE_SECONDS + 0.2)
    run()
    held = verify(app, result, settled=True)
    discrepancies = [d for d in reconcile(app).discrepancies if d.kind != "charge_on_unpaid_invoice"]
    if discrepancies:
        held = False
        result.notes.append(f"reconcile: {len(discrepancies)} discrepancies, first {discrepancies[0].kind} "
                            f"{discrepancies[0].detail}"[:78])
    result.tried += 1
    result.held += held
    tick()


def last_run(app: App, size: Size, processes: Processes):
    if size.last_run_here:
        return lambda: run_all(app, app.clock.now())
    return partial(processes.run, ["run"])


# -- processes ---------------------------------------------------------------------------------------

def environment(url: str) -> dict[str, str]:
    variables = {name: value for name, value in os.environ.items() if not name.startswith("RENEWLY_")}
    return {**variables, "RENEWLY_DATABASE_URL": url, "RENEWLY_CLOCK": "test",
            "RENEWLY_PAYMENTS__LEASE_SECONDS": str(LEASE_SECONDS)}


class Processes:
    """`renewly` commands in processes of their own, in a folder of their own (no renewly.toml)."""

    def __init__(self, url: str, folder: Path, result: Result) -> None:
        self.env, self.folder, self.result = environment(url), folder, result
        self.count = 0

    def start(self, arguments: list[str], latency_ms: int = 0) -> subprocess.Popen:
        self.count += 1
        self.result.processes += 1
        env = {**self.env, "PGAPPNAME": f"renewly-chaos-{self.count}",
               "RENEWLY_PAYMENTS__SIMULATOR_LATENCY_MS": str(latency_ms)}
        return subprocess.Popen([str(RENEWLY), *arguments], cwd=self.folder, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, start_new_session=True)

    def wait(self, process: subprocess.Popen, *, expected=(0,), killed: bool = False) -> str:
        _, err = process.communicate(timeout=600)
        command = process.args[1] if process.args[1] not in ("clock", "cards", "invoices", "support", "gateway") \
            else process.args[2]
        done, all_ = self.result.commands.get(command, (0, 0))
        self.result.commands[command] = (done + (process.returncode == 0), all_ + 1)
        if "Traceback" in err:
            self.result.tracebacks += 1
            self.result.notes.append(("traceback: " + err.strip().splitlines()[-1])[:78])
        elif not killed and process.returncode not in expected:
            self.result.failures += 1
            last = err.strip().splitlines()[-1] if err.strip() else ""
            self.result.notes.append(f"exit {process.returncode}: {' '.join(process.args[1:3])}: {last}"[:78])
        if "Traceback" in err or (not killed and process.returncode not in expected):
            # The whole of it on the suite's stderr, for whoever looks into it.
            sys.stderr.write(f"--- renewly {' '.join(process.args[1:])}: exit {process.returncode}\n{err}\n")
        return err

    def run(self, arguments: list[str], expected=(0,)) -> None:
        self.wait(self.start(arguments), expected=expected)


def concurrency(fresh, size: Size, rng: random.Random, result: Result, tick) -> None:
    url = fresh(0)
    app = make_app(url)
    populate(app, size.accounts, rng)
    with tempfile.TemporaryDirectory() as folder:
        processes = Processes(url, Path(folder), result)
        days_asked = days_done = 0  # by all advances; by those that finished
        start = app.test_clock.now()
        for round_number in range(size.rounds):
            commands = []
            credited = open_invoice(app, rng)  # one per round: credit notes at once on one invoice
            for n in range(size.processes):
                roll = rng.random()
                if n == 0 or roll < 0.35:
                    days = rng.choice((1, 2, 3))
                    days_asked += days
                    commands.append((["clock", "advance", "--days", str(days)], (0,)))
                elif roll < 0.6:
                    commands.append((["run"], (0,)))
                elif roll < 0.75:  # one batch alone, beside the others' whole ticks
                    commands.append(([rng.choice(("collect", "dunning", "renew"))], (0,)))
                elif roll < 0.82:
                    # The owner of an account in dunning saves a card that pays (R7.1: retries).
                    account = account_in(app, rng, ("past_due", "active"), size.accounts)
                    commands.append((["cards", "add", str(account), "--number", GOOD_CARD, "--exp", "12/2035",
                                      "--as", f"owner{account - 1}@chaos.test"], (0, 2)))
                elif roll < 0.88:
                    # The gateway's next calls fail, whoever makes them (the simulator's ledger is shared).
                    commands.append((["gateway", "fault", rng.choice(("timeout_after", "timeout_before",
                                                                       "server_error")),
                                      "--count", str(rng.randint(1, 4))], (0,)))
                elif roll < 0.94:
                    # Support reactivates a cancelled account (refused if it is not, by then: exit 2).
                    account = account_in(app, rng, ("cancelled",), size.accounts)
                    commands.append((["support", "reactivate", str(account), "--reason", "chaos"], (0, 2)))
                elif credited:
                    commands.append((["invoices", "credit", credited, "--reason", "chaos"], (0, 2)))
            if round_number % 4 == 3 and credited:  # two full credit notes at once, one must be refused
                commands += [(["invoices", "credit", credited, "--reason", "chaos"], (0, 2))] * 2
            # Some processes talk to a gateway 50 ms away: a batch slower than the lease sees
            # its attempts taken over by a janitor elsewhere.
            started = [(processes.start(arguments, latency_ms=rng.choice((0, 0, 50))), expected)
                       for arguments, expected in commands]
            for process, expected in started:
                processes.wait(process, expected=expected)
                if process.args[1:3] == ["clock", "advance"] and process.returncode == 0:
                    days_done += int(process.args[-1])
            result.tried += 1
            result.held += verify(app, result, settled=False)
            tick()
        # Advances take turns: each moves the clock by its days, none lost (issue 9, item 10);
        # one that failed half-way (exit 2) may have moved it part of its way.
        moved = (app.test_clock.now() - start).days
        if not days_done <= moved <= days_asked:
            result.worst["gaps"] = result.worst.get("gaps", 0) + 1
            result.notes.append(f"the clock moved {moved} days: {days_done} done, {days_asked} asked")
        finish(app, result, last_run(app, size, processes), tick)
    app.engine.dispose()


def account_in(app: App, rng: random.Random, statuses: tuple[str, ...], count: int) -> int:
    """An account with the first of `statuses` any account has, else any account."""
    with app.engine.connect() as conn:
        rows = conn.execute(select(accounts.c.id, accounts.c.status)).all()
    for status in statuses:
        ids = [account_id for account_id, its_status in rows if its_status == status]
        if ids:
            return rng.choice(ids)
    return rng.randrange(1, count + 1)


def open_invoice(app: App, rng: random.Random) -> str | None:
    with app.engine.connect() as conn:
        numbers = conn.execute(select(invoices.c.number).where(invoices.c.status == "open",
                                                               invoices.c.kind == "invoice")).scalars().all()
    return rng.choice(numbers) if numbers else None


def kill(fresh, size: Size, rng: random.Random, result: Result, tick) -> None:
    for seed in range(size.seeds):
        url = fresh(seed)
        app = make_app(url)
        populate(app, size.accounts, rng)
        postgres = app.engine.dialect.name == "postgresql"
        with tempfile.TemporaryDirectory() as folder:
            processes = Processes(url, Path(folder), result)
            for n in range(size.rounds):
                victims = [processes.start(["clock", "advance", "--days", str(rng.choice((5, 10, 20)))])]
                if rng.random() < 0.5:
                    victims.append(processes.start(["run"]))
                if rng.random() < 0.5:
                    # A card check caught in the kill: the gateway 1 to 4 s away, so that the
                    # kill comes before, during or after the authorization it holds (R5.2).
                    account = rng.randrange(1, size.accounts + 1)
                    victims.append(processes.start(["cards", "add", str(account), "--number", GOOD_CARD, "--exp",
                                                    "12/2035", "--as", f"owner{account - 1}@chaos.test"],
                                                   latency_ms=rng.choice((1000, 2000, 4000))))
                time.sleep(rng.uniform(*size.wait))
                dropped = postgres and n % 2 == 1
                if dropped:
                    with app.engine.connect() as conn:
                        conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE "
                                          "datname = current_database() AND application_name LIKE 'renewly-chaos-%'"))
                else:
                    for victim in victims:
                        if victim.poll() is None:
                            os.killpg(victim.pid, signal.SIGKILL)
                for victim in victims:
                    # A dropped connection is broken infrastructure: one line, exit 2 (or done before).
                    processes.wait(victim, expected=(0, 2), killed=not dropped)
                result.tried += 1
                result.held += verify(app, result, settled=False)
                tick()
            finish(app, result, last_run(app, size, processes), tick, after_lease=True)
        app.engine.dispose()


# -- a gateway that fails on purpose -------------------------------------------------------------------

class GatewayDown(ConnectionError):
    """What a network error looks like to Renewly: an exception out of the adapter."""


class FaultyGateway:
    """The simulated gateway behind faults drawn at random: the port's charge and find fail as a
    network would. Everything else goes straight through."""

    KINDS = ("raise_before", "raise_after", "lost_answer", "slow", "sent_twice")

    def __init__(self, inner: SimulatedGateway, rng: random.Random, rate: float) -> None:
        self.inner, self.rng, self.rate = inner, rng, rate
        self.name = inner.name
        self.injected: dict[str, int] = dict.fromkeys(self.KINDS, 0)
        self.enabled = True

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def _fault(self) -> str | None:
        if not self.enabled or self.rng.random() >= self.rate:
            return None
        kind = self.rng.choice(self.KINDS)
        self.injected[kind] += 1
        return kind

    def charge(self, request: ChargeRequest) -> GatewayResult:
        fault = self._fault()
        if fault == "raise_before":
            raise GatewayDown("connection refused (injected)")
        if fault == "slow":
            time.sleep(self.rng.uniform(0.05, 0.3))
        answer = self.inner.charge(request)
        if fault == "sent_twice":  # a retrying HTTP client sends the same request again
            answer = self.inner.charge(request)
        if fault == "raise_after":
            raise TimeoutError("read timed out (injected): the charge was made")
        if fault == "lost_answer":
            return GatewayResult(Outcome.UNKNOWN)
        return answer

    def find(self, idempotency_key: str) -> GatewayResult | None:
        fault = self._fault()
        if fault in ("raise_before", "raise_after"):
            raise GatewayDown("connection reset (injected)")
        if fault == "lost_answer":
            return GatewayResult(Outcome.UNKNOWN)
        return self.inner.find(idempotency_key)


class Logs:
    """This process's log events (the batches' own), kept instead of printed: an error logged
    with its exception is what a process would print as a traceback."""

    def __init__(self) -> None:
        self.events: list[dict] = []

    def __call__(self, _logger, _method, event: dict):
        self.events.append(event)
        raise structlog.DropEvent

    def tracebacks(self) -> list[dict]:
        return [event for event in self.events if event.get("exc_info")]


def faults(fresh, size: Size, rng: random.Random, result: Result, tick) -> None:
    logs = Logs()
    structlog.configure(processors=[logs])
    try:
        _faults(fresh, size, rng, result, tick)
    finally:
        structlog.reset_defaults()
    for event in logs.tracebacks():
        result.tracebacks += 1
        result.notes.append(f"traceback: {event.get('event')} {event.get('batch', '')}"[:78])


def _faults(fresh, size: Size, rng: random.Random, result: Result, tick) -> None:
    url = fresh(0)
    plain = make_app(url)
    inner = plain.gateway
    gateway = FaultyGateway(inner, rng, rate=0.2)
    app = make_app(url, gateway)
    gateway.enabled = False
    populate(app, size.accounts, rng)
    gateway.enabled = True
    failed = 0
    for n in range(size.rounds):
        if n % 3 == 0:  # and the simulator's own, as `renewly gateway fault` scripts them
            inner.script(rng.choice((Fault.TIMEOUT_AFTER, Fault.TIMEOUT_BEFORE, Fault.SERVER_ERROR)),
                         rng.randint(1, 5))
        try:
            move = advance(app, timedelta(days=rng.choice((1, 2, 3))))
            failed += sum(isinstance(run.report, BatchFailed) for run in move.runs)
        except Exception as error:  # escaped the batches: what a process would print as a traceback
            result.tracebacks += 1
            result.notes.append(f"traceback: {type(error).__name__}: {error}"[:78])
        result.tried += 1
        result.held += verify(app, result, settled=False)
        tick()
    gateway.enabled = False
    finish(app, result, lambda: run_all(app, app.clock.now()), tick)
    result.failures += failed
    injected = ", ".join(f"{kind.split('_')[-1]} {count}" for kind, count in gateway.injected.items())
    result.notes.append(f"faults injected: {injected}"[:78])
    if failed:
        result.notes.append(f"{failed} batch runs failed on an injected fault (retried by the next tick)")
    app.engine.dispose()
    plain.engine.dispose()


if __name__ == "__main__":
    main()
