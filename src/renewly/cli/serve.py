"""`renewly serve`: the `/v1` REST API over HTTP (uvicorn), and on SQLite the batches too.

On SQLite, the embedded default stays one process: serve runs the worker's ticks in a thread
(worker/embedded.py), holding the worker lock of the database file as `renewly worker` does, so
that a `renewly worker` started beside it is refused. If a worker already holds it, serve says
so and serves the API alone: that worker runs the batches. On PostgreSQL the batches are the
workers' (`renewly worker`, any number of them); serve only answers requests.

SIGTERM or Ctrl-C: uvicorn finishes the requests in hand and stops; then the batch in hand
finishes its slice, as a worker's does, and serve exits (0 for SIGTERM, 130 for Ctrl-C). A bug
in the batches stops the server too (exit 1, its traceback), as it ends `renewly worker`.
"""

from __future__ import annotations

import signal
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from renewly.cli.common import echo_wrapped, open_app, stopping_on_signals

if TYPE_CHECKING:
    from renewly.bootstrap import App

app = typer.Typer()  # its command is the root's: `renewly serve`


@app.command("serve")
def serve(host: Annotated[str, typer.Option(help="The address to listen on.")] = "127.0.0.1",
          port: Annotated[int, typer.Option(min=0, max=65535, help="The TCP port.")] = 8000,
          batches: Annotated[bool, typer.Option("--batches/--no-batches",
                                                help="On SQLite, run the batches in this process too (default).")]
          = True) -> None:
    """Serve the /v1 REST API (docs/api.md); on SQLite, run the batches in this process too."""
    import uvicorn

    from renewly.adapters.db.locks import several_writers
    from renewly.adapters.logs import configure_command_line_logs, get_logger
    from renewly.web.app import create_app

    application = open_app(issues_invoices=batches)  # the batches renew subscriptions
    listening = listening_socket(host, port)  # refused here, before a thread or a line is started
    application.settings = application.settings.model_copy(update={"log_batch_runs": True, "log_format": "json"})
    configure_command_line_logs("json")
    server = uvicorn.Server(uvicorn.Config(create_app(application), host=host, port=port, log_config=None,
                                           access_log=False, server_header=False))
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


def listening_socket(host: str, port: int) -> socket.socket:
    """The socket serve listens on, bound here rather than by uvicorn so that an address that
    cannot be resolved or bound is one line and exit 2, like any other bad input."""
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
