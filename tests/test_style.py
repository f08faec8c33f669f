"""The code keeps the project's lint rules (pyproject.toml, [tool.ruff]) and type-checks ([tool.mypy])."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_finds_nothing():
    command = [sys.executable, "-m", "ruff", "check", "--output-format", "concise", "src", "tests", "bench"]
    found = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert found.returncode == 0, found.stdout + found.stderr


def test_mypy_finds_nothing():
    """The type checker, as pyproject.toml's [tool.mypy] configures it (strict flags on the pure
    modules). Its cache (.mypy_cache, ignored by git) makes a run after a small change a few seconds."""
    command = [sys.executable, "-m", "mypy", "--no-color-output", "--no-error-summary"]
    found = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    assert found.returncode == 0, found.stdout + found.stderr
