"""`/v1/webhook_endpoints`, `/v1/webhook_deliveries`, `/v1/webhook_event_types`: where the host
product receives events, what became of each delivery, one more try (renewly.webhooks, the same
use cases as `renewly webhooks ...`; docs/webhooks.md). An endpoint's signing secret is in the
answer that registers it or rotates it, and in no other."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from renewly.web.dependencies import AppPorts, Caller
from renewly.web.fields import path_id, text
from renewly.web.pagination import Page, Paged, page_of
from renewly.web.problems import problems
from renewly.webhooks import deliveries, endpoints
from renewly.webhooks.rules.endpoints import DESCRIPTION_LENGTH, MOST_OVERLAP_HOURS, REASON_LENGTH, URL_LENGTH
from renewly.webhooks.rules.events import MOST_TYPES, TYPES

router = APIRouter(tags=["webhooks"])

EndpointId = Annotated[int, path_id("The endpoint's id.")]
DeliveryId = Annotated[int, path_id("The delivery's id.")]
DeliveryStatus = Literal["pending", "replay", "delivered", "failed"]  # webhooks.rules.answers.Status
EVENT_TYPE_LENGTH = 64  # the longest public type is far shorter; a family ("contact.*") too


class WebhookEndpointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: Annotated[str, text(URL_LENGTH), Field(description="Where events are POSTed: http:// or https://, "
                                                            "without a user, password or #fragment.")]
    event_types: Annotated[list[Annotated[str, text(EVENT_TYPE_LENGTH)]],
                           Field(min_length=1, max_length=MOST_TYPES,
                                 description="Types (GET /v1/webhook_event_types), families (`contact.*`) or `*`.")]
    description: Annotated[str, text(DESCRIPTION_LENGTH, min_length=0)] = ""


class DisableIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: Annotated[str, text(REASON_LENGTH, min_length=0), Field(description="Why, for the audit log.")] = ""


class RotateSecretIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    overlap_hours: int = Field(24, ge=0, le=MOST_OVERLAP_HOURS,
                               description="How long the old secret still signs beside the new one (0: stops at once).")


class DeliveryCounts(BaseModel):
    pending: int
    replay: int
    delivered: int
    failed: int


class WebhookEndpoint(BaseModel):
    object: Literal["webhook_endpoint"] = "webhook_endpoint"
    id: int
    url: str
    event_types: list[str]
    description: str
    created_at: datetime
    events_from: datetime = Field(description="It receives the events written from then on.")
    disabled_at: datetime | None
    disabled_reason: str | None
    failing_since: datetime | None = Field(description="Its first failed try since its last success.")
    previous_secret_until: datetime | None = Field(
        description="After a secret rotation: webhooks are signed with the old secret too until then.")
    deliveries: DeliveryCounts


class NewWebhookEndpoint(WebhookEndpoint):
    secret: str = Field(description="The signing secret (`whsec_...`): in this answer only, never again.")


class RotatedWebhookEndpoint(WebhookEndpoint):
    secret: str = Field(description="The new signing secret (`whsec_...`): in this answer only, never again.")


class DeletedWebhookEndpoint(BaseModel):
    object: Literal["webhook_endpoint"] = "webhook_endpoint"
    id: int
    deleted: Literal[True] = True


class WebhookDelivery(BaseModel):
    object: Literal["webhook_delivery"] = "webhook_delivery"
    id: int
    webhook_id: str = Field(description="The webhook-id header: the same at every try and replay.")
    type: str | None
    endpoint_id: int
    outbox_id: int
    account_id: int | None
    status: DeliveryStatus
    attempt_count: int
    created_at: datetime
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    failed_at: datetime | None


class WebhookAttempt(BaseModel):
    at: datetime
    replay: bool = Field(description="A try the operator asked for.")
    http_status: int | None = Field(description="The endpoint's answer; null: no answer (see `error`).")
    error: str | None
    latency_ms: int
    response_excerpt: str = Field(description="The start of the response's text.")


class WebhookDeliveryDetail(WebhookDelivery):
    attempts: list[WebhookAttempt]


def _endpoint(found: dict[str, Any]) -> WebhookEndpoint:
    return WebhookEndpoint(**found)


def _delivery(found: dict[str, Any]) -> WebhookDelivery:
    return WebhookDelivery(**{**found, "attempt_count": found["attempts"]})


def _detail(found: dict[str, Any]) -> WebhookDeliveryDetail:
    # get_delivery's `attempts` is the log itself, one row per try (its count is the row's).
    return WebhookDeliveryDetail(**{**found, "attempt_count": len(found["attempts"])})


@router.post("/webhook_endpoints", status_code=201, response_model=NewWebhookEndpoint)
def webhook_endpoints_create(body: WebhookEndpointIn, app: AppPorts, caller: Caller) -> NewWebhookEndpoint:
    """Register an endpoint for some event types; the answer holds its signing secret, this once."""
    added = endpoints.add_endpoint(app, url=body.url, event_types=body.event_types, description=body.description,
                                   actor=caller.actor)
    return NewWebhookEndpoint(**endpoints.get_endpoint(app, added.id), secret=added.secret)


@router.get("/webhook_endpoints", response_model=Page[WebhookEndpoint])
def webhook_endpoints_list(app: AppPorts, page: Paged) -> Page[WebhookEndpoint]:
    """The endpoints, oldest first, without their secrets."""
    found = endpoints.list_endpoints(app, after=page.after, limit=page.limit + 1)
    return page_of(found, page, lambda row: row["id"], _endpoint)


@router.get("/webhook_endpoints/{endpoint_id}", response_model=WebhookEndpoint, responses=problems(404))
def webhook_endpoints_get(endpoint_id: EndpointId, app: AppPorts) -> WebhookEndpoint:
    """One endpoint, without its secret, with its deliveries by status."""
    return _endpoint(endpoints.get_endpoint(app, endpoint_id))


@router.post("/webhook_endpoints/{endpoint_id}/disable", response_model=WebhookEndpoint, responses=problems(403, 404))
def webhook_endpoints_disable(endpoint_id: EndpointId, app: AppPorts, caller: Caller,
                              body: DisableIn | None = None) -> WebhookEndpoint:
    """Stop sending to an endpoint; its deliveries wait until it is enabled again."""
    endpoints.disable_endpoint(app, endpoint_id, reason=body.reason if body else "", actor=caller.actor)
    return _endpoint(endpoints.get_endpoint(app, endpoint_id))


@router.post("/webhook_endpoints/{endpoint_id}/enable", response_model=WebhookEndpoint, responses=problems(403, 404))
def webhook_endpoints_enable(endpoint_id: EndpointId, app: AppPorts, caller: Caller) -> WebhookEndpoint:
    """Send to an endpoint again: the deliveries that waited at once, then the events written from now on."""
    endpoints.enable_endpoint(app, endpoint_id, actor=caller.actor)
    return _endpoint(endpoints.get_endpoint(app, endpoint_id))


@router.post("/webhook_endpoints/{endpoint_id}/rotate_secret", response_model=RotatedWebhookEndpoint,
             responses=problems(404))
def webhook_endpoints_rotate_secret(endpoint_id: EndpointId, app: AppPorts, caller: Caller,
                                    body: RotateSecretIn | None = None) -> RotatedWebhookEndpoint:
    """A new signing secret, in this answer only; the old one still signs beside it for
    `overlap_hours` (24 by default), so the receiver switches without refusing an event."""
    rotated = endpoints.rotate_secret(app, endpoint_id, overlap_hours=body.overlap_hours if body else 24,
                                      actor=caller.actor)
    return RotatedWebhookEndpoint(**endpoints.get_endpoint(app, endpoint_id), secret=rotated.secret)


@router.delete("/webhook_endpoints/{endpoint_id}", response_model=DeletedWebhookEndpoint, responses=problems(404))
def webhook_endpoints_delete(endpoint_id: EndpointId, app: AppPorts, caller: Caller) -> DeletedWebhookEndpoint:
    """Remove an endpoint, with its deliveries and their log."""
    endpoints.remove_endpoint(app, endpoint_id, actor=caller.actor)
    return DeletedWebhookEndpoint(id=endpoint_id)


@router.get("/webhook_endpoints/{endpoint_id}/deliveries", response_model=Page[WebhookDelivery],
            responses=problems(404))
def webhook_endpoints_deliveries(endpoint_id: EndpointId, app: AppPorts, page: Paged,
                                 failed: Annotated[bool, Query(description="Only those whose every try failed.")]
                                 = False) -> Page[WebhookDelivery]:
    """An endpoint's deliveries, newest first (a log): `next_cursor` goes on to older ones."""
    found = deliveries.list_deliveries(app, endpoint_id=endpoint_id, failed=failed, limit=page.limit + 1,
                                       before=page.after or None)
    return page_of(found, page, lambda row: row["id"], _delivery)


@router.get("/webhook_deliveries/{delivery_id}", response_model=WebhookDeliveryDetail, responses=problems(404))
def webhook_deliveries_get(delivery_id: DeliveryId, app: AppPorts) -> WebhookDeliveryDetail:
    """One delivery with its log: each try, the endpoint's answer, how long it took."""
    return _detail(deliveries.get_delivery(app, delivery_id))


@router.post("/webhook_deliveries/{delivery_id}/replay", response_model=WebhookDeliveryDetail,
             responses=problems(403, 404))
def webhook_deliveries_replay(delivery_id: DeliveryId, app: AppPorts, caller: Caller) -> WebhookDeliveryDetail:
    """Try a delivery once more, with the same webhook-id, at the next webhooks batch."""
    return _detail(deliveries.replay_delivery(app, delivery_id, actor=caller.actor))


@router.get("/webhook_event_types", response_model=Page[str])
def webhook_event_types_list() -> Page[str]:
    """The event types an endpoint may ask for, all on one page (besides families, `contact.*`, and `*`)."""
    return Page(data=sorted(TYPES), has_more=False, next_cursor=None)

