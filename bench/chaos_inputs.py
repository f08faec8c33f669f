"""Hostile inputs over every command of the command line, on SQLite and on PostgreSQL (issue 9).

    .venv/bin/python bench/chaos_inputs.py                 # every hostile value of every parameter
    .venv/bin/python bench/chaos_inputs.py --tiny          # 1 per parameter, 1 environment each: tests/test_benches.py
    .venv/bin/python bench/chaos_inputs.py --seed 7 --postgres-url postgresql://postgres@127.0.0.1:5432/postgres

The commands are read from the Typer application (renewly.cli.app), so a new command or option
is tried without a word here. Each parameter gets the hostile values of its kind (integers over 64
bits, negative, zero; text over its column's length, control characters, ANSI escapes, empty;
dates at year 1 and 9999, malformed; expiries, months, files), in a command line that is valid
otherwise; each command also gets a broken environment (configuration and policy files missing,
binary, a directory, invalid; database URLs malformed, unreachable, corrupt, read-only).

The rule each run must hold: success with a sane effect (no control character stored), or exactly
one line on stderr, exit 2, nothing on stdout and nothing changed in the database (every table and
the simulated gateway's ledger, compared before and after). A value marked bad must be refused.
Every case starts from the same database (restored after any change), so the same case on both
engines must end alike. Cases run in this process through `renewly.cli.main()`, and a sample
through the installed `renewly` command. The last line is key=value pairs, for scripts; the exit
code is 1 when anything broke.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
import traceback
import unicodedata
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from sqlalchemy import String, Text, inspect, select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from renewly import cli
from renewly.accounts.accounts import add_member, create_account
from renewly.accounts.contacts import approve_contact, request_contact
from renewly.adapters.db.engine import make_engine, upgrade
from renewly.adapters.db.tables import metadata
from renewly.adapters.gateways.simulated import LEDGER_SCHEMA, ledger_metadata
from renewly.billing.plans import create_plan
from renewly.billing.subscriptions import create_subscription
from renewly.bootstrap import bootstrap
from renewly.cli import common as cli_common
from renewly.config.policy import DEFAULT_POLICY
from renewly.payments.cards import add_card

sys.path.insert(0, str(Path(__file__).resolve().parent))
from renewal import bench_database, bench_settings  # noqa: E402  (a database of our own, as bench/renewal.py)

RENEWLY = Path(sys.executable).with_name("renewly")
START = datetime(2026, 1, 1, tzinfo=UTC)
OWNER, ADMIN, AGENT = "owner@acme.test", "admin@acme.test", "agent@acme.test"
PENDING, CONTACT = "pending@acme.test", "billing@acme.test"
CASE_SECONDS = 60  # a case that takes longer hangs
# Exit 1 is an answer for these (rows parked, a batch failed, a discrepancy), not a refusal.
EXIT_1_ANSWERS = {"run", "renew", "collect", "dunning", "retention", "clock advance", "reconcile"}
READ_ONLY = "env:url-read-only"  # the one case whose answer may differ by engine (see environments())
# Commands the broken-environment cases skip: the demo makes a database of its own.
OWN_DATABASE = {"demo"}

# A valid command line, parameter by parameter (by "command param", else by param); None: left out.
VALID = {
    "account": "1", "subscription": "1", "problem": "1", "number": "2026-000001", "name": "Beta",
    "owner_email": "beta@beta.example", "locale": "en", "timezone_name": "UTC", "currency": "USD", "country": "FR",
    "acting": OWNER, "to": ADMIN, "reason": "asked by the customer", "member": OWNER, "email": "new@acme.test",
    "role": "agent", "plan": "team", "seats": "2", "month": "2026-01", "amount": "100", "interval": "month",
    "price": "4900", "code": "pro", "day": "2026-01-02", "days": "1", "hours": "1", "count": "1", "kind": "decline",
    "topic": "email", "by": ADMIN, "path": str(DEFAULT_POLICY), "line1": "2 Main Street", "line2": "Floor 3",
    "postcode": "75001", "city": "Paris", "vat_id": "FR00123456789",
    "cards add number": "4242424242424242", "cards add exp": "12/2030", "gateway fault code": "insufficient_funds",
    "members remove email": AGENT, "contacts approve email": PENDING, "contacts refuse email": PENDING,
    "contacts remove email": CONTACT, "support reactivate days": "7", "demo database": None,
    # An id, so that a broken environment is met before the command's own refusal of a row not failed.
    "outbox retry row_ids": "1",
}
# Text columns' lengths (src/renewly/adapters/db/tables.py), by the parameter that fills them.
LENGTHS = {"name": 200, "owner_email": 320, "email": 320, "acting": 320, "to": 320, "by": 320, "member": 320,
           "code": 63, "plan": 63, "line1": 200, "line2": 200, "postcode": 32, "city": 100, "country": 2,
           "vat_id": 32, "currency": 3, "locale": 8, "timezone_name": 64, "interval": 8, "role": 8, "number": 32,
           "topic": 64, "kind": 32, "gateway fault code": 64, "token": 255, "reason": 2000}
EMAILS = {"owner_email", "email", "acting", "to", "by", "member"}
DATES = {"day", "start", "as_of"}
ACCEPTED_WITH_FLAGS = {"ten-years-ago", "tomorrow"}  # a backdated start ten years ago is one catch-up invoice
# An account starts with a name and a country: its address lines, postcode, city, VAT number may be empty.
EMPTY_ALLOWED = {"line1", "line2", "postcode", "city", "vat_id"}
FILTERS = {"invoices list account", "payments list account", "outbox list account", "outbox list topic"}


@dataclass(frozen=True)
class Value:
    label: str
    text: str | None  # None: the option is left out
    bad: bool  # must be refused; otherwise either answer is right
    in_argv: bool = True  # a real process cannot take it (a NUL byte)


@dataclass
class Case:
    key: str  # the same on both engines
    command: tuple[str, ...]
    argv: list[str]
    bad: bool
    environment: dict[str, str] = field(default_factory=dict)
    watched_file: Path | None = None  # a file the command must leave alone when it refuses
    in_argv: bool = True


@dataclass
class Counts:
    tried: int = 0
    held: int = 0
    tracebacks: int = 0
    silently_accepted: int = 0
    multiline_errors: int = 0
    changed_on_refusal: int = 0
    other_exits: int = 0
    hangs: int = 0
    subprocesses: int = 0
    runner_disagreements: int = 0
    findings: list[str] = field(default_factory=list)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tiny", action="store_true", help="1 hostile value per parameter, 1 broken environment "
                                                            "per command, 2 real processes per engine")
    parser.add_argument("--seed", type=int, default=None, help="default: from the clock (printed)")
    parser.add_argument("--per-param", type=int, default=None, help="hostile values per parameter (default: all)")
    parser.add_argument("--subprocesses", type=int, default=None, help="cases also run as real processes, per "
                                                                       "engine (default 24; --tiny 2)")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres",
                        help="a server where the bench may create and drop databases")
    parser.add_argument("--no-postgres", action="store_true", help="SQLite only")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else int(time.time()) % 100_000
    per_param = args.per_param or (1 if args.tiny else None)
    per_environment = 1 if args.tiny else None
    subprocesses = args.subprocesses if args.subprocesses is not None else (2 if args.tiny else 24)
    started = time.perf_counter()

    with tempfile.TemporaryDirectory(prefix="renewly-chaos-inputs-") as folder:
        files = HostileFiles(Path(folder))
        cases = build_cases(files, random.Random(seed), per_param, per_environment)
        outcomes: dict[str, dict[str, str]] = {}
        counts: dict[str, Counts] = {}
        engines = ["sqlite"] + ([] if args.no_postgres else ["postgresql"])
        for engine in engines:
            with engine_database(engine, Path(folder), args.postgres_url) as database:
                counts[engine], outcomes[engine] = run_cases(database, cases, files, random.Random(seed),
                                                             subprocesses)
    disagreements = [key for key in outcomes.get("sqlite", {}) if len(engines) == 2 and not key.endswith(READ_ONLY)
                     and outcomes["sqlite"][key] != outcomes["postgresql"].get(key)]
    report(counts, cases, disagreements, outcomes, seed, per_param, time.perf_counter() - started)
    broken = sum(c.tried - c.held for c in counts.values()) + len(disagreements)
    sys.exit(1 if broken else 0)


# -- the cases ----------------------------------------------------------------------------------

def commands(flags: bool = False) -> list[tuple[tuple[str, ...], list]]:
    """Every command of the application with its parameters (or its flags), read from Typer."""
    import typer.main

    found = []

    def walk(command, path: tuple[str, ...]) -> None:
        if hasattr(command, "commands"):
            for name, sub in sorted(command.commands.items()):
                walk(sub, (*path, name))
        else:
            found.append((path, [p for p in command.params if getattr(p, "is_flag", False) == flags]))

    walk(typer.main.get_command(cli.app), ())
    return found


def valid_value(command: tuple[str, ...], name: str) -> str | None:
    return VALID.get(f"{' '.join(command)} {name}", VALID.get(name))


def hostile_values(command: tuple[str, ...], param, files: HostileFiles) -> list[Value]:
    """The hostile values of one parameter, by its type and name."""
    name, where = param.name, f"{' '.join(command)} {param.name}"
    filter_ = where in FILTERS
    if param.bare_type() is int:
        is_id = name in ("account", "subscription", "problem") and not filter_
        values = [Value("over-64-bits", str(2**64), not filter_), Value("far-over-64-bits", "9" * 30, not filter_),
                  Value("int64-max", str(2**63 - 1), not filter_), Value("over-int32", str(2**31), not filter_),
                  Value("negative", "-1", not filter_), Value("zero", "0", is_id),
                  Value("not-a-number", "1e3", True), Value("empty", "", True)]
        if is_id:
            values.append(Value("unknown-id", "999", True))
        return values
    if command == ("demo",):
        return [Value("a-directory", str(files.directory), True), Value("not-a-demo-file", str(files.text), True),
                Value("binary-file", str(files.binary), True), Value("missing-folder", "/nonexistent/x/demo.db", True),
                Value("empty", "", True)]
    if name == "path":
        return [Value(label, str(path), True) for label, path in files.policies().items()]
    if name in DATES:
        future_is_bad = name in ("day", "as_of")
        return [Value("year-1", "0001-01-01", name in ("day", "start")), Value("year-9999", "9999-12-31", True),
                Value("year-99999", "99999-01-01", True), Value("feb-30", "2026-02-30", True),
                Value("no-zero-padding", "2026-1-1", name != "as_of"), Value("words", "yesterday", True),
                Value("empty", "", True), Value("hour-25", "2026-01-01T25:00", True),
                Value("tomorrow", "2026-01-02", future_is_bad and name == "as_of"),
                Value("a-century-ago", "1926-01-01", True), Value("ten-years-ago", "2016-01-31", name != "as_of")]
    if name == "exp":
        return [Value("year-99999", "12/99999", True), Value("month-13", "13/2030", True),
                Value("month-0", "00/2030", True), Value("expired", "12/2020", True), Value("empty", "", True),
                Value("two-digit-year", "12/30", False), Value("huge-month", "9" * 30 + "/2030", True),
                Value("no-slash", "122030", True)]
    if name == "month":
        return [Value("month-13", "2026-13", True), Value("month-0", "2026-00", True),
                Value("year-0", "0000-01", True), Value("over-64-bits", "9" * 30 + "-01", True),
                Value("a-date", "2026-01-01", True), Value("empty", "", True), Value("year-9999", "9999-12", False)]
    base = valid_value(command, name) or "x"
    length = LENGTHS.get(where, LENGTHS.get(name))
    bad_text = not filter_
    # A reason may hold line breaks (domain/accounts.py): not a hostile value there.
    bell = base.replace("@", "\x07@", 1) if "@" in base else base + "\x07"  # an e-mail stays one
    values = [Value("ansi-escape", base + "\x1b[2J\x1b[31m", bad_text), Value("bell", bell, bad_text),
              Value("line-break", base + "\nX", bad_text and name != "reason"),
              Value("nul", base + "\x00", bad_text, in_argv=False),
              Value("c1-control", base + "\x9b31m", bad_text),
              Value("empty", "", bad_text and name not in EMPTY_ALLOWED),
              Value("blank", "   ", bad_text and name not in EMPTY_ALLOWED),
              Value("unicode", "Ünïcødé 名前 🎉", False)]
    if length is not None:
        values.append(Value(f"over-{length}-chars", stretched(base, length + 1, name), bad_text))
    values.append(Value("100k-chars", stretched(base, 100_000, name), bad_text and length is not None))
    return values


def stretched(base: str, size: int, name: str) -> str:
    """A value of `size` characters still shaped as its kind (an e-mail stays an e-mail)."""
    if name in EMAILS:
        domain = "@acme.test"
        return "a" * (size - len(domain)) + domain
    return (base * (size // max(len(base), 1) + 1))[:size - 1] + "x"  # no space at the end, trimmed away


class HostileFiles:
    """Files an operator may name by mistake: each made once, in the bench's folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.directory = folder / "a-directory"
        self.directory.mkdir()
        self.binary = folder / "binary.bin"
        self.binary.write_bytes(bytes(range(256)) * 4)
        self.text = folder / "notes.txt"
        self.text.write_text("an operator's notes, not a database\n")
        self.corrupt = folder / "corrupt.db"
        self.corrupt.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4096)
        self.missing = folder / "missing" / "file.toml"
        self.empty = folder / "empty.toml"
        self.empty.write_text("")

    def written(self, name: str, text: str) -> Path:
        path = self.folder / name
        path.write_text(text, encoding="utf-8")
        return path

    def policies(self) -> dict[str, Path]:
        default = DEFAULT_POLICY.read_text(encoding="utf-8")

        def email_named(name: str) -> str:  # the first step's e-mail, which names its templates
            return default.replace('email = "payment_failed_1"', f'email = "{name}"', 1)

        # Texts live in templates now (docs/texts.md): a policy that still holds them, or names an
        # e-mail no template pair has, or a path for a name, is refused at start.
        inline = '\n[templates.payment_failed_1.en]\nsubject = "{bogus}"\nbody = "charge {amount:d}"\n'
        return {"missing": self.missing, "directory": self.directory, "binary": self.binary, "empty": self.empty,
                "not-toml": self.text,
                "inline-templates": self.written("policy-inline.toml", default + inline),
                "unknown-email": self.written("policy-email.toml", email_named("no_such_email")),
                "email-path": self.written("policy-email-path.toml", email_named("../../../etc/passwd")),
                "day-3000000": self.written("policy-day.toml", replace_first_day(default, "3000000")),
                "day-over-64-bits": self.written("policy-day-64.toml", replace_first_day(default, str(2**64)))}

    def configurations(self) -> dict[str, Path]:
        return {"missing": self.missing, "directory": self.directory, "binary": self.binary, "not-toml": self.text,
                "chunk-over-64-bits": self.written("config-chunk.toml", f"[batches]\nchunk_size = {2**70}\n"),
                "unknown-key": self.written("config-unknown.toml", "colour = 'blue'\n"),
                "tax-rate-150": self.written("config-tax.toml", "[tax_rates]\nFR = '150'\n")}


def replace_first_day(policy: str, day: str) -> str:
    lines = policy.splitlines()
    for n, line in enumerate(lines):
        if line.strip().startswith("day =") and line.split("=")[1].strip() != "0":
            lines[n] = f"day = {day}"
            break
    return "\n".join(lines) + "\n"


def environments(files: HostileFiles) -> list[tuple[str, dict[str, str], bool]]:
    """Broken environments: (label, variables, must be refused). The database URLs that depend on
    the engine are filled in when the case runs ({database} and {read_only})."""
    found = [(f"config-{label}", {"RENEWLY_CONFIG_FILE": str(path)}, True)
             for label, path in files.configurations().items()]
    found += [(f"policy-{label}", {"RENEWLY_POLICY_FILE": str(path)}, True) for label, path in files.policies().items()]
    found += [("url-malformed", {"RENEWLY_DATABASE_URL": "foo"}, True),
              ("url-empty", {"RENEWLY_DATABASE_URL": ""}, True),
              ("url-unreachable", {"RENEWLY_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/renewly"}, True),
              ("url-missing-folder", {"RENEWLY_DATABASE_URL": "sqlite:////nonexistent/folder/renewly.db"}, True),
              ("url-corrupt-file", {"RENEWLY_DATABASE_URL": f"sqlite:///{files.corrupt}"}, True),
              ("url-a-directory", {"RENEWLY_DATABASE_URL": f"sqlite:///{files.directory}"}, True),
              # Either answer is right, and the engines differ: SQLite lets a batch with nothing to
            # do finish read-only, PostgreSQL refuses the locks it takes first (not compared).
            ("url-read-only", {"RENEWLY_DATABASE_URL": "{read_only}"}, False),
              ("clock-unknown", {"RENEWLY_CLOCK": "moon"}, True),
              ("latency-over-64-bits", {"RENEWLY_PAYMENTS__SIMULATOR_LATENCY_MS": str(2**64)}, True)]
    return found


def build_cases(files: HostileFiles, rng: random.Random, per_param: int | None,
                per_environment: int | None) -> list[Case]:
    cases = []
    broken = environments(files)
    flags = {command: [p.opts[0] for p in flags_of if p.opts[0] not in ("--json", "--batches")]
             for command, flags_of in commands(flags=True)}
    for command, params in commands():
        valid = {p.name: valid_value(command, p.name) for p in params}
        name = " ".join(command)
        for param in params:
            values = hostile_values(command, param, files)
            if per_param is not None:
                values = rng.sample(values, min(per_param, len(values)))
            for value in values:
                line = {**valid, param.name: value.text}
                watched = Path(value.text) if command == ("demo",) and value.text else None
                cases.append(Case(f"{name} {param.name}={value.label}", command, argv(command, params, line),
                                  value.bad, watched_file=watched, in_argv=value.in_argv))
                if param.name in DATES and flags.get(command):  # --backdate changes what a start may be
                    cases.append(Case(f"{name} {param.name}={value.label}+{'+'.join(flags[command])}", command,
                                      argv(command, params, line) + flags[command],
                                      value.label not in ACCEPTED_WITH_FLAGS, in_argv=value.in_argv))
        if command == ("demo",) or None in [valid[p.name] for p in params if p.required]:
            continue
        chosen = broken if per_environment is None else rng.sample(broken, per_environment)
        for label, variables, bad in chosen:
            if name == "serve" and label == READ_ONLY.removeprefix("env:"):
                continue  # a server that can read its database serves until it is stopped: no answer comes
            # `policy check FILE` reads the file it is given; `policy show`, the policy file alone.
            bad = bad and not (name == "policy check" or (name == "policy show" and not label.startswith("policy-")))
            cases.append(Case(f"{name} env:{label}", command, argv(command, params, valid), bad, dict(variables)))
    return cases


def argv(command: tuple[str, ...], params: list, values: dict[str, str | None]) -> list[str]:
    """The command line as an operator types it (a negative id stays where it is: the parser
    takes it for an option, and says so)."""
    line = list(command)
    for param in params:
        value = values.get(param.name)
        if value is not None:
            line += [value] if param.param_type_name == "argument" else [param.opts[0], value]
    return line


# -- the databases --------------------------------------------------------------------------------

class Database:
    """The working database of one engine, its seeded baseline, and how to restore it."""

    engine_name: str
    url: str

    def restore(self) -> None: ...

    def read_only_url(self) -> str: ...

    def checksum(self) -> str:
        """Every row of every table, and of the simulated gateway's ledger. A server short of
        memory for a moment (other runs share it) is asked again, not counted."""
        return patiently(self._checksum, self.close)

    def _checksum(self) -> str:
        digest = hashlib.sha256()
        for engine, tables in self._dumped():
            with engine.connect() as conn:
                for table in tables:
                    rows = conn.execute(select(table).order_by(*table.primary_key.columns or table.columns)).all()
                    digest.update(f"{table.name}:{rows!r}".encode())
        return digest.hexdigest()

    def _dumped(self) -> list:
        """(engine, tables) to dump: Renewly's, and the ledger's that exist (made on first use);
        kept open from one case to the next, closed before each restore."""
        if not getattr(self, "_engines", None):
            ledger = make_engine(self.ledger_url())
            if ledger.dialect.name == "postgresql":
                ledger = ledger.execution_options(schema_translate_map={None: LEDGER_SCHEMA})
                present = set(inspect(ledger).get_table_names(schema=LEDGER_SCHEMA))
            else:
                present = set(inspect(ledger).get_table_names())
            self._engines = [(make_engine(self.url), metadata.sorted_tables),
                             (ledger, [t for t in ledger_metadata.sorted_tables if t.name in present])]
        return self._engines

    def close(self) -> None:
        for engine, _ in getattr(self, "_engines", None) or []:
            engine.dispose()
        self._engines = []

    def ledger_url(self) -> str:
        return self.url

    def stored_control_characters(self) -> list[str]:
        """Text columns holding a control character: an accepted input that should not have been."""
        found = []
        engine = self._dumped()[0][0]
        with engine.connect() as conn:
            for table in metadata.sorted_tables:
                for column in table.columns:
                    if isinstance(column.type, String):
                        # A reason or a description (Text) may hold line breaks, as the domain allows.
                        allowed = "\n" if isinstance(column.type, Text) else ""
                        for (value,) in conn.execute(select(column).where(column.is_not(None))):
                            if isinstance(value, str) and any(is_control(ch) and ch not in allowed for ch in value):
                                found.append(f"{table.name}.{column.name}={value[:30]!r}")
        return found


def is_control(character: str) -> bool:
    """As the domain's rule (domain/accounts.py): any Unicode control or format character."""
    return unicodedata.category(character).startswith("C")


def patiently(act, after_failure=lambda: None, tries: int = 10):
    """`act()`, asked again while the server says no for a moment (too many clients, short of
    memory: other runs share it); such a moment is no finding."""
    for attempt in range(tries):
        try:
            return act()
        except (OperationalError, psycopg.OperationalError):
            if attempt == tries - 1:
                raise
            after_failure()
            time.sleep(3)


class SqliteDatabase(Database):
    engine_name = "sqlite"

    def __init__(self, folder: Path) -> None:
        self.base = folder / "base" / "renewly.db"
        self.work = folder / "work" / "renewly.db"
        self.base.parent.mkdir(parents=True)
        self.work.parent.mkdir(parents=True)
        self.url = f"sqlite:///{self.work}"
        seed_baseline(f"sqlite:///{self.base}")
        self.restore()

    def ledger_url(self) -> str:
        return bench_settings(database_url=self.url).simulator_url()

    def restore(self) -> None:
        self.close()
        for path in self.work.parent.iterdir():
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
        for path in self.base.parent.iterdir():
            shutil.copy2(path, self.work.parent / path.name)

    def read_only_url(self) -> str:
        return f"sqlite:///file:{self.work}?mode=ro&uri=true"


class PostgresDatabase(Database):
    engine_name = "postgresql"

    def __init__(self, base_url: str, admin_url: str) -> None:
        self.base_url = make_url(base_url)
        self.admin_url = make_url(admin_url).set(drivername="postgresql").render_as_string(False)
        self.admin = None
        self.work_name = f"{self.base_url.database}_work"
        self.url = self.base_url.set(database=self.work_name).render_as_string(False)
        seed_baseline(base_url)
        self.restore()

    def administer(self, *statements: str) -> None:
        """Statements on a connection of our own to the server, made again if it was lost."""
        def run() -> None:
            if self.admin is None or self.admin.closed:
                self.admin = psycopg.connect(self.admin_url, autocommit=True)
            for statement in statements:
                self.admin.execute(statement)

        patiently(run, lambda: setattr(self, "admin", None))

    def restore(self) -> None:
        super().close()
        self.administer(f'DROP DATABASE IF EXISTS "{self.work_name}" WITH (FORCE)',
                        f'CREATE DATABASE "{self.work_name}" TEMPLATE "{self.base_url.database}"')

    def read_only_url(self) -> str:
        return f"{self.url}?options=-c%20default_transaction_read_only%3Don"

    def close(self) -> None:
        super().close()
        self.administer(f'DROP DATABASE IF EXISTS "{self.work_name}" WITH (FORCE)')
        self.admin.close()


@contextlib.contextmanager
def engine_database(engine: str, folder: Path, admin_url: str):
    if engine == "sqlite":
        database = SqliteDatabase(folder / "sqlite")
        try:
            yield database
        finally:
            database.close()
        return
    with bench_database(admin_url, "inputs") as url:
        database = PostgresDatabase(url, admin_url)
        try:
            yield database
        finally:
            database.close()


def seed_baseline(url: str) -> None:
    """Account 1 (Acme: owner, admin, agent, a card, an active and a pending billing contact),
    plan team, subscription 1 with its invoice 2026-000001; the test clock on 2026-01-01."""
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    app = bootstrap(bench_settings(database_url=url, clock="test"))
    try:
        app.test_clock.set(START)
        actor = "bench:chaos-inputs"
        create_plan(app, code="team", name="Team", interval="month", price=1900, currency="USD", actor=actor)
        account = create_account(app, name="Acme", owner_email=OWNER, locale="en", timezone="UTC", currency="USD",
                                 country="FR", actor=actor)
        add_member(app, account, email=ADMIN, role="admin", actor=actor)
        add_member(app, account, email=AGENT, role="agent", actor=actor)
        add_card(app, account, card_token=app.gateway.tokenize("4242424242424242", 12, 2035), acting_email=OWNER)
        create_subscription(app, account, plan_code="team", seats=3, start=None, actor=actor)
        request_contact(app, account, email=CONTACT, requested_by=ADMIN)
        approve_contact(app, account, email=CONTACT, acting_email=OWNER)
        request_contact(app, account, email=PENDING, requested_by=ADMIN)
    finally:
        app.engine.dispose()
        if "gateway" in app.__dict__:
            app.gateway.dispose()


# -- running a case -------------------------------------------------------------------------------

@dataclass
class Outcome:
    code: int | None
    out: str
    err: str
    traceback: str = ""


class Hang(Exception):
    pass


def run_in_process(argv_: list[str], environment: dict[str, str], cwd: Path) -> Outcome:
    """`renewly ARGV` through cli.main(), as the console script runs it; each engine it opens is
    closed afterwards, as a process's would be."""
    opened = []
    real_bootstrap = cli_common.bootstrap

    def tracked(*args, **kwargs):
        opened.append(real_bootstrap(*args, **kwargs))
        return opened[-1]

    out, err = io.StringIO(), io.StringIO()
    saved_environ, saved_argv, saved_cwd = dict(os.environ), sys.argv, os.getcwd()
    os.environ.update(environment)
    sys.argv = ["renewly", *argv_]
    cli_common.bootstrap = tracked
    previous = signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(CASE_SECONDS)
    os.chdir(cwd)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            cli.main()
        code, trace = 0, ""
    except SystemExit as exited:
        code, trace = exited.code if isinstance(exited.code, int) else (0 if exited.code is None else 1), ""
    except Hang:
        code, trace = None, "hang"
    except BaseException:  # noqa: BLE001  (what escapes main() is the finding)
        code, trace = None, traceback.format_exc()
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        os.chdir(saved_cwd)
        cli_common.bootstrap = real_bootstrap
        sys.argv = saved_argv
        os.environ.clear()
        os.environ.update(saved_environ)
        for application in opened:
            application.engine.dispose()
            if "gateway" in application.__dict__:
                with contextlib.suppress(Exception):
                    application.gateway.dispose()
    return Outcome(code, out.getvalue(), err.getvalue(), trace)


def _alarm(*_):
    raise Hang()


def run_in_subprocess(argv_: list[str], environment: dict[str, str], cwd: Path) -> Outcome:
    try:
        done = subprocess.run([str(RENEWLY), *argv_], env={**os.environ, **environment}, cwd=cwd,
                              capture_output=True, text=True, timeout=CASE_SECONDS, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return Outcome(None, "", "", "hang")
    return Outcome(done.returncode, done.stdout, done.stderr)


def built_once() -> None:
    """Typer builds the command tree from the functions' signatures at each call (90 ms, a third
    of a case): built once here, the same tree each time."""
    import typer.main

    build = typer.main.get_command
    if getattr(build, "built_once", False):
        return
    built = {}

    def get_command(typer_instance):
        if id(typer_instance) not in built:
            built[id(typer_instance)] = build(typer_instance)
        return built[id(typer_instance)]

    get_command.built_once = True
    typer.main.get_command = get_command


def run_cases(database: Database, cases: list[Case], files: HostileFiles, rng: random.Random,
              subprocesses: int) -> tuple[Counts, dict[str, str]]:
    built_once()
    counts, outcomes = Counts(), {}
    baseline = database.checksum()
    cwd = files.folder / f"cwd-{database.engine_name}"
    cwd.mkdir()
    environment = {"RENEWLY_DATABASE_URL": database.url, "RENEWLY_CLOCK": "test", "RENEWLY_ACTOR": "bench:chaos",
                   "COLUMNS": "80"}
    # Nothing of the operator's shell: a RENEWLY_* variable of theirs would change every case.
    for name in [name for name in os.environ if name.startswith("RENEWLY_")]:
        del os.environ[name]
    sampled = {case.key for case in rng.sample([c for c in cases if c.in_argv], min(subprocesses, len(cases)))}
    for case in cases:
        variables = {**environment, **{name: value.format(database=database.url, read_only=database.read_only_url())
                                       for name, value in case.environment.items()}}
        runners = [("in-process", run_in_process)] + ([("process", run_in_subprocess)] if case.key in sampled else [])
        classes = []
        for runner_name, runner in runners:
            watched = file_digest(case.watched_file)
            outcome = runner(case.argv, variables, cwd)
            after = database.checksum()
            verdict = judge(case, outcome, after != baseline or file_digest(case.watched_file) != watched, database)
            counts.tried += 1
            counts.subprocesses += runner_name == "process"
            classes.append(outcome_class(case, outcome))
            if verdict is None:
                counts.held += 1
            else:
                kind, detail = verdict
                setattr(counts, kind, getattr(counts, kind) + 1)
                counts.findings.append(f"{database.engine_name} {runner_name}: {case.key}: {kind}: {detail}")
                print(fit(f"found: {counts.findings[-1]}"), file=sys.stderr, flush=True)
            if counts.tried % 200 == 0:
                print(f"{database.engine_name}: {counts.tried} tried, {counts.held} held", file=sys.stderr, flush=True)
            if after != baseline:
                database.restore()
        if len(set(classes)) > 1:
            counts.runner_disagreements += 1
            counts.findings.append(f"{database.engine_name}: {case.key}: in-process {classes[0]}, "
                                   f"process {classes[1]}")
        outcomes[case.key] = classes[0]
    return counts, outcomes


def file_digest(path: Path | None) -> str | None:
    if path is None or not path.is_file():
        return None if path is None else str(path.exists())
    return hashlib.sha256(path.read_bytes()).hexdigest()


def outcome_class(case: Case, outcome: Outcome) -> str:
    if outcome.code == 2:
        return "refused"
    if outcome.code == 0 or (outcome.code == 1 and " ".join(case.command) in EXIT_1_ANSWERS):
        return "accepted"
    return f"exit {outcome.code}"


def judge(case: Case, outcome: Outcome, changed: bool, database: Database) -> tuple[str, str] | None:
    """None when the rule held; else (the count it breaks, a short why)."""
    if outcome.traceback == "hang":
        return "hangs", f"no answer in {CASE_SECONDS} s"
    if outcome.traceback or "Traceback (most recent call last)" in outcome.err:
        last = (outcome.traceback or outcome.err).strip().splitlines()[-1]
        return "tracebacks", last
    kind = outcome_class(case, outcome)
    if kind == "refused":
        lines = outcome.err.splitlines()
        if len(lines) != 1 or not outcome.err.endswith("\n") or outcome.out:
            return "multiline_errors", f"{len(lines)} line(s) on stderr, {len(outcome.out)} char(s) on stdout: " \
                                       f"{outcome.err.strip()[:60]!r}"
        if changed:
            return "changed_on_refusal", outcome.err.strip()
        return None
    if kind == "accepted":
        if case.bad:
            return "silently_accepted", f"exit {outcome.code}: {(outcome.out or outcome.err).strip()[:60]!r}"
        stored = database.stored_control_characters() if changed else []
        if stored:
            return "silently_accepted", f"stored {stored[0]}"
        return None
    return "other_exits", f"exit {outcome.code}: {outcome.err.strip()[:60]!r}"


# -- the report -----------------------------------------------------------------------------------

COUNTED = ("tried", "held", "tracebacks", "silently_accepted", "multiline_errors", "changed_on_refusal",
           "other_exits", "hangs", "subprocesses", "runner_disagreements")


def report(counts: dict[str, Counts], cases: list[Case], disagreements: list[str], outcomes, seed: int,
           per_param: int | None, seconds: float) -> None:
    engines = list(counts)
    commands_tried = len({case.command for case in cases})
    print(f"Hostile inputs: {len(cases)} cases over {commands_tried} commands, seed {seed}")
    print(f"{'':24}" + "".join(f"{engine:>12}" for engine in engines))
    for name in COUNTED:
        print(f"{name.replace('_', ' '):24}" + "".join(f"{getattr(counts[e], name):>12,}" for e in engines))
    print(f"{'engine disagreements':24}{len(disagreements):>12,}")
    findings = [finding for e in engines for finding in counts[e].findings]
    findings += [f"engines disagree: {key}: " + ", ".join(f"{e} {outcomes[e].get(key)}" for e in engines)
                 for key in disagreements]
    if findings:
        print(f"{len(findings)} finding(s):")
        for finding in findings[:60]:
            print(fit(f"  {finding}"))
        if len(findings) > 60:
            print(f"  ... and {len(findings) - 60} more")
    total = {name: sum(getattr(counts[e], name) for e in engines) for name in COUNTED}
    figures = {**total, "engine_disagreements": len(disagreements), "engines": len(engines), "cases": len(cases),
               "commands": commands_tried, "per_param": per_param or 0, "seed": seed, "seconds": round(seconds, 1)}
    print(" ".join(f"{key}={value}" for key, value in figures.items()))


def fit(line: str) -> str:
    """A finding folded to 80 columns, what it quotes made printable."""
    line = "".join(ch if ch.isprintable() else repr(ch)[1:-1] for ch in line)
    return textwrap.fill(line, width=80, subsequent_indent="      ", break_long_words=True)


if __name__ == "__main__":
    main()
