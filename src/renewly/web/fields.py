"""The bounds a request is held to at the door, the same on SQLite and PostgreSQL: each string
no longer than its column, each integer within what both engines hold and the rules accept.
The use cases check the rest (an unknown currency, a control character) and refuse with their
own codes; these only spare them what no column could take, and document it in the OpenAPI.
"""

from __future__ import annotations

import re
import string
from collections.abc import Collection
from datetime import date
from functools import cache
from typing import Annotated
from zoneinfo import available_timezones

from fastapi import Path
from pydantic import AfterValidator, BeforeValidator, Field, JsonValue, StringConstraints

from renewly.accounts.rules.members import validate_country
from renewly.shared.calendar import is_known_timezone
from renewly.shared.errors import InvalidInput
from renewly.shared.money import tender_currencies

# The largest id the API takes: the largest integer every JSON reader keeps exactly (a JavaScript
# number, a float64), far below what both engines hold (2^63-1) and what any sequence reaches.
LARGEST_ID = 2**53 - 1


def text(max_length: int, *, min_length: int = 1) -> object:
    """A string of `min_length` to `max_length` characters (its column's length)."""
    return StringConstraints(min_length=min_length, max_length=max_length)


def one_of(values: Collection[str], description: str) -> tuple[object, ...]:
    """A string among `values`, listed in the OpenAPI document (an `enum`) and checked at the
    door, so that what the document calls valid is what the rules accept."""
    allowed = frozenset(values)

    def among(value: str) -> str:
        if value not in allowed:
            raise ValueError("not one of the values the document lists")
        return value

    listed: list[JsonValue] = [*sorted(allowed)]
    return AfterValidator(among), Field(description=description, json_schema_extra={"enum": listed})


@cache
def countries() -> frozenset[str]:
    """The ISO 3166 codes the buyer-address rule accepts (upper case, as the rule keeps them)."""
    found = set()
    for first in string.ascii_uppercase:
        for second in string.ascii_uppercase:
            try:
                found.add(validate_country(first + second))
            except InvalidInput:
                continue
    return frozenset(found)


@cache
def timezones() -> frozenset[str]:
    return frozenset(zone for zone in available_timezones() if is_known_timezone(zone))


def _json_integer(value: object) -> object:
    # pydantic's lax mode takes true for 1 and "5" for 5: not integers in JSON, and the document
    # says integer. An integral float (5.0) is one, as JSON Schema says.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("an integer is expected")
    return value


def _json_date(value: object) -> object:
    # A date as the document says it (RFC 3339 full-date), not a timestamp nor a datetime.
    if value is not None and not (isinstance(value, str) and _DATE.fullmatch(value)):
        raise ValueError("a date is expected, YYYY-MM-DD")
    return value


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def integer(*, ge: int, le: int, description: str | None = None) -> tuple[object, ...]:
    """A request body's integer from `ge` to `le`: `seats: Annotated[int, *integer(ge=1, le=10)]`
    (the bounds before the check of its JSON type, so that the document states them)."""
    return Field(ge=ge, le=le, description=description), BeforeValidator(_json_integer)


# The types of a request body's booleans, dates and ids: what JSON says, nothing coerced.
Boolean = Annotated[bool, Field(strict=True)]
Day = Annotated[date | None, BeforeValidator(_json_date)]
Id = Annotated[int, *integer(ge=1, le=LARGEST_ID)]
# An address the rules then check (accounts.rules.members.validate_email); no \s in the pattern:
# JSON Schema's regular expressions (ECMAScript's) and pydantic's (Rust's) disagree on it.
Email = Annotated[str, StringConstraints(min_length=3, max_length=320, pattern=r"^[^@]+@[^@]+$"),
                  Field(json_schema_extra={"format": "email"})]
Currency = Annotated[str, *one_of(tender_currencies(), "ISO 4217, upper case: EUR, USD...")]
Country = Annotated[str, *one_of(countries(), "ISO 3166-1 alpha-2, upper case: FR, US...")]
Timezone = Annotated[str, *one_of(timezones(), "An IANA time zone: Europe/Paris, UTC...")]


def path_id(what: str) -> object:
    """A path's id: `account_id: Annotated[int, path_id("The account's id.")]`."""
    return Path(ge=1, le=LARGEST_ID, description=what)
