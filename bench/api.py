"""The API benchmark (issue 13): `renewly serve` on PostgreSQL with N accounts, read over HTTP.

    .venv/bin/python bench/api.py                     # 100,000 accounts, 500 requests/s for 30 s
    .venv/bin/python bench/api.py --accounts 20000 --seconds 20
    .venv/bin/python bench/api.py --server-workers 2  # `renewly serve --workers 2`, the hello-world as many
    .venv/bin/python bench/api.py --tiny              # 200 accounts, 2 server workers: tests/test_benches.py

It creates a database of its own (on the server of --postgres-url), loads N accounts set-based,
each with an owner, an admin and an agent and a monthly subscription (bench/renewal.py's loader),
issues their renewal invoices with the renewal batch (`renew_due`), makes an API key, and starts
`renewly serve` (uvicorn) on loopback, a process of its own (with --server-workers N, `serve
--workers N`: N processes on one socket). This process is the load generator:
worker processes of plain HTTP/1.1 keep-alive connections (http.client, one a thread), bounded in
count and time.

1. **Latency at a fixed rate** (--rate, 500/s): an open loop, requests sent on a schedule whatever
   the answers, in equal thirds `GET /v1/accounts/{id}`, `GET /v1/invoices?account_id={id}` and
   `GET /v1/accounts/{id}/banner?member=...`, for random accounts. A request's latency runs from
   its scheduled instant, so a server (or a load generator) that falls behind shows in it. p50 and
   p99, overall and per path. Target: p99 <= 20 ms. The same open loop against the hello-world
   below gives the floor: what this machine and this load generator give an answer that costs
   nothing.
2. **Throughput at saturation**: a closed loop, every connection sending its next request as soon
   as the last is answered, the same mix; then the same for a FastAPI hello-world (one route, a
   constant JSON) served the same way (uvicorn, same options, a process of its own) in the same
   run (with --server-workers N, N processes too). The ratio Renewly / hello-world says what
   Renewly's work costs beyond the framework and the server on this machine, whatever its load.
   Target: >= 0.3. The servers' CPU per request (from /proc, the server's processes summed) is
   printed too: less moved by the machine's load than wall-clock figures.

Every answer is checked (status 200 and the account's id in its body; a wrong one exits 1), and
the seeded data once, in full, before timing. The last line is key=value pairs, for scripts.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import multiprocessing
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from sqlalchemy import text

sys.path.insert(0, str(Path(__file__).parent))
from cli import renewly_command  # noqa: E402
from renewal import bench_database, load_postgres, make_app, renew  # noqa: E402

from renewly.web.keys import create_key  # noqa: E402

PATHS = ("account", "invoices", "banner")
ROLES = ("owner", "admin", "agent")
SELLER = {"RENEWLY_SELLER__NAME": "Renewly Bench SAS", "RENEWLY_SELLER__VAT_ID": "FR99999999999",
          "RENEWLY_SELLER__REGISTRATION": "RCS Bench 999", "RENEWLY_SELLER__SIREN": "999999998",
          "RENEWLY_SELLER__SIRET": "99999999800001"}
P99_TARGET_MS = 20.0
RATIO_TARGET = 0.3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=100_000)
    parser.add_argument("--rate", type=float, default=500.0, help="requests/s of the fixed-rate phase")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long the fixed-rate phase lasts")
    parser.add_argument("--saturation-seconds", type=float, default=10.0, help="how long each saturation run lasts")
    parser.add_argument("--connections", type=int, default=16, help="connections of the saturation runs")
    parser.add_argument("--processes", type=int, default=2, help="load generator processes")
    parser.add_argument("--server-workers", type=int, default=1, choices=range(1, 65), metavar="N",
                        help="processes of each server: `renewly serve --workers N`, the hello-world as many")
    parser.add_argument("--tiny", action="store_true",
                        help="a check that the bench still runs and verifies its results, not a measure: "
                             "200 accounts, 50 requests/s for 2 s, saturation runs of 1 s, 2 server workers")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres",
                        help="a server where the bench may create and drop a database")
    args = parser.parse_args()
    if args.tiny:
        args.accounts, args.rate, args.seconds, args.saturation_seconds, args.connections = 200, 50.0, 2.0, 1.0, 4
        args.server_workers = 2  # the supervisor's path, the one with more to go wrong (readiness, CPU summed)

    with bench_database(args.postgres_url) as url:
        secret = seed(url, args.accounts)
        workers = args.server_workers
        with served([*renewly_command(), "serve", "--port", "{port}", "--workers", str(workers)], url,
                    workers) as renewly:
            check_seeded(renewly.port, secret, args.accounts)
            fixed = fixed_rate(renewly.port, secret, args)
            renewly_saturated = saturate(renewly, secret, args, hello=False)
        with served([sys.executable, str(Path(__file__).resolve()), "--serve-hello", "{port}", str(workers)], url,
                    workers) as hello:
            hello_fixed = fixed_rate(hello.port, secret, args, hello=True)
            hello_saturated = saturate(hello, secret, args, hello=True)

    latencies = fixed["latencies"]
    p50, p99 = percentile(latencies, 50), percentile(latencies, 99)
    achieved = fixed["sent"] / fixed["seconds"]
    print(f"fixed rate: {fixed['sent']:,} of {fixed['scheduled']:,} requests answered in {fixed['seconds']:.1f} s "
          f"({achieved:,.0f}/s, asked {args.rate:,.0f}/s; {fixed['unsent']:,} unsent within the time bound) over "
          f"{args.accounts:,} accounts: p50 {p50:.1f} ms, p99 {p99:.1f} ms "
          f"({'meets' if p99 <= P99_TARGET_MS else 'MISSES'} the target, p99 <= {P99_TARGET_MS:.0f} ms)")
    for name in PATHS:
        mine = fixed["by_path"][name]
        print(f"  {name:<9} answered {len(mine):6,}  p50 {percentile(mine, 50):8.1f} ms  "
              f"p99 {percentile(mine, 99):8.1f} ms  max {max(mine):8.1f} ms")
    hello_p50, hello_p99 = percentile(hello_fixed["latencies"], 50), percentile(hello_fixed["latencies"], 99)
    print(f"  the hello-world at the same rate, the same load generator: p50 {hello_p50:.1f} ms, "
          f"p99 {hello_p99:.1f} ms (what this machine and the load generator give an answer that costs nothing)")
    ratio = renewly_saturated["per_s"] / hello_saturated["per_s"]
    cpu_ratio = hello_saturated["cpu_us"] / renewly_saturated["cpu_us"]
    print(f"saturation ({args.connections} connections, {args.processes} load processes, "
          f"{args.server_workers} server process(es) each): Renewly "
          f"{renewly_saturated['per_s']:,.0f} requests/s ({renewly_saturated['cpu_us']:,.0f} us of server CPU "
          f"each), hello-world {hello_saturated['per_s']:,.0f}/s ({hello_saturated['cpu_us']:,.0f} us each): "
          f"ratio {ratio:.2f} ({'meets' if ratio >= RATIO_TARGET else 'MISSES'} the target, >= {RATIO_TARGET}); "
          f"by server CPU {cpu_ratio:.2f}; Renewly's busiest process took "
          f"{renewly_saturated['busiest_share']:.0%} of its CPU")
    figures = {"accounts": args.accounts, "rate": args.rate, "sent": fixed["sent"], "unsent": fixed["unsent"],
               "achieved_per_s": achieved, "p50_ms": p50, "p99_ms": p99,
               **{f"{name}_p99_ms": percentile(fixed["by_path"][name], 99) for name in PATHS},
               "hello_p50_ms": hello_p50, "hello_p99_ms": hello_p99,
               "per_s": renewly_saturated["per_s"], "hello_per_s": hello_saturated["per_s"], "ratio": ratio,
               "cpu_us": renewly_saturated["cpu_us"], "hello_cpu_us": hello_saturated["cpu_us"],
               "cpu_ratio": cpu_ratio, "busiest_share": renewly_saturated["busiest_share"],
               "connections": args.connections, "processes": args.processes,
               "server_workers": args.server_workers}
    print(" ".join(f"{key}={format_figure(value)}" for key, value in figures.items()))


def format_figure(value: float | int) -> str:
    if isinstance(value, int) or value >= 100:
        return f"{value:.0f}"
    return f"{value:.3g}"


def percentile(values: list[float], which: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * which / 100))]


# -- the data ------------------------------------------------------------------------------------------

def seed(url: str, count: int) -> str:
    """N accounts with their three members, subscriptions and one issued invoice each; the API key."""
    app = make_app(url, 2000)
    load_postgres(app.engine, count)
    started = time.perf_counter()
    with app.engine.begin() as conn:
        for role in ROLES:
            conn.execute(text("""
                INSERT INTO members (account_id, email, role, created_at)
                SELECT id, :role || id || '@customer' || id || '.example', :role, created_at FROM accounts
                ORDER BY id"""), {"role": role})
    with app.engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE members")
    print(f"PostgreSQL: {3 * count:,} members in {time.perf_counter() - started:.1f} s")
    renew(app, count, "PostgreSQL")  # one invoice per account, checked (bench/renewal.py)
    # What autovacuum does after so many inserts (PostgreSQL 13 and later vacuum a table for its
    # inserts too): the rows' hint bits set and the visibility map written once, here, not by the
    # first reads of the timed phase. Done whether or not this server's autovacuum is on (this
    # machine's is off), so that runs compare.
    with app.engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")
    secret = create_key(app, name="bench", actor="bench:api")[1]
    app.engine.dispose()
    return secret


def member_email(account_id: int, role: str) -> str:
    return f"{role}{account_id}@customer{account_id}.example"


def check_seeded(port: int, secret: str, count: int) -> None:
    """What the API says of the first and last accounts, in full."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    for account_id in sorted({1, count}):
        account = get_json(connection, secret, f"/v1/accounts/{account_id}")
        invoices = get_json(connection, secret, f"/v1/invoices?account_id={account_id}")["data"]
        banners = [get_json(connection, secret,
                            f"/v1/accounts/{account_id}/banner?member={member_email(account_id, role)}")
                   for role in ROLES]
        wrong = []
        if (account["id"], account["name"], account["owner_email"]) != (
                account_id, f"Account {account_id}", member_email(account_id, "owner")):
            wrong.append(f"account {account}")
        if [(invoice["account_id"], invoice["period_start"], len(invoice["lines"])) for invoice in invoices] != [
                (account_id, "2026-02-01", 1)]:
            wrong.append(f"invoices {invoices}")
        if [(banner["role"], banner["banner"]) for banner in banners] != [(role, None) for role in ROLES]:
            wrong.append(f"banners {banners}")
        if wrong:
            sys.exit(f"bench: wrong answer for account {account_id}: " + "; ".join(wrong))
    connection.close()


def get_json(connection: http.client.HTTPConnection, secret: str, path: str) -> dict:
    connection.request("GET", path, headers={"Authorization": f"Bearer {secret}"})
    answer = connection.getresponse()
    body = answer.read()
    if answer.status != 200:
        sys.exit(f"bench: GET {path} answered {answer.status}: {body[:300]!r}")
    return json.loads(body)


# -- the servers -------------------------------------------------------------------------------------------

class served:
    """A server process on a free loopback port, stopped (SIGTERM, then SIGKILL) at the end. With
    `workers` > 1 it is uvicorn's supervisor of that many worker processes (spawned)."""

    def __init__(self, command: list[str], url: str, workers: int = 1) -> None:
        self.port = free_port()
        self.command = [part.replace("{port}", str(self.port)) for part in command]
        self.url = url
        self.workers = workers

    def __enter__(self) -> served:
        environment = {name: value for name, value in os.environ.items() if not name.startswith("RENEWLY_")}
        # An operator's settings: on the system clock, a seller of its own (docs/configuration.md).
        environment |= {"RENEWLY_DATABASE_URL": self.url, "RENEWLY_CLOCK": "system", **SELLER}
        # Its logs to a file, not a pipe: a pipe nobody reads would stop a chatty server once full.
        self.log = tempfile.TemporaryFile("w+")
        self.process = subprocess.Popen(self.command, env=environment, stdout=self.log, stderr=self.log, text=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.log.seek(0)
                sys.exit(f"bench: {' '.join(self.command)} exited {self.process.returncode}: {self.log.read()[-2000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
            except OSError:
                time.sleep(0.1)
                continue
            if self.workers_ready():
                return self
            time.sleep(0.2)
        self.__exit__()
        sys.exit(f"bench: {' '.join(self.command)} did not listen within 60 s")

    def workers_ready(self) -> bool:
        """One process: it accepts, so it answers. Several: the supervisor binds the socket before
        its workers are up, and none says when it is; each is taken for ready once it has all its
        workers and none of them used more than 50 ms of CPU in a second (the start, imports and
        the app built, is CPU throughout; an idle worker answers its supervisor's pings, 20 ms a
        second)."""
        if self.workers == 1:
            return True
        workers = [pid for pid in children(self.process.pid) if b"spawn_main" in read_proc(pid, "cmdline")]
        if len(workers) != self.workers:
            return False
        before = [cpu_of(pid) for pid in workers]
        time.sleep(1.0)
        return all(cpu_of(pid) - cpu < 0.05 for pid, cpu in zip(workers, before, strict=True))

    def __exit__(self, *_exc) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def read_proc(pid: int, name: str) -> bytes:
    try:
        return Path(f"/proc/{pid}/{name}").read_bytes()
    except (FileNotFoundError, ProcessLookupError):  # ended meanwhile
        return b""


def children(pid: int) -> list[int]:
    return [int(child) for child in read_proc(pid, f"task/{pid}/children").split()]


def descendants(pid: int) -> list[int]:
    return [each for child in children(pid) for each in (child, *descendants(child))]


def cpu_of(pid: int) -> float:
    """A process's user and system CPU so far, in seconds (0 once it has ended)."""
    fields = read_proc(pid, "stat").rpartition(b")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK") if fields else 0.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def hello_world():
    """FastAPI's hello-world: one route, a constant JSON."""
    from fastapi import FastAPI

    from renewly.cli.serve import out_of_the_collectors_reach

    hello = FastAPI()

    @hello.get("/hello")
    def say_hello(account_id: int = 0) -> dict:
        return {"hello": "world", "id": account_id}

    out_of_the_collectors_reach()  # as `renewly serve` does: served the same way
    return hello


def serve_hello(port: int, workers: int) -> None:
    """The hello-world, served as `renewly serve --workers N` serves Renewly (cli/serve.py): one
    process, or uvicorn's supervisor of N workers on one socket, each building the app itself."""
    import uvicorn
    from uvicorn.supervisors.multiprocess import Multiprocess

    from renewly.cli.serve import listening_socket

    # serve's socket, not uvicorn's `bind_socket()`: asyncio turns Nagle's algorithm off only on a
    # socket that names its protocol, which uvicorn's does not (docs/performance.md).
    listening = listening_socket("127.0.0.1", port)
    options = {"host": "127.0.0.1", "port": port, "log_config": None, "access_log": False, "server_header": False}
    if workers == 1:
        uvicorn.Server(uvicorn.Config(hello_world(), **options)).run(sockets=[listening])
        return
    Multiprocess(uvicorn.Config(hello_world, factory=True, workers=workers, **options), sockets=[listening]).run()


# -- the load ------------------------------------------------------------------------------------------------

def request_for(index: int, seed: int, count: int, hello: bool) -> tuple[str, str, int]:
    """The request number `index` of the mix: (its path's name, its path, its account)."""
    account_id = random.Random(seed * 1_000_003 + index).randint(1, count)
    name = PATHS[index % len(PATHS)]
    if hello:
        return name, f"/hello?account_id={account_id}", account_id
    if name == "account":
        return name, f"/v1/accounts/{account_id}", account_id
    if name == "invoices":
        return name, f"/v1/invoices?account_id={account_id}", account_id
    role = ROLES[index % 7 % len(ROLES)]
    return name, f"/v1/accounts/{account_id}/banner?member={member_email(account_id, role)}", account_id


def drive(job: dict) -> dict:
    """One load generator process: `threads` connections, each a thread. With `rate`, an open
    loop: request i of this process is due at start + i / rate; else a closed loop for `seconds`.
    Returns the latencies (ms) by path, the count sent and the first wrong answer, if any."""
    latencies: dict[str, list[float]] = {name: [] for name in PATHS}
    lock = threading.Lock()
    state = {"next": 0, "wrong": None, "sent": 0}
    start = job["start"]
    end = start + job["seconds"]
    total = int(job["rate"] * job["seconds"]) if job["rate"] else None
    headers = {"Authorization": f"Bearer {job['secret']}"}

    def worker() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", job["port"], timeout=30)
        time.sleep(max(0.0, start - time.perf_counter()))  # the closed loop too starts at `start`, not before
        while True:
            with lock:
                index = state["next"]
                state["next"] += 1
            if total is not None:
                if index >= total:
                    break
                due = start + index / job["rate"]
                pause = due - time.perf_counter()
                if pause > 0:
                    time.sleep(pause)
            else:
                due = time.perf_counter()
                if due >= end:
                    break
            if time.perf_counter() > end + max(10.0, job["seconds"]):  # bounded in time, whatever the server does
                break
            name, path, account_id = request_for(index * job["processes"] + job["number"], job["seed"],
                                                 job["accounts"], job["hello"])
            try:
                connection.request("GET", path, headers=headers)
                answer = connection.getresponse()
                body = answer.read()
            except (OSError, http.client.HTTPException) as error:
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", job["port"], timeout=30)
                answer, body = None, repr(error).encode()
            elapsed_ms = (time.perf_counter() - due) * 1000
            good = answer is not None and answer.status == 200 and any(
                mark.encode() in body for mark in (f'"id":{account_id},', f'"account_id":{account_id},',
                                                   f'"id":{account_id}}}'))
            with lock:
                state["sent"] += 1
                latencies[name].append(elapsed_ms)
                if not good and state["wrong"] is None:
                    state["wrong"] = f"GET {path}: {answer.status if answer else 'no answer'} {body[:200]!r}"
        connection.close()

    threads = [threading.Thread(target=worker) for _ in range(job["threads"])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {"latencies": latencies, "sent": state["sent"], "wrong": state["wrong"]}


def run_load(port: int, secret: str, args, *, rate: float, seconds: float, threads: int, hello: bool) -> dict:
    """The load generator's processes, started together; their results merged."""
    start = time.perf_counter() + 1.0  # every process started and connected before the first request
    jobs = [{"port": port, "secret": secret, "rate": rate / args.processes, "seconds": seconds,
             "threads": max(1, threads // args.processes), "start": start, "processes": args.processes,
             "number": number, "seed": 13, "accounts": args.accounts, "hello": hello}
            for number in range(args.processes)]
    # perf_counter is CLOCK_MONOTONIC, shared by the processes of this machine: one start for all.
    with multiprocessing.get_context("fork").Pool(args.processes) as pool:
        results = pool.map(drive, jobs)
    elapsed = time.perf_counter() - start
    wrong = [result["wrong"] for result in results if result["wrong"]]
    if wrong:
        sys.exit(f"bench: wrong answer: {wrong[0]}")
    by_path = {name: [ms for result in results for ms in result["latencies"][name]] for name in PATHS}
    return {"sent": sum(result["sent"] for result in results), "by_path": by_path,
            "latencies": [ms for mine in by_path.values() for ms in mine], "elapsed": elapsed}


def fixed_rate(port: int, secret: str, args, *, hello: bool = False) -> dict:
    """The open loop. A server slower than the rate leaves requests unsent when the time bound
    (twice the phase, at least 10 s more) comes: they count as answered later than any that was."""
    threads = max(8, int(args.rate * 0.05))  # enough connections for answers of 50 ms at that rate
    done = run_load(port, secret, args, rate=args.rate, seconds=args.seconds, threads=threads, hello=hello)
    scheduled = int(args.rate / args.processes * args.seconds) * args.processes
    unsent = scheduled - done["sent"]
    return {**done, "seconds": min(done["elapsed"], args.seconds) if not unsent else done["elapsed"],
            "scheduled": scheduled, "unsent": unsent,
            "latencies": done["latencies"] + [math.inf] * unsent}


def saturate(server: served, secret: str, args, *, hello: bool) -> dict:
    """The closed loop; with the share of the server's CPU its busiest process took (1 with one
    process): uvicorn's workers accept from one socket, and nothing spreads the kept-alive
    connections between them, so a run where most land on one process measures that one."""
    processes = [server.process.pid, *descendants(server.process.pid)]
    before = [cpu_of(pid) for pid in processes]
    done = run_load(server.port, secret, args, rate=0, seconds=args.saturation_seconds, threads=args.connections,
                    hello=hello)
    used = [cpu_of(pid) - cpu for pid, cpu in zip(processes, before, strict=True)]
    cpu = sum(used)
    if not done["sent"]:
        sys.exit("bench: no request answered in the saturation run")
    return {"per_s": done["sent"] / args.saturation_seconds, "cpu_us": cpu / done["sent"] * 1e6,
            "busiest_share": max(used) / cpu if cpu else 1.0}


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--serve-hello":
        serve_hello(int(sys.argv[2]), int(sys.argv[3]))
    else:
        main()
