"""`renewly serve`: a real process on a loopback port answers the API; on SQLite it runs the
batches too, holding the worker lock (a `renewly worker` beside it is refused); SIGTERM stops it."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request

from renewly.adapters.db.locks import several_writers
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
