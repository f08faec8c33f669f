"""The one cursor every list uses: `?limit=` (1 to 100, default 20) and `?cursor=`, answered by
`{"object": "list", "data": [...], "has_more": ..., "next_cursor": ...}`.

Lists go by increasing id, so a page never shifts when rows are added meanwhile (new ones come
last). The cursor is opaque to clients: the base64 of where the page ended, `{"after": id}`. It
is not signed: it only says where to start, and the key that sends it may read the whole list
anyway; a cursor that does not decode is refused (400 invalid_cursor).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Generic, Literal, TypeVar

from fastapi import Depends, Query
from pydantic import BaseModel
from sqlalchemy import Column, Connection, Select, bindparam

from renewly.shared.errors import InvalidInput
from renewly.web.fields import LARGEST_ID

Item = TypeVar("Item")
MOST_PER_PAGE = 100
CURSOR_LENGTH = 100


class Page(BaseModel, Generic[Item]):
    object: Literal["list"] = "list"
    data: list[Item]
    has_more: bool
    next_cursor: str | None


@dataclass(frozen=True)
class PageRequest:
    limit: int
    after: int  # the last id of the page before (0: from the first)


async def page_request(
        limit: Annotated[int, Query(ge=1, le=MOST_PER_PAGE, description="How many items (1 to 100).")] = 20,
        cursor: Annotated[str | None, Query(max_length=CURSOR_LENGTH, pattern="^[A-Za-z0-9_=-]+$",
                                            description="The `next_cursor` of the page before.")] = None,
) -> PageRequest:
    """(async: no I/O, so FastAPI calls it on the event loop, not through the thread pool.)"""
    return PageRequest(limit=limit, after=0 if cursor is None else decode(cursor))


# A list route's parameters: `def list_things(page: Paged, ...)`.
Paged = Annotated[PageRequest, Depends(page_request)]


def encode(after: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": after}, separators=(",", ":")).encode()).decode()


def decode(cursor: str) -> int:
    try:
        after = json.loads(base64.urlsafe_b64decode(cursor.encode()))["after"]
    except (binascii.Error, ValueError, TypeError, KeyError, UnicodeDecodeError):
        after = None
    if type(after) is not int or not 0 <= after <= LARGEST_ID:
        raise InvalidInput("the cursor is not one this API gave: pass a list's next_cursor as it came",
                           code="invalid_cursor")
    return after


def paginate(conn: Connection, query: Select, key: Column, page: PageRequest,
             shape: Callable[[Any], Item]) -> Page[Item]:
    """One page of `query` (which must select `key`, a unique integer column, usually the id),
    each row made an item by `shape`: the rows after the cursor, in increasing `key`, one more
    asked to know whether more follow."""
    rows: Sequence[Any] = conn.execute(after_the_cursor(query, key), page_bounds(page)).all()
    return page_of(rows, page, lambda row: getattr(row, key.name), shape)


def after_the_cursor(query: Select, key: Column) -> Select:
    """The rows of `query` after a page's cursor, in increasing `key`, as many as it asks: its
    bounds are given when it runs (`page_bounds`), so that a hot read builds it once."""
    return query.where(key > bindparam("page_after")).order_by(key).limit(bindparam("page_limit"))


def page_bounds(page: PageRequest) -> dict[str, int]:
    """The bounds of `after_the_cursor` for this page: one row more than it shows, to know
    whether more follow."""
    return {"page_after": page.after, "page_limit": page.limit + 1}


def page_of(rows: Sequence[Any], page: PageRequest, key: Callable[[Any], int],
            shape: Callable[[Any], Item]) -> Page[Item]:
    """The page of `rows` that a use case listed after the cursor, asked for `page.limit + 1`
    (the one more says whether more follow); `key` gives a row's cursor, usually its id."""
    more = len(rows) > page.limit
    shown = rows[:page.limit]
    return Page(data=[shape(row) for row in shown], has_more=more,
                next_cursor=encode(key(shown[-1])) if more else None)
