"""`/v1/accounts`: customer accounts with their owner, their buyer address (R3) and their members
and roles (accounts/accounts.py, as `renewly accounts` and `renewly members`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Select, bindparam, select

from renewly.accounts.accounts import (
    add_member,
    change_member_role,
    create_account,
    load_account,
    remove_member,
    update_buyer_address,
)
from renewly.adapters.db.engine import reading
from renewly.adapters.db.tables import accounts, members
from renewly.shared.errors import NotFound
from renewly.web.dependencies import AppPorts, Caller
from renewly.web.fields import Country, Currency, Email, Timezone, path_id, text
from renewly.web.pagination import Page, Paged, paginate
from renewly.web.problems import problems
from renewly.web.threads import in_a_read_thread

router = APIRouter(tags=["accounts"])
AccountId = Annotated[int, path_id("The account's id.")]
MemberEmail = Annotated[str, Path(min_length=3, max_length=320, pattern=r"^[^@/]+@[^@/]+$",
                                   description="The member's e-mail.")]


class BuyerAddress(BaseModel):
    """The organisation billed, as printed on invoices issued from now on (R3.1)."""

    name: str
    line1: str
    line2: str
    postcode: str
    city: str
    country: str
    vat_id: str


class Account(BaseModel):
    object: Literal["account"] = "account"
    id: int
    name: str
    status: Literal["active", "past_due", "cancelled", "deleted"]
    locale: Literal["en", "fr"]
    timezone: str
    currency: str
    owner_email: str | None = Field(description="None once its personal data is deleted (R10.1).")
    buyer: BuyerAddress
    created_at: datetime


class AddressIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, text(200)] | None = Field(None, description="Default: the account's name.")
    line1: Annotated[str, text(200, min_length=0)] = ""
    line2: Annotated[str, text(200, min_length=0)] = ""
    postcode: Annotated[str, text(32, min_length=0)] = ""
    city: Annotated[str, text(100, min_length=0)] = ""
    vat_id: Annotated[str, text(32, min_length=0)] = ""


class AccountIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, text(200)] = Field(description="The customer's name, printed on invoices.")
    owner_email: Email = Field(description="The one member who changes the card and the address.")
    locale: Literal["en", "fr"] = "en"
    timezone: Timezone = "UTC"  # the account's renewal days and local dates
    currency: Currency = "USD"
    country: Country = Field(description="The buyer's country: it decides the tax.")
    address: AddressIn | None = None


class BuyerAddressIn(BaseModel):
    """The fields to change (those left out stay); only the owner may (R1.1)."""

    model_config = ConfigDict(extra="forbid")
    acting_member: Email = Field(description="Who is doing it: the owner's e-mail, or a 403 saying who can.")
    name: Annotated[str, text(200)] | None = None
    line1: Annotated[str, text(200, min_length=0)] | None = None
    line2: Annotated[str, text(200, min_length=0)] | None = None
    postcode: Annotated[str, text(32, min_length=0)] | None = None
    city: Annotated[str, text(100, min_length=0)] | None = None
    country: Country | None = None
    vat_id: Annotated[str, text(32, min_length=0)] | None = None


class Member(BaseModel):
    object: Literal["member"] = "member"
    id: int
    account_id: int
    email: str
    role: Literal["owner", "admin", "agent"]
    created_at: datetime


class MemberIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: Email
    role: Literal["admin", "agent"]


class RoleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["admin", "agent"]


class MemberRemoved(BaseModel):
    object: Literal["member"] = "member"
    account_id: int
    email: str
    deleted: Literal[True] = True


def _accounts() -> Select:
    owner = select(members.c.email).where(members.c.account_id == accounts.c.id,
                                          members.c.role == "owner").scalar_subquery()
    return select(accounts, owner.label("owner_email"))


def _account(row) -> Account:
    return Account(id=row.id, name=row.name, status=row.status, locale=row.locale, timezone=row.timezone,
                   currency=row.currency, owner_email=row.owner_email, created_at=row.created_at,
                   buyer=BuyerAddress(**{key: getattr(row, f"buyer_{key}") for key in BuyerAddress.model_fields}))


# Built once (the host product's hot read): building a statement and its cache key cost as much
# as sending it (docs/performance.md, "API").
_ONE_ACCOUNT = _accounts().where(accounts.c.id == bindparam("account_id"))


def _one_account(app: AppPorts, account_id: int) -> Account:
    with reading(app.engine) as conn:
        row = conn.execute(_ONE_ACCOUNT, {"account_id": account_id}).first()
    if row is None:
        raise NotFound(f"no account {account_id}", code="unknown_account")
    return _account(row)


def _member(row) -> Member:
    return Member(id=row.id, account_id=row.account_id, email=row.email, role=row.role, created_at=row.created_at)


def _one_member(app: AppPorts, account_id: int, email: str) -> Member:
    with reading(app.engine) as conn:
        row = conn.execute(select(members).where(members.c.account_id == account_id,
                                                 members.c.email == email.strip().lower())).one()
    return _member(row)


@router.post("/accounts", status_code=201, response_model=Account)
def accounts_create(body: AccountIn, app: AppPorts, caller: Caller) -> Account:
    """Create an account with its owner."""
    address = body.address.model_dump(exclude_none=True) if body.address else None
    account_id = create_account(app, name=body.name, owner_email=body.owner_email, locale=body.locale,
                                timezone=body.timezone, currency=body.currency, country=body.country,
                                address=address, actor=caller.actor)
    return _one_account(app, account_id)


@router.get("/accounts", response_model=Page[Account])
def accounts_list(app: AppPorts, page: Paged) -> Page[Account]:
    """The accounts, oldest first."""
    with reading(app.engine) as conn:
        return paginate(conn, _accounts(), accounts.c.id, page, _account)


@router.get("/accounts/{account_id}", response_model=Account, responses=problems(404))
async def accounts_get(account_id: AccountId, app: AppPorts) -> Account:
    """One account."""
    # async, its read on a read thread (web/threads.py): FastAPI checks a plain `def` route's
    # answer in the thread pool too, a second hop (docs/performance.md, "API"); the host
    # product's hot reads.
    return await in_a_read_thread(app, _one_account, app, account_id)


@router.post("/accounts/{account_id}/buyer_address", response_model=BuyerAddress, responses=problems(403, 404))
def accounts_update_buyer_address(account_id: AccountId, body: BuyerAddressIn, app: AppPorts,
                                  caller: Caller) -> BuyerAddress:
    """The owner changes the buyer address printed on future invoices; issued ones keep theirs (R3.1)."""
    changes = body.model_dump(exclude_none=True, exclude={"acting_member"})
    updated = update_buyer_address(app, account_id, changes=changes, acting_email=body.acting_member,
                                   actor=caller.actor)
    return BuyerAddress(**updated)


@router.get("/accounts/{account_id}/members", response_model=Page[Member], responses=problems(404))
def members_list(account_id: AccountId, app: AppPorts, page: Paged) -> Page[Member]:
    """An account's members and their roles, in the order they joined."""
    with reading(app.engine) as conn:
        load_account(conn, account_id)
        return paginate(conn, select(members).where(members.c.account_id == account_id), members.c.id, page,
                        _member)


@router.post("/accounts/{account_id}/members", status_code=201, response_model=Member, responses=problems(403, 404))
def members_add(account_id: AccountId, body: MemberIn, app: AppPorts, caller: Caller) -> Member:
    """Add a member with a role (admin or agent; the owner is set at creation or by a transfer)."""
    add_member(app, account_id, email=body.email, role=body.role, actor=caller.actor)
    return _one_member(app, account_id, body.email)


@router.post("/accounts/{account_id}/members/{email}", response_model=Member, responses=problems(403, 404))
def members_change_role(account_id: AccountId, email: MemberEmail, body: RoleIn, app: AppPorts,
                        caller: Caller) -> Member:
    """Make an admin an agent or the other way round: the banners they see follow (R8.3, R8.4)."""
    change_member_role(app, account_id, email=email, role=body.role, actor=caller.actor)
    return _one_member(app, account_id, email)


@router.delete("/accounts/{account_id}/members/{email}", response_model=MemberRemoved, responses=problems(403, 404))
def members_remove(account_id: AccountId, email: MemberEmail, app: AppPorts, caller: Caller) -> MemberRemoved:
    """Remove a member (never the owner)."""
    remove_member(app, account_id, email=email, actor=caller.actor)
    return MemberRemoved(account_id=account_id, email=email.strip().lower())
