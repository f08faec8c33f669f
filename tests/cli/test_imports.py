"""The command line is light to load (issue 10, item 11): `renewly --help` loads every command
module, so none of them may import the database, the settings, Rich or the logs before a command
runs; a simple read loads what it reads with and no more; and its modules import each other one
way (common <- groups <- root), never in a circle."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

CLI = Path(__file__).resolve().parents[2] / "src" / "renewly" / "cli"
HEAVY = ("sqlalchemy", "alembic", "psycopg", "pydantic", "pydantic_settings", "rich", "babel", "structlog",
         "renewly.bootstrap", "renewly.config.settings", "renewly.adapters")


def test_help_loads_no_database_settings_rich_or_logs():
    script = ("import sys; sys.argv = ['renewly', '--help']\n"
              "from renewly.cli import main\n"
              "try:\n    main()\nexcept SystemExit:\n    pass\n"
              f"print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r} or m in {HEAVY!r})))")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert "Usage: renewly" in done.stdout
    assert done.stdout.splitlines()[-1] == "", f"renewly --help imported: {done.stdout.splitlines()[-1]}"


# What a read never uses: the logs (structlog and the Rich it brings), the gateway, dunning's
# settlement, the scheduler and the batches, Alembic (the schema is up to date), psycopg and
# SQLAlchemy's PostgreSQL dialect (SQLite), the e-mails' templates and catalogues (Jinja2, Babel),
# the PDFs, the web application and its server, the job queue, SMTP and HTTP clients.
NOT_FOR_A_READ = ("structlog", "alembic", "psycopg", "renewly.adapters.gateways.simulated", "renewly.dunning.recovery",
                  "renewly.scheduler", "renewly.batches", "renewly.billing.rules.invoices",
                  "sqlalchemy.dialects.postgresql", "jinja2", "babel", "renewly.config.catalogues", "weasyprint",
                  "facturx", "fastapi", "starlette", "uvicorn", "procrastinate", "aiosmtplib", "httpx",
                  "renewly.web", "renewly.worker", "renewly.mail")


def test_a_simple_read_loads_no_logs_gateway_settlement_scheduler_migrations_templates_nor_servers(tmp_path):
    shell = {**{name: value for name, value in os.environ.items() if not name.startswith("RENEWLY_")},
             "RENEWLY_DATABASE_URL": f"sqlite:///{tmp_path / 'renewly.db'}", "RENEWLY_CLOCK": "test"}
    made = subprocess.run([sys.executable, "-c", "from renewly.cli import main; main()", "plans", "create", "--code",
                           "team", "--name", "Team", "--interval", "month", "--price", "1900", "--currency", "EUR"],
                          env=shell, cwd=tmp_path, capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    script = ("import sys; sys.argv = ['renewly', 'clock', 'show']\n"
              "from renewly.cli import main\n"
              "try:\n    main()\nexcept SystemExit:\n    pass\n"
              f"print(' '.join(sorted(m for m in sys.modules "
              f"if any(m == n or m.startswith(n + '.') for n in {NOT_FOR_A_READ!r}))))")
    done = subprocess.run([sys.executable, "-c", script], env=shell, cwd=tmp_path, capture_output=True, text=True,
                          check=True)
    assert done.stdout.startswith("test clock: ")
    assert done.stdout.splitlines()[-1] == "", f"renewly clock show imported: {done.stdout.splitlines()[-1]}"


def test_a_batch_run_with_no_pdf_to_make_loads_no_pdf_library(tmp_path):
    # WeasyPrint and factur-x cost about half a second of CPU to import (more than the rest of a
    # batch command's start): only what renders or e-mails an invoice's PDF loads them.
    shell = {**{name: value for name, value in os.environ.items() if not name.startswith("RENEWLY_")},
             "RENEWLY_DATABASE_URL": f"sqlite:///{tmp_path / 'renewly.db'}", "RENEWLY_CLOCK": "test"}
    script = ("import sys; sys.argv = ['renewly', 'run']\n"
              "from renewly.cli import main\n"
              "try:\n    main()\nexcept SystemExit:\n    pass\n"
              "print(' '.join(sorted(m for m in sys.modules if m.split('.')[0] in ('weasyprint', 'facturx'))))")
    done = subprocess.run([sys.executable, "-c", script], env=shell, cwd=tmp_path, capture_output=True, text=True,
                          check=True)
    assert "renew:" in done.stdout, done.stdout
    assert done.stdout.splitlines()[-1] == "", f"renewly run imported: {done.stdout.splitlines()[-1]}"


def imports_of(path: Path) -> set[str]:
    """The renewly.cli modules a module imports at its top level (not inside functions)."""
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("renewly.cli"):
            found |= {node.module} if node.module != "renewly.cli" else {f"renewly.cli.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("renewly.cli")}
    return found


def test_cli_modules_import_each_other_one_way():
    graph = {f"renewly.cli.{p.stem}": imports_of(p) for p in CLI.glob("*.py") if p.stem != "__init__"}
    assert graph["renewly.cli.common"] == set(), "common is the bottom: it imports no other command module"

    def reaches(start: str, target: str, seen: frozenset = frozenset()) -> bool:
        return any(step == target or (step not in seen and reaches(step, target, seen | {step}))
                   for step in graph.get(start, ()))

    circles = [name for name in graph if reaches(name, name)]
    assert not circles, f"import circle through {circles}"
    # Only the reference (docs/cli.md) reads the whole application; a group never reaches up to it.
    upward = {name: imported & {"renewly.cli.root", "renewly.cli.app", "renewly.cli.main"}
              for name, imported in graph.items() if name not in ("renewly.cli.root", "renewly.cli.reference")}
    assert not any(upward.values()), upward
