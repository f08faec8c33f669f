"""Cancelled accounts (R9): who may still sign in, and support's temporary reactivation."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, select

from renewly.adapters.db.tables import accounts, dunning_cases, members, reactivations
from renewly.bootstrap import App
from renewly.domain.accounts import AccountStatus, Role, validate_email
from renewly.domain.calendar import local_date
from renewly.domain.dunning import Access, banner_seen, dashboard_access
from renewly.domain.errors import InvalidInput, NotAllowed, NotFound
from renewly.domain.invoices import format_day
from renewly.services.accounts import load_account
from renewly.services.records import audit, publish


def running_reactivation(conn: Connection, account_id: int, now: datetime):
    return conn.execute(select(reactivations).where(reactivations.c.account_id == account_id,
                                                    reactivations.c.outcome.is_(None),
                                                    reactivations.c.ends_at > now)).first()


def require_access(conn: Connection, account_id: int, email: str, now: datetime, *, support_email: str,
                   billing: bool = False) -> Role:
    """Refuse a member the dashboard of a cancelled account (R9.1), saying why and how to ask
    support; during a temporary reactivation, only the owner, and only the billing pages (R9.2)."""
    account = load_account(conn, account_id)
    role = conn.execute(select(members.c.role).where(members.c.account_id == account_id,
                                                     members.c.email == validate_email(email))).scalar()
    if role is None:
        raise NotFound(f"{email} is not a member of account {account_id}", code="unknown_member")
    reactivation = running_reactivation(conn, account_id, now)
    access = dashboard_access(account.status, Role(role), reactivation is not None)
    if account.status == AccountStatus.DELETED:
        raise NotAllowed(f"account {account_id} was deleted; it can never be used again", code="account_deleted")
    if access is Access.NONE:
        cancelled_on = local_date(account.cancelled_at, account.timezone) if account.cancelled_at else "?"
        raise NotAllowed(f"account {account_id} was cancelled on {cancelled_on} for an unpaid "
                         f"invoice; the owner can ask {support_email} for a temporary reactivation to pay it",
                         code="account_cancelled")
    if access is Access.BILLING_ONLY and not billing:
        raise NotAllowed(f"account {account_id} is cancelled; until {reactivation.ends_at:%Y-%m-%d %H:%M} UTC only "
                         f"the owner may use the billing pages, to update the card", code="billing_only")
    return Role(role)


def grant_reactivation(app: App, account_id: int, *, days: int | None, reason: str, actor: str) -> datetime:
    """R9.2: support opens the billing pages of a cancelled account to its owner for a few days.
    The deletion date (R10) does not move."""
    days = app.policy.reactivation_days if days is None else days
    if days < 1:
        raise InvalidInput(f"a reactivation lasts at least one day (got {days})", code="invalid_days")
    if not (reason or "").strip():
        raise InvalidInput("a reactivation needs a --reason", code="reason_required")
    now = app.clock.now()
    with app.engine.begin() as conn:
        account = load_account(conn, account_id)
        if account.status == AccountStatus.DELETED:
            raise NotAllowed(f"account {account_id} was deleted on {account.deleted_at.date()}; its data is gone and "
                             f"it can never be reactivated (R10.1)", code="account_deleted")
        if account.status != AccountStatus.CANCELLED:
            raise NotAllowed(f"account {account_id} is {account.status}, not cancelled: nothing to reactivate",
                             code="not_cancelled")
        if running_reactivation(conn, account_id, now) is not None:
            raise NotAllowed(f"account {account_id} already has a temporary reactivation running",
                             code="reactivation_running")
        # A window that ended unnoticed (no sweep ran since) is closed before the new one opens.
        conn.execute(reactivations.update().where(reactivations.c.account_id == account_id,
                                                  reactivations.c.outcome.is_(None))
                     .values(outcome="expired", ended_at=now))
        ends_at = now + timedelta(days=days)
        conn.execute(reactivations.insert().values(account_id=account_id, granted_by=actor, reason=reason.strip(),
                                                   granted_at=now, ends_at=ends_at))
        audit(conn, now, actor, "reactivation.granted", "account", account_id, reason=reason.strip(),
              details={"days": days, "ends_at": ends_at.isoformat()})
        publish(conn, now, "reactivation.granted", account_id, {"ends_at": ends_at.isoformat()})
    return ends_at


def banners_by_role(app: App, account_id: int) -> dict[str, dict[str, str]]:
    """The banner each role sees now, with its text in the account's language."""
    with app.engine.connect() as conn:
        account = load_account(conn, account_id)
    return {role.value: banner_text(app, account, role) for role in Role} if account else {}


def banner_for_member(app: App, account_id: int, email: str) -> dict[str, str]:
    """"Which banner does member M see now": one query, then the policy's words."""
    with app.engine.connect() as conn:
        row = conn.execute(select(accounts, members.c.role).join(members, members.c.account_id == accounts.c.id)
                           .where(accounts.c.id == account_id, members.c.email == validate_email(email))).first()
        if row is None:
            load_account(conn, account_id)  # an unknown account is refused as such
    if row is None:
        raise NotFound(f"{email} is not a member of account {account_id}", code="unknown_member")
    return banner_text(app, row, Role(row.role))


def banner_text(app: App, account, role: Role) -> dict[str, str]:
    seen = banner_seen(account.banner, account.status, role)
    if seen in ("none", "deleted"):
        return {"banner": seen, "text": ""}
    cancel_date = format_day(account.cancelled_at.date(), account.locale) if account.cancelled_at else ""
    text = app.policy.banners[(seen, account.locale)].format(
        cancel_date=cancel_date or _projected_cancel_date(app, account),
        support_email=app.settings.seller.support_email, account=account.name, invoice="", amount="",
        renewal_date="", deletion_date="")
    return {"banner": seen, "text": text}


def _projected_cancel_date(app: App, account) -> str:
    cancel_index = next((i for i, s in enumerate(app.policy.steps) if s.cancel), None)
    if cancel_index is None:
        return ""
    with app.engine.connect() as conn:
        day0 = conn.execute(select(dunning_cases.c.day0).where(dunning_cases.c.account_id == account.id,
                                                               dunning_cases.c.status == "open")
                            .order_by(dunning_cases.c.day0).limit(1)).scalar()
    return format_day(app.policy.step_date(day0, cancel_index), account.locale) if day0 else ""
