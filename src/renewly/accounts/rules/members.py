"""Accounts, their members and roles, and the buyer address printed on invoices."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass
from enum import StrEnum
from functools import cache

from renewly.shared.errors import InvalidInput

SUPPORTED_LOCALES = ("en", "fr")

# CLDR also names regions that are not countries a buyer can live in.
_NOT_COUNTRIES = frozenset({"ZZ", "EU", "EZ", "UN", "QO", "XA", "XB"})
# CLDR's regions that are countries (those of Babel 2.19, CLDR 49), written out: a country is
# then checked without loading Babel's English locale (about 40 ms, paid at every command's
# start, whose settings check the tax table's countries). A code not listed is asked of Babel,
# so that a newer CLDR's region is still known; tests/accounts/rules/test_members.py checks that
# the list is the installed Babel's.
_COUNTRIES = frozenset("""
    AC AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ
    BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CP CQ CR CU CV CW CX CY CZ DE DG DJ
    DK DM DO DZ EA EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ
    GR GS GT GU GW GY HK HM HN HR HT HU IC ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI
    KM KN KP KR KW KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP
    MQ MR MS MT MU MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM
    PN PR PS PT PW PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX
    SY SZ TA TC TD TF TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN
    VU WF WS XK YE YT ZA ZM ZW
""".split())
# Deliberately simple: one @, no spaces, a dot in the domain. Deliverability is the mailer's problem.
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
    if not _EMAIL.match(normalized) or len(normalized) > 320 or _has_control(normalized):
        raise InvalidInput(f"{email!r} is not an e-mail address", code="invalid_email", values={"email": email or ""})
    return normalized


def validate_text(value: str | None, what: str, max_length: int, *, required: bool = True,
                  field: str = "") -> str:
    """A name, an address line, a reason: trimmed, printable, and no longer than its column holds
    (the same limit on both engines: PostgreSQL refused what SQLite stored). Control characters
    (an ANSI escape that repaints an operator's terminal, a line break in a name) are refused.
    `field` names the form's field a translated page says is wrong (web/refusals.py)."""
    text = _plain_spaces((value or "").strip())
    named = {"field": field} if field else {}
    if required and not text:
        raise InvalidInput(f"{what} cannot be empty", code="invalid_text", values={**named, "case": "empty"})
    if _has_control(text, allow_newlines=what.endswith("reason")):
        raise InvalidInput(f"{what} holds a control character ({text!r})", code="invalid_text",
                           values={**named, "case": "control"})
    if len(text) > max_length:
        raise InvalidInput(f"{what} is at most {max_length} characters (got {len(text)})", code="text_too_long",
                           values={**named, "limit": max_length})
    return text


def _has_control(text: str, *, allow_newlines: bool = False) -> bool:
    if text.isprintable():  # no control character (the common case, in C: an import checks millions)
        return False
    return any(unicodedata.category(char) in _LINE_BREAKING_OR_CONTROL and not (allow_newlines and char == "\n")
               for char in text)


# Unicode's controls, formats, surrogates, private use, unassigned (C*), and the line and paragraph
# separators (Zl, Zp): each would break a line of an invoice or repaint a terminal.
_LINE_BREAKING_OR_CONTROL = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def _plain_spaces(text: str) -> str:
    """Every space separator (no-break, thin, Ogham…) as the ordinary space: what prints the same
    on an invoice and in a terminal, and what a search for the name finds."""
    if text.isprintable():
        return text
    return "".join(" " if unicodedata.category(char) == "Zs" else char for char in text)


# The longest texts the columns hold (adapters/db/tables.py), checked at the door.
NAME_LENGTH, REASON_LENGTH = 200, 2000


def validate_locale(locale: str) -> str:
    if locale not in SUPPORTED_LOCALES:
        raise InvalidInput(f"unsupported locale {locale!r}: expected one of {', '.join(SUPPORTED_LOCALES)}",
                           code="unsupported_locale")
    return locale


def validate_country(country: str) -> str:
    code = (country or "").strip().upper()
    if code in _COUNTRIES:
        return code
    if len(code) != 2 or not code.isalpha() or code in _NOT_COUNTRIES or code not in _territories():
        raise InvalidInput(f"unknown country {country!r}: expected an ISO 3166 code such as FR or US",
                           code="unknown_country", values={"country": code})
    return code


@cache
def _territories() -> frozenset[str]:
    """CLDR's regions, read once (a Locale is built in a fifth of a millisecond: an import checks thousands)."""
    from babel import Locale
    return frozenset(Locale("en").territories)


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
        if not (self.name or "").strip():
            raise InvalidInput("the buyer's name cannot be empty", code="invalid_address",
                               values={"field": "name", "case": "empty"})
        for field in _ADDRESS_LENGTHS:
            object.__setattr__(self, field, validate_address_field(field, getattr(self, field)))

    def snapshot(self) -> dict[str, str]:
        return asdict(self)


def validate_address_field(field: str, value: str | None) -> str:
    """One field of a buyer address, by its rule: trimmed text no longer than its column, the
    country an ISO 3166 code (empty allowed but for the name)."""
    text = validate_text(value, f"the buyer's {field}", _ADDRESS_LENGTHS[field], required=field == "name",
                         field=field)
    return validate_country(text) if field == "country" and text else text


_ADDRESS_LENGTHS = {"name": 200, "line1": 200, "line2": 200, "postcode": 32, "city": 100, "country": 2, "vat_id": 32}
