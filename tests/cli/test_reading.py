"""How the operator reads Renewly (issue 10, item 10), as a new user would in a fresh clone: the
demo's database, then the main read commands in an 80-column terminal. Every line fits 80
columns, no identifier is cut or folded, and the same period reads the same way everywhere."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from renewly.cli.common import period
from tests.builders import subscribed
from tests.processes import RENEWLY


def shell_environment(folder: Path) -> dict[str, str]:
    """An operator's shell after the demo: its database, a test clock, an 80-column terminal."""
    kept = {n: v for n, v in os.environ.items() if not n.startswith("RENEWLY_") or n.startswith("RENEWLY_TEST_")}
    return {**kept, "COLUMNS": "80", "RENEWLY_DATABASE_URL": f"sqlite:///{folder / 'renewly-demo.db'}",
            "RENEWLY_CLOCK": "test"}


# Under `make test` (pytest-xdist), the tests of this module run in one process: their module
# fixture (`renewly demo`'s database, made once) would otherwise be made again in each.
pytestmark = pytest.mark.xdist_group("reading")


@pytest.fixture(scope="module")
def after_the_demo(tmp_path_factory) -> tuple[Path, str]:
    """A folder where `renewly demo` ran with COLUMNS=80, and what it printed."""
    folder = tmp_path_factory.mktemp("operator")
    done = subprocess.run([str(RENEWLY), "demo"], cwd=folder, env=shell_environment(folder), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return folder, done.stdout


def read(folder: Path, *arguments: str) -> str:
    done = subprocess.run([str(RENEWLY), *arguments], cwd=folder, env=shell_environment(folder),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, (arguments, done.stderr)
    return done.stdout


READS = [("accounts", "list"), ("accounts", "show", "1"), ("accounts", "show", "5"), ("members", "list", "1"),
         ("invoices", "list"), ("invoices", "show", "2026-000003"), ("payments", "list"), ("outbox", "list"),
         ("plans", "list"), ("contacts", "list", "1"), ("billing", "show", "1", "--as", "ops@acme.example"),
         ("preview", "5"), ("accounts", "banner", "5", "--member", "it@globex.example"), ("problems", "list"),
         ("policy", "show"), ("clock", "show")]


def test_the_demo_and_every_main_read_fit_80_columns_and_cut_nothing(after_the_demo):
    folder, demo = after_the_demo
    outputs = {"demo": demo} | {" ".join(command): read(folder, *command) for command in READS}
    too_wide = {name: line for name, out in outputs.items() for line in out.splitlines() if len(line) > 80}
    assert too_wide == {}
    assert [name for name, out in outputs.items() if "…" in out] == []  # Rich's mark of a cut cell


def test_invoices_list_shows_every_number_whole_on_one_line(after_the_demo):
    folder, _ = after_the_demo
    numbers = [invoice["number"] for invoice in json.loads(read(folder, "invoices", "list", "--json"))]
    table = read(folder, "invoices", "list").splitlines()
    assert len(numbers) > 10
    assert [line.split()[0] for line in table if line[:1].isdigit()] == numbers


def test_payments_and_outbox_show_their_instants_whole(after_the_demo):
    folder, _ = after_the_demo
    for command in (("payments", "list"), ("outbox", "list")):
        rows = [line for line in read(folder, *command).splitlines() if line[:4] == "2026"]  # a row begins
        assert rows and all(re.search(r"\b2026-\d\d-\d\d \d\d:\d\d\b", line) for line in rows), command


def test_the_same_period_reads_the_same_way_in_invoices_show_and_invoices_list(app, renewly):
    subscribed(app)  # its first period: 1 January 2026 up to (not including) 1 February
    first_and_last_day = "2026-01-01 to 2026-01-31"
    assert period("2026-01-01", "2026-02-01") == first_and_last_day
    assert f"period: {first_and_last_day}" in renewly("invoices", "show", "2026-000001").out.splitlines()
    assert first_and_last_day in renewly("invoices", "list").out
    assert f"period {first_and_last_day}" in renewly("accounts", "show", "1").out  # the subscription's


def test_every_amount_a_human_reads_shows_its_currency(app, renewly):
    subscribed(app, seats=3)  # team plan, USD 19.00 a seat, from 1 January
    renewly("clock", "advance", "--days", "15", "--no-batches")
    changed = renewly("subscriptions", "change-seats", "1", "--seats", "5")
    assert changed.out == "subscription 1: 5 seat(s); prorated on the next invoice: $19.61\n"  # 2 × 19.00 × 16/31
    too_much = renewly("invoices", "credit", "2026-000001", "--reason", "oops", "--amount", "999999")
    assert too_much.err == ("error: 2026-000001 can be credited between 1 and 5700 minor units ($57.00), asked "
                            "999999 ($9,999.99)\n")
    total = renewly("invoices", "show", "2026-000001", "--json").json()["total"]
    assert total == 6840  # $57.00 and its tax
    for command in (("invoices", "show", "2026-000001"), ("invoices", "list"),
                    ("billing", "show", "1", "--as", "owner@acme.test")):
        out = renewly(*command).out
        assert "$68.40" in out and "6840" not in out, command
