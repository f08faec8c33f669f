"""Use cases are given their ports, and read the same on both engines.

Only the composition root (bootstrap.py) and the programs that start the application (the
command line, the demo) import renewly.bootstrap; everything else receives a renewly.ports.Ports.
Only adapters/ knows which engine it runs on: a use case asks renewly.adapters.db what it needs
("claim the rows nobody else holds", "may several workers write at once"), never the dialect.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "renewly"

STARTS_THE_APPLICATION = {"bootstrap.py", "cli.py", "cli_contacts.py", "demo.py"}
ENGINE_QUESTIONS = ("dialect.name", "is_postgres", "sqlite_file", "with_for_update", "postgresql_readonly")


def modules() -> list[tuple[str, Path]]:
    return sorted((path.relative_to(PACKAGE).as_posix(), path) for path in PACKAGE.rglob("*.py"))


def imports_bootstrap(path: Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import) and any(alias.name == "renewly.bootstrap" for alias in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and node.module == "renewly.bootstrap":
            return True
        if (isinstance(node, ast.ImportFrom) and node.module == "renewly"
                and any(alias.name == "bootstrap" for alias in node.names)):
            return True
    return False


def test_only_the_composition_root_and_the_programs_import_bootstrap():
    importers = {name for name, path in modules() if imports_bootstrap(path)}
    others = {name for name in importers
              if name not in STARTS_THE_APPLICATION and not name.startswith("cli/")}
    assert not others, f"use cases take renewly.ports.Ports, not renewly.bootstrap: {sorted(others)}"
    assert "cli.py" in importers or any(name.startswith("cli/") for name in importers)  # the check sees imports


def test_only_adapters_ask_which_engine_they_run_on():
    asking = {f"{name}: {question}" for name, path in modules() if not name.startswith("adapters/")
              for question in ENGINE_QUESTIONS if question in path.read_text()}
    assert not asking, f"ask renewly.adapters.db (locks, engine) instead: {sorted(asking)}"
