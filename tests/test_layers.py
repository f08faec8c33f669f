"""The direction of imports, and use cases that read the same on both engines.

The contracts of pyproject.toml's [tool.importlinter] (docs/architecture.md, "Which way imports
go"), checked by import-linter: each layer imports only the layers below it (the command line and
the demo, then bootstrap, the one composition root, the scheduler, the concepts, the batches
toolkit, the outbox, the ports, the adapters, the configuration, the shared kernel), with every
concept's `rules/` at the bottom, pure; no import cycle. Only the composition root and the
programs that start the application (the command line, the demo) can import renewly.bootstrap:
everything else is below it, and receives a renewly.ports.Ports.
Only adapters/ knows which engine it runs on: a use case asks renewly.adapters.db what it needs
("claim the rows nobody else holds", "may several workers write at once"), never the dialect.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "renewly"
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
CONTRACTS = {"layers", "rules-are-pure", "rules-layers", "no-cycles"}
ENGINE_QUESTIONS = ("dialect.name", "is_postgres", "sqlite_file", "with_for_update", "postgresql_readonly")


def lint_imports(source: Path = ROOT / "src") -> subprocess.CompletedProcess[str]:
    """lint-imports on the contracts of pyproject.toml, for the renewly package found in `source`."""
    environment = {**os.environ, "PYTHONPATH": str(source), "COLUMNS": "100"}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache", "--no-logo", str(ROOT / "pyproject.toml")],
                          cwd=ROOT, env=environment, capture_output=True, text=True, timeout=120)


def modules() -> list[tuple[str, Path]]:
    return sorted((path.relative_to(PACKAGE).as_posix(), path) for path in PACKAGE.rglob("*.py"))


def test_imports_go_down_the_layers_rules_are_pure_and_nothing_is_a_cycle():
    checked = lint_imports()
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"Contracts: {len(CONTRACTS)} kept, 0 broken." in checked.stdout, checked.stdout


@pytest.mark.parametrize(("module", "line", "broken"), [
    # payments below dunning: the answers to charges reach dunning through Ports.settlement
    ("payments/attempts.py", "from renewly.dunning import recovery", {"layers"}),
    # only the composition root and the programs import bootstrap
    ("billing/renewals.py", "from renewly import bootstrap", {"layers"}),
    # a rule decides from plain values: no database, no use case (not even its own concept's)
    ("dunning/rules/sweep.py", "import sqlalchemy", {"rules-are-pure"}),
    ("dunning/rules/sweep.py", "from renewly.dunning import sweep", {"rules-are-pure", "no-cycles"}),
    ("billing/rules/numbering.py", "from renewly.adapters.db import tables", {"rules-are-pure"}),
    # the rules among themselves: accounts' are below billing's
    ("accounts/rules/members.py", "from renewly.billing.rules import plans", {"rules-layers"}),
    # two modules of one package that import each other (recovery gives a step's notices)
    ("dunning/notices.py", "from renewly.dunning import recovery", {"no-cycles"}),
])
def test_the_contracts_refuse_an_import_that_breaks_them(tmp_path, module, line, broken):
    copy = tmp_path / "renewly"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    with (copy / module).open("a") as source:
        source.write(f"\n{line}  # noqa\n")
    checked = lint_imports(tmp_path)
    assert checked.returncode == 1, checked.stdout + checked.stderr
    assert f"Contracts: {len(CONTRACTS - broken)} kept, {len(broken)} broken." in checked.stdout, checked.stdout


def test_every_top_level_module_and_package_has_its_layer():
    """A new package is placed in the layers contract (which cannot be exhaustive at the top)."""
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]["contracts"]
    [layers] = [contract["layers"] for contract in contracts if contract["id"] == "layers"]
    placed = {name.strip(" ()").removeprefix("renewly.") for layer in layers for name in layer.split("|")}
    present = {path.stem for path in PACKAGE.iterdir()
               if (path.suffix == ".py" and path.stem != "__init__") or (path / "__init__.py").exists()}
    assert present - placed == set(), "place it in [tool.importlinter]'s layers contract (pyproject.toml)"


def test_the_rules_modules_are_there():
    names = {path.relative_to(PACKAGE).as_posix() for path in PACKAGE.glob("*/rules/*.py")}
    assert {"dunning/rules/sweep.py", "dunning/rules/banners.py", "billing/rules/numbering.py",
            "retention/rules/deadlines.py"} <= names


def test_only_adapters_ask_which_engine_they_run_on():
    asking = {f"{name}: {question}" for name, path in modules() if not name.startswith("adapters/")
              for question in ENGINE_QUESTIONS if question in path.read_text()}
    assert not asking, f"ask renewly.adapters.db (locks, engine) instead: {sorted(asking)}"
