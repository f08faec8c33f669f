"""`/v1/accounts/{account_id}/billing_contacts`: the addresses that receive an account's billing
e-mails (R4; accounts/contacts.py, as `renewly contacts`). A member asks for an address; it waits
for the owner's consent, who approves or refuses it (R4.1); a contact leaves by itself, by the
removal link of any billing e-mail, or is removed by the owner (R4.2). The host product says who
acts (`acting_member`, `requested_by`); the use cases decide who may.

The owner always receives the billing e-mails and has no row here: it is the account's owner."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from renewly.accounts.accounts import load_account
from renewly.accounts.contacts import (
    approve_contact,
    refuse_contact,
    remove_contact,
    request_contact,
    unsubscribe_contact,
)
from renewly.accounts.rules.contacts import CURRENT
from renewly.accounts.rules.members import validate_email
from renewly.adapters.db.engine import reading
from renewly.adapters.db.tables import billing_contacts
from renewly.web.dependencies import AppPorts
from renewly.web.fields import Email, path_id, text
from renewly.web.pagination import Page, Paged, paginate
from renewly.web.problems import problems

router = APIRouter(tags=["billing contacts"])
AccountId = Annotated[int, path_id("The account's id.")]
ContactEmail = Annotated[str, Path(min_length=3, max_length=320, description="The contact's e-mail address.")]
Status = Literal["requested", "active", "refused", "removed"]


class BillingContact(BaseModel):
    object: Literal["billing_contact"] = "billing_contact"
    id: int
    account_id: int
    email: str
    status: Status = Field(description="requested: waiting for the owner's consent; active: receives the billing "
                                       "e-mails (R4.3); refused; removed.")
    requested_by: str
    requested_at: datetime
    decided_at: datetime | None = Field(description="When the owner approved or refused it.")
    removed_at: datetime | None


class ContactRequestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: Email = Field(description="The address to receive the billing e-mails.")
    requested_by: Email = Field(description="Who asks: a request by the owner adds it at once; anyone else's "
                                            "waits for the owner's consent, who is e-mailed (R4.1).")


class ActingIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    acting_member: Email = Field(description="Who is doing it: the owner (or, to remove, the contact itself); "
                                             "anyone else is a 403 saying who can.")


class RemovalLinkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: Annotated[str, text(2048)] = Field(description="The token of a billing e-mail's removal link, or the "
                                                          "whole link.")


def _contact(row) -> BillingContact:
    return BillingContact(id=row.id, account_id=row.account_id, email=row.email, status=row.status,
                          requested_by=row.requested_by, requested_at=row.requested_at, decided_at=row.decided_at,
                          removed_at=row.removed_at)


def _latest(app: AppPorts, account_id: int, email: str) -> BillingContact:
    """The row of the address a use case just wrote (the last one: one address may have been
    requested, removed and requested again)."""
    with reading(app.engine) as conn:
        row = conn.execute(select(billing_contacts).where(
            billing_contacts.c.account_id == account_id, billing_contacts.c.email == validate_email(email))
            .order_by(billing_contacts.c.id.desc()).limit(1)).one()
    return _contact(row)


@router.get("/accounts/{account_id}/billing_contacts", response_model=Page[BillingContact],
            responses=problems(404))
def billing_contacts_list(account_id: AccountId, app: AppPorts, page: Paged,
                          status: Annotated[list[Status] | None, Query(
                              description="Only these (default: requested and active, the current ones).")] = None,
                          ) -> Page[BillingContact]:
    """An account's billing contacts and the requests waiting for the owner, oldest first."""
    wanted = status or [current.value for current in CURRENT]
    with reading(app.engine) as conn:
        load_account(conn, account_id)  # an unknown account is a 404, not an empty list
        return paginate(conn, select(billing_contacts).where(billing_contacts.c.account_id == account_id,
                                                             billing_contacts.c.status.in_(wanted)),
                        billing_contacts.c.id, page, _contact)


@router.post("/accounts/{account_id}/billing_contacts", status_code=201, response_model=BillingContact,
             responses=problems(403, 404))
def billing_contacts_request(account_id: AccountId, body: ContactRequestIn, app: AppPorts) -> BillingContact:
    """Ask for an address to receive the billing e-mails: `requested` until the owner consents,
    `active` at once when the owner asks (R4.1)."""
    request_contact(app, account_id, email=body.email, requested_by=body.requested_by)
    return _latest(app, account_id, body.email)


@router.post("/accounts/{account_id}/billing_contacts/{email}/approve", response_model=BillingContact,
             responses=problems(403, 404))
def billing_contacts_approve(account_id: AccountId, email: ContactEmail, body: ActingIn,
                             app: AppPorts) -> BillingContact:
    """The owner consents: the address receives the billing e-mails from now on (R4.1)."""
    approve_contact(app, account_id, email=email, acting_email=body.acting_member)
    return _latest(app, account_id, email)


@router.post("/accounts/{account_id}/billing_contacts/{email}/refuse", response_model=BillingContact,
             responses=problems(403, 404))
def billing_contacts_refuse(account_id: AccountId, email: ContactEmail, body: ActingIn,
                            app: AppPorts) -> BillingContact:
    """The owner refuses a request: the address never receives anything (R4.1)."""
    refuse_contact(app, account_id, email=email, acting_email=body.acting_member)
    return _latest(app, account_id, email)


@router.post("/accounts/{account_id}/billing_contacts/{email}/remove", response_model=BillingContact,
             responses=problems(403, 404))
def billing_contacts_remove(account_id: AccountId, email: ContactEmail, body: ActingIn,
                            app: AppPorts) -> BillingContact:
    """A contact takes itself off (or withdraws its request), or the owner takes it off; never
    the owner (R4.2)."""
    remove_contact(app, account_id, email=email, acting_email=body.acting_member)
    return _latest(app, account_id, email)


@router.post("/billing_contacts/unsubscribe", response_model=BillingContact, responses=problems(403, 404))
def billing_contacts_unsubscribe(body: RemovalLinkIn, app: AppPorts) -> BillingContact:
    """Apply a billing e-mail's removal link for the page it leads to (R4.2): its contact leaves
    the list. Each link works once (then 409 removal_link_used), until it expires; an altered one
    is refused."""
    account_id, email = unsubscribe_contact(app, body.token)
    return _latest(app, account_id, email)
