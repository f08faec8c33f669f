"""Workers on separate hosts (issue 11): the payment work of one database shared by N hosts.

    sudo .venv/bin/python bench/scaleout.py              # 20,000 invoices on 1, 2 and 4 hosts: about 10 min
    sudo .venv/bin/python bench/scaleout.py --cap 100    # the 4 hosts sharing a cap of 100 calls/s
    sudo .venv/bin/python bench/scaleout.py --tiny       # 200 invoices, 1 and 2 hosts: tests/test_benches.py

A host is a network namespace of this machine (`renewly-bench-<pid>-<i>`) with a veth pair of its
own, a /30 between its side and the machine's: each host reaches PostgreSQL over its own link,
as a worker on another machine would, while PostgreSQL keeps its configuration (it listens on
127.0.0.1 only): the kernel's NAT hands TCP to each link's address on the machine's side to
PostgreSQL (iptables). Everything it makes (namespaces, links, NAT rules, databases, the hosts' processes)
is removed at the end, on an error and on Ctrl-C or SIGTERM too.

Each host runs one command line, `host_command` below: `renewly worker`, as in production. The
workers share the queue of the database (renewly/worker/queue.py): a look every second
(`worker.check_seconds` = 1, so that the first comes within a second of the start) finds the
payment batch's tick due and queues it; the worker that takes the tick runs the payment batch
and, as it starts, defers a helper job for each other live worker; tick and helpers claim their
own slices (FOR UPDATE SKIP LOCKED, a pending attempt committed per invoice before the gateway is
called) until none is left. The invoices are due on the system clock (issued yesterday; the
workers run on RENEWLY_CLOCK=system). Once every invoice is paid, the bench stops the workers
with SIGTERM (each finishes its slice and exits 0, which is checked); each host's charges are
read from its worker's JSON log lines on stderr (`batch run`, one per run of a batch by a tick
or a helper). The database (`renewly_bench_scaleout_<pid>`) holds N accounts, each
with a saved card and an open invoice due; it is loaded once into a template and copied afresh
for each run. The simulated gateway answers after 200 ms, with no cap (the setting
payments.rate_limit_per_second at its highest), each host making 25 calls at once (at most 125
a second): the work waits on the gateway, so adding hosts should add throughput even on two
cores.

Throughput(N) = invoices / seconds from the start of the hosts' commands to the last invoice
paid (the database polled every 0.1 s); scale_N = throughput(N) / throughput(1), measured in the
same run. Target: scale_N >= 0.8 x N. Every run is checked: each invoice paid once, one
attempt each, the gateway's ledger and Renewly's records agreeing to the cent.

--cap C: one run on the most hosts, the setting payments.rate_limit_per_second = C (or
--rate-limit, a margin under it), which the workers share through the database (the total for
all of them). Target: at least 0.95 x C calls
a second, never more than C in any second, from the instants the gateway's ledger records each
call's arrival.
The last line is key=value pairs.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from bisect import bisect_left
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL, make_url

from renewly.adapters.clock import SystemClock
from renewly.adapters.db.engine import make_engine, upgrade
from renewly.adapters.gateways.simulated import LEDGER_SCHEMA, SimulatedGateway

sys.path.insert(0, str(Path(__file__).parent))
from collect import format_figure, load, most_in_window  # noqa: E402  (the invoices of bench/collect.py)

RENEWLY = Path(sys.executable).with_name("renewly")
NO_CAP = 100_000  # the largest payments.rate_limit_per_second the settings accept
# Private addresses for the hosts' links, a /30 each; the first free ones after a start that
# depends on the process, so that two benches at once do not look at the same ones first.
LINKS = ipaddress.ip_network("10.213.0.0/16")
POLL = 0.1  # seconds between two counts of the invoices paid
START_TIMEOUT = 120  # seconds a host may take to charge its first invoice


def host_command(database_url: str) -> list[str]:
    """What each host runs: one command line, started at the same moment on every host.

    It must charge the due invoices of `database_url` together with the same command on the other
    hosts: `renewly worker`, which never exits by itself; once every invoice is paid, the bench
    stops it with SIGTERM (it finishes its slice and exits 0)."""
    return ["env", f"RENEWLY_DATABASE_URL={database_url}", str(RENEWLY), "worker"]


def charges_of(log: str) -> int | None:
    """The charges a host says it made, from its worker's JSON log lines on stderr: one `batch
    run` line per run of a batch (a tick's own, or a helper job's slices), with its counts
    (scheduler.batch_run_fields); None if it logged no line of JSON (it says nothing)."""
    charges, said = 0, False
    for line in log.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue  # not a log line of the worker's (a warning of a library, say)
        if not isinstance(entry, dict):
            continue
        said = True
        if entry.get("event") == "batch run" and entry.get("batch") == "collect":
            charges += entry.get("attempted", 0)
    return charges if said else None


class BenchFailure(Exception):
    """Something the bench cannot go on with: said in one line."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--invoices", type=int, default=None, help="default 20,000; --tiny: 200")
    parser.add_argument("--hosts", default=None, help="how many hosts in each run (default 1,2,4; --tiny: 1,2)")
    parser.add_argument("--latency-ms", type=int, default=None, help="the gateway's answer time (default 200; "
                                                                     "--tiny: 20)")
    parser.add_argument("--concurrency", type=int, default=25, help="gateway calls in flight on each host")
    parser.add_argument("--slice-size", type=int, default=None,
                        help="invoices a host claims at a time (default 100: a host holds two slices, so the "
                             "last ones leave the others idle for two slices' time; --tiny: 20)")
    parser.add_argument("--cap", type=int, default=None,
                        help="one run on the most hosts, sharing this rate cap (calls/s, the setting "
                             "payments.rate_limit_per_second), checked against the gateway's ledger")
    parser.add_argument("--rate-limit", type=float, default=None,
                        help="with --cap: the setting payments.rate_limit_per_second (default: the cap itself; "
                             "docs/operations.md advises a margin under the gateway's cap)")
    parser.add_argument("--tiny", action="store_true",
                        help="a check that the bench still runs and verifies its results, not a measure: "
                             "200 invoices, 20 ms latency, slices of 20, 1 and 2 hosts (targets not checked)")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres",
                        help="a server on this machine where the bench may create and drop databases")
    args = parser.parse_args()
    count = args.invoices or (200 if args.tiny else 20_000)
    given = [n.strip() for n in (args.hosts or ("1,2" if args.tiny else "1,2,4")).split(",")]
    hosts = [int(n) for n in given] if all(n.isdigit() for n in given) else []  # [] is refused below
    latency_ms = args.latency_ms if args.latency_ms is not None else (20 if args.tiny else 200)
    slice_size = args.slice_size or (20 if args.tiny else 100)
    settings = {"RENEWLY_PAYMENTS__SIMULATOR_LATENCY_MS": latency_ms,
                "RENEWLY_PAYMENTS__CONCURRENCY": args.concurrency, "RENEWLY_PAYMENTS__SLICE_SIZE": slice_size,
                "RENEWLY_PAYMENTS__RATE_LIMIT_PER_SECOND": (args.rate_limit or args.cap) if args.cap else NO_CAP,
                # A look every second: the first within a second of the workers' start (the
                # invoices are due already), not up to the default 10 s later.
                "RENEWLY_WORKER__CHECK_SECONDS": 1}
    try:
        refuse_what_cannot_run(hosts)
        with ExitStack() as made:
            try:
                stop_on_sigterm()
                results = bench(made, args, count, hosts, settings)
            finally:
                # Whatever happens from here, removing what the bench made is not interrupted.
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
    except BenchFailure as failure:
        sys.exit(f"bench: {failure}")
    except psycopg.OperationalError as error:  # the server gone, or the bench's connection to it
        sys.exit(f"bench: PostgreSQL: {(str(error).strip().splitlines() or ['no message'])[0]}")
    except KeyboardInterrupt:
        print("bench: interrupted; the hosts, their links and the databases are removed", file=sys.stderr)
        sys.exit(130)
    report(args, count, latency_ms, slice_size, results)


def refuse_what_cannot_run(hosts: list[int]) -> None:
    if os.geteuid() != 0:
        raise BenchFailure("the bench makes network namespaces: run it as root")
    if shutil.which("ip") is None:
        raise BenchFailure("the bench needs the ip command (iproute2) to make its hosts")
    if shutil.which("iptables") is None:
        raise BenchFailure("the bench needs the iptables command to link its hosts to PostgreSQL")
    if not RENEWLY.exists():
        raise BenchFailure(f"no renewly command beside {sys.executable}: install Renewly in this environment")
    if not hosts or min(hosts) < 1 or max(hosts) > 99:
        raise BenchFailure("--hosts: numbers of hosts from 1 to 99, separated by commas")


def stop_on_sigterm() -> None:
    """SIGTERM ends the bench as Ctrl-C does: through its clean-up."""
    def interrupt(_signal, _frame) -> None:
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, interrupt)


def bench(made: ExitStack, args, count: int, hosts: list[int], settings: dict) -> list[Run]:
    admin_url = make_url(args.postgres_url).set(drivername="postgresql")
    admin = made.enter_context(server_connection(admin_url))
    template = made.enter_context(database(admin, admin_url, f"renewly_bench_scaleout_{os.getpid()}_template"))
    prepare(template, count)
    machines = made.enter_context(namespaces(max(hosts), (admin_url.host or "127.0.0.1", admin_url.port or 5432)))
    folder = Path(made.enter_context(tempfile.TemporaryDirectory()))
    runs = []
    for n in (hosts[-1:] if args.cap else hosts):
        with database(admin, admin_url, f"renewly_bench_scaleout_{os.getpid()}", template=template) as url:
            result = run_hosts(machines[:n], url, count, settings, folder / f"hosts_{n}")
            print(textwrap.fill(
                f"{n} host(s): {count:,} invoices in {result.seconds:.2f} s, {result.per_s:,.1f}/s; first call "
                f"+{result.first_call:.2f} s; each host's charges {result.shares}; busiest second "
                f"{result.busiest_second} calls, from +{result.busiest_at:.2f} s after the first; "
                f"{result.connections:,} connections opened; CPU per "
                f"invoice {result.hosts_cpu / count * 1000:.2f} ms in the hosts, "
                f"{result.bench_cpu / count * 1000:.2f} ms in the bench (its polls)", width=80,
                subsequent_indent="  "))
            runs.append(result)
    return runs


@dataclass
class Run:
    hosts: int
    seconds: float
    first_call: float  # seconds from the start of the commands to the gateway's first call
    calls_per_s: float  # the ledger's charges over the time from the first one to the last
    busiest_second: int
    busiest_at: float  # seconds from the first call to the start of the busiest second
    arrivals: list[float] = field(default_factory=list)  # each charge's arrival, seconds from the first
    host_charges: list[int | None] = field(default_factory=list)
    invoices: int = 0
    connections: int = 0  # opened to the database during the run (pg_stat_database.sessions)
    hosts_cpu: float = 0.0  # CPU seconds of the hosts' commands, user + system
    bench_cpu: float = 0.0  # of the bench's process: its polls of the database

    @property
    def per_s(self) -> float:
        return self.invoices / self.seconds

    @property
    def shares(self) -> str:
        return "/".join("?" if n is None else str(n) for n in self.host_charges)


def report(args, count: int, latency_ms: int, slice_size: int, runs: list[Run]) -> None:
    figures: dict[str, float | int] = {"invoices": count, "latency_ms": latency_ms,
                                       "concurrency": args.concurrency, "slice": slice_size}
    failures = []
    if args.cap:
        run = runs[0]
        figures |= {"hosts": run.hosts, "cap": args.cap, "rate_limit": args.rate_limit or args.cap,
                    "invoices_per_s": run.per_s,
                    "calls_per_s": run.calls_per_s, "ratio": run.calls_per_s / args.cap,
                    "max_calls_in_any_1s_window": run.busiest_second}
        print(f"{'hosts':>5} {'cap':>8} {'seconds':>8} {'calls/s':>8} {'of cap':>7} {'busiest s':>9}  charges")
        print(f"{run.hosts:>5} {args.cap:>8} {run.seconds:>8.2f} {run.calls_per_s:>8.1f} "
              f"{run.calls_per_s / args.cap:>7.3f} {run.busiest_second:>9}  {run.shares}")
        over = windows_over(run.arrivals, 1.0, args.cap)
        if over:
            print(textwrap.fill(f"{len(over)} of the one-second windows from a call hold more than {args.cap} "
                                f"calls, starting from +{over[0]:.2f} s to +{over[-1]:.2f} s after the first "
                                "call", width=80, subsequent_indent="  "))
        print(f"target: >= 0.95 of the cap ({0.95 * args.cap:.0f}/s),\n"
              f"  never more than {args.cap} calls in one second")
        figures["windows_over_cap"] = len(over)
        if run.busiest_second > args.cap and not args.tiny:
            failures.append(f"{run.busiest_second} calls in one second, above the cap of {args.cap}")
        if run.calls_per_s / args.cap < 0.95 and not args.tiny:
            failures.append(f"{run.calls_per_s / args.cap:.3f} of the cap, below the 0.95 target")
    else:
        first = runs[0]
        print(f"{'hosts':>5} {'seconds':>8} {'invoices/s':>10} {'scale':>6} {'target':>6} {'first':>6}  charges")
        for run in runs:
            scale = run.per_s / first.per_s
            target = 0.8 * run.hosts / first.hosts
            print(f"{run.hosts:>5} {run.seconds:>8.2f} {run.per_s:>10.1f} {scale:>6.2f} "
                  f"{'' if run is first else f'{target:.2f}':>6} {run.first_call:>5.2f}s  {run.shares}")
            figures[f"per_s_{run.hosts}"] = run.per_s
            if run is not first:
                figures[f"scale_{run.hosts}"] = scale
                if scale < target and not args.tiny:
                    failures.append(f"scale_{run.hosts} = {scale:.2f}, below the target of {target:.2f}")
        print(f"scale: invoices/s over the {first.hosts}-host run's, target >= 0.8 x hosts;\n"
              "first: the gateway's first call, seconds after the commands started")
    print(" ".join(f"{key}={format_figure(value)}" for key, value in figures.items()))
    if failures:
        sys.exit("bench: " + "; ".join(failures))


# -- the database ------------------------------------------------------------------------------

@contextmanager
def server_connection(admin_url: URL):
    try:
        admin = psycopg.connect(admin_url.render_as_string(False), autocommit=True)
    except psycopg.OperationalError as error:
        raise BenchFailure(f"no PostgreSQL at {admin_url.render_as_string()}: {str(error).strip()}") from None
    try:
        yield admin
    finally:
        admin.close()


@contextmanager
def database(admin, admin_url: URL, name: str, *, template: str | None = None):
    """A database of the bench's, empty (migrated by `prepare`) or a copy of `template`'s
    (given by its URL); dropped at the end whatever happens."""
    source = f' TEMPLATE "{make_url(template).database}"' if template else ""
    admin.execute(f'CREATE DATABASE "{name}"{source}')
    try:
        yield admin_url.set(database=name).render_as_string(False)
    finally:
        drop_database(admin, admin_url, name)


def drop_database(admin, admin_url: URL, name: str) -> None:
    """Dropped on the bench's connection, or on a new one if that one was lost (seen once, the
    server closing it during a CREATE DATABASE): a database of the bench's never stays behind."""
    statement = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
    try:
        admin.execute(statement)
    except psycopg.OperationalError:
        with psycopg.connect(admin_url.render_as_string(False), autocommit=True) as again:
            again.execute(statement)


def prepare(url: str, count: int) -> None:
    """Migrate, then N accounts, each with a saved card and an open invoice issued yesterday
    (bench/collect.py's `load`, set-based), and the gateway's ledger beside them (its schema)."""
    engine = make_engine(url)
    try:
        upgrade(engine)
        SimulatedGateway(url, SystemClock()).dispose()  # the ledger's schema and tables
        ledger = make_engine(url).execution_options(schema_translate_map={None: LEDGER_SCHEMA})
        load(engine, ledger, count, SystemClock().now())
    finally:
        engine.dispose()


# -- the hosts ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Host:
    namespace: str
    address: str  # the machine's side of the host's link: where the host finds PostgreSQL


@contextmanager
def namespaces(count: int, postgres: tuple[str, int]):
    """`count` network namespaces, each linked to the machine by a veth pair on a /30 of its own,
    and TCP to the machine's side of each link handed to PostgreSQL; all removed at the end."""
    pid = os.getpid()
    with ExitStack() as undo:
        hosts = []
        for i, link in enumerate(free_links(count, pid)):
            namespace, outside, inside = f"renewly-bench-{pid}-{i}", f"rb{pid}h{i}", f"rb{pid}n{i}"
            ours, theirs = (f"{address}/{link.prefixlen}" for address in list(link.hosts())[:2])
            ip("netns", "add", namespace)
            undo.callback(ip, "netns", "delete", namespace, check=False)
            ip("link", "add", outside, "type", "veth", "peer", "name", inside, "netns", namespace)
            # Deleting one end deletes the pair, at once (the namespace's deletion does it later).
            undo.callback(ip, "link", "delete", outside, check=False)
            ip("addr", "add", ours, "dev", outside)
            ip("link", "set", outside, "up")
            ip("-n", namespace, "addr", "add", theirs, "dev", inside)
            ip("-n", namespace, "link", "set", inside, "up")
            ip("-n", namespace, "link", "set", "lo", "up")
            forward_to_postgres(undo, outside, theirs.split("/")[0], ours.split("/")[0], postgres, pid)
            hosts.append(Host(namespace, ours.split("/")[0]))
        yield hosts


def free_links(count: int, pid: int) -> list[ipaddress.IPv4Network]:
    """`count` /30 networks of LINKS that overlap no address of this machine."""
    shown = subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True, check=True).stdout
    taken = [ipaddress.ip_interface(word).network for line in shown.splitlines()
             for before, word in zip(line.split(), line.split()[1:]) if before == "inet"]
    links = list(LINKS.subnets(new_prefix=30))
    start = pid % len(links)
    free = [link for link in links[start:] + links[:start] if not any(link.overlaps(other) for other in taken)]
    if len(free) < count:
        raise BenchFailure(f"fewer than {count} free /30 networks in {LINKS}")
    return free[:count]


def ip(*arguments: str, check: bool = True) -> None:
    done = subprocess.run(["ip", *arguments], capture_output=True, text=True)
    if done.returncode and check:
        said = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise BenchFailure(f"ip {' '.join(arguments)}: {said}")


def forward_to_postgres(undo: ExitStack, outside: str, host_address: str, ours: str,
                        postgres: tuple[str, int], pid: int) -> None:
    """TCP to port 5432 of `ours` (the machine's side of a host's link) handed to PostgreSQL by
    the kernel's NAT: DNAT to its address, and SNAT of the host's address to 127.0.0.1 so that a
    connection arrives as pg_hba.conf expects a local one. PostgreSQL keeps its configuration;
    the packets cost the kernel, as a real network's would, and no process of the bench copies
    them (the Python forwarder that did took 0.8 to 1.9 ms of CPU an invoice, a third of a
    host's). `route_localnet` lets packets from the link be sent to 127.0.0.1: it goes with the
    link; the rules are removed by `undo`, each named by a comment with the bench's pid."""
    if postgres[0] not in ("127.0.0.1", "localhost"):
        raise BenchFailure(f"PostgreSQL must be on this machine's 127.0.0.1, not {postgres[0]}")
    Path(f"/proc/sys/net/ipv4/conf/{outside}/route_localnet").write_text("1")
    # The hosts' connections leave NAT from ports below the machine's ephemeral range: a port of
    # that range could be given to a local connection to PostgreSQL (the bench's own) while the
    # kernel still tracks a host's connection translated to it, and the two would be one.
    ephemeral_from = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    if ephemeral_from <= 2048:
        raise BenchFailure(f"the machine's ephemeral ports start at {ephemeral_from}: no ports left below them")
    nat_ports = f"{max(1024, ephemeral_from - 20000)}-{ephemeral_from - 1}"
    tag = ["-m", "comment", "--comment", f"renewly-bench-{pid}"]
    for chain, rule in (("PREROUTING", ["-i", outside, "-p", "tcp", "-d", ours, "--dport", str(postgres[1]),
                                        "-j", "DNAT", "--to-destination", f"127.0.0.1:{postgres[1]}"]),
                        ("INPUT", ["-p", "tcp", "-s", host_address, "-d", "127.0.0.1", "--dport", str(postgres[1]),
                                   "-j", "SNAT", "--to-source", f"127.0.0.1:{nat_ports}"])):
        iptables("-t", "nat", "-A", chain, *rule, *tag)
        undo.callback(iptables, "-t", "nat", "-D", chain, *rule, *tag, check=False)


def iptables(*arguments: str, check: bool = True) -> None:
    done = subprocess.run(["iptables", "-w", *arguments], capture_output=True, text=True)
    if done.returncode and check:
        said = (done.stderr.strip().splitlines() or ["no message"])[-1]
        raise BenchFailure(f"iptables {' '.join(arguments)}: {said}")


# -- a run -------------------------------------------------------------------------------------

def run_hosts(hosts: list[Host], url: str, count: int, settings: dict, folder: Path) -> Run:
    """Start `host_command` on each host at once; wait for the last invoice paid, then stop the
    hosts (SIGTERM) and wait for them to end; the run's figures, once its result is checked."""
    folder.mkdir()
    environment = {name: value for name, value in os.environ.items() if not name.startswith("RENEWLY_")}
    environment |= {name: str(value) for name, value in settings.items()}
    # A worker issues invoices too (renewals), which the demo's seller may not sign on the system clock.
    environment |= {"RENEWLY_CLOCK": "system", "RENEWLY_SELLER__NAME": "Renewly Bench SAS",
                    "RENEWLY_SELLER__VAT_ID": "FR99999999999", "RENEWLY_SELLER__REGISTRATION": "RCS Bench 999",
                    "RENEWLY_SELLER__SIREN": "999999998", "RENEWLY_SELLER__SIRET": "99999999800001"}
    engine = make_engine(url)
    processes: list[subprocess.Popen] = []
    cpu_before = (resource.getrusage(resource.RUSAGE_CHILDREN), time.process_time())
    try:
        started_at, started = SystemClock().now(), time.monotonic()
        for i, host in enumerate(hosts):
            reached = make_url(url).set(host=host.address).render_as_string(False)
            with open(folder / f"{i}.out", "w") as out, open(folder / f"{i}.err", "w") as err:
                processes.append(subprocess.Popen(["ip", "netns", "exec", host.namespace, *host_command(reached)],
                                                  stdout=out, stderr=err, env=environment, cwd=folder,
                                                  start_new_session=True))  # a Ctrl-C is the bench's to pass on
        seconds = wait_for_paid(engine, processes, count, started, folder)
        for i, code in enumerate(stop_hosts(processes)):
            if code != 0:
                raise BenchFailure(f"host {i} exited with {code} when stopped: {last_line(folder / f'{i}.err')}")
        children = resource.getrusage(resource.RUSAGE_CHILDREN)  # the hosts, all ended now
        hosts_cpu = (children.ru_utime + children.ru_stime - cpu_before[0].ru_utime - cpu_before[0].ru_stime)
        bench_cpu = time.process_time() - cpu_before[1]
        host_charges = [charges_of((folder / f"{i}.err").read_text()) for i in range(len(hosts))]
        verify(engine, url, count, host_charges)
        arrivals = arrival_instants(engine)
        with engine.connect() as conn:  # the hosts' connections and the bench's own few
            connections = conn.execute(text("SELECT sessions FROM pg_stat_database "
                                            "WHERE datname = current_database()")).scalar_one()
    finally:
        for process in processes:
            end(process)
        engine.dispose()
    span = arrivals[-1] - arrivals[0]
    busiest_second = most_in_window(arrivals, 1.0)
    return Run(hosts=len(hosts), seconds=seconds, first_call=arrivals[0] - started_at.timestamp(),
               calls_per_s=(len(arrivals) - 1) / span if span else float("nan"),
               busiest_second=busiest_second, busiest_at=window_holding(arrivals, 1.0, busiest_second) - arrivals[0],
               host_charges=host_charges, invoices=count, arrivals=[t - arrivals[0] for t in arrivals],
               connections=connections, hosts_cpu=hosts_cpu, bench_cpu=bench_cpu)


def wait_for_paid(engine: Engine, processes: list[subprocess.Popen], count: int, started: float,
                  folder: Path) -> float:
    """Seconds from `started` to the moment every invoice is paid, counted every POLL seconds."""
    with engine.connect() as conn:
        while True:
            ended = [p.poll() for p in processes]  # before the count: what they paid is counted
            paid = conn.execute(text("SELECT count(*) FROM invoices WHERE status = 'paid'")).scalar_one()
            conn.commit()
            now = time.monotonic()
            if paid >= count:
                return now - started
            failed = [(i, code) for i, code in enumerate(ended) if code not in (None, 0)]
            if failed:
                i, code = failed[0]
                raise BenchFailure(f"host {i} exited with {code}: {last_line(folder / f'{i}.err')}")
            if all(code == 0 for code in ended):  # a worker ends only when asked to
                raise BenchFailure(f"the hosts ended with {count - paid} invoice(s) of {count} unpaid")
            if paid == 0 and now - started > START_TIMEOUT:
                raise BenchFailure(f"no invoice paid {START_TIMEOUT} s after the hosts started")
            time.sleep(POLL)


def stop_hosts(processes: list[subprocess.Popen]) -> list[int]:
    """Every invoice paid: SIGTERM to each host's worker at once (as systemd stops one); each
    finishes its slice and exits, 0 when all went well. Their exit codes (-9: killed 10 s on)."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in processes:
        end(process, asked=True)
    return [process.returncode for process in processes]


def end(process: subprocess.Popen, *, asked: bool = False) -> None:
    """Stop a host's command if it still runs: SIGTERM (unless `asked` already: a second one,
    once the worker has put its handlers away, would kill it), then SIGKILL 10 s later."""
    if process.poll() is None and not asked:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def last_line(path: Path) -> str:
    lines = path.read_text().strip().splitlines()
    return lines[-1] if lines else "nothing on stderr"


def verify(engine: Engine, url: str, count: int, host_charges: list[int | None]) -> None:
    """Every invoice paid by one attempt, the gateway's ledger and Renewly's records agreeing to
    the cent; what the hosts say they charged adding up to it, where they say it."""
    with engine.connect() as conn:
        seen = conn.execute(text(f"""
            SELECT (SELECT count(*) FROM invoices WHERE status = 'paid'),
                   (SELECT coalesce(sum(total), 0) FROM invoices WHERE status = 'paid'),
                   (SELECT count(*) FROM payment_attempts),
                   (SELECT count(*) FROM payment_attempts WHERE status = 'succeeded'),
                   (SELECT coalesce(sum(amount), 0) FROM payment_attempts WHERE status = 'succeeded'),
                   (SELECT count(*) FROM {LEDGER_SCHEMA}.sim_operations WHERE kind = 'charge'),
                   (SELECT count(DISTINCT idempotency_key) FROM {LEDGER_SCHEMA}.sim_operations
                    WHERE kind = 'charge' AND outcome = 'succeeded'),
                   (SELECT coalesce(sum(amount), 0) FROM {LEDGER_SCHEMA}.sim_operations
                    WHERE kind = 'charge' AND outcome = 'succeeded')""")).one()
        billed = conn.execute(text("SELECT sum(total) FROM invoices")).scalar_one()
    said = sum(n for n in host_charges if n is not None) if None not in host_charges else count
    wanted = (count, billed, count, count, billed, count, count, billed)
    if tuple(seen) != wanted or said != count:
        raise BenchFailure(f"wrong result: (invoices paid, paid total, attempts, attempts succeeded, attempted "
                           f"total, ledger charges, distinct keys charged, charged total) = {tuple(seen)}, "
                           f"expected {wanted}; the hosts say they charged {said} of {count}")


def windows_over(instants: list[float], width: float, cap: int) -> list[float]:
    """The starts of the windows [t, t + width) from a call on that hold more than `cap` of the
    (ordered) instants."""
    return [start for i, start in enumerate(instants) if bisect_left(instants, start + width, lo=i) - i > cap]


def window_holding(instants: list[float], width: float, most: int) -> float:
    """The start of the first window [t, t + width) that holds `most` of the (ordered) instants."""
    return next(start for i, start in enumerate(instants) if bisect_left(instants, start + width, lo=i) - i == most)


def arrival_instants(engine: Engine) -> list[float]:
    """When each charge reached the gateway (the ledger's received_at), in seconds, in order."""
    with engine.connect() as conn:
        return [row[0] for row in conn.execute(text(
            f"SELECT extract(epoch FROM received_at)::float8 FROM {LEDGER_SCHEMA}.sim_operations "
            "WHERE kind = 'charge' ORDER BY received_at"))]


if __name__ == "__main__":
    main()
