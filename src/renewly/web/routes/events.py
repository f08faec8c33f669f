"""`/v1/events`: what happened, as the outbox recorded it in the transaction of each change
(outbox/writer.py, as `renewly outbox list`): an account created, an invoice issued, a payment
declined, a dunning step taken... E-mails are rows of the outbox too, and are not events: they
are not listed here. An event's id never changes and is never given twice, so a client that
reads the list from where it stopped sees each event once."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from sqlalchemy import select

from renewly.adapters.db.tables import outbox
from renewly.outbox.reading import TOPIC_LENGTH
from renewly.outbox.writer import EMAIL
from renewly.shared.errors import NotFound
from renewly.web.dependencies import AppPorts
from renewly.web.fields import LARGEST_ID, path_id
from renewly.web.pagination import Page, Paged, paginate
from renewly.web.problems import problems

router = APIRouter(tags=["events"])
EVENTS = select(outbox.c.id, outbox.c.topic, outbox.c.account_id, outbox.c.created_at, outbox.c.payload).where(
    outbox.c.topic != EMAIL)


class Event(BaseModel):
    object: Literal["event"] = "event"
    id: int
    type: str = Field(description="What happened: account.created, invoice.issued, payment.declined...",
                      examples=["invoice.issued"])
    account_id: int | None = Field(description="The account it is about (none for the operator's own, such as "
                                               "a row a batch set aside).")
    created_at: datetime = Field(description="The instant of the change.")
    data: dict[str, Any] = Field(description="What the event says, as written with the change.")


def _event(row) -> Event:
    return Event(id=row.id, type=row.topic, account_id=row.account_id, created_at=row.created_at, data=row.payload)


@router.get("/events", response_model=Page[Event])
def events_list(app: AppPorts, page: Paged,
                event_type: Annotated[str | None, Query(alias="type", max_length=TOPIC_LENGTH,
                                                        pattern=r"^[a-z_]+(\.[a-z_]+)+$",
                                                        description="Only events of this type.")] = None,
                account_id: Annotated[int | None, Query(ge=1, le=LARGEST_ID,
                                                        description="Only this account's.")] = None,
                ) -> Page[Event]:
    """The events, oldest first."""
    query = EVENTS
    if event_type is not None:
        query = query.where(outbox.c.topic == event_type)
    if account_id is not None:
        query = query.where(outbox.c.account_id == account_id)
    with app.engine.connect() as conn:
        return paginate(conn, query, outbox.c.id, page, _event)


@router.get("/events/{event_id}", response_model=Event, responses=problems(404))
def events_get(event_id: Annotated[int, path_id("The event's id.")], app: AppPorts) -> Event:
    """One event."""
    with app.engine.connect() as conn:
        row = conn.execute(EVENTS.where(outbox.c.id == event_id)).first()
    if row is None:
        raise NotFound(f"no event {event_id}", code="unknown_event")
    return _event(row)
