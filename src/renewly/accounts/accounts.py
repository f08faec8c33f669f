"""Accounts, members and the buyer address; who may do what on an account, and its row lock.

Only the owner manages billing (R1.1) and the payment method (R6.1); a cancelled account's
members are refused its dashboard, except its owner on the billing pages during a temporary
reactivation (R9.1, R9.2). Who may is decided by dunning's rule (renewly.dunning.rules.access,
from the account's status and reactivation window); it is checked here, with the account, so
that every concept that shows or changes an account asks it of a layer below itself.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, bindparam, select

from renewly.accounts.rules.members import (
    NAME_LENGTH,
    REASON_LENGTH,
    AccountStatus,
    BuyerAddress,
    Role,
    validate_email,
    validate_locale,
    validate_member_role,
    validate_text,
)
from renewly.adapters.db.locks import hold_rows, hold_until_commit
from renewly.adapters.db.tables import accounts, members, reactivations, subscriptions
from renewly.dunning.rules.access import dashboard_access, refusal
from renewly.dunning.rules.reactivation import last_day
from renewly.outbox import writer
from renewly.outbox.records import audit
from renewly.ports import Ports
from renewly.shared.calendar import local_date, validate_timezone
from renewly.shared.errors import Conflict, InvalidInput, NotAllowed, NotFound
from renewly.shared.money import validate_currency


def create_account(app: Ports, *, name: str, owner_email: str, locale: str = "en", timezone: str = "UTC",
                   currency: str = "USD", country: str = "", actor: str, address: dict[str, str] | None = None,
                   ) -> int:
    if not (name or "").strip():
        raise InvalidInput("an account needs a name", code="invalid_name")
    name = validate_text(name, "an account's name", NAME_LENGTH)
    owner_email = validate_email(owner_email)
    if not (country or "").strip():
        # Its tax follows the buyer's country (R2.1): without one, invoices went out at 0 % unsaid.
        raise InvalidInput("an account needs its buyer's country (ISO 3166, e.g. FR): it decides the tax",
                           code="country_required")
    buyer = BuyerAddress(**{"name": name, "country": country, **(address or {})})
    values = dict(name=name, locale=validate_locale(locale), timezone=validate_timezone(timezone),
                  currency=validate_currency(currency), status=AccountStatus.ACTIVE.value,
                  **{f"buyer_{key}": value for key, value in buyer.snapshot().items()})
    now = app.clock.now()
    with app.engine.begin() as conn:
        account_id = conn.execute(accounts.insert().values(**values, created_at=now, updated_at=now)
                                  .returning(accounts.c.id)).scalar_one()
        conn.execute(members.insert().values(account_id=account_id, email=owner_email, role=Role.OWNER.value,
                                             created_at=now))
        audit(conn, now, actor, "account.created", "account", account_id, details={"owner": owner_email})
        writer.write(conn, writer.event(now, "account.created", account_id, {"account_id": account_id}))
    return account_id


def add_member(app: Ports, account_id: int, *, email: str, role: str, actor: str) -> int:
    email, parsed_role = validate_email(email), validate_member_role(role)
    now = app.clock.now()
    with app.engine.begin() as conn:
        _live_account(conn, account_id)
        if conn.execute(select(members.c.id).where(members.c.account_id == account_id,
                                                   members.c.email == email)).first():
            raise Conflict(f"{email} is already a member of account {account_id}", code="member_exists")
        member_id = conn.execute(members.insert().values(account_id=account_id, email=email, role=parsed_role.value,
                                                         created_at=now).returning(members.c.id)).scalar_one()
        audit(conn, now, actor, "member.added", "account", account_id, details={"email": email, "role": parsed_role})
        writer.write(conn, writer.event(now, "account.updated", account_id,
                                        {"account_id": account_id, "changed": ["members"]}))
    return member_id


def remove_member(app: Ports, account_id: int, *, email: str, actor: str) -> None:
    email = validate_email(email)
    now = app.clock.now()
    with app.engine.begin() as conn:
        _live_account(conn, account_id)
        member = conn.execute(select(members).where(members.c.account_id == account_id,
                                                    members.c.email == email)).first()
        if member is None:
            raise NotFound(f"{email} is not a member of account {account_id}", code="unknown_member")
        if member.role == Role.OWNER:
            raise NotAllowed("the owner cannot be removed; support transfers ownership first", code="owner_required")
        conn.execute(members.delete().where(members.c.id == member.id))
        audit(conn, now, actor, "member.removed", "account", account_id, details={"email": email})
        writer.write(conn, writer.event(now, "account.updated", account_id,
                                        {"account_id": account_id, "changed": ["members"]}))


def change_member_role(app: Ports, account_id: int, *, email: str, role: str, actor: str) -> None:
    """An admin becomes an agent or the other way round: which banners they see (R8.3, R8.4)
    follows at once. The owner's role changes only by a transfer of ownership (R6.1)."""
    email, parsed_role = validate_email(email), validate_member_role(role)
    now = app.clock.now()
    with app.engine.begin() as conn:
        _live_account(conn, account_id)
        member = conn.execute(hold_until_commit(select(members).where(members.c.account_id == account_id,
                                                                      members.c.email == email), conn)).first()
        if member is None:
            raise NotFound(f"{email} is not a member of account {account_id}", code="unknown_member")
        if member.role == Role.OWNER:
            raise NotAllowed("the owner's role changes only by a transfer of ownership", code="owner_required")
        if member.role == parsed_role:
            raise InvalidInput(f"{email} is already an {parsed_role} of account {account_id}", code="role_unchanged")
        conn.execute(members.update().where(members.c.id == member.id).values(role=parsed_role.value))
        audit(conn, now, actor, "member.role_changed", "account", account_id,
              details={"email": email, "from": member.role, "to": parsed_role})
        writer.write(conn, writer.event(now, "account.updated", account_id,
                                        {"account_id": account_id, "changed": ["members"]}))


def update_buyer_address(app: Ports, account_id: int, *, changes: dict[str, str], acting_email: str,
                         actor: str) -> dict[str, str]:
    """The owner changes the buyer address printed on invoices issued from now on (R3.1); issued
    ones keep theirs. Only the owner manages billing (R1.1): anyone else is told who can."""
    if not changes:
        raise InvalidInput("nothing to change: give at least one field of the buyer address", code="nothing_to_change")
    require_owner_of(app, account_id, acting_email)
    if "country" in changes and not (changes["country"] or "").strip():
        # As at creation: without a country, invoices went out at 0 % unsaid.
        raise InvalidInput("an account needs its buyer's country (ISO 3166, e.g. FR): it decides the tax",
                           code="country_required")
    now = app.clock.now()
    with app.engine.begin() as conn:
        account = _live_account(conn, account_id)
        current = buyer_of(account)
        unknown = set(changes) - set(current)
        if unknown:
            raise InvalidInput(f"unknown address field(s): {', '.join(sorted(unknown))}", code="invalid_address")
        updated = BuyerAddress(**{**current, **changes}).snapshot()
        conn.execute(accounts.update().where(accounts.c.id == account_id).values(
            updated_at=now, **{f"buyer_{key}": value for key, value in updated.items()}))
        audit(conn, now, actor, "buyer_address.updated", "account", account_id,
              details={"fields": sorted(changes), "by": validate_email(acting_email)})
        writer.write(conn, writer.event(now, "account.updated", account_id,
                                        {"account_id": account_id, "changed": ["buyer_address"]}))
    return updated


def buyer_of(account_row) -> dict[str, str]:
    return {key: getattr(account_row, f"buyer_{key}")
            for key in ("name", "line1", "line2", "postcode", "city", "country", "vat_id")}


def _live_account(conn: Connection, account_id: int):
    account = load_account(conn, account_id)
    if account.status == AccountStatus.DELETED:
        raise NotAllowed(f"account {account_id} was deleted; it cannot change any more", code="account_deleted")
    return account


def load_account(conn: Connection, account_id: int):
    account = conn.execute(select(accounts).where(accounts.c.id == account_id)).first()
    if account is None:
        raise NotFound(f"no account {account_id}", code="unknown_account")
    return account


def lock_accounts(conn: Connection, account_ids) -> None:
    """Row locks on the accounts, in id order (SQLite's writer holds the whole database anyway).
    FOR NO KEY UPDATE: exclusive among those who change accounts, while rows that point at the
    accounts can still be written (their foreign keys checked) by others."""
    hold_rows(conn, accounts, account_ids, key_share=True)


# -- Who may do what on an account ---------------------------------------------------------------

def owner_of(conn: Connection, account_id: int) -> str:
    return conn.execute(select(members.c.email).where(members.c.account_id == account_id,
                                                      members.c.role == Role.OWNER.value)).scalar_one()


def require_owner(conn: Connection, account_id: int, acting_email: str) -> None:
    """R6.1: only the owner changes the payment method; everyone else is told who can."""
    owner = owner_of(conn, account_id)
    if validate_email(acting_email) != owner:
        raise NotAllowed(f"only the account owner ({owner}) can change the payment method", code="owner_required")


def require_owner_of(app: Ports, account_id: int, acting_email: str) -> None:
    """Refuse anyone but this account's owner, saying who can; a stranger learns nothing."""
    acting = validate_email(acting_email)
    now = app.clock.now()
    with app.engine.connect() as conn:
        load_account(conn, account_id)
        role = conn.execute(select(members.c.role).where(members.c.account_id == account_id,
                                                         members.c.email == acting)).scalar()
        if role is None:
            # R1.2: not a member: no data, not even the owner's address.
            raise NotAllowed(f"{acting} is not a member of account {account_id}", code="not_a_member")
        require_access(conn, account_id, acting, now, support_email=app.settings.seller.support_email,
                       billing=True)
        if role != Role.OWNER:
            owner = conn.execute(select(members.c.email).where(members.c.account_id == account_id,
                                                               members.c.role == Role.OWNER.value)).scalar_one()
            raise NotAllowed(f"only the account owner ({owner}) can do this", code="owner_required")


def running_reactivation(conn: Connection, account_id: int, now: datetime):
    return conn.execute(_RUNNING_REACTIVATION, {"account_id": account_id, "now": now}).first()


# A temporary reactivation still running at :now (at most one an account:
# uq_reactivations_one_running). Built once: asked for every banner a member sees (building it
# cost as much as sending it).
RUNNING_NOW = and_(reactivations.c.outcome.is_(None), reactivations.c.ends_at > bindparam("now"))
_RUNNING_REACTIVATION = select(reactivations).where(reactivations.c.account_id == bindparam("account_id"),
                                                    RUNNING_NOW)


def require_access(conn: Connection, account_id: int, email: str, now: datetime, *, support_email: str,
                   billing: bool = False) -> Role:
    """Refuse a member the dashboard of a cancelled account (R9.1), saying why and how to ask
    support; during a temporary reactivation, only the owner, and only the billing pages (R9.2).
    Dates are the account's own local dates, as its e-mails give them."""
    account = load_account(conn, account_id)
    role = conn.execute(select(members.c.role).where(members.c.account_id == account_id,
                                                     members.c.email == validate_email(email))).scalar()
    if role is None:
        raise NotFound(f"{email} is not a member of account {account_id}", code="unknown_member")
    reactivation = running_reactivation(conn, account_id, now)
    access = dashboard_access(account.status, Role(role), reactivation is not None)
    refused = refusal(account.status, access, billing=billing)
    if refused == "account_deleted":
        raise NotAllowed(f"account {account_id} was deleted; it can never be used again", code="account_deleted")
    if refused == "account_cancelled":
        raise NotAllowed(f"account {account_id} was cancelled on {local_day(account, account.cancelled_at)} for an "
                         f"unpaid invoice; its data will be deleted on {local_day(account, account.deletion_due_at)}"
                         f" unless it is paid; the owner can ask {support_email} for a temporary reactivation to "
                         f"pay it", code="account_cancelled")
    if refused == "billing_only":
        raise NotAllowed(f"account {account_id} is cancelled; until {last_day(reactivation.ends_at, account.timezone)}"
                         f" only the owner may use the billing pages, to update the card", code="billing_only")
    return Role(role)


def local_day(account, instant: datetime | None) -> str:
    """A moment as the account's own local date (ISO), or "?" when there is none."""
    return local_date(instant, account.timezone).isoformat() if instant else "?"


def describe_account(app: Ports, account_id: int) -> dict[str, Any]:
    """The account as support and scripts see it: members, buyer address, subscriptions."""
    with app.engine.connect() as conn:
        account = load_account(conn, account_id)
        member_rows = conn.execute(select(members.c.email, members.c.role).where(members.c.account_id == account_id)
                                   .order_by(members.c.role != "owner", members.c.email)).all()
        subscription_rows = conn.execute(select(subscriptions).where(subscriptions.c.account_id == account_id)
                                         .order_by(subscriptions.c.id)).all()
    return {
        "id": account.id, "name": account.name, "status": account.status, "locale": account.locale,
        "timezone": account.timezone, "currency": account.currency, "buyer": buyer_of(account),
        "members": [{"email": row.email, "role": row.role} for row in member_rows],
        "subscriptions": [{
            "id": row.id, "plan_id": row.plan_id, "seats": row.seats, "status": row.status,
            "current_period_start": row.current_period_start, "current_period_end": row.current_period_end,
            "renews_at": row.renews_at} for row in subscription_rows],
        "created_at": account.created_at,
    }


def list_accounts(app: Ports) -> list[dict[str, Any]]:
    with app.engine.connect() as conn:
        owner = select(members.c.email).where(members.c.account_id == accounts.c.id,
                                              members.c.role == "owner").scalar_subquery()
        rows = conn.execute(select(accounts.c.id, accounts.c.name, accounts.c.status, accounts.c.currency,
                                   owner.label("owner")).order_by(accounts.c.id)).all()
    return [dict(row._mapping) for row in rows]




def transfer_ownership(app: Ports, account_id: int, *, to_email: str, reason: str, actor: str) -> str:
    """R6.1: when the owner is gone, support makes another member the owner; the old owner becomes
    an admin. Audited with the reason. Returns the previous owner's e-mail."""
    to_email = validate_email(to_email)
    if not (reason or "").strip():
        raise InvalidInput("a transfer of ownership needs a --reason", code="reason_required")
    reason = validate_text(reason, "a transfer's reason", REASON_LENGTH, field="reason")
    now = app.clock.now()
    with app.engine.begin() as conn:
        _live_account(conn, account_id)
        account_members = {row.email: row for row in conn.execute(
            select(members).where(members.c.account_id == account_id))}
        if to_email not in account_members:
            raise NotFound(f"{to_email} is not a member of account {account_id}; add them first",
                           code="unknown_member", values={"email": to_email})
        previous = next(email for email, row in account_members.items() if row.role == Role.OWNER)
        if previous == to_email:
            raise InvalidInput(f"{to_email} already owns account {account_id}", code="already_owner",
                               values={"email": to_email})
        # Demote first: the partial unique index allows one owner at a time.
        conn.execute(members.update().where(members.c.id == account_members[previous].id).values(role=Role.ADMIN))
        conn.execute(members.update().where(members.c.id == account_members[to_email].id).values(role=Role.OWNER))
        audit(conn, now, actor, "ownership.transferred", "account", account_id, reason=reason.strip(),
              details={"from": previous, "to": to_email})
        writer.write(conn, writer.event(now, "account.updated", account_id,
                                        {"account_id": account_id, "changed": ["owner"]}))
    return previous
