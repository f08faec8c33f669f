"""Long work shows progress (issue 10, item 10): a bar on stderr over the days of `clock advance`,
the batches of `run` and the demo's days, with the batch in hand; only on a terminal (here forced
with RENEWLY_PROGRESS=always), never under --json, erased when done, so stdout is what it always
was. The first Ctrl-C under a bar still finishes the slice, says what was done and exits 130."""

from __future__ import annotations

import signal
from datetime import date, timedelta

from renewly.scheduler import Step, advance
from tests.builders import subscribed, team_plan
from tests.test_cli_interrupts import once_charged, start, unanswered


def test_clock_advance_draws_a_bar_over_its_days_with_the_batch_in_hand_then_prints_the_same_summary(
        app, renewly, monkeypatch):
    subscribed(app)
    monkeypatch.setenv("RENEWLY_PROGRESS", "always")
    with_bar = renewly("clock", "advance", "--days", "40")

    assert with_bar.code == 0
    assert "days" in with_bar.err and "/40" in with_bar.err  # the bar: days done of 40
    assert "renew at 2026-02-01 00:00" in with_bar.err  # the batch and the tick in hand
    assert "\x1b" not in with_bar.out  # the summary is plain text, as on a pipe
    assert with_bar.out.splitlines()[-1] == "test clock: 2026-02-10T00:00:00+00:00 (3 tick(s) ran)"


def test_no_bar_on_a_pipe_nor_under_json_even_when_forced(app, renewly, monkeypatch):
    subscribed(app)
    assert renewly("clock", "advance", "--days", "10").err == ""  # stderr is not a terminal here
    monkeypatch.setenv("RENEWLY_PROGRESS", "always")
    assert renewly("clock", "advance", "--days", "30", "--json").err == ""
    assert renewly("run", "--json").err == ""
    monkeypatch.setenv("RENEWLY_PROGRESS", "never")
    assert renewly("clock", "advance", "--days", "1").err == ""


def test_run_shows_the_batch_in_hand(app, renewly, monkeypatch):
    subscribed(app)
    monkeypatch.setenv("RENEWLY_PROGRESS", "always")
    done = renewly("run")
    assert done.code == 0
    assert "collect (batch run 1)" in done.err and "retention" in done.err
    assert done.out.splitlines()[0].startswith("collect: ")


def test_the_scheduler_tells_each_batch_as_it_starts_with_the_advance_s_start_and_target(app):
    subscribed(app)
    told: list[Step] = []
    moved = advance(app, timedelta(days=33), on_progress=told.append)
    assert told and {step.batch for step in told} >= {"collect", "dunning", "renew", "retention"}
    assert all(step.start is not None and step.target == moved.target for step in told)
    assert all(step.start <= step.at <= step.target for step in told)


def test_the_demo_draws_a_bar_over_its_days_and_prints_its_timeline_unchanged(tmp_path, monkeypatch, capsys):
    from renewly.cli import main
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RENEWLY_PROGRESS", "always")
    monkeypatch.setattr("sys.argv", ["renewly", "demo"])
    try:
        main()
    except SystemExit as exit:
        assert exit.code == 0
    captured = capsys.readouterr()
    assert "demo, days" in captured.err and "130/130" in captured.err
    assert captured.out.startswith("Renewly demo: 130 days") and "\x1b" not in captured.out


def test_the_first_ctrl_c_under_a_bar_finishes_the_slice_says_what_was_done_and_exits_130(app):
    plan = team_plan(app)
    for n in range(4):
        subscribed(app, plan=plan, start=date(2026, 1, 2), name=f"Customer {n}", owner=f"owner{n}@acme.test")
    batch = start(app, "clock", "advance", "--days", "7", RENEWLY_PROGRESS="always")
    once_charged(app, batch)
    batch.send_signal(signal.SIGINT)
    out, err = batch.communicate(timeout=60)

    assert batch.returncode == 130, (out, err)
    assert "Traceback" not in err and "stopping after the slice in hand" in err  # in the bar's text
    assert out.splitlines()[0] == "2026-01-02T00:00:00+00:00  renew: 4 invoice(s) issued for 4 subscription(s)"
    assert out.splitlines()[-2].startswith("interrupted short of 2026-01-08T00:00:00+00:00")
    assert unanswered(app) == []
