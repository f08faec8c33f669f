"""`/v1/events`: what happened, as the outbox recorded it in the transaction of each change
(outbox/writer.py, as `renewly outbox list`), under the public types and with the data its
webhooks carry (webhooks/rules/events.py, docs/webhooks.md): an account created, an invoice
issued, a payment declined, a dunning step taken... E-mails are rows of the outbox too, and are
not events: they are not listed here. An event's id never changes and is never given twice, so
a client that reads the list from where it stopped sees each event once; `webhook_id` is the
`webhook-id` of its deliveries, for a receiver that reads both."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlalchemy import select

from renewly.adapters.db.engine import reading
from renewly.adapters.db.tables import outbox
from renewly.shared.errors import NotFound
from renewly.web.dependencies import AppPorts
from renewly.web.fields import LARGEST_ID, path_id, text
from renewly.web.pagination import Page, Paged, paginate
from renewly.web.problems import problems
from renewly.webhooks.rules.events import PUBLIC_TYPES, message, validate_event_types, wants, webhook_id

router = APIRouter(tags=["events"])
# The outbox's rows that are events for the host product: the topics with a public type.
EVENTS = select(outbox.c.id, outbox.c.topic, outbox.c.account_id, outbox.c.created_at, outbox.c.payload).where(
    outbox.c.topic.in_(sorted(PUBLIC_TYPES)))
TYPE_LENGTH = 64  # the longest public type is far shorter; its family and "*" are shorter still


class Event(BaseModel):
    object: Literal["event"] = "event"
    id: int
    webhook_id: str = Field(description="The webhook-id its deliveries carry (msg_ and the id).",
                            examples=["msg_17"])
    type: str = Field(description="What happened, as webhooks name it: account.created, invoice.issued, "
                                  "payment.declined, member.banner_changed...", examples=["invoice.issued"])
    account_id: int | None = Field(description="The account it is about (none for the operator's own, such as "
                                               "a row a batch set aside).")
    created_at: datetime = Field(description="The instant of the change (the webhook's timestamp).")
    data: dict[str, Any] = Field(description="What the event says, as written with the change: its webhook's "
                                             "`data`.")


def _event(row) -> Event:
    sent = message(row.topic, row.created_at, row.account_id, row.payload)
    return Event(id=row.id, webhook_id=webhook_id(row.id), type=sent["type"], account_id=row.account_id,
                 created_at=row.created_at, data=sent["data"])


@router.get("/events", response_model=Page[Event])
def events_list(app: AppPorts, page: Paged,
                event_type: Annotated[list[Annotated[str, text(TYPE_LENGTH)]] | None, Query(
                    alias="type", description="Only events of these types, as a webhook endpoint names them: "
                                              "`invoice.issued`, a family `subscription.*`, or `*`.")] = None,
                account_id: Annotated[int | None, Query(ge=1, le=LARGEST_ID,
                                                        description="Only this account's.")] = None,
                ) -> Page[Event]:
    """The events, oldest first."""
    query = EVENTS
    if event_type is not None:
        wanted = validate_event_types(event_type)  # as a webhook endpoint's: 400 unknown_event_type
        query = query.where(outbox.c.topic.in_(sorted(topic for topic, public in PUBLIC_TYPES.items()
                                                      if wants(wanted, public))))
    if account_id is not None:
        query = query.where(outbox.c.account_id == account_id)
    with reading(app.engine) as conn:
        return paginate(conn, query, outbox.c.id, page, _event)


@router.get("/events/{event_id}", response_model=Event, responses=problems(404))
def events_get(event_id: Annotated[int, path_id("The event's id.")], app: AppPorts) -> Event:
    """One event."""
    with reading(app.engine) as conn:
        row = conn.execute(EVENTS.where(outbox.c.id == event_id)).first()
    if row is None:
        raise NotFound(f"no event {event_id}", code="unknown_event")
    return _event(row)
