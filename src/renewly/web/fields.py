"""The bounds a request is held to at the door, the same on SQLite and PostgreSQL: each string
no longer than its column, each integer within what both engines hold and the rules accept.
The use cases check the rest (an unknown currency, a control character) and refuse with their
own codes; these only spare them what no column could take, and document it in the OpenAPI.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path
from pydantic import Field, StringConstraints

LARGEST_ID = 2**63 - 1  # BIGINT on PostgreSQL; SQLite's INTEGER holds the same


def text(max_length: int, *, min_length: int = 1) -> object:
    """A string of `min_length` to `max_length` characters (its column's length)."""
    return StringConstraints(min_length=min_length, max_length=max_length)


Id = Annotated[int, Field(ge=1, le=LARGEST_ID)]
# An address the rules then check (accounts.rules.members.validate_email); no \s in the pattern:
# JSON Schema's regular expressions (ECMAScript's) and pydantic's (Rust's) disagree on it.
Email = Annotated[str, StringConstraints(min_length=3, max_length=320, pattern=r"^[^@]+@[^@]+$"),
                  Field(json_schema_extra={"format": "email"})]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{3}$"),
                     Field(description="ISO 4217, e.g. EUR, USD", examples=["EUR"])]
Country = Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2}$"),
                    Field(description="ISO 3166-1 alpha-2, e.g. FR", examples=["FR"])]


def path_id(what: str) -> object:
    """A path's id: `account_id: Annotated[int, path_id("The account's id.")]`."""
    return Path(ge=1, le=LARGEST_ID, description=what)
