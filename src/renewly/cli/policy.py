"""`renewly policy ...`: the dunning policy file, checked against the database or shown;
`renewly preview`: what it will do to one account."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from renewly.cli.common import (
    AccountId,
    JsonFlag,
    echo_wrapped,
    group,
    open_app,
    print_json,
)

app = group("The dunning policy file.")
preview_app = typer.Typer()  # `renewly preview`, a command of the root


@app.command("check")
def policy_check(path: Annotated[str, typer.Argument(help="A policy TOML file.")],
                 against: Annotated[bool, typer.Option(
                     "--against", help="Also list the open dunning cases of the configured database "
                                       "(RENEWLY_DATABASE_URL) that this policy would move, if it replaced the "
                                       "one in force. Reads only.")] = False,
                 as_json: JsonFlag = False) -> None:
    """Validate a dunning policy file without running anything (exit 0: valid)."""
    from pathlib import Path

    from renewly.config.policy import load_policy
    from renewly.config.settings import load_settings
    from renewly.outbox.rendering import mail_templates
    templates = mail_templates(load_settings().templates_dir)  # the steps' e-mails: shipped, or the operator's
    policy = load_policy(Path(path), has_email=templates.has_email)
    steps = [{"name": s.name, "day": s.day} for s in policy.steps]
    if not against:
        if as_json:
            print_json({"file": path, "version": policy.version, "valid": True, "steps": steps})
            return
        echo_wrapped(f"{path}: policy {policy.version} is valid: " +
                     ", ".join(f"day {s.day} {s.name}" for s in policy.steps))
        return
    from renewly.dunning.policy_impact import policy_impact
    impact = policy_impact(open_app(upgrade=False), policy)
    if as_json:
        print_json({"file": path, "version": policy.version, "valid": True, "steps": steps,
                    "database": impact.database, "policy_in_force": impact.current.version,
                    "cases": [_case_impact_json(impact, found) for found in impact.moved],
                    "counts": impact.counts()})
        return
    echo_wrapped(f"{path}: policy {policy.version} is valid: " +
                 ", ".join(f"day {s.day} {s.name}" for s in policy.steps))
    echo_wrapped(f"against {impact.database} (policy in force: {impact.current.version}):")
    for found in impact.moved:
        for number, line in enumerate(_case_impact_lines(impact, found)):
            echo_wrapped(("  " if number == 0 else "      ") + line, indent=8)
    counts = impact.counts()
    echo_wrapped(f"{counts['open_cases']} open case(s); {counts['would_move']} would move: "
                 f"{counts['last_step_gone']} whose last step is gone, {counts['steps_due_at_once']} with a step "
                 f"due at the next sweep, {counts['cancellation_moved']} whose cancellation moves "
                 f"({counts['cancelled_at_once']} cancelled at the next sweep), {counts['notices_dropped']} "
                 f"waiting notice(s) no longer given")


def _schedule(steps, today) -> str:
    return ", ".join(f"{name} {'at the next sweep' if day <= today else f'on {day}'}" for name, day in steps) \
        or "no step left"


def _case_impact_lines(impact, found) -> list[str]:
    move = found.move
    lines = [f"case {found.case_id}, account {found.account_id}: after "
             f"{found.last_step or 'no step yet'}" +
             (f"; that step is gone: now after {move.after or 'no step'}" if move.last_step_gone else "")]
    if move.notice_dropped:
        lines.append("its waiting notice names a step that is gone: not given")
    if move.was != move.now:
        lines.append(f"new: {_schedule(move.now, move.today)}")
        lines.append(f"was: {_schedule(move.was, move.today)}")
    was, now = impact.cancellations(move)
    if was != now:
        lines.append(f"cancellation: {now or 'none'} (was {was or 'none'})")
    return lines


def _case_impact_json(impact, found) -> dict[str, Any]:
    move = found.move
    was, now = impact.cancellations(move)
    return {"case_id": found.case_id, "account_id": found.account_id, "last_step": found.last_step,
            "last_step_gone": move.last_step_gone, "after": move.after, "today": move.today,
            "waiting_notice_dropped": move.notice_dropped,
            "was": [{"step": name, "date": day} for name, day in move.was],
            "now": [{"step": name, "date": day} for name, day in move.now],
            "due_at_once": list(move.due_at_once), "cancellation_was": was, "cancellation_now": now}


@app.command("show")
def policy_show(as_json: JsonFlag = False) -> None:
    """The policy in force: its version and steps."""
    from renewly.config.policy import load_policy, policy_path
    from renewly.config.settings import load_settings
    from renewly.dunning.rules.preview import describe_step
    from renewly.outbox.rendering import mail_templates
    # As every command that starts the application: a step naming an e-mail without templates is refused.
    policy = load_policy(has_email=mail_templates(load_settings().templates_dir).has_email)
    if as_json:
        print_json({"file": str(policy_path()), "version": policy.version,
                    "steps": [{"name": s.name, "day": s.day, "charge": s.charge, "email": s.email,
                               "banner": s.banner.value, "cancel": s.cancel} for s in policy.steps],
                    "reactivation_days": policy.reactivation_days, "deletion_days": policy.deletion_days,
                    "invoice_retention_years": policy.invoice_retention_years,
                    "verification_void_delay_days": policy.verification_void_delay_days,
                    "minimum_warning_days": policy.minimum_warning_days})
        return
    echo_wrapped(f"policy {policy.version} ({policy_path()})")
    for step in policy.steps:
        echo_wrapped(f"  day {step.day:>3} {step.name}: {'; '.join(describe_step(step))}", indent=10)
    echo_wrapped(f"  reactivation window {policy.reactivation_days} days; deletion {policy.deletion_days} days after "
                 f"cancellation; invoices kept {policy.invoice_retention_years} years; card checks voided after "
                 f"{policy.verification_void_delay_days} days; the warning at least "
                 f"{policy.minimum_warning_days} days before the cancellation")


@preview_app.command("preview")
def preview(account: AccountId, as_json: JsonFlag = False) -> None:
    """What the policy in force will do to this account on each coming day (R8.8)."""
    from renewly.dunning.preview import preview_account
    found = preview_account(open_app(), account)
    if as_json:
        print_json({"account_id": found.account_id, "policy_version": found.policy_version, "today": found.today,
                    "status": found.status, "cases": [{"about": about, "days": [
                        {"day": d.day, "date": d.date, "actions": list(d.actions)} for d in days]}
                        for about, days in found.cases]})
        return
    echo_wrapped(f"account {found.account_id} ({found.status}) under policy {found.policy_version}, today "
                 f"{found.today}")
    if not found.cases:
        typer.echo("  nothing is scheduled")
    for about, days in found.cases:
        echo_wrapped(f"  {about}:", indent=4)
        for day in days:
            echo_wrapped(f"    day {day.day:>3} {day.date}: {'; '.join(day.actions)}", indent=24)
