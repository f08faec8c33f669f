"""Who a staff member is, checked at the door the same way on SQLite and PostgreSQL, and what
each role may do: `support` reads and acts (reactivations, transfers, resends), `finance` reads."""

from __future__ import annotations

from enum import StrEnum

from renewly.shared.errors import InvalidInput

NAME_LENGTH = 100  # staff.name
SHORTEST_PASSWORD = 12
# Argon2 hashes any length, but hashing a megabyte at every try is work an attacker chooses.
LONGEST_PASSWORD = 1024


class StaffRole(StrEnum):
    SUPPORT = "support"
    FINANCE = "finance"


def validate_role(role: str) -> StaffRole:
    try:
        return StaffRole(role.strip().lower())
    except ValueError:
        raise InvalidInput(f"no staff role {role!r}: expected support or finance", code="invalid_role") from None


def validate_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > NAME_LENGTH or any(ord(character) < 32 or ord(character) == 127 for character in name):
        raise InvalidInput(f"a staff member's name is 1 to {NAME_LENGTH} printable characters", code="invalid_name")
    return name


def validate_password(password: str) -> str:
    """A password as typed (never stripped: spaces are characters of it)."""
    if not SHORTEST_PASSWORD <= len(password) <= LONGEST_PASSWORD:
        raise InvalidInput(f"a staff password is {SHORTEST_PASSWORD} to {LONGEST_PASSWORD} characters",
                           code="invalid_password")
    if "\n" in password or "\r" in password or "\x00" in password:
        raise InvalidInput("a staff password is one line", code="invalid_password")
    return password


def may_act(role: StaffRole) -> bool:
    """Whether the role may change an account (every form of the console); finance only reads."""
    return role is StaffRole.SUPPORT
