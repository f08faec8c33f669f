"""The manual stays true to the code."""

from pathlib import Path

from renewly.cli_reference import reference

ROOT = Path(__file__).resolve().parents[1]


def test_the_command_line_reference_is_generated_from_the_current_commands():
    committed = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    assert committed == reference(), "docs/cli.md is stale: run python -m renewly.cli_reference > docs/cli.md"


def test_the_readme_opens_with_the_two_commands():
    top = (ROOT / "README.md").read_text(encoding="utf-8").split("\n\n")[1]
    assert "make demo" in top and "make test" in top
