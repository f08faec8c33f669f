"""Every bench has a tiny run in the test suite, so that none can break unnoticed again:
bench/collect.py stopped on PostgreSQL's check of migration 0006 and nothing said so.

Each bench runs as an operator would run it, a process of its own (`--tiny`), on the server of
$RENEWLY_TEST_POSTGRES_URL, where it creates databases of its own through that URL's database and
drops them. A tiny run is not a measure, so no figure is compared to a target; what counts is that
the bench checks its result (a wrong one exits non-zero), prints its last line of key=value pairs
for scripts, and leaves no database behind. Where no PostgreSQL answers these are skipped, unless
RENEWLY_TEST_REQUIRE_POSTGRES=1, as in conftest.py.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import ADMIN_URL, admin_connection

pytestmark = pytest.mark.postgres_only

ROOT = Path(__file__).resolve().parents[1]

# What each bench's last line holds: the keys always printed, those printed only sometimes (the
# CPU of the PostgreSQL backends is read in /proc, where the server runs on this machine), and
# the figures --tiny fixes, which show that the run was a tiny one.
LAST_LINES = {
    "api": {
        "keys": {"accounts", "rate", "sent", "unsent", "achieved_per_s", "p50_ms", "p99_ms", "account_p99_ms",
                 "invoices_p99_ms", "banner_p99_ms", "hello_p50_ms", "hello_p99_ms", "per_s", "hello_per_s", "ratio",
                 "cpu_us", "hello_cpu_us", "cpu_ratio", "busiest_share", "connections", "processes",
                 "server_workers"},
        "sometimes": set(),
        "tiny": {"accounts": "200", "rate": "50", "connections": "4", "server_workers": "2"},
    },
    "cli": {
        "keys": {f"{name}_{figure}" for name in ("help", "read", "plans", "account")
                 for figure in ("s", "cpu_s", "ratio")}
        | {"python_s", "python_cpu_s", "target_s", "runs"},
        "sometimes": set(),
        "tiny": {"runs": "2", "target_s": "0.3"},
    },
    "chaos_inputs": {
        "keys": {"tried", "held", "tracebacks", "silently_accepted", "multiline_errors", "changed_on_refusal",
                 "other_exits", "hangs", "subprocesses", "runner_disagreements", "engine_disagreements", "engines",
                 "cases", "commands", "per_param", "seed", "seconds"},
        "sometimes": set(),
        "tiny": {"per_param": "1", "engines": "2", "subprocesses": "4"},
    },
    "renewal": {
        "keys": {"accounts", "invoices_per_s", "bound_per_s", "ratio", "sqlite_invoices_per_s", "peak_rss_mb",
                 "rss_growth_mb", "seconds", "slice", "sqlite_accounts"},
        "sometimes": {"cpu_us_per_invoice", "bound_cpu_us_per_invoice", "cpu_ratio"},
        "tiny": {"accounts": "200", "sqlite_accounts": "100", "slice": "64"},
    },
    "chaos": {
        "keys": {"seed", "breaks", "seconds"} | {
            f"{part}_{engine}_{count}" for part in ("concurrency", "kill", "faults") for engine in ("pg", "sqlite")
            for count in ("tried", "held", "duplicates", "double_charges", "gaps", "lost_emails", "tracebacks")},
        "sometimes": set(),
        "tiny": {"breaks": "0", "concurrency_pg_tried": "3", "kill_pg_tried": "3", "faults_pg_tried": "4"},
    },
    "collect": {
        "keys": {"invoices", "charges_per_s_capped", "cap", "max_ops_in_any_1s_window", "ratio", "charges_per_s",
                 "renewal_bound_per_s", "charges_to_bound", "charges_per_s_instant_gateway",
                 "us_per_decline_without_email", "us_per_decline_with_email", "email_cost_ratio",
                 "instant_us_per_decline_without_email", "instant_us_per_decline_with_email",
                 "instant_email_cost_ratio"},
        "sometimes": set(),
        "tiny": {"invoices": "50", "cap": "40"},
    },
    "import_accounts": {
        "keys": {f"{engine}{figure}" for engine in ("", "sqlite_") for figure in (
            "seconds", "accounts_per_s", "check_seconds", "bound_seconds", "ratio", "rerun_seconds")}
        | {"accounts", "sqlite_accounts"},
        "sometimes": set(),
        "tiny": {"accounts": "200", "sqlite_accounts": "100"},
    },
    "rate_cap": {
        "keys": {"seconds", "workers", "rate_100_per_s", "rate_100_busiest", "rate_2000_per_s", "rate_2000_busiest",
                 "one_per_statement_per_s", "workers_2000_per_s", "workers_2000_busiest"},
        "sometimes": set(),
        "tiny": {"seconds": "0.5", "workers": "2"},
    },
    "mail": {
        "keys": {"emails", "connections", "latency_ms", "emails_per_s", "bound_per_s", "ratio", "seconds"},
        "sometimes": set(),
        "tiny": {"emails": "200", "connections": "8", "latency_ms": "20"},
    },
    "documents": {
        "keys": {"invoices", "cpu", "invoice_pdfs_per_s", "pdf_cpu_ms", "bound_pdfs_per_s", "pdf_ratio",
                 "blank_pdfs_per_s", "pdf_kb", "downloads", "downloads_per_s", "bound_downloads_per_s",
                 "download_ratio", "download_cpu_us"},
        "sometimes": set(),
        "tiny": {"invoices": "3", "downloads": "50"},
    },
    "scaleout": {
        "keys": {"invoices", "latency_ms", "concurrency", "slice", "per_s_1", "per_s_2", "scale_2"},
        "sometimes": {"per_s_4", "scale_4"},
        "tiny": {"invoices": "200", "latency_ms": "20", "slice": "20"},
    },
    "worker_chaos": {
        "keys": {"accounts", "days", "workers", "seed", "invoices", "charges", "emails", "duplicates", "double_charges",
                 "duplicate_emails", "gaps", "lost_emails", "reconcile_failures", "differing_runs", "tracebacks",
                 "runs", "kills_mid_job", "breaks", "reference_s", "workers_s", "seconds"},
        "sometimes": set(),
        "tiny": {"accounts": "200", "days": "21", "workers": "3", "runs": "2"},
    },
    "dunning": {
        "keys": {"due", "accounts", "not_due", "t_small_s", "t_large_s", "ratio", "small_cpu_us", "large_cpu_us",
                 "mass_cases", "mass_s", "mass_cases_per_s", "mass_python_us", "mass_postgres_us", "slice",
                 "workers", "peak_rss_mb"},
        "sometimes": set(),
        "tiny": {"due": "50", "accounts": "500", "mass_cases": "200", "slice": "20"},
    },
}
# seconds; a tiny run takes a few (bench/worker_chaos.py and chaos_inputs a minute or two, three on
# a loaded 2-core machine): the bound catches a hang, not a slow machine
TIMEOUT = 600
# bench/scaleout.py makes its hosts as network namespaces, linked to PostgreSQL by the kernel's
# NAT: root, iproute2's `ip` and `iptables` (.ci/run installs it).
MAKES_HOSTS = pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("ip") is None or shutil.which("iptables") is None,
    reason="bench/scaleout.py makes network namespaces: it needs root, `ip` and `iptables`")
# Its runs one at a time under `make test` (pytest-xdist): each picks free /30 networks for its
# hosts' links from what the machine has before it adds its own, so two at once could pick the same.
ONE_HOST_MAKER_AT_A_TIME = pytest.mark.xdist_group("scaleout-hosts")
NEEDS = {"scaleout": [MAKES_HOSTS, ONE_HOST_MAKER_AT_A_TIME]}


@pytest.fixture(scope="module")
def server():
    """A connection to the server the benches create their databases on, to look for any they left."""
    admin = admin_connection()
    yield admin
    admin.close()


# The benches that make a Renewly database of their own and run Renewly's code in it. An
# operator's shell often names its database; the bench crashed on it (bench/renewal.py's CPU
# clock asked an SQLite connection for PostgreSQL's backend), or would have run there. Their
# tiny run is made in such a shell: a second run of each, without the variable, cost four bench
# runs of the suite and checked nothing more.
OWN_DATABASE = {"renewal", "dunning", "collect", "import_accounts", "api"}


@pytest.mark.parametrize("bench", [pytest.param(bench, marks=NEEDS.get(bench, [])) for bench in sorted(LAST_LINES)])
def test_tiny_run_checks_its_result_and_prints_its_figures(bench, server, tmp_path):
    operators = tmp_path / "operators.db"
    out = run_tiny(bench, server, {"RENEWLY_DATABASE_URL": f"sqlite:///{operators}"} if bench in OWN_DATABASE else {})

    last = out.splitlines()[-1]
    assert all("=" in pair for pair in last.split()), last
    pairs = dict(pair.split("=", 1) for pair in last.split())
    for value in pairs.values():
        float(value)  # a number ("nan" too: the backends' CPU where the server runs elsewhere)
    expected = LAST_LINES[bench]
    assert expected["keys"] <= pairs.keys() <= expected["keys"] | expected["sometimes"], last
    assert {key: pairs[key] for key in expected["tiny"]} == expected["tiny"], last
    assert not operators.exists(), "the bench wrote into the database of the environment"


@MAKES_HOSTS
@ONE_HOST_MAKER_AT_A_TIME
def test_the_scaleout_bench_under_a_cap_reads_the_gateways_ledger(server):
    # Two hosts sharing a cap of 40 calls a second.
    out = run_tiny("scaleout", server, arguments=["--cap", "40"])

    pairs = dict(pair.split("=", 1) for pair in out.splitlines()[-1].split())
    assert {"cap", "hosts", "calls_per_s", "ratio", "max_calls_in_any_1s_window"} <= pairs.keys(), out
    assert (pairs["cap"], pairs["hosts"]) == ("40", "2"), out
    # 20 ms answers and 25 calls at once allow 1,250 calls a second on each host: the cap is what
    # slows them. A tiny run is no measure of how close to the cap the busiest second comes (the
    # full run is); it is far from what two uncapped hosts would make.
    assert 0 < float(pairs["calls_per_s"]) <= 40 * 1.1, out
    assert int(pairs["max_calls_in_any_1s_window"]) <= 2 * (40 + 1), out


@MAKES_HOSTS
@ONE_HOST_MAKER_AT_A_TIME
def test_the_scaleout_bench_stopped_midway_removes_its_hosts_links_nat_rules_and_databases(server):
    bench = subprocess.Popen([sys.executable, str(ROOT / "bench" / "scaleout.py"), "--tiny", "--invoices", "2000",
                              "--postgres-url", ADMIN_URL], cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, preexec_fn=ctrl_c_as_at_a_terminal)
    try:
        deadline = time.monotonic() + 60
        while not hosts_paying(server, bench.pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert hosts_paying(server, bench.pid), "the bench's hosts never started charging"
        bench.send_signal(signal.SIGINT)
    finally:
        # Given time to clean up whatever happened (a SIGKILL mid-way would leave its hosts).
        try:
            out, err = bench.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            bench.kill()
            out, err = bench.communicate()
        left = leftover_databases(server, bench.pid)
        made = remove_made_by(bench.pid)

    assert bench.returncode == 130, (out, err)
    assert err.strip().splitlines()[-1].startswith("bench: interrupted"), err
    assert not left and not made, (left, made)


def ctrl_c_as_at_a_terminal() -> None:
    """The bench as a terminal starts it: a suite run in the background (`make test &`, CI) has
    SIGINT ignored, which its children inherit; Ctrl-C at a terminal is not ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_the_worker_chaos_bench_stopped_by_ctrl_c_stops_its_workers_and_drops_its_databases(server):
    # A short scenario (20 accounts, 2 instants) whose workers' run is under way when Ctrl-C
    # comes: from the terminal, to the bench's process group.
    bench = subprocess.Popen([sys.executable, str(ROOT / "bench" / "worker_chaos.py"), "--tiny", "--accounts", "20",
                              "--days", "3", "--window", "3", "--kills", "0", "--postgres-url", ADMIN_URL],
                             cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             start_new_session=True, preexec_fn=ctrl_c_as_at_a_terminal)
    try:
        deadline = time.monotonic() + 90
        while not workers_running(server, bench.pid) and time.monotonic() < deadline and bench.poll() is None:
            time.sleep(0.1)
        assert workers_running(server, bench.pid), "the bench's workers never started"
        os.killpg(bench.pid, signal.SIGINT)
    finally:
        try:
            out, err = bench.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            os.killpg(bench.pid, signal.SIGKILL)
            out, err = bench.communicate()
        left = leftover_databases(server, bench.pid)
        still_working = workers_of(bench.pid)

    assert bench.returncode == 130, (out, err)
    assert err.strip().splitlines()[-1].startswith("bench: interrupted after"), err
    assert "1 of 2 runs finished" in err, err  # the reference; not the workers' run
    assert not left and not still_working, (left, still_working)


def workers_running(server, pid: int) -> bool:
    """Whether the bench `pid`'s workers' run has workers in its queue."""
    return counted(server, f"renewly_bench_worker_chaos_{pid}_workers",
                   "SELECT count(*) FROM procrastinate_workers") > 0


def counted(server, database: str, query: str) -> int:
    """A count in a bench's database, 0 while it does not exist or cannot be read (the bench may
    be copying, loading or dropping it still)."""
    if not server.execute("SELECT 1 FROM pg_database WHERE datname = %s", [database]).fetchone():
        return 0
    url = make_url(ADMIN_URL).set(drivername="postgresql", database=database).render_as_string(False)
    try:
        with psycopg.connect(url) as conn:
            return conn.execute(query).fetchone()[0]
    except psycopg.Error:
        return 0


def workers_of(pid: int) -> list[int]:
    """The processes still running on a database of the bench `pid` (its workers), killed so as
    not to pile up."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            environment = (entry / "environ").read_bytes()
        except OSError:
            continue  # not a process, gone, or not ours to read
        if f"renewly_bench_worker_chaos_{pid}_".encode() in environment:
            found.append(int(entry.name))
    for process in found:
        os.kill(process, signal.SIGKILL)
    return found


def hosts_paying(server, pid: int) -> bool:
    """Whether the bench `pid`'s hosts have paid an invoice (its database has a paid one)."""
    return counted(server, f"renewly_bench_scaleout_{pid}", "SELECT count(*) FROM invoices WHERE status = 'paid'") > 0


def made_by(pid: int) -> list[str]:
    """The network namespaces, links and NAT rules of the bench `pid` still on this machine."""
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    links = subprocess.run(["ip", "-o", "link", "show"], capture_output=True, text=True).stdout
    return ([line.split()[0] for line in namespaces.splitlines() if line.startswith(f"renewly-bench-{pid}-")]
            + [line.split()[1].split("@")[0].rstrip(":") for line in links.splitlines()
               if line.split()[1].startswith(f"rb{pid}h")]
            + nat_rules_of(pid))


def nat_rules_of(pid: int) -> list[str]:
    """The bench `pid`'s NAT rules (`-A CHAIN ...`), named by their comment."""
    rules = subprocess.run(["iptables", "-w", "-t", "nat", "-S"], capture_output=True, text=True).stdout
    return [line for line in rules.splitlines() if line.startswith("-A ") and f"renewly-bench-{pid}" in line.split()]


def remove_made_by(pid: int) -> list[str]:
    """The namespaces, links and NAT rules the bench `pid` left on this machine, removed so as
    not to pile up."""
    made = made_by(pid)
    for rule in nat_rules_of(pid):
        subprocess.run(["iptables", "-w", "-t", "nat", "-D", *rule.split()[1:]], capture_output=True)
    for name in sorted((name for name in made if not name.startswith("-A ")),
                       key=lambda name: name.startswith("renewly-bench-")):  # the links first
        command = ["netns", "delete", name] if name.startswith("renewly-bench-") else ["link", "delete", name]
        subprocess.run(["ip", *command], capture_output=True)
    return made


def run_tiny(bench: str, server, environment: dict[str, str] | None = None, arguments: list[str] = ()) -> str:
    """Run `bench --tiny` as an operator would; its stdout, once it has exited 0 and left no
    database (nor, for bench/scaleout.py, a network namespace or link)."""
    command = [sys.executable, str(ROOT / "bench" / f"{bench}.py"), "--tiny", "--postgres-url", ADMIN_URL,
               *arguments]
    run = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           env={**os.environ, **(environment or {})})
    try:
        out, err = run.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        run.kill()
        out, err = run.communicate()
    finally:
        left = leftover_databases(server, run.pid)
    assert run.returncode == 0, f"bench/{bench}.py --tiny exited with {run.returncode}:\n{out}\n{err}"
    # Its databases are named after its process id (bench/renewal.py's bench_database).
    assert not left, f"bench/{bench}.py left {left} on the server (dropped now)"
    if bench == "scaleout":
        made = remove_made_by(run.pid)
        assert not made, f"bench/scaleout.py left {made} on this machine (removed now)"
    return out


def leftover_databases(server, pid: int) -> list[str]:
    """The databases of the bench process `pid` still on the server, dropped so as not to pile up."""
    names = server.execute("SELECT datname FROM pg_database WHERE datname ~ %s ORDER BY datname",
                           [rf"^renewly_bench_(collect_|scaleout_|worker_chaos_)?{pid}(_|$)"]).fetchall()
    for (name,) in names:
        server.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return [name for (name,) in names]
