"""Accounts, their members and roles, and the buyer address printed on invoices."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from enum import StrEnum

from babel import Locale

from renewly.domain.errors import InvalidInput

SUPPORTED_LOCALES = ("en", "fr")

# Deliberately simple: one @, no spaces, a dot in the domain. Deliverability is the mailer's problem.
# CLDR also names regions that are not countries a buyer can live in.
_NOT_COUNTRIES = frozenset({"ZZ", "EU", "EZ", "UN", "QO", "XA", "XB"})
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class Role(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"
    AGENT = "agent"


class AccountStatus(StrEnum):
    ACTIVE = "active"
    PAST_DUE = "past_due"
    CANCELLED = "cancelled"
    DELETED = "deleted"


def validate_email(email: str) -> str:
    normalized = (email or "").strip().lower()
    if not _EMAIL.match(normalized):
        raise InvalidInput(f"{email!r} is not an e-mail address", code="invalid_email")
    return normalized


def validate_locale(locale: str) -> str:
    if locale not in SUPPORTED_LOCALES:
        raise InvalidInput(f"unsupported locale {locale!r}: expected one of {', '.join(SUPPORTED_LOCALES)}",
                           code="unsupported_locale")
    return locale


def validate_country(country: str) -> str:
    code = (country or "").strip().upper()
    if len(code) != 2 or not code.isalpha() or code in _NOT_COUNTRIES or code not in Locale("en").territories:
        raise InvalidInput(f"unknown country {country!r}: expected an ISO 3166 code such as FR or US",
                           code="unknown_country")
    return code


def validate_role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise InvalidInput(f"unknown role {role!r}: expected owner, admin or agent", code="unknown_role") from None


def validate_member_role(role: str) -> Role:
    """Roles that can be given to an added member: the owner is set at creation or by a transfer."""
    parsed = validate_role(role)
    if parsed is Role.OWNER:
        raise InvalidInput("an account has exactly one owner; support transfers ownership instead",
                           code="second_owner")
    return parsed


@dataclass(frozen=True, slots=True)
class BuyerAddress:
    """The organisation billed, as printed on invoices (R3). Snapshotted into each invoice at issue."""

    name: str
    line1: str = ""
    line2: str = ""
    postcode: str = ""
    city: str = ""
    country: str = ""
    vat_id: str = ""

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise InvalidInput("the buyer's name cannot be empty", code="invalid_address")
        if self.country:
            object.__setattr__(self, "country", validate_country(self.country))

    def snapshot(self) -> dict[str, str]:
        return asdict(self)
