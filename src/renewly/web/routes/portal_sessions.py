"""`/v1/portal_sessions`: a one-time sign-in link to the billing portal for one member, as
Stripe's customer-portal sessions: the host product's backend asks for it when the member clicks
"Billing", and sends their browser to `url` at once (renewly/portal/sessions.py, docs/portal.md).
The link works once, for `portal.link_minutes` (5 by default); what the member then sees follows
their role and the account's status (R1, R8.3, R8.4, R9)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from renewly.portal.sessions import create_link
from renewly.web.dependencies import AppPorts, Caller
from renewly.web.fields import Email, Id
from renewly.web.problems import problems

router = APIRouter(tags=["portal"])


class PortalSessionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    account_id: Id = Field(description="The account the member belongs to.")
    member: Email = Field(description="The member's e-mail: any role (the portal shows each what their role allows).")


class PortalSession(BaseModel):
    object: Literal["portal_session"] = "portal_session"
    account_id: int
    member: str = Field(description="The member's e-mail, as stored (lower case).")
    url: str = Field(description="The one-time sign-in link: send the member's browser there now.")
    expires_at: datetime = Field(description="After this, or once opened, the link no longer works.")


@router.post("/portal_sessions", status_code=201, response_model=PortalSession, responses=problems(403, 404))
def portal_sessions_create(body: PortalSessionIn, app: AppPorts, caller: Caller) -> PortalSession:
    """A one-time link that signs a member in to the billing portal (single use, a few minutes)."""
    link = create_link(app, body.account_id, member=body.member, actor=caller.actor)
    return PortalSession(account_id=link.account_id, member=link.member, url=link.url, expires_at=link.expires_at)
