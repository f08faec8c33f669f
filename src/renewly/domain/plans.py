"""Plans: what is sold, at what price per seat, renewed on which interval."""

from __future__ import annotations

import re
from dataclasses import dataclass

from renewly.domain.calendar import validate_interval
from renewly.domain.errors import InvalidInput
from renewly.domain.money import Money, validate_currency

_PLAN_CODE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


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
        if price < 0:
            raise InvalidInput(f"a plan's price cannot be negative (got {price})", code="negative_price")
        return cls(code, name.strip(), validate_interval(interval), Money(price, validate_currency(currency)))


def validate_seats(seats: int) -> int:
    if seats < 1:
        raise InvalidInput(f"a subscription needs at least one seat (got {seats})", code="invalid_seats")
    return seats
