"""Every test that touches storage runs on SQLite and on PostgreSQL.

PostgreSQL: a database of its own per test session on $RENEWLY_TEST_POSTGRES_URL's server
(default postgresql://postgres@127.0.0.1:5432/test), emptied before each test. Where no
PostgreSQL answers, its half is skipped, unless RENEWLY_TEST_REQUIRE_POSTGRES=1 (set by
.ci/run) turns the skip into a failure.
"""

from __future__ import annotations

import os
import shutil
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url

from renewly import cli
from renewly.adapters.db.engine import make_engine, upgrade
from renewly.adapters.db.tables import metadata
from renewly.adapters.gateways.simulated import LEDGER_SCHEMA
from renewly.bootstrap import App, bootstrap
from renewly.config.settings import load_settings
from tests.builders import Outcome

START = datetime(2026, 1, 1, tzinfo=UTC)
ADMIN_URL = os.environ.get("RENEWLY_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
REQUIRE_POSTGRES = os.environ.get("RENEWLY_TEST_REQUIRE_POSTGRES") == "1"
QUEUE_TABLES = ("worker_queues", "worker_helper_reports", "procrastinate_events", "procrastinate_periodic_defers",
                "procrastinate_jobs", "procrastinate_workers")


@pytest.fixture(autouse=True)
def _no_operator_environment(monkeypatch):
    """Settings from the developer's shell (RENEWLY_DATABASE_URL, ...) must not leak into tests."""
    for name in list(os.environ):
        if name.startswith("RENEWLY_") and not name.startswith("RENEWLY_TEST_"):
            monkeypatch.delenv(name)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("template") / "renewly.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    return path


# Debian's Chromium, which the browser tests and `make screenshots` drive with Playwright (its own
# browser download is never used here).
CHROMIUM = Path("/usr/bin/chromium")


def require_chromium() -> Path:
    """Debian's Chromium; without it the test is skipped with the reason, only where PostgreSQL is
    not required either (a developer's machine): CI, whose switch for "nothing skipped" that is,
    fails instead (.ci/run installs Chromium)."""
    if not CHROMIUM.exists():
        reason = f"no Chromium at {CHROMIUM} (apt-get install chromium)"
        if REQUIRE_POSTGRES:
            pytest.fail(f"{reason}: required in CI (.ci/run installs it)")
        pytest.skip(reason)
    return CHROMIUM


def admin_connection() -> psycopg.Connection:
    """An autocommit connection to the test server; without one, the test is skipped with the
    reason, or fails when RENEWLY_TEST_REQUIRE_POSTGRES=1."""
    try:
        return psycopg.connect(make_url(ADMIN_URL).set(drivername="postgresql").render_as_string(False),
                               autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as error:
        reason = f"no PostgreSQL at {ADMIN_URL}: {str(error).strip().splitlines()[0]}"
        if REQUIRE_POSTGRES:
            pytest.fail(f"{reason} (RENEWLY_TEST_REQUIRE_POSTGRES=1)")
        pytest.skip(reason)


def drop_connection(pid: int) -> None:
    """What a restart of the server does to a pooled connection."""
    with admin_connection() as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()[0]


def drop_the_pool(engine, size: int = 3) -> set[int]:
    """Fill the engine's pool with `size` connections, then have the server drop them all."""
    held = [engine.connect() for _ in range(size)]
    pids = {conn.execute(text("SELECT pg_backend_pid()")).scalar_one() for conn in held}
    for conn in held:
        conn.close()
    for pid in pids:
        drop_connection(pid)
    return pids


@pytest.fixture(scope="session")
def postgres_url():
    # One database per session, so one per xdist worker (`make test` runs two, gw0 and gw1),
    # named after its worker for whoever looks at the server; the random part keeps apart the
    # sessions of other checkouts on the same server.
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"renewly_test_{worker}_{uuid.uuid4().hex[:10]}"
    admin = admin_connection()
    admin.execute(f'CREATE DATABASE "{name}"')
    url = make_url(ADMIN_URL).set(drivername="postgresql+psycopg", database=name).render_as_string(False)
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    yield url
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


@pytest.fixture(scope="session")
def postgres_reset(postgres_url):
    """Empty every table and restart every sequence. DELETE on these small tables is ten times
    faster than TRUNCATE; replica mode lets it past the append-only audit log's trigger. A
    simulated gateway's ledger kept in the database (no payments.simulator_url) goes too."""
    engine = make_engine(postgres_url)
    with engine.connect() as conn:
        sequences = conn.execute(text("SELECT sequence_name FROM information_schema.sequences "
                                      "WHERE sequence_schema = 'public'")).scalars().all()
    quote = engine.dialect.identifier_preparer.quote
    # The job queue of `renewly worker` (migration 0014): procrastinate's tables, and the reports
    # of a tick's helpers; a test's workers are gone by now.
    tables = [quote(table.name) for table in reversed(metadata.sorted_tables)] + list(QUEUE_TABLES)
    # All of it in one round trip to the server (a statement each took three times as long, some
    # 70 ms a test under load; a database copied from a template, 185 ms).
    statements = ";\n".join(["SET LOCAL session_replication_role = replica",
                             *(f"DELETE FROM {table}" for table in tables),
                             *(f"ALTER SEQUENCE {quote(sequence)} RESTART" for sequence in sequences),
                             f"DROP SCHEMA IF EXISTS {LEDGER_SCHEMA} CASCADE"])

    def reset() -> None:
        with engine.begin() as conn:
            conn.exec_driver_sql(statements)

    yield reset
    engine.dispose()


class Databases:
    """Fresh, migrated databases of either kind, as many as a test (or a hypothesis run) needs."""

    def __init__(self, request, tmp_path: Path, sqlite_template: Path) -> None:
        self._request, self._tmp, self._template = request, tmp_path, sqlite_template
        self._engines = []

    def fresh_url(self, kind: str) -> str:
        if kind == "sqlite":
            path = self._tmp / f"renewly-{uuid.uuid4().hex[:8]}.db"
            shutil.copyfile(self._template, path)
            return f"sqlite:///{path}"
        url = self._request.getfixturevalue("postgres_url")
        self._request.getfixturevalue("postgres_reset")()
        return url

    def fresh_app(self, kind: str, start: datetime = START, **settings) -> App:
        # Each app gets its own simulated gateway ledger, as each test has its own database.
        payments = {"simulator_url": f"sqlite:///{self._tmp}/gateway-{uuid.uuid4().hex[:8]}.db",
                    **settings.pop("payments", {})}
        application = bootstrap(load_settings(config_file=None, database_url=self.fresh_url(kind), clock="test",
                                              payments=payments, **settings))
        application.test_clock.set(start)
        self._engines.append(application.engine)
        return application

    def dispose(self) -> None:
        for engine in self._engines:
            engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_kind(request) -> str:
    return request.param


@pytest.fixture
def databases(request, tmp_path, sqlite_template):
    found = Databases(request, tmp_path, sqlite_template)
    yield found
    found.dispose()


@pytest.fixture
def app(databases, db_kind) -> App:
    """A migrated, empty database of the parametrized kind, with a test clock on 2026-01-01 UTC."""
    return databases.fresh_app(db_kind)


@pytest.fixture
def pg_app(databases) -> App:
    return databases.fresh_app("postgresql")


@pytest.fixture
def cheap_argon2(monkeypatch):
    """Staff passwords hashed with Argon2id's cheapest parameters (argon2-cffi's profile for
    tests): the real ones take most of a second a hash on a loaded machine."""
    from argon2 import profiles
    monkeypatch.setattr("renewly.console.staff.PARAMETERS", profiles.CHEAPEST)


@pytest.fixture
def smtp():
    """A real SMTP server on loopback, running for the test (tests/mail, tests/cli)."""
    from tests.mail.smtp_server import SmtpServer

    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def receiver():
    """A real HTTP server on loopback receiving webhooks: it answers 200 until a test tells it
    otherwise (tests/webhooks, tests/web, tests/cli)."""
    from tests.webhooks.receiver import Receiver

    server = Receiver().start()
    yield server
    server.stop()


@pytest.fixture
def cli_environment(app, tmp_path, monkeypatch) -> dict[str, str]:
    """What an operator's shell would hold: the test's database, gateway ledger and test clock."""
    monkeypatch.chdir(tmp_path)
    variables = {"RENEWLY_DATABASE_URL": app.settings.database_url, "RENEWLY_CLOCK": "test",
                 "RENEWLY_PAYMENTS__SIMULATOR_URL": app.settings.simulator_url(), "RENEWLY_ACTOR": "test:cli"}
    for name, value in variables.items():
        monkeypatch.setenv(name, value)
    return variables


@pytest.fixture
def renewly(cli_environment, monkeypatch, capsys):
    """Run `renewly ARGS...` in this process through the real entry point, `cli.main()`."""
    opened = []

    def tracked_bootstrap(*args, **kwargs):
        opened.append(bootstrap(*args, **kwargs))
        return opened[-1]

    # Each command opens its own engine, as a process would; close them after the test.
    monkeypatch.setattr("renewly.cli.common.bootstrap", tracked_bootstrap)

    def run(*args: str) -> Outcome:
        monkeypatch.setattr(sys, "argv", ["renewly", *args])
        with pytest.raises(SystemExit) as exit:
            cli.main()
        captured = capsys.readouterr()
        return Outcome(exit.value.code, captured.out, captured.err)

    yield run
    for application in opened:
        application.engine.dispose()
