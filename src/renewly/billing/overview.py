"""What the owner's billing pages show (R1.1): subscription, invoices, payment method, buyer
address, billing contacts and, apart, the requests waiting for the owner's consent — to the
owner only, and only of the owner's own account (R1.2).

The portal (a later issue) renders this; the check lives here, in the service layer, so that no
edge can forget it. The PDF download of each invoice comes with the documents issue.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from renewly.accounts.accounts import buyer_of, describe_account, load_account
from renewly.accounts.contacts import list_contacts
from renewly.accounts.rules.contacts import ContactStatus
from renewly.accounts.rules.members import Role, validate_email
from renewly.adapters.db.tables import members
from renewly.billing.invoices import list_invoices
from renewly.dunning.reactivation import require_access
from renewly.payments.cards import current_card
from renewly.ports import Ports
from renewly.shared.errors import NotAllowed


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


def billing_overview(app: Ports, account_id: int, *, acting_email: str) -> dict[str, Any]:
    require_owner_of(app, account_id, acting_email)
    account = describe_account(app, account_id)
    with app.engine.connect() as conn:
        buyer = buyer_of(load_account(conn, account_id))
    contacts = list_contacts(app, account_id)
    return {"account_id": account_id, "name": account["name"], "status": account["status"],
            "currency": account["currency"], "locale": account["locale"],
            "subscriptions": account["subscriptions"], "invoices": list_invoices(app, account_id),
            "payment_method": current_card(app, account_id), "buyer": buyer,
            # Who receives billing e-mails, and apart, the requests still waiting for the owner's consent
            # (R4.1): a request is no contact until the owner approves it.
            "billing_contacts": [c for c in contacts if c["status"] == ContactStatus.ACTIVE.value],
            "contact_requests": [c for c in contacts if c["status"] == ContactStatus.REQUESTED.value]}
