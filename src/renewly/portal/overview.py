"""What the owner's billing pages show (R1.1): subscription, invoices, payment method, buyer
address, billing contacts and, apart, the requests waiting for the owner's consent — to the
owner only, and only of the owner's own account (R1.2).

The portal (a later issue) renders this; the owner check is asked here, below any edge, so that
none can forget it (renewly.accounts.accounts.require_owner_of). It reads every concept below it:
accounts, billing (invoices), payments (the card); hence its own package, above them. The PDF
download of each invoice comes with the documents issue.
"""

from __future__ import annotations

from typing import Any

from renewly.accounts.accounts import buyer_of, describe_account, load_account, require_owner_of
from renewly.accounts.contacts import list_contacts
from renewly.accounts.rules.contacts import ContactStatus
from renewly.billing.invoices import list_invoices
from renewly.payments.cards import current_card
from renewly.ports import Ports


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
