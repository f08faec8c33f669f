"""The manual stays true to the code."""

import os
import re
import subprocess
import sys
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from typer.main import get_command

from renewly.adapters.db.engine import make_engine, upgrade
from renewly.adapters.db.tables import invoices
from renewly.billing.invoices import issue_credit_note
from renewly.bootstrap import bootstrap
from renewly.cli import app
from renewly.cli.reference import reference
from renewly.config.settings import load_settings
from renewly.retention.deletion import purge_due
from tests.builders import OPERATOR, subscribed, team_plan
from tests.conftest import ADMIN_URL, START, admin_connection
from tests.retention.test_deletion import RETENTION_ENDS, deleted_account

ROOT = Path(__file__).resolve().parents[1]


def test_the_command_line_reference_is_generated_from_the_current_commands():
    committed = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert committed == reference(), "docs/cli.md is stale: run python -m renewly.cli.reference > docs/cli.md"


def test_every_option_and_argument_of_every_command_says_what_it_is():
    def without_help(command, path: list[str]) -> list[str]:
        subcommands = getattr(command, "commands", None)
        if subcommands:
            return [found for name in sorted(subcommands) for found in without_help(subcommands[name], [*path, name])]
        return [f"{' '.join(path)} {param.name}" for param in command.params
                if param.name != "help" and not (getattr(param, "help", None) or "").strip()]

    assert without_help(get_command(app), ["renewly"]) == []


# What a command that only reads is called: its answer is data a script may want whole.
READS = {"show", "list", "access", "banner", "check", "preview", "reconcile"}


def test_every_read_takes_json_as_the_readme_says():
    def reads_without_json(command, path: list[str]) -> list[str]:
        subcommands = getattr(command, "commands", None)
        if subcommands:
            return [found for name in sorted(subcommands)
                    for found in reads_without_json(subcommands[name], [*path, name])]
        options = {option for param in command.params for option in getattr(param, "opts", [])}
        return [" ".join(path)] if path[-1] in READS and "--json" not in options else []

    assert reads_without_json(get_command(app), ["renewly"]) == []


def test_the_readme_opens_with_the_two_commands():
    top = (ROOT / "README.md").read_text(encoding="utf-8").split("\n\n")[1]
    assert "make demo" in top and "make test" in top


def readme_shell_blocks(section: str) -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8").split(f"## {section}\n")[1].split("\n## ")[0]
    return re.findall(r"```sh\n(.*?)```", text, flags=re.DOTALL)


def test_the_readme_walk_through_runs_as_written_on_a_fresh_database(tmp_path):
    """The "Using it" walk-through, pasted into a shell in an empty folder with the installed
    `renewly` on the PATH: every command succeeds, the cancelled account is reactivated, pays,
    and the gateway agrees with Renewly."""
    walk_through = readme_shell_blocks("Using it")[-1]
    environment = {name: value for name, value in os.environ.items() if not name.startswith("RENEWLY_")}
    environment["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{environment.get('PATH', '')}"
    shell = subprocess.run(["bash", "-e", "-c", walk_through], cwd=tmp_path, env=environment, capture_output=True,
                           text=True, timeout=600)
    assert (shell.returncode, shell.stderr) == (0, "")
    assert "account 1: the owner may use the billing pages until" in shell.stdout
    assert "collect: 2 charge(s): 2 succeeded" in shell.stdout
    assert shell.stdout.rstrip().endswith("no discrepancy")


# -- docs/operations.md: the database role ----------------------------------------------------------

def operations_sql() -> list[list[str]]:
    """The SQL blocks of the section "The database role", each as its statements."""
    section = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8").split("## The database role")[1]
    section = section.split("\n## ")[0]
    return [[statement.strip() for statement in block.split(";\n") if statement.strip().rstrip(";")]
            for block in re.findall(r"```sql\n(.*?)```", section, flags=re.DOTALL)]


@pytest.fixture
def documented_roles(tmp_path):
    """A database set up as docs/operations.md says, under names of this test's own: yields the
    URLs of the owner and of the application."""
    suffix = uuid.uuid4().hex[:8]
    names = {"renewly_owner": f"renewly_owner_{suffix}", "renewly_app": f"renewly_app_{suffix}"}
    database = f"renewly_roles_{suffix}"

    def ours(statement: str) -> str:
        for documented, name in names.items():
            statement = statement.replace(documented, name)
        return re.sub(r"\brenewly\b", database, statement)  # the database's name

    setup, rights = operations_sql()
    passwords = dict(re.findall(r"CREATE ROLE (\w+) LOGIN PASSWORD '([^']*)'", "\n".join(setup)))
    admin = admin_connection()

    def url(role: str) -> str:
        return (make_url(ADMIN_URL).set(drivername="postgresql+psycopg", username=names[role],
                                        password=passwords[role], database=database).render_as_string(False))

    try:
        for statement in setup:
            admin.execute(ours(statement))
        owner = make_engine(url("renewly_owner"))
        upgrade(owner)  # the migrations, as the owner
        with owner.begin() as conn:
            for statement in rights:
                conn.exec_driver_sql(ours(statement))
        owner.dispose()
        yield url("renewly_owner"), url("renewly_app")
    finally:
        admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        for name in names.values():
            admin.execute(f'DROP ROLE IF EXISTS "{name}"')
        admin.close()


def test_the_documented_application_role_runs_renewly_and_cannot_get_past_the_guards(documented_roles, tmp_path):
    _, app_url = documented_roles
    app = bootstrap(load_settings(config_file=None, database_url=app_url, clock="test",
                                  payments={"simulator_url": f"sqlite:///{tmp_path}/gateway.db"}))
    try:
        app.test_clock.set(START)
        # Renewals, payments (an invoice paid), dunning, cancellation, the deletion of R10.1...
        subscribed(app, plan=team_plan(app, code="pro"), name="Globex", owner="owner@globex.test")
        deleted_account(app)
        with app.engine.connect() as conn:
            issued = conn.execute(select(invoices.c.number, invoices.c.status).order_by(invoices.c.id)).all()
        numbers = [number for number, _ in issued]
        assert {"paid", "open"} <= {status for _, status in issued}
        # ... a credit note (an open invoice fully credited turns void) and the purge of R10.2.
        issue_credit_note(app, numbers[-1], reason="goodwill", actor=OPERATOR)
        assert purge_due(app, RETENTION_ENDS + timedelta(days=3650)).invoices_purged == len(numbers) + 1

        refused = {
            "TRUNCATE invoices": "permission denied",
            "ALTER TABLE invoices DISABLE TRIGGER ALL": "must be owner",
            "SET session_replication_role = replica": "permission denied",
            "UPDATE audit_log SET actor = 'someone else'": "append-only",  # the trigger: not the batch
            "UPDATE audit_log SET at = now()": "permission denied",
            "UPDATE audit_log SET action = 'x'": "permission denied",
            "DELETE FROM audit_log": "permission denied",
            "UPDATE invoices SET total = 0": "permission denied",
            "UPDATE invoice_lines SET amount = 0": "permission denied",
            "DROP TABLE invoices CASCADE": "must be owner",
            "CREATE TABLE shadow (id int)": "permission denied",
            "CREATE TRIGGER off BEFORE INSERT ON invoices EXECUTE FUNCTION renewly_refuse_unless_open('', '')":
                "permission denied",
        }
        answers = {}
        for statement in refused:
            try:
                with app.engine.begin() as conn:
                    conn.exec_driver_sql(statement)
                answers[statement] = "done"
            except DBAPIError as error:
                answers[statement] = str(error.orig).splitlines()[0]
        assert {statement: words for statement, words in refused.items()
                if words not in answers[statement]} == {}, answers
    finally:
        app.engine.dispose()


def test_every_file_the_architecture_names_exists():
    """docs/architecture.md's "Where is..." table and its sections name files of src/renewly/:
    each one is there (a move that forgets the manual fails here)."""
    manual = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    table = manual[manual.index("## Where is"):]
    named = set(re.findall(r"`([\w/]+\.(?:py|toml))", manual))
    assert {"payments/retries.py", "dunning/rules/banners.py", "retention/rules/deadlines.py", "scheduler.py",
            "outbox/writer.py", "config/texts.toml"} <= set(re.findall(r"`([\w/]+\.(?:py|toml))", table))
    missing = sorted(path for path in named if not any(
        (folder / path).exists() for folder in (ROOT / "src" / "renewly", ROOT / "src", ROOT)))
    assert missing == [], f"docs/architecture.md names files that are not there: {missing}"


def test_the_shipped_systemd_unit_runs_the_worker_and_lets_it_finish_its_slice_on_stop():
    """deploy/systemd/renewly-worker.service, as docs/operations.md describes it."""
    import configparser
    unit = configparser.ConfigParser(strict=False, interpolation=None)
    unit.optionxform = str  # systemd's keys are case-sensitive
    unit.read(ROOT / "deploy" / "systemd" / "renewly-worker.service", encoding="utf-8")
    service = unit["Service"]
    assert service["ExecStart"].split()[-2:] == ["/opt/renewly/bin/renewly", "worker"]
    assert (service["Type"], service["KillSignal"], service["Restart"]) == ("simple", "SIGTERM", "on-failure")
    assert int(service["TimeoutStopSec"]) >= 120  # a payment slice at the gateway (docs/operations.md)
    assert service["User"] != "root" and "EnvironmentFile" in service
    manual = (ROOT / "docs" / "operations.md").read_text(encoding="utf-8")
    assert "deploy/systemd/renewly-worker.service" in manual and f"TimeoutStopSec={service['TimeoutStopSec']}" in manual
