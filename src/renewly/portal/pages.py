"""What the portal's pages show a signed-in member, and who may see which (R1, R8.3, R8.4, R9).

`visitor` is asked at every page: the member's role, the account's status and the access it
leaves them (renewly.dunning.rules.access: full; the owner's billing pages only during a
temporary reactivation, R9.2; none when cancelled, R9.1), the owner's name (R1.1 names them), and
the banner they see today (R8.3, R8.4, R9), in the account's language. The owner's billing pages
read `renewly.portal.overview.billing_overview`, which asks the owner check itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select

from renewly.accounts.accounts import load_account, owner_of, running_reactivation
from renewly.accounts.rules.members import Role
from renewly.adapters.db.tables import members, plans
from renewly.dunning.reactivation import banner_for_member
from renewly.dunning.rules.access import Access, dashboard_access
from renewly.dunning.rules.banners import banner_severity
from renewly.dunning.rules.reactivation import last_day
from renewly.ports import Ports
from renewly.shared.calendar import local_date
from renewly.shared.errors import NotFound


@dataclass(frozen=True)
class Banner:
    code: str
    severity: str
    text: str


@dataclass(frozen=True)
class Visitor:
    account_id: int
    account_name: str
    member: str
    role: Role
    owner: str
    locale: str
    status: str
    access: Access
    banner: Banner | None
    cancelled_on: date | None
    deletion_on: date | None
    reactivation_until: date | None

    @property
    def is_owner(self) -> bool:
        return self.role is Role.OWNER


def visitor(app: Ports, account_id: int, member: str) -> Visitor:
    now = app.clock.now()
    with app.engine.connect() as conn:
        account = load_account(conn, account_id)
        role = conn.execute(select(members.c.role).where(members.c.account_id == account_id,
                                                         members.c.email == member)).scalar()
        if role is None:  # removed since sign-in (their sessions went with them): never shown anything
            raise NotFound(f"{member} is not a member of account {account_id}", code="unknown_member")
        owner = owner_of(conn, account_id)
        reactivation = running_reactivation(conn, account_id, now)
    seen = banner_for_member(app, account_id, member)
    severity = banner_severity(seen["banner"])
    timezone = account.timezone
    return Visitor(
        account_id=account_id, account_name=account.name, member=member, role=Role(role), owner=owner,
        locale=account.locale, status=account.status,
        access=dashboard_access(account.status, Role(role), reactivation is not None),
        banner=None if severity is None else Banner(code=seen["banner"], severity=severity.value, text=seen["text"]),
        cancelled_on=local_date(account.cancelled_at, timezone) if account.cancelled_at else None,
        deletion_on=local_date(account.deletion_due_at, timezone) if account.deletion_due_at else None,
        reactivation_until=last_day(reactivation.ends_at, timezone) if reactivation else None)


def plans_of(app: Ports, plan_ids: set[int]) -> dict[int, dict]:
    """The plans an account's subscriptions name: name, price per seat, interval."""
    if not plan_ids:
        return {}
    with app.engine.connect() as conn:
        rows = conn.execute(select(plans).where(plans.c.id.in_(plan_ids))).all()
    return {row.id: {"name": row.name, "unit_amount": row.unit_amount, "currency": row.currency,
                     "interval": row.interval} for row in rows}
