"""The dunning policy file (R8, R8.8): the shipped default is the R8 table; an invalid file is
refused at start naming the file, the line and the reason; a custom file changes the schedule
with no code change."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from renewly import cli
from renewly.adapters.db.tables import accounts, dunning_steps, outbox, payment_attempts
from renewly.config.policy import DEFAULT_POLICY, PolicyError, load_policy
from renewly.dunning.preview import preview_account
from renewly.dunning.rules.banners import Audience
from renewly.outbox.rendering import mail_templates
from renewly.scheduler import advance
from renewly.shared.calendar import local_date
from tests.builders import subscribed

RENEWLY = Path(sys.executable).with_name("renewly")
DEFAULT_TEXT = DEFAULT_POLICY.read_text(encoding="utf-8")
DECLINES = "4000000000000341"


def test_r8_the_default_policy_is_the_r8_table():
    policy = load_policy()
    assert [(s.name, s.day, s.charge, s.email, s.banner, s.cancel) for s in policy.steps] == [
        ("payment_failed_1", 0, True, "payment_failed_1", Audience.NONE, False),
        ("payment_failed_2", 2, True, "payment_failed_2", Audience.NONE, False),
        ("payment_failed_3", 4, True, "payment_failed_3", Audience.OWNER_AND_ADMINS, False),
        ("suspension_warning", 21, True, "suspension_warning", Audience.EVERYONE, False),
        ("account_cancelled", 29, False, "account_cancelled", Audience.EVERYONE, True),
    ]
    assert (policy.reactivation_days, policy.deletion_days, policy.invoice_retention_years,
            policy.verification_void_delay_days) == (7, 90, 10, 3)
    assert policy.version == "r8-default-2026-11"
    # Each step's e-mail is a pair of shipped templates (outbox/rendering.py), not a text of the file.
    assert all(mail_templates().has_email(step.email) for step in policy.steps if step.email)
    assert "[templates" not in DEFAULT_TEXT and "[banners" not in DEFAULT_TEXT


# -- invalid files: file, line, reason --------------------------------------------------------------

def broken(old: str, new: str, at: str | None = None) -> tuple[str, int]:
    """The default policy with `old` replaced once by `new`; returns the text and the line of `at`
    in `new` (by default, the first line `new` adds)."""
    assert DEFAULT_TEXT.count(old) == 1, old
    text = DEFAULT_TEXT.replace(old, new)
    lines = new.splitlines()
    offset = lines.index(at) if at else next(i for i, line in enumerate(lines) if line not in old.splitlines())
    return text, text[:text.index(new)].count("\n") + 1 + offset


INVALID = {
    "wrong_type": (broken("day = 2\n", 'day = "two"\n'),
                   "steps[1].day: must be a whole number of days from 0 to 3650, got 'two'"),
    "days_not_increasing": (broken("day = 21\n", "day = 3\n"),
                            "steps[3].day: must come after the previous step's day (4)"),
    "unknown_banner_audience": (broken('banner = "owner_and_admins"', 'banner = "admins"'),
                                "steps[2].banner: unknown audience 'admins'"),
    "unknown_template": (broken('email = "payment_failed_2"', 'email = "payment_failed_two"'),
                         "steps[1].email: no templates mail/payment_failed_two.txt and .html, shipped or in the "
                         "templates_dir folder"),
    "a_template_name_no_file_can_have": (broken('email = "payment_failed_2"', 'email = "../secrets"'),
                                         "steps[1].email: a template name of 1 to 64 lowercase letters"),
    # The texts of earlier releases: refused, saying where they live now, rather than ignored.
    "e_mail_texts_left_in_the_file": (
        broken("cancel = true\n", 'cancel = true\n\n[templates.payment_failed_1.en]\nsubject = "Failed"\n',
               at="[templates.payment_failed_1.en]"),
        "templates.payment_failed_1: the e-mail and banner texts are no longer in the policy file: they are "
        "templates and catalogues, overridden from the templates_dir folder (docs/texts.md)"),
    "banner_texts_left_in_the_file": (
        broken("cancel = true\n", 'cancel = true\n\n[banners.fr]\neveryone = "Résilié"\n', at="[banners.fr]"),
        "banners.fr: the e-mail and banner texts are no longer in the policy file"),
    "cancel_not_last": (broken('name = "suspension_warning"\n', 'name = "suspension_warning"\ncancel = true\n'),
                        "steps[3].cancel: only the last step may cancel the account"),
    "toml_syntax_error": (broken("day = 4\n", "day = 4 days\n"), "not valid TOML"),
    "steps_that_are_not_tables": (("version = \"x\"\nsteps = [0, 2, 4]\n", 2),
                                  "steps: at least one [[steps]] table is required"),
    "minimum_warning_longer_than_the_schedule_s_gap": (
        broken("minimum_warning_days = 8\n", "minimum_warning_days = 9\n"),
        "minimum_warning_days: must be at most 8, the days between the warning step 'suspension_warning' and "
        "the cancellation, or the schedule moves"),
    "a_cancelling_step_that_charges": (
        broken('day = 29\ncharge = false\n', 'day = 29\ncharge = true\n', at="charge = true"),
        "steps[4].charge: a cancelling step cannot charge: a cancelled account is charged only after a temporary "
        "reactivation (R9)"),
    "a_step_on_a_day_no_calendar_holds": (broken("day = 21\n", "day = 3000000\n"),
                                          "steps[3].day: must be a whole number of days from 0 to 3650, got 3000000"),
    "a_reactivation_of_a_thousand_days": (broken("reactivation_days = 7 ", "reactivation_days = 1000 "),
                                          "reactivation_days: must be a whole number from 1 to 365, got 1000"),
    # A case records its step by name, in a column of 64 characters on both engines.
    "a_step_name_longer_than_cases_record": (
        broken('name = "payment_failed_2"', f'name = "{"x" * 65}"'),
        "steps[1].name: a name of at most 64 lowercase letters, digits and _ is required"),
    "a_version_longer_than_steps_record": (
        broken('version = "r8-default-2026-11"', f'version = "{"v" * 65}"'),
        "version: a version of 1 to 64 characters is required"),
    "an_unknown_key_in_a_step": (broken('name = "payment_failed_2"\n', 'name = "payment_failed_2"\ndelay = 1\n'),
                                 "steps[1].delay: unknown key (expected one of banner, cancel, charge, day, email, "
                                 "name)"),
    "an_unknown_key_at_the_top": (broken("deletion_days = 90 ", "deletion_dayz = 90 "),
                                  "deletion_dayz: unknown key (expected one of banners, deletion_days"),
    # A key that is missing: its table's header.
    "a_step_without_its_day": (broken('[[steps]]\nname = "payment_failed_3"\nday = 4\n',
                                      '[[steps]]\nname = "payment_failed_3"\n', at="[[steps]]"),
                               "steps[2].day: must be a whole number of days from 0 to 3650, got None"),
    "a_flag_that_is_not_true_or_false": (broken("charge = false\n", "charge = 0\n"),
                                         "steps[4].charge: must be true or false"),
    "a_step_name_used_twice": (broken('name = "payment_failed_2"\nday = 2', 'name = "payment_failed_1"\nday = 2'),
                               "steps[1].name: step 'payment_failed_1' is defined twice"),
}


@pytest.mark.parametrize("case", list(INVALID))
def test_r8_an_invalid_policy_file_is_refused_with_file_line_and_reason(case, tmp_path):
    (text, line), reason = INVALID[case]
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PolicyError) as refused:
        load_policy(path, has_email=mail_templates().has_email)
    assert refused.value.message.startswith(f"{path}:{line}: ")
    assert reason in refused.value.message
    assert "\n" not in refused.value.message


def test_r8_a_policy_without_a_minimum_warning_key_takes_the_schedule_s_gap(tmp_path):
    text = DEFAULT_TEXT.replace("minimum_warning_days = 8\n", "").replace("day = 21\n", "day = 25\n")
    path = tmp_path / "policy.toml"
    path.write_text(text, encoding="utf-8")
    assert load_policy(path).minimum_warning_days == 4


# -- the command line ---------------------------------------------------------------------------------

def renewly(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["renewly", *args])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    captured = capsys.readouterr()
    return exited.value.code, captured.out, captured.err


@pytest.fixture
def bad_policy(tmp_path) -> tuple[Path, int]:
    (text, line), _ = INVALID["days_not_increasing"]
    path = tmp_path / "bad-policy.toml"
    path.write_text(text, encoding="utf-8")
    return path, line


def test_r8_policy_check_refuses_a_bad_file_with_one_line_and_exit_2(bad_policy, monkeypatch, capsys):
    path, line = bad_policy
    code, out, err = renewly(monkeypatch, capsys, "policy", "check", str(path))
    assert (code, out) == (2, "")
    assert err == (f"error: {path}:{line}: steps[3].day: must come after the previous step's day (4)\n")


def test_r8_policy_check_accepts_the_default(monkeypatch, capsys):
    code, out, err = renewly(monkeypatch, capsys, "policy", "check", str(DEFAULT_POLICY))
    assert (code, err) == (0, "")
    # Folded to 80 columns (the path aside).
    assert "policy r8-default-2026-11 is valid: day 0 payment_failed_1, day 2 payment_failed_2" in " ".join(out.split())
    assert all(len(line) <= 80 for line in out.splitlines()[1:])


def test_r8_8_policy_show_prints_the_policy_in_force(monkeypatch, capsys):
    code, out, _ = renewly(monkeypatch, capsys, "policy", "show", "--json")
    shown = json.loads(out)
    assert (code, shown["file"], shown["version"], shown["deletion_days"]) == (
        0, str(DEFAULT_POLICY), "r8-default-2026-11", 90)
    assert [(s["day"], s["banner"]) for s in shown["steps"]] == [
        (0, "none"), (2, "none"), (4, "owner_and_admins"), (21, "everyone"), (29, "everyone")]


@pytest.mark.parametrize("command", [["run"], ["dunning"], ["accounts", "list"], ["clock", "show"],
                                     ["policy", "show"]])
def test_r8_no_command_starts_with_a_bad_policy_file(command, bad_policy, tmp_path, monkeypatch, capsys):
    path, line = bad_policy
    database = tmp_path / "renewly.db"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RENEWLY_POLICY_FILE", str(path))
    monkeypatch.setenv("RENEWLY_DATABASE_URL", f"sqlite:///{database}")
    monkeypatch.setenv("RENEWLY_CLOCK", "test")
    code, out, err = renewly(monkeypatch, capsys, *command)
    assert (code, out) == (2, "")
    assert err.startswith(f"error: {path}:{line}: ") and err.count("\n") == 1
    assert not database.exists()  # refused before anything was touched


@pytest.mark.parametrize("command", [["run"], ["clock", "show"], ["policy", "show"]])
def test_r8_no_command_starts_with_a_policy_naming_an_e_mail_without_templates(command, tmp_path, monkeypatch,
                                                                                capsys):
    path = tmp_path / "policy.toml"
    path.write_text(DEFAULT_POLICY.read_text(encoding="utf-8")
                    .replace('email = "payment_failed_1"', 'email = "no_such_email"', 1), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RENEWLY_POLICY_FILE", str(path))
    monkeypatch.setenv("RENEWLY_DATABASE_URL", f"sqlite:///{tmp_path / 'renewly.db'}")
    monkeypatch.setenv("RENEWLY_CLOCK", "test")
    code, out, err = renewly(monkeypatch, capsys, *command)
    assert (code, out) == (2, "")
    assert err.startswith(f"error: {path}:") and "no templates mail/no_such_email" in err and err.count("\n") == 1


def test_r8_the_installed_command_refuses_to_start_with_a_bad_policy_file(bad_policy, tmp_path):
    path, line = bad_policy
    environment = {**os.environ, "RENEWLY_POLICY_FILE": str(path), "RENEWLY_CLOCK": "test",
                   "RENEWLY_DATABASE_URL": f"sqlite:///{tmp_path / 'renewly.db'}"}
    done = subprocess.run([str(RENEWLY), "run"], env=environment, cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith(f"error: {path}:{line}: steps[3].day: ") and done.stderr.count("\n") == 1


# -- R8.8: a custom schedule, no code change ------------------------------------------------------------

CUSTOM_STEPS = '''version = "custom-0-3-10"
reactivation_days = 5
deletion_days = 30

[[steps]]
name = "first_notice"
day = 0
charge = true
email = "payment_failed_1"

[[steps]]
name = "last_call"
day = 3
charge = true
email = "suspension_warning"
banner = "everyone"

[[steps]]
name = "closed"
day = 10
email = "account_cancelled"
banner = "everyone"
cancel = true

'''


def test_r8_8_a_custom_policy_file_changes_the_schedule(databases, db_kind, tmp_path, monkeypatch):
    path = tmp_path / "custom.toml"
    path.write_text(CUSTOM_STEPS, encoding="utf-8")
    monkeypatch.setenv("RENEWLY_POLICY_FILE", str(path))
    app = databases.fresh_app(db_kind)
    account_id, _ = subscribed(app, card=DECLINES)
    advance(app, timedelta(hours=2))

    preview = preview_account(app, account_id)
    assert preview.policy_version == "custom-0-3-10"
    [(_, days)] = preview.cases
    assert [(d.day, d.date) for d in days] == [(3, date(2026, 1, 4)), (10, date(2026, 1, 11)),
                                               (40, date(2026, 2, 10))]

    advance(app, timedelta(days=12))
    with app.engine.connect() as conn:
        steps = conn.execute(select(dunning_steps.c.name, dunning_steps.c.taken_at, dunning_steps.c.policy_version)
                             .order_by(dunning_steps.c.id)).all()
        sent = [payload for payload in conn.execute(select(outbox.c.payload).where(outbox.c.topic == "email")
                                                    .order_by(outbox.c.id)).scalars()
                if payload["kind"] != "invoice"]  # the dunning e-mails: not the invoices' (R4.3)
        attempted = conn.execute(select(payment_attempts.c.created_at).order_by(payment_attempts.c.id)
                                 ).scalars().all()
        account = conn.execute(select(accounts).where(accounts.c.id == account_id)).one()
    assert [(name, local_date(at, "UTC"), version) for name, at, version in steps] == [
        ("first_notice", date(2026, 1, 1), "custom-0-3-10"), ("last_call", date(2026, 1, 4), "custom-0-3-10"),
        ("closed", date(2026, 1, 11), "custom-0-3-10")]
    assert [e["kind"] for e in sent] == ["payment_failed_1", "suspension_warning", "account_cancelled"]
    assert [at.date() for at in attempted] == [date(2026, 1, 1), date(2026, 1, 4)]
    assert (account.status, account.banner) == ("cancelled", "everyone")
    assert account.cancelled_at.date() == date(2026, 1, 11)
    assert account.deletion_due_at == account.cancelled_at + timedelta(days=30)
