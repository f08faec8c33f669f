"""`/v1/accounts/{account_id}/payment_method`: the account's card, as Renewly keeps it (payments/
cards.py, as `renewly cards`): the gateway's token stays inside, the API shows brand, last 4
digits and expiry (R5.4). Only the owner changes it (R6.1): the host product says which member
acts, and anyone else is refused as the command line refuses them.

A card number never comes through here: the host product's page hands the card to the gateway's
own form, which gives a token. A body with a card number anywhere in it is refused before any of
it is read (`refuse_card_numbers`), and never stored, logged or repeated."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from renewly.payments.cards import add_card, current_card
from renewly.shared.errors import NotFound
from renewly.web.dependencies import AppPorts, refuse_card_numbers
from renewly.web.fields import Email, path_id, text
from renewly.web.problems import problems

router = APIRouter(tags=["payment methods"], dependencies=[Depends(refuse_card_numbers)])
AccountId = Annotated[int, path_id("The account's id.")]


class PaymentMethodIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    token: Annotated[str, text(255)] = Field(description="The card token the payment gateway's card form gave; "
                                                         "never a card number.")
    acting_member: Email = Field(description="Who is doing it: the owner's e-mail, or a 403 saying who can (R6.1).")


class PaymentMethod(BaseModel):
    object: Literal["payment_method"] = "payment_method"
    account_id: int
    brand: str
    last4: str
    exp_month: int
    exp_year: int
    added_by: str = Field(description="The member who saved it.")
    added_at: datetime


class PaymentMethodSaved(PaymentMethod):
    retries_requested: int = Field(description="Unpaid invoices the next payment batch retries with it (R7.1).")


def _current(app: AppPorts, account_id: int) -> PaymentMethod:
    card = current_card(app, account_id)
    if card is None:
        raise NotFound(f"account {account_id} has no card", code="no_payment_method")
    return PaymentMethod(account_id=account_id, **card)


@router.post("/accounts/{account_id}/payment_method", status_code=201, response_model=PaymentMethodSaved,
             responses=problems(403, 404))
def payment_method_attach(account_id: AccountId, body: PaymentMethodIn, app: AppPorts) -> PaymentMethodSaved:
    """The owner saves a card after its verification authorization (R5.1); it replaces the one
    before, and the next payment batch retries the unpaid invoices (R7.1). A declined card is a
    400 card_declined, and nothing is saved."""
    saved = add_card(app, account_id, card_token=body.token, acting_email=body.acting_member)
    return PaymentMethodSaved(**_current(app, account_id).model_dump(), retries_requested=saved.retries_requested)


@router.get("/accounts/{account_id}/payment_method", response_model=PaymentMethod, responses=problems(404))
def payment_method_get(account_id: AccountId, app: AppPorts) -> PaymentMethod:
    """The account's card: brand, last 4 digits, expiry (404 no_payment_method if it has none)."""
    return _current(app, account_id)
