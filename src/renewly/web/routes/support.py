"""What the operator's support staff do, from the host product's back office: a temporary
reactivation of a cancelled account (R9.2), a transfer of ownership (R6.1), the invoices of a
month sent again (R2.3). Each is audited with its reason, the API key as the actor."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from renewly.accounts.accounts import load_account, transfer_ownership
from renewly.accounts.rules.members import REASON_LENGTH, validate_email
from renewly.adapters.db.engine import reading
from renewly.billing.invoices import resend_invoices_of_month
from renewly.config.policy import LIMITS
from renewly.dunning.reactivation import grant_reactivation
from renewly.dunning.rules.reactivation import last_day
from renewly.web.dependencies import AppPorts, Caller
from renewly.web.fields import Email, path_id, text
from renewly.web.problems import problems

router = APIRouter(tags=["support"])
AccountPath = Annotated[int, path_id("The account's id.")]
Reason = Annotated[str, text(REASON_LENGTH), Field(description="Why, for the audit log.")]
# A window no longer than a policy file may make the default one (config/policy.py).
MOST_REACTIVATION_DAYS = next(most for name, _least, _default, most in LIMITS if name == "reactivation_days")


class ReactivationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Reason
    days: Annotated[int, Field(ge=1, le=MOST_REACTIVATION_DAYS)] | None = Field(
        None, description="Today and the days after it; default: the policy's window.")


class Reactivation(BaseModel):
    object: Literal["reactivation"] = "reactivation"
    account_id: int
    ends_at: datetime = Field(description="The local midnight that ends the window.")
    last_day: date = Field(description="Its last whole day, in the account's time zone.")
    timezone: str


@router.post("/accounts/{account_id}/reactivate", response_model=Reactivation, responses=problems(403, 404))
def support_reactivate(account_id: AccountPath, body: ReactivationIn, app: AppPorts, caller: Caller) -> Reactivation:
    """Grant a cancelled account a temporary reactivation: its owner may use the billing pages to pay (R9.2)."""
    ends_at = grant_reactivation(app, account_id, days=body.days, reason=body.reason, actor=caller.actor)
    with reading(app.engine) as conn:
        zone = load_account(conn, account_id).timezone
    return Reactivation(account_id=account_id, ends_at=ends_at, last_day=last_day(ends_at, zone), timezone=zone)


class OwnershipTransferIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    to: Email = Field(description="A member of the account: the new owner.")
    reason: Reason


class OwnershipTransfer(BaseModel):
    object: Literal["ownership_transfer"] = "ownership_transfer"
    account_id: int
    owner: str = Field(description="The new owner.")
    previous_owner: str = Field(description="Now an admin.")


@router.post("/accounts/{account_id}/transfer_ownership", response_model=OwnershipTransfer,
             responses=problems(403, 404))
def support_transfer_ownership(account_id: AccountPath, body: OwnershipTransferIn, app: AppPorts,
                               caller: Caller) -> OwnershipTransfer:
    """Make another member the owner, when the owner is gone (R6.1); the previous owner becomes an admin."""
    previous = transfer_ownership(app, account_id, to_email=body.to, reason=body.reason, actor=caller.actor)
    return OwnershipTransfer(account_id=account_id, owner=validate_email(body.to), previous_owner=previous)


class InvoiceResendIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    month: Annotated[str, Field(pattern=r"^[0-9]{4}-(0[1-9]|1[0-2])$", examples=["2026-01"],
                                description="YYYY-MM: the invoices issued then.")]
    reason: Reason


class InvoiceResend(BaseModel):
    object: Literal["invoice_resend"] = "invoice_resend"
    account_id: int
    month: str
    invoices: list[str] = Field(description="The invoices' numbers: one e-mail each to the billing contacts, "
                                            "written to the outbox, which the mail batch delivers.")


@router.post("/accounts/{account_id}/resend_invoices", response_model=InvoiceResend, responses=problems(403, 404))
def support_resend_invoices(account_id: AccountPath, body: InvoiceResendIn, app: AppPorts,
                            caller: Caller) -> InvoiceResend:
    """Send the invoices of a month again to the account's billing contacts (R2.3)."""
    year, month = (int(part) for part in body.month.split("-"))
    sent = resend_invoices_of_month(app, account_id, year=year, month=month, reason=body.reason, actor=caller.actor)
    return InvoiceResend(account_id=account_id, month=body.month, invoices=sent)
