"""Cancelled accounts (R9): support's temporary reactivation, and the banners members see.

Who may still sign in is checked with the account (renewly.accounts.accounts.require_access),
by the rule of renewly.dunning.rules.access."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Connection, Select, and_, bindparam, select

from renewly.accounts.accounts import RUNNING_NOW, load_account, local_day, lock_accounts, running_reactivation
from renewly.accounts.rules.members import REASON_LENGTH, AccountStatus, Role, validate_email, validate_text
from renewly.adapters.db.engine import reading
from renewly.adapters.db.tables import accounts, dunning_cases, members, reactivations
from renewly.dunning.notices import case_invoices
from renewly.dunning.rules.banners import banner_seen, banners_seen
from renewly.dunning.rules.notices import announced_cancellation
from renewly.dunning.rules.reactivation import last_day, window_days, window_end
from renewly.dunning.rules.schedule import place
from renewly.outbox import emails as notices
from renewly.outbox import writer
from renewly.outbox.records import audit
from renewly.outbox.rendering import templates_of
from renewly.ports import Ports
from renewly.shared.calendar import local_date, local_midnight_utc
from renewly.shared.errors import InvalidInput, NotAllowed, NotFound


def grant_reactivation(app: Ports, account_id: int, *, days: int | None, reason: str, actor: str) -> datetime:
    """R9.2: support opens the billing pages of a cancelled account to its owner for a few days:
    today and the `days` after it, to the end of the last one in the account's time zone, so that
    the date the owner reads is the whole last day. The deletion date (R10) does not move."""
    days = window_days(days, app.policy.reactivation_days)
    if not (reason or "").strip():
        raise InvalidInput("a reactivation needs a --reason", code="reason_required")
    reason = validate_text(reason, "a reactivation's reason", REASON_LENGTH, field="reason")
    now = app.clock.now()
    with app.engine.begin() as conn:
        # Locked: retention deleting it, or another agent granting a window, waits for this one.
        lock_accounts(conn, {account_id})
        account = load_account(conn, account_id)
        if account.status == AccountStatus.DELETED:
            raise NotAllowed(f"account {account_id} was deleted on {local_day(account, account.deleted_at)}; its "
                             f"data is gone and it can never be reactivated (R10.1)", code="account_deleted")
        if account.status != AccountStatus.CANCELLED:
            raise NotAllowed(f"account {account_id} is {account.status}, not cancelled: nothing to reactivate",
                             code="not_cancelled")
        if running_reactivation(conn, account_id, now) is not None:
            raise NotAllowed(f"account {account_id} already has a temporary reactivation running",
                             code="reactivation_running")
        # A window that ended unnoticed (no sweep ran since) is closed before the new one opens,
        # and said to have ended, as the sweep would have.
        for ended in conn.execute(reactivations.update().where(reactivations.c.account_id == account_id,
                                                               reactivations.c.outcome.is_(None))
                                  .values(outcome="expired", ended_at=now).returning(reactivations.c.id)).scalars():
            writer.write(conn, writer.event(now, "reactivation.expired", account_id, {"reactivation_id": ended}))
        ends_at = local_midnight_utc(window_end(local_date(now, account.timezone), days), account.timezone)
        conn.execute(reactivations.insert().values(account_id=account_id, granted_by=actor, reason=reason.strip(),
                                                   granted_at=now, ends_at=ends_at))
        audit(conn, now, actor, "reactivation.granted", "account", account_id, reason=reason.strip(),
              details={"days": days, "ends_at": ends_at.isoformat()})
        writer.write(conn, writer.event(now, "reactivation.granted", account_id, {"ends_at": ends_at.isoformat()}))
        writer.write(conn, writer.event(now, "account.dunning_state", account_id,
                                        {"status": account.status,
                                         "banners": banners_seen(account.banner, account.status, True)}))
    return ends_at


def banners_by_role(app: Ports, account_id: int) -> dict[str, dict[str, str]]:
    """The banner each role sees now, with its text in the account's language."""
    with reading(app.engine) as conn:
        account = conn.execute(_ACCOUNT, {"account_id": account_id, "now": app.clock.now()}).first()
        if account is None:
            load_account(conn, account_id)  # refused as an unknown account is everywhere
        context = _banner_context(conn, app, account)
    return {role.value: banner_text(app, account, role, context) for role in Role}


def _with_banner_facts(query: Select) -> Select:
    """`query` (of accounts) with what a banner's text names, in the same round trip: the running
    temporary reactivation's end and the open dunning case (at most one of each:
    uq_reactivations_one_running, uq_dunning_cases_one_open)."""
    return (query.add_columns(reactivations.c.ends_at.label("reactivation_ends"), dunning_cases.c.id.label("case_id"),
                              dunning_cases.c.day0.label("case_day0"),
                              dunning_cases.c.warned_at.label("case_warned_at"),
                              dunning_cases.c.last_step_name.label("case_last_step_name"),
                              dunning_cases.c.last_step_day.label("case_last_step_day"))
            .outerjoin(reactivations, and_(reactivations.c.account_id == accounts.c.id, RUNNING_NOW))
            .outerjoin(dunning_cases, and_(dunning_cases.c.account_id == accounts.c.id,
                                           dunning_cases.c.status == "open")))


# The host product asks it for every page a member opens: its statements are built once
# (building one and its cache key cost as much as sending it), and one statement says it all
# (a round trip each for the reactivation and the case cost a fifth of the read; docs/performance.md, "API").
_ACCOUNT = _with_banner_facts(select(accounts).where(accounts.c.id == bindparam("account_id")))
_MEMBER_OF = _with_banner_facts(select(accounts, members.c.role)
                                .join(members, members.c.account_id == accounts.c.id)
                                .where(accounts.c.id == bindparam("account_id"), members.c.email == bindparam("email")))


def banner_for_member(app: Ports, account_id: int, email: str) -> dict[str, str]:
    """"Which banner does member M see now", with its text in the account's language; with the
    member (the e-mail as stored), its role and that language, which the API's answer names."""
    email = validate_email(email)
    with reading(app.engine) as conn:
        row = conn.execute(_MEMBER_OF, {"account_id": account_id, "email": email, "now": app.clock.now()}).first()
        if row is None:
            load_account(conn, account_id)  # an unknown account is refused as such
            raise NotFound(f"{email} is not a member of account {account_id}", code="unknown_member")
        context = _banner_context(conn, app, row)
    return {**banner_text(app, row, Role(row.role), context), "member": email, "role": row.role,
            "locale": row.locale}


@dataclass(frozen=True)
class _BannerContext:
    reactivation_ends: datetime | None
    day0: date | None  # of the open case
    warned_on: date | None
    last_step: int
    unpaid: list


def _banner_context(conn: Connection, app: Ports, account) -> _BannerContext:
    """What a banner's text names, from an account read `_with_banner_facts`: the running
    window's end, the open case's dates and its unpaid invoices (read only for a case)."""
    if account.case_id is None:
        return _BannerContext(account.reactivation_ends, None, None, -1, [])
    unpaid = case_invoices(conn, [account.case_id], {account.case_id: account.timezone}).get(account.case_id, [])
    return _BannerContext(account.reactivation_ends, account.case_day0,
                          local_date(account.case_warned_at, account.timezone) if account.case_warned_at else None,
                          place(app.policy, account.case_last_step_name, account.case_last_step_day,
                                warned=account.case_warned_at is not None),
                          [notices.Unpaid(invoice.number, invoice.due, invoice.currency) for invoice in unpaid])


def banner_text(app: Ports, account, role: Role, context: _BannerContext) -> dict[str, str]:
    seen = banner_seen(account.banner, account.status, role, context.reactivation_ends is not None)
    if seen in ("none", "deleted"):
        return {"banner": seen, "text": ""}
    policy, timezone = app.policy, account.timezone
    cancel_date = announced_cancellation(
        policy, local_date(account.cancelled_at, timezone) if account.cancelled_at else None, context.day0,
        context.last_step, context.warned_on)
    values = notices.placeholders(
        policy=policy, locale=account.locale, account=account.name, invoices=context.unpaid,
        renewal_date=context.day0, cancel_date=cancel_date,
        deletion_date=local_date(account.deletion_due_at, timezone) if account.deletion_due_at else None,
        support_email=app.settings.seller.support_email,
        reactivation_end_date=last_day(context.reactivation_ends, timezone) if context.reactivation_ends else None)
    return {"banner": seen, "text": templates_of(app).banner(seen, account.locale, values)}
