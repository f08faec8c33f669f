"""Ctrl-C on a batch command (a real process, a real SIGINT): the first one finishes the slice in
hand, prints what was done and what is left, and exits 130, leaving no attempt pending and the
test clock no further than the batches went; a second one stops at once, exit 130, no traceback.
The simulated gateway's latency keeps the batch at the gateway long enough to be interrupted."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from datetime import date, timedelta

from sqlalchemy import func, select, update

from renewly.adapters.clock import wall_clock
from renewly.adapters.db.tables import payment_attempts
from renewly.billing.invoices import list_invoices
from renewly.payments.reconcile import reconcile
from tests.builders import subscribed, team_plan
from tests.payment_builders import attempts, paying_customer, successes_per_invoice
from tests.processes import RENEWLY

SLOW = {"RENEWLY_PAYMENTS__SIMULATOR_LATENCY_MS": "1000", "RENEWLY_PAYMENTS__SLICE_SIZE": "1",
        "RENEWLY_PAYMENTS__CONCURRENCY": "1"}


def environment(app, **more: str) -> dict[str, str]:
    return {**os.environ, "RENEWLY_DATABASE_URL": app.settings.database_url, "RENEWLY_CLOCK": "test",
            "RENEWLY_PAYMENTS__SIMULATOR_URL": app.settings.simulator_url(), **more}


def renewly(app, *arguments: str, **more: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(RENEWLY), *arguments], env=environment(app, **more), capture_output=True, text=True,
                          timeout=120)


def start(app, *arguments: str, **more: str) -> subprocess.Popen:
    return subprocess.Popen([str(RENEWLY), *arguments], env=environment(app, **{**SLOW, **more}),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def once_charged(app, batch: subprocess.Popen, count: int = 1) -> None:
    """Wait until the batch has recorded `count` answered charges: it is in the middle of its slices."""
    deadline = time.monotonic() + 60
    while True:
        with app.engine.connect() as conn:
            answered = conn.execute(select(func.count()).where(payment_attempts.c.status == "succeeded")).scalar()
        if answered >= count:
            return
        assert batch.poll() is None, batch.communicate()
        assert time.monotonic() < deadline, "the batch never charged"
        time.sleep(0.05)


def unanswered(app) -> list[str]:
    return [a["status"] for a in attempts(app) if a["status"] in ("pending", "unknown")]


def test_ctrl_c_during_clock_advance_finishes_the_slice_prints_what_was_done_and_keeps_the_clock_there(app):
    plan = team_plan(app)
    for n in range(6):  # four renew on the 2nd, two on the 5th
        subscribed(app, plan=plan, start=date(2026, 1, 2 if n < 4 else 5), name=f"Customer {n}",
                   owner=f"owner{n}@acme.test")
    batch = start(app, "clock", "advance", "--days", "7")
    once_charged(app, batch)
    batch.send_signal(signal.SIGINT)
    out, err = batch.communicate(timeout=60)

    assert batch.returncode == 130, (out, err)
    assert "Traceback" not in err and "stopping after the slice in hand" in err
    lines = out.splitlines()
    assert lines[0] == "2026-01-02T00:00:00+00:00  renew: 4 invoice(s) issued for 4 subscription(s)"
    # The slice answered, and those already at the gateway when Ctrl-C came (the batch claims
    # the next slice while one is being answered): never all four.
    charged = int(lines[1].removeprefix("2026-01-02T00:00:00+00:00  collect: ").split()[0])
    assert 2 <= charged < 4 and lines[1].endswith(f"{charged} charge(s): {charged} succeeded, 0 declined, 0")
    assert lines[-3:] == [
        "test clock: 2026-01-02T00:00:00+00:00 (1 tick(s) ran)",
        "interrupted short of 2026-01-08T00:00:00+00:00: stopped after the slice in hand;",
        "    still due: collect (`renewly run` does the rest)"]
    assert max(map(len, lines)) <= 80
    assert unanswered(app) == []  # every charge asked was answered and recorded
    assert app.clock.now().date() == date(2026, 1, 2)  # not past what the batches did
    assert sorted(i["status"] for i in list_invoices(app)) == (4 - charged) * ["open"] + charged * ["paid"]

    finishing = renewly(app, "run")  # the rest of that tick ...
    assert (finishing.returncode, finishing.stderr) == (0, "")
    going_on = renewly(app, "clock", "advance", "--days", "6")  # ... then the advance goes on
    assert going_on.returncode == 0 and going_on.stdout.splitlines()[-1].startswith(
        "test clock: 2026-01-08T00:00:00+00:00")
    assert [i["status"] for i in list_invoices(app)] == 6 * ["paid"]
    assert set(successes_per_invoice(app).values()) == {1}  # each charged once
    assert reconcile(app).discrepancies == [] and reconcile(app).unanswered == []


def test_ctrl_c_during_run_reports_the_batches_that_ran_and_what_is_still_due(app):
    plan = team_plan(app)
    for n in range(4):
        paying_customer(app, plan=plan, name=f"Customer {n}", owner=f"owner{n}@acme.test")
    batch = start(app, "run")
    once_charged(app, batch)
    batch.send_signal(signal.SIGINT)
    out, err = batch.communicate(timeout=60)

    assert batch.returncode == 130, (out, err)
    assert "Traceback" not in err
    lines = out.splitlines()
    charged = int(lines[0].removeprefix("collect: ").split()[0])
    assert 2 <= charged < 4 and lines[0].startswith(f"collect: {charged} charge(s): {charged} succeeded")
    assert lines[2:] == [  # no batch after the payment batch ran
        "interrupted: stopped after the slice in hand; still due: collect (`renewly run`",
        "    does the rest)"]
    assert unanswered(app) == []
    again = renewly(app, "run")
    assert again.returncode == 0 and again.stdout.startswith(f"collect: {4 - charged} charge(s)")
    assert [i["status"] for i in list_invoices(app)] == 4 * ["paid"]


def test_a_second_ctrl_c_stops_at_once_and_reconcile_names_what_it_left_pending(app):
    plan = team_plan(app)
    for n in range(4):
        paying_customer(app, plan=plan, name=f"Customer {n}", owner=f"owner{n}@acme.test")
    # Calls of 3 s: the second Ctrl-C comes while the slice in hand is at the gateway, even on a
    # busy machine (at 400 ms, the slice was done before it came, once in a full suite).
    batch = start(app, "collect", RENEWLY_PAYMENTS__SIMULATOR_LATENCY_MS="3000")
    once_charged(app, batch)
    batch.send_signal(signal.SIGINT)
    assert batch.stderr.readline() == "stopping after the slice in hand (Ctrl-C again stops at once)\n"
    batch.send_signal(signal.SIGINT)  # while the slice in hand is at the gateway
    out, err = batch.communicate(timeout=10)

    assert (batch.returncode, out) == (130, "")
    assert err == ("interrupted: stopped at once; charges in flight stay pending until their\n"
                   "lease ends, then the next payment batch settles them (renewly reconcile)\n")
    left = [a for a in attempts(app) if a["status"] != "succeeded"]
    assert left and {a["status"] for a in left} == {"pending"}
    said = renewly(app, "reconcile")
    assert (said.returncode, said.stderr) == (0, "")  # pending within its lease: not a discrepancy
    text = " ".join(said.stdout.split())
    assert "no discrepancy" in text and f"{len(left)} attempt(s) without an answer yet" in text
    assert text.count("its lease ends") == len(left)

    with app.engine.begin() as conn:  # the lease runs out: the next payment batch settles them
        conn.execute(update(payment_attempts).values(lease_expires_at=wall_clock() - timedelta(seconds=1)))
    assert renewly(app, "collect").returncode == 0
    assert [i["status"] for i in list_invoices(app)] == 4 * ["paid"]
    assert set(successes_per_invoice(app).values()) == {1}
    assert reconcile(app).discrepancies == [] and reconcile(app).unanswered == []


def test_ctrl_c_during_clock_advance_json_keeps_stdout_the_report_and_says_it_stopped(app):
    plan = team_plan(app)
    for n in range(4):
        subscribed(app, plan=plan, start=date(2026, 1, 2), name=f"Customer {n}", owner=f"owner{n}@acme.test")
    batch = start(app, "clock", "advance", "--days", "7", "--json")
    once_charged(app, batch)
    batch.send_signal(signal.SIGINT)
    out, err = batch.communicate(timeout=60)

    assert batch.returncode == 130, (out, err)
    report = json.loads(out)
    assert (report["now"], report["target"], report["stopped"]) == (
        "2026-01-02T00:00:00+00:00", "2026-01-08T00:00:00+00:00", True)
    charged = sum(run["report"]["succeeded"] for run in report["runs"] if run["batch"] == "collect")
    assert 2 <= charged < 4
    assert err.splitlines() == [
        "stopping after the slice in hand (Ctrl-C again stops at once)",
        "interrupted short of 2026-01-08T00:00:00+00:00: stopped after the slice in hand;",
        "    still due: collect (`renewly run` does the rest)"]
    assert unanswered(app) == []
