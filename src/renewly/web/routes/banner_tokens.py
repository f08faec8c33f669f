"""`/v1/banner_tokens`: a short-lived signed token with which the host product's dashboard shows a
member their banner of today in an iframe (`/embed/banner`, renewly/portal/banner_tokens.py,
docs/portal.md). The host's backend asks for one each time it renders the dashboard; the token
works for `embed.token_minutes` (5 by default), for that member of that account only."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from renewly.portal.banner_tokens import create_banner_token
from renewly.web.dependencies import AppPorts
from renewly.web.fields import Email, Id
from renewly.web.problems import problems

router = APIRouter(tags=["portal"])


class BannerTokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    account_id: Id = Field(description="The account the member belongs to.")
    member: Email = Field(description="The member's e-mail: any role (the banner shown follows it, R8.3, R8.4).")


class BannerToken(BaseModel):
    object: Literal["banner_token"] = "banner_token"
    account_id: int
    member: str = Field(description="The member's e-mail, as stored (lower case).")
    token: str = Field(description="Signed; for the web component's `token` attribute.")
    url: str = Field(description="The iframe's address (`src`): the member's banner of today, or nothing.")
    expires_at: datetime = Field(description="After this, the page answers that the token expired.")


@router.post("/banner_tokens", status_code=201, response_model=BannerToken, responses=problems(403, 404))
def banner_tokens_create(body: BannerTokenIn, app: AppPorts) -> BannerToken:
    """A short-lived signed token showing a member their banner in the host's dashboard (an iframe)."""
    made = create_banner_token(app, body.account_id, member=body.member)
    return BannerToken(account_id=made.account_id, member=made.member, token=made.token, url=made.url,
                       expires_at=made.expires_at)
