"""Plans: what is sold, at what price per seat, renewed on which interval."""

from __future__ import annotations

import re
from dataclasses import dataclass

from renewly.accounts.rules.members import NAME_LENGTH, validate_text
from renewly.shared.calendar import validate_interval
from renewly.shared.errors import InvalidInput
from renewly.shared.money import Money, validate_currency

_PLAN_CODE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
# One set of bounds for both engines, checked at the door: a seat count and a price whose
# invoice would not fit in a BIGINT (9.2e18) were accepted, then stopped every renewal. With
# these, a period's subscription line is at most 1e15 minor units (money.MAX_DOCUMENT_TOTAL: 1e16).
MAX_SEATS = 1_000_000
MAX_UNIT_AMOUNT = 1_000_000_000  # minor units per seat and period: ten million of a two-decimal currency


@dataclass(frozen=True, slots=True)
class Plan:
    code: str
    name: str
    interval: str
    unit_price: Money  # per seat and per interval

    @classmethod
    def define(cls, code: str, name: str, interval: str, price: int, currency: str) -> Plan:
        if not _PLAN_CODE.match(code or ""):
            raise InvalidInput(f"invalid plan code {code!r}: lowercase letters, digits, - and _", code="invalid_plan")
        if not (name or "").strip():
            raise InvalidInput("a plan needs a name", code="invalid_plan")
        name = validate_text(name, "a plan's name", NAME_LENGTH)
        if price < 0:
            raise InvalidInput(f"a plan's price cannot be negative (got {price})", code="negative_price")
        if price > MAX_UNIT_AMOUNT:
            raise InvalidInput(f"a plan's price is at most {MAX_UNIT_AMOUNT} minor units per seat (got {price})",
                               code="price_too_large")
        return cls(code, name.strip(), validate_interval(interval), Money(price, validate_currency(currency)))


def validate_seats(seats: int) -> int:
    if seats < 1:
        raise InvalidInput(f"a subscription needs at least one seat (got {seats})", code="invalid_seats")
    if seats > MAX_SEATS:
        raise InvalidInput(f"a subscription has at most {MAX_SEATS} seats (got {seats})", code="too_many_seats")
    return seats
