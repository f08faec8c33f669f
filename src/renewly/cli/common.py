"""What every command group shares: opening the application, the actor, Ctrl-C, dates, printing.

Light at import time on purpose (Typer and the standard library only): `renewly --help` loads
every command module, so the database, the settings and Rich are imported when a command runs.
"""

from __future__ import annotations

import getpass
import json
import logging
import os
import signal
import sys
import textwrap
import threading
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from renewly.bootstrap import App

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
AccountId = Annotated[int, typer.Argument(help="The account's id.")]
InvoiceNumber = Annotated[str, typer.Argument(help="An invoice's or credit note's number, e.g. 2026-000001.")]
AccountFilter = Annotated[int | None, typer.Option("--account", help="Only this account's (its id).")]
AsOf = Annotated[str | None, typer.Option("--as-of", help="An ISO date (its last instant, UTC) or datetime; "
                                                          "default: the clock's now.")]


def group(help: str) -> typer.Typer:
    """A command group: `renewly GROUP` alone prints its help."""
    return typer.Typer(help=help, no_args_is_help=True)


def bootstrap(*args: Any, **kwargs: Any) -> App:
    """The composition root, imported when a command opens the application (tests wrap it to
    close the engines each command opens)."""
    from renewly.bootstrap import bootstrap as composition_root
    return composition_root(*args, **kwargs)


def actor() -> str:
    """Who the audit log names: $RENEWLY_ACTOR, or the operating-system user at the command line."""
    return os.environ.get("RENEWLY_ACTOR") or f"cli:{getpass.getuser()}"


def open_app(*, issues_invoices: bool = False, upgrade: bool = True) -> App:
    """The application, for one command. A command that issues invoices is refused before the
    database is opened while the seller is still the demo's on the system clock. `upgrade=False`:
    the schema is left as it is (`db upgrade` does it itself; `policy check --against` only reads)."""
    from renewly.adapters.logs import configure_command_line_logs
    from renewly.config.settings import load_settings
    configure_command_line_logs()  # stderr, plain or JSON as the settings say: what a command logs
    settings = load_settings()
    if issues_invoices:
        settings.refuse_the_demo_seller_on_the_system_clock()
    return bootstrap(settings, upgrade=upgrade)


STOPPING = "stopping after the slice in hand (Ctrl-C again stops at once)"
# Set by the second Ctrl-C: `main` then exits at once, without waiting for threads at the gateway.
STOPPED_AT_ONCE = threading.Event()
# How long the second Ctrl-C's KeyboardInterrupt has to reach `main` before the process exits
# without it: Python swallows an exception raised inside a garbage collector's or a weakref's
# callback (SQLAlchemy's event registry has one), which is where a signal handler can run.
AT_ONCE_BACKSTOP_SECONDS = 0.5
_EXITING = threading.Lock()


def stopped_at_once() -> None:
    """Exit 130 now, without waiting for the threads still at the gateway: the transaction in
    hand is rolled back (by the unwinding, or by the database when the process ends, as after a
    kill -9); charges asked in it stay pending until their lease ends, then the next payment batch
    settles them (`renewly reconcile` lists them meanwhile). Said once, whoever gets here first."""
    if not _EXITING.acquire(blocking=False):
        threading.Event().wait()  # the other caller is exiting the process
    sys.stdout.flush()
    sys.stderr.write("interrupted: stopped at once; charges in flight stay pending until their\n"
                     "lease ends, then the next payment batch settles them (renewly reconcile)\n")
    sys.stderr.flush()
    os._exit(130)


_backstop_started = False


def _start_the_at_once_backstop() -> None:
    """One thread per process, started outside any signal handler (a handler that started a thread
    could deadlock on a lock the interrupted main thread holds): once the second Ctrl-C has set
    STOPPED_AT_ONCE, it gives `main` AT_ONCE_BACKSTOP_SECONDS to exit, then exits itself."""
    global _backstop_started
    if not _backstop_started:
        _backstop_started = True
        threading.Thread(target=_stop_at_once_unless_main_does, daemon=True, name="renewly-at-once").start()
        # Where Python or SQLAlchemy swallows that KeyboardInterrupt they print it with a traceback
        # ("Exception ignored in", "Exception during reset"): noise after the operator's own Ctrl-C.
        previous_hook = sys.unraisablehook

        def unraisable(what: Any) -> None:
            if not _our_interrupt(what.exc_value):
                previous_hook(what)
        sys.unraisablehook = unraisable
        logging.getLogger("sqlalchemy.pool").addFilter(
            lambda record: not (record.exc_info and _our_interrupt(record.exc_info[1])))


def _our_interrupt(error: BaseException | None) -> bool:
    return isinstance(error, KeyboardInterrupt) and STOPPED_AT_ONCE.is_set()


def _stop_at_once_unless_main_does() -> None:
    STOPPED_AT_ONCE.wait()
    threading.Event().wait(AT_ONCE_BACKSTOP_SECONDS)
    stopped_at_once()


@contextmanager
def stopping_on_ctrl_c(application: App, say: Callable[[str], None] | None = None) -> Iterator[None]:
    """The first Ctrl-C asks the batches to stop once the slice in hand is done (its charges
    answered and recorded); the second one stops at once (KeyboardInterrupt, see `main`).
    `say`: where the first one says so (a progress bar's text), instead of a line on stderr."""
    with stopping_on_signals(application, (signal.SIGINT,), say=say):
        yield


class StopSignal:
    """Which signal asked the stop (the first of them), if one did: a worker stopped by SIGTERM
    exits 0, by Ctrl-C (SIGINT) 130."""

    def __init__(self) -> None:
        self.number: int | None = None


@contextmanager
def stopping_on_signals(application: App, signals: tuple[int, ...], *, say: Callable[[str], None] | None = None,
                        then: Callable[[], None] | None = None) -> Iterator[StopSignal]:
    """The first of `signals` asks the batches to stop once the slice in hand is done; a second
    one stops at once (KeyboardInterrupt, see `main`). `say`: where the first one says so,
    instead of a line on stderr; `then`: called after (a sleeping worker woken). Both run in a
    signal handler: they must be safe there (no print, no lock)."""
    stopped = StopSignal()
    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield stopped
        return

    def second(_signal, _frame) -> None:
        STOPPED_AT_ONCE.set()  # if Python swallows the KeyboardInterrupt, the backstop exits all the same
        raise KeyboardInterrupt

    def first(number, _frame) -> None:
        stopped.number = number
        application.stop.ask()
        for each in signals:
            signal.signal(each, second)
        if say is not None:
            say(STOPPING)
        else:
            # os.write: a signal handler may run while the main thread is inside sys.stderr.write.
            os.write(2, f"{STOPPING}\n".encode())
        if then is not None:
            then()

    _start_the_at_once_backstop()
    previous = {each: signal.signal(each, first) for each in signals}
    try:
        yield stopped
    finally:
        for each, handler in previous.items():
            signal.signal(each, handler)


def parse_date(text: str, what: str = "date") -> date:
    from renewly.shared.errors import InvalidInput
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidInput(f"malformed {what} {text!r}: expected YYYY-MM-DD", code="malformed_date") from None


# The earliest moment a batch may run as of: the earliest day the test clock starts on.
EARLIEST_AS_OF = datetime(1970, 1, 1, tzinfo=UTC)


def parse_as_of(text: str | None, application: App) -> datetime:
    """The moment a batch runs as of: the clock's now, or an earlier one (a batch run late). Never
    later: a typo (2030 for 2026) would issue invoices dated years ahead."""
    from renewly.shared.calendar import end_of_day_utc
    from renewly.shared.errors import InvalidInput
    now = application.clock.now()
    if text is None:
        return now
    if len(text) == 10:
        day = parse_date(text, "--as-of date")
        # A bare date means its last instant (UTC); today's is not reached yet: now.
        instant = min(end_of_day_utc(day), now) if day == now.astimezone(UTC).date() else end_of_day_utc(day)
    else:
        try:
            instant = datetime.fromisoformat(text)
        except ValueError:
            raise InvalidInput(f"malformed --as-of {text!r}: expected YYYY-MM-DD or an ISO datetime",
                               code="malformed_date") from None
        instant = instant if instant.tzinfo else instant.replace(tzinfo=UTC)
    if instant > now:
        raise InvalidInput(f"--as-of {text} is later than the clock ({now.isoformat()}): batches run as of now or "
                           "earlier", code="as_of_in_the_future")
    if instant < EARLIEST_AS_OF:
        # Retention counts years back from it: year 1 left the calendar (a traceback).
        raise InvalidInput(f"--as-of {text} is before {EARLIEST_AS_OF.date()}: no batch runs that late",
                           code="as_of_too_early")
    return instant


def json_default(value: Any) -> Any:
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot print {type(value).__name__} as JSON")


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(value, default=json_default, ensure_ascii=False, indent=2) + "\n")


@cache
def console() -> Console:
    """Rich's console, made when a command first prints a table (Rich is slow to import)."""
    from rich.console import Console
    return Console()


def print_table(title: str, columns: list[str], rows: list[list[Any]], *, whole: Collection[str] = ()) -> None:
    """A table that fits the terminal (80 columns on a pipe): a rule under the header, no frame;
    long cells fold onto more lines. The columns named in `whole` (identifiers: an invoice's
    number, an e-mail address) are never folded nor cut: the other columns give way."""
    from rich import box
    from rich.table import Table
    table = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True,
                  title_justify="left")
    cells = [["" if cell is None else str(cell) for cell in row] for row in rows]
    for index, column in enumerate(columns):
        if column in whole:
            longest = max([len(column), *(len(row[index]) for row in cells)])
            table.add_column(column, no_wrap=True, min_width=longest)
        else:
            table.add_column(column, overflow="fold")
    for row in cells:
        table.add_row(*row)
    console().print(table)


def utc_minute(instant: datetime) -> str:
    """An instant in a table: its UTC day and minute (the column's header says UTC)."""
    return instant.astimezone(UTC).strftime("%Y-%m-%d %H:%M")


def period(start: date | str | None, end: date | str | None) -> str:
    """A billing period as every command prints it: its first and its last day, both included
    ("2026-01-31 to 2026-02-27"), as the invoice's own line says it. Stored periods end on the
    next one's first day (exclusive): that day is not part of this one."""
    if start is None or end is None:
        return ""
    first, after = (date.fromisoformat(day) if isinstance(day, str) else day for day in (start, end))
    if isinstance(after, datetime):  # a subscription's period ends at an instant: its day
        after = after.date()
    if isinstance(first, datetime):
        first = first.date()
    return f"{first.isoformat()} to {(after - timedelta(days=1)).isoformat()}"


def money(amount: int, currency: str, locale: str = "en") -> str:
    from renewly.shared.money import Money
    return Money(amount, currency).format(locale)


def echo_wrapped(text: str, indent: int = 4, *, err: bool = False) -> None:
    """One line of output folded to 80 columns, its continuation lines indented."""
    typer.echo(textwrap.fill(text, width=80, subsequent_indent=" " * indent, break_on_hyphens=False,
                             break_long_words=False), err=err)


def write_new_file(path: Path, content: bytes) -> None:
    """Write a file the operator named (a PDF, an e-mail): never over one that exists, which is
    someone's, not Renewly's to replace (one created meanwhile neither: "x"); a name with a line
    break or another control character, which would print as two names, is refused; a file half
    written (a full disk, Ctrl-C) is not left behind."""
    from renewly.shared.errors import InvalidInput
    check_new_file(path)
    try:
        file = open(path, "xb")
    except FileExistsError:
        raise _file_exists(path) from None
    except OSError as error:
        raise InvalidInput(f"cannot write {path}: {error.strerror or error}", code="file_unwritable") from None
    try:
        with file:
            file.write(content)
    except BaseException:
        path.unlink(missing_ok=True)  # ours, half written
        raise


def check_new_file(path: Path) -> None:
    """What `write_new_file` refuses by the name alone, asked before long work (a PDF to render)."""
    from renewly.shared.errors import InvalidInput
    if not str(path).isprintable():
        raise InvalidInput(f"the file name {str(path)!r} holds a control character", code="invalid_file_name")
    if not path.name.strip():
        raise InvalidInput(f"the file name {str(path)!r} is blank", code="invalid_file_name")
    if path.exists() or path.is_symlink():
        raise _file_exists(path)


def _file_exists(path: Path) -> Exception:
    from renewly.shared.errors import InvalidInput
    return InvalidInput(f"{path} exists: Renewly never overwrites a file it did not make; name a new one",
                        code="file_exists")
