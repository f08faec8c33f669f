"""Every concept's `rules/` decides from plain values: it imports no database, adapter, clock or
use case, only other rules, the shared kernel and the text catalogue (a TOML file read once, no
I/O of the application: issue 10, rules out of the transaction code)."""

from __future__ import annotations

import ast
from pathlib import Path

import renewly

SRC = Path(renewly.__file__).parent
ALLOWED = ("renewly.shared.", "renewly.config.texts")
RULES = sorted(path for path in SRC.glob("*/rules/*.py") if path.name != "__init__.py")


def imported(path: Path) -> set[str]:
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
    return modules


def test_the_rules_modules_are_there():
    names = {str(path.relative_to(SRC)) for path in RULES}
    assert {"dunning/rules/sweep.py", "dunning/rules/banners.py", "billing/rules/numbering.py",
            "retention/rules/deadlines.py"} <= names


def test_rules_import_only_rules_the_shared_kernel_and_the_texts():
    impure = {}
    for path in RULES:
        bad = sorted(module for module in imported(path)
                     if module.split(".")[0] == "sqlalchemy"
                     or (module.startswith("renewly.") and not module.startswith(ALLOWED)
                         and ".rules." not in module))
        if bad:
            impure[str(path.relative_to(SRC))] = bad
    assert impure == {}
