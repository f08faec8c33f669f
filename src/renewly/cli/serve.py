"""`renewly serve`: the `/v1` REST API over HTTP (uvicorn), and on SQLite the batches too.

On SQLite, the embedded default stays one process: serve runs the worker's ticks in a thread
(worker/embedded.py), holding the worker lock of the database file as `renewly worker` does, so
that a `renewly worker` started beside it is refused. If a worker already holds it, serve says
so and serves the API alone: that worker runs the batches. On PostgreSQL the batches are the
workers' (`renewly worker`, any number of them); serve only answers requests.

SIGTERM or Ctrl-C: uvicorn finishes the requests in hand and stops; then the batch in hand
finishes its slice, as a worker's does, and serve exits (0 for SIGTERM, 130 for Ctrl-C). A bug
in the batches stops the server too (exit 1, its traceback), as it ends `renewly worker`.

`--workers N` (PostgreSQL only): one process is bound by one core and the GIL (about 500
requests/s, docs/performance.md), so N uvicorn worker processes accept on the one socket serve
bound, under uvicorn's supervisor (this process), which replaces a worker that dies and, on
SIGTERM or Ctrl-C, stops them all (each finishes the requests in hand) before serve exits. Each
worker builds the application from this process's settings (`api_of_a_worker`): an engine and a
pool of its own, so N x 15 connections (docs/operations.md). On SQLite serve stays one process:
the batches run in it, and SQLite lets one writer in at a time.
"""

from __future__ import annotations

import signal
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer

from renewly.cli.common import bootstrap, echo_wrapped, open_app, stopping_on_signals

if TYPE_CHECKING:
    from fastapi import FastAPI

    from renewly.bootstrap import App
    from renewly.config.settings import Settings

app = typer.Typer()  # its command is the root's: `renewly serve`

MOST_WORKERS = 64  # far more than the cores of a machine; each keeps its own 15 connections


@app.command("serve")
def serve(host: Annotated[str, typer.Option(help="The address to listen on.")] = "127.0.0.1",
          port: Annotated[int, typer.Option(min=0, max=65535, help="The TCP port.")] = 8000,
          batches: Annotated[bool, typer.Option("--batches/--no-batches",
                                                help="On SQLite, run the batches in this process too (default).")]
          = True,
          workers: Annotated[int, typer.Option(min=1, max=MOST_WORKERS,
                                               help="On PostgreSQL, the API's processes (each a pool of 15 "
                                                    "connections); SQLite serves with one.")] = 1) -> None:
    """Serve the /v1 REST API (docs/api.md); on SQLite, run the batches in this process too."""
    import uvicorn

    from renewly.adapters.db.locks import several_writers
    from renewly.adapters.logs import configure_command_line_logs, get_logger
    from renewly.shared.errors import InvalidInput
    from renewly.web.app import create_app

    application = open_app(issues_invoices=batches)  # the batches renew subscriptions
    if workers > 1 and not several_writers(application.engine):
        raise InvalidInput(f"--workers {workers}: SQLite serves with one process (it runs the batches, and "
                           "SQLite lets one writer in at a time); several need PostgreSQL", code="invalid_workers")
    listening = listening_socket(host, port)  # refused here, before a thread or a line is started
    application.settings = application.settings.model_copy(update={"log_batch_runs": True, "log_format": "json"})
    configure_command_line_logs("json")
    if workers > 1:
        serve_in_processes(application, listening, host, port, workers)
    server = uvicorn.Server(uvicorn.Config(create_app(application), host=host, port=port, log_config=None,
                                           access_log=False, server_header=False))
    out_of_the_collectors_reach()
    in_process = batches and not several_writers(application.engine)
    if batches and not in_process:
        echo_wrapped("serving the API only: on PostgreSQL the batches run in `renewly worker` processes", err=True)
    with batches_beside(application, in_process, on_bug=lambda: setattr(server, "should_exit", True)) as alarm, \
            stopping_on_signals(application, (signal.SIGINT, signal.SIGTERM), then=alarm) as stopped:
        # uvicorn stops on SIGINT and SIGTERM, then raises the signal again once it has stopped:
        # the handlers above hear it, and the batch in hand finishes its slice.
        get_logger("renewly.serve").info("serving", host=host, port=port, batches=in_process)
        server.run(sockets=[listening])
    raise typer.Exit(130 if stopped.number == signal.SIGINT else 0)


def serve_in_processes(application: App, listening: socket.socket, host: str, port: int, workers: int) -> NoReturn:
    """N uvicorn worker processes on `listening`, under uvicorn's supervisor (this process) until
    SIGTERM or Ctrl-C; then exit 0 or 130, as one process does. Exit 1 if a worker could not
    start (the supervisor then stops the others: a second one would fail the same way)."""
    import functools

    import uvicorn
    from uvicorn.supervisors.multiprocess import Multiprocess

    from renewly.adapters.logs import get_logger

    application.engine.dispose()  # the workers open their own; this process only watches them

    class Supervisor(Multiprocess):
        stopped_by: int | None = None

        def handle_int(self) -> None:
            self.stopped_by = signal.SIGINT
            super().handle_int()

        def handle_term(self) -> None:
            self.stopped_by = signal.SIGTERM
            super().handle_term()

    echo_wrapped("serving the API only: on PostgreSQL the batches run in `renewly worker` processes", err=True)
    # The factory and the settings are what each worker is sent (spawned, not forked): it builds
    # the application itself, with an engine of its own.
    config = uvicorn.Config(functools.partial(api_of_a_worker, application.settings), factory=True, host=host,
                            port=port, workers=workers, log_config=None, access_log=False, server_header=False)
    supervisor = Supervisor(config, sockets=[listening])
    get_logger("renewly.serve").info("serving", host=host, port=port, batches=False, workers=workers)
    supervisor.run()
    if supervisor.stopped_by is None:
        typer.echo("error: a worker process could not start (its log is above); serve stopped", err=True)
        raise typer.Exit(1)
    raise typer.Exit(130 if supervisor.stopped_by == signal.SIGINT else 0)


def api_of_a_worker(settings: Settings) -> FastAPI:
    """The application one worker process of `serve --workers N` serves, built in that process
    from serve's settings (the schema is serve's to upgrade, done before the workers start)."""
    import sys

    from uvicorn.config import STARTUP_FAILURE

    from renewly.adapters.logs import configure_command_line_logs
    from renewly.shared.errors import BillingError
    from renewly.web.app import create_app
    configure_command_line_logs("json")
    try:
        api = create_app(bootstrap(settings, upgrade=False))
    except BillingError as error:  # e.g. the database gone since serve checked it: one line, not a retry loop
        typer.echo(f"error: {' '.join(error.message.split())}", err=True)
        sys.exit(STARTUP_FAILURE)
    out_of_the_collectors_reach()
    return api


def out_of_the_collectors_reach() -> None:
    """The objects the server was built with (modules, the schema, the routes, the templates:
    most of its heap, and all of it for good) moved out of the garbage collector's reach
    (`gc.freeze`). Python's full collections scan every object alive: in a server process they
    took 107 to 134 ms, every 6 to 8 s under load, and each held every request in hand that long,
    the API's p99 at 500 requests/s (docs/performance.md, "API"). Garbage made since is
    still collected."""
    import gc

    gc.collect()
    gc.freeze()


def listening_socket(host: str, port: int) -> socket.socket:
    """The socket serve listens on, bound here rather than by uvicorn so that an address that
    cannot be resolved or bound is one line and exit 2, like any other bad input. It names its
    protocol (IPPROTO_TCP, as getaddrinfo gives it): asyncio turns Nagle's algorithm off only on
    such a socket, and without that a keep-alive connection waits 40 ms for each answer (the
    peer's delayed ACK). uvicorn's own `bind_socket()`, for its `--workers`, leaves it at 0."""
    from renewly.shared.errors import InvalidInput
    try:
        family, kind, protocol, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        listening = socket.socket(family, kind, protocol)
    except (OSError, UnicodeError, ValueError) as error:
        raise InvalidInput(f"cannot listen on {host!r}: {error}", code="invalid_address") from None
    try:
        listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listening.bind(address)
    except OSError as error:
        listening.close()
        raise InvalidInput(f"cannot listen on {host!r} port {port}: {error.strerror or error}",
                           code="invalid_address") from None
    return listening


@contextmanager
def batches_beside(application: App, wanted: bool, *, on_bug: Callable[[], None]) -> Iterator[Callable[[], None]]:
    """The embedded worker in a thread, under the worker lock, until the block ends (then asked
    to stop and waited for). Yields what wakes it from its nap (a signal handler calls it). A bug
    in it calls `on_bug` (the server stops), and is raised again when the block ends."""
    if not wanted:
        yield lambda: None
        return
    from renewly.adapters.db.locks import holding_the_worker_lock
    from renewly.shared.errors import Conflict
    from renewly.worker.embedded import Alarm
    from renewly.worker.embedded import run as run_worker

    try:
        lock_context = holding_the_worker_lock(application.engine)
        lock = lock_context.__enter__()
    except Conflict as refused:
        echo_wrapped(f"serving the API only: {refused.message}; that worker runs the batches", err=True)
        yield lambda: None
        return
    alarm = Alarm()
    failed: list[BaseException] = []

    def work() -> None:
        try:
            run_worker(application, alarm.nap)
        except BaseException as error:
            failed.append(error)
            on_bug()

    thread = threading.Thread(target=work, name="renewly-batches", daemon=True)
    thread.start()
    echo_wrapped(f"running the batches in this process too (it holds {lock})", err=True)
    try:
        yield alarm.ring
    finally:
        application.stop.ask()
        alarm.ring()
        thread.join()
        alarm.close()
        lock_context.__exit__(None, None, None)
    if failed:
        raise failed[0]
