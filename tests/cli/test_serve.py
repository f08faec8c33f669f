"""`renewly serve`: a real process on a loopback port answers the API; on SQLite it runs the
batches too, holding the worker lock (a `renewly worker` beside it is refused); SIGTERM stops it.
On PostgreSQL `--workers N` serves from N processes on the one socket: each answers, one that
dies is replaced, and SIGTERM stops them all; SQLite refuses more than one."""

from __future__ import annotations

import contextlib
import gc
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from renewly.adapters.db.locks import several_writers
from renewly.adapters.logs import configure_command_line_logs
from renewly.cli.serve import api_of_a_worker, listening_socket
from renewly.web.keys import create_key
from tests.worker.workers import RENEWLY, worker_environment


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(url: str, key: str | None = None):
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"} if key else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as refused:
        return refused.code, dict(refused.headers), json.loads(refused.read())


def answering(url: str, server: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.poll() is None, server.communicate()
        try:
            get(url)
            return
        except OSError:
            time.sleep(0.1)
    raise AssertionError("renewly serve never answered")


def test_serve_answers_on_a_loopback_port_and_stops_on_sigterm(app, tmp_path):
    secret = create_key(app, name="tests", actor="test:operator")[1]
    port = free_port()
    server = subprocess.Popen([str(RENEWLY), "serve", "--port", str(port)], env=worker_environment(app),
                              cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        base = f"http://127.0.0.1:{port}"
        answering(f"{base}/v1/openapi.json", server)
        status, headers, body = get(f"{base}/v1/plans", secret)
        assert (status, body["data"], headers["renewly-version"]) == (200, [], "2026-06-01")
        assert get(f"{base}/v1/plans")[0] == 401
        if not several_writers(app.engine):  # SQLite: the batches are this process's
            second = subprocess.run([str(RENEWLY), "worker"], env=worker_environment(app), cwd=tmp_path,
                                    capture_output=True, text=True, timeout=60)
            assert second.returncode == 2 and "already runs on" in second.stderr, second.stderr
        server.send_signal(signal.SIGTERM)
        _out, err = server.communicate(timeout=60)
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()
    assert server.returncode == 0, err
    if several_writers(app.engine):
        assert "serving the API only: on PostgreSQL the batches run in `renewly worker`" in err
    else:
        assert "running the batches in this process too" in err


def test_serve_beside_a_worker_serves_the_api_alone_and_says_so(databases, tmp_path):
    app = databases.fresh_app("sqlite")
    worker = subprocess.Popen([str(RENEWLY), "worker"], env=worker_environment(app), cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    port = free_port()
    server = None
    try:
        deadline = time.monotonic() + 30
        while "worker started" not in (line := worker.stderr.readline()):
            assert time.monotonic() < deadline and line, "the worker never started"
        server = subprocess.Popen([str(RENEWLY), "serve", "--port", str(port)], env=worker_environment(app),
                                  cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        answering(f"http://127.0.0.1:{port}/v1/openapi.json", server)
        server.send_signal(signal.SIGINT)
        _out, err = server.communicate(timeout=60)
        assert server.returncode == 130, err
        assert "serving the API only: a worker" in err and "already runs on" in err
    finally:
        for process in (server, worker):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                process.communicate(timeout=60)


def test_an_address_it_cannot_listen_on_is_one_line_and_exit_2(app, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for host in ("no-such-host.invalid", "\x1b[31mred", "127.0.0.1"):
            refused = subprocess.run([str(RENEWLY), "serve", "--host", host, "--port", str(port)],
                                     env=worker_environment(app), cwd=tmp_path, capture_output=True, text=True,
                                     timeout=60)
            assert (refused.returncode, refused.stdout) == (2, ""), refused.stderr
            assert refused.stderr.startswith("error: cannot listen on ") and refused.stderr.count("\n") == 1


def worker_processes(server: subprocess.Popen) -> set[int]:
    """The supervisor's uvicorn workers (spawned by multiprocessing, beside its resource tracker)."""
    children = Path(f"/proc/{server.pid}/task/{server.pid}/children").read_text().split()
    return {int(pid) for pid in children
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()}


def descendants(pid: int) -> set[int]:
    try:
        children = {int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}
    except FileNotFoundError:
        return set()
    return children.union(*(descendants(child) for child in children))


def read_cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except FileNotFoundError:  # ended meanwhile
        return ""


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"


def workers_of(server: subprocess.Popen, count: int, *, besides: tuple[int, ...] = ()) -> set[int]:
    """Its `count` workers, once they are as many, and one at least is not among `besides`."""
    deadline = time.monotonic() + 60
    while not (found := worker_processes(server)) - set(besides) or len(found) != count:
        assert server.poll() is None and time.monotonic() < deadline, (found, server.poll())
        time.sleep(0.2)
    return found


def answered_by_each_alone(base: str, secret: str, workers: set[int]) -> None:
    """The others stopped (SIGSTOP), only this one accepts from the shared socket: a new
    connection is its."""
    for worker in workers:
        others = workers - {worker}
        for other in others:
            os.kill(other, signal.SIGSTOP)
        try:
            deadline = time.monotonic() + 30
            while True:  # a replacement may still be starting: it answers once it is ready
                try:
                    status, _headers, body = get(f"{base}/v1/plans", secret)
                    break
                except OSError:
                    assert time.monotonic() < deadline, f"worker {worker} never answered"
                    time.sleep(0.2)
            assert (status, body["data"]) == (200, [])
        finally:
            for other in others:  # stopped for more than 5 s, the supervisor may have replaced it
                with contextlib.suppress(ProcessLookupError):
                    os.kill(other, signal.SIGCONT)


def test_several_workers_each_answer_one_that_dies_is_replaced_and_sigterm_stops_them_all(pg_app, tmp_path):
    secret = create_key(pg_app, name="tests", actor="test:operator")[1]
    port = free_port()
    server = subprocess.Popen([str(RENEWLY), "serve", "--port", str(port), "--workers", "2"],
                              env=worker_environment(pg_app), cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    started: set[int] = set()
    try:
        base = f"http://127.0.0.1:{port}"
        answering(f"{base}/v1/openapi.json", server, timeout=60)
        workers = workers_of(server, 2)
        started = descendants(server.pid)
        answered_by_each_alone(base, secret, workers)

        killed = min(workers)
        os.kill(killed, signal.SIGKILL)
        replaced = workers_of(server, 2, besides=tuple(workers))
        assert killed not in replaced and len(replaced & workers) == 1
        started |= descendants(server.pid)
        answered_by_each_alone(base, secret, replaced)

        server.send_signal(signal.SIGTERM)
        _out, err = server.communicate(timeout=60)
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()
    assert server.returncode == 0, err
    assert "Traceback" not in err, err
    # multiprocessing's resource tracker ends when it reads the end of its pipe: just after serve.
    deadline = time.monotonic() + 10
    while (left := {pid: read_cmdline(pid) for pid in started if alive(pid)}) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert left == {}


@pytest.mark.parametrize("workers", ["2", "0", "65", "two"])
def test_workers_beyond_one_on_sqlite_or_out_of_bounds_are_one_line_and_exit_2(databases, tmp_path, workers):
    app = databases.fresh_app("sqlite")
    refused = subprocess.run([str(RENEWLY), "serve", "--port", str(free_port()), "--workers", workers],
                             env=worker_environment(app), cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert (refused.returncode, refused.stdout) == (2, ""), refused.stderr
    assert refused.stderr.startswith("error: ") and refused.stderr.count("\n") == 1, refused.stderr
    if workers == "2":
        assert "SQLite serves with one process" in refused.stderr


def test_the_socket_names_its_protocol_so_that_answers_are_not_held_back_by_nagle():
    # asyncio sets TCP_NODELAY on the connections of a listening socket whose protocol is
    # IPPROTO_TCP only; at 0 every answer on a keep-alive connection waits 40 ms for an ACK.
    listening = listening_socket("127.0.0.1", 0)
    with listening:
        assert (listening.type, listening.proto) == (socket.SOCK_STREAM, socket.IPPROTO_TCP)


def test_a_worker_process_puts_what_it_was_built_with_out_of_the_collectors_reach(app):
    """A full collection scans every object alive: in a server, 100 ms and more every few seconds
    under load, each request in hand held that long (docs/performance.md, "API")."""
    before = gc.get_freeze_count()
    api = api_of_a_worker(app.settings)
    try:
        assert api.state.ports.settings.database_url == app.settings.database_url
        assert gc.get_freeze_count() > before + 10_000  # the modules, the schema, the routes
    finally:
        api.state.ports.engine.dispose()
        gc.unfreeze()
        configure_command_line_logs("plain")  # as the tests' conftest has them
