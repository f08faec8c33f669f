"""Dunning banners (R8.3, R8.4, R9.2): who sees which banner, and how banners compare.

A step's banner is an `Audience`; what a member sees depends on the account's status too: the
cancelled page, or, for the owner during a temporary reactivation, what to do now.
"""

from __future__ import annotations

from enum import StrEnum

from renewly.accounts.rules.members import AccountStatus, Role
from renewly.config.texts import has_text, text


class Audience(StrEnum):
    """Who sees a dunning banner; ordered from the mildest."""

    NONE = "none"
    OWNER_AND_ADMINS = "owner_and_admins"
    EVERYONE = "everyone"

    @property
    def severity(self) -> int:
        return _SEVERITY[self]

    def includes(self, role: Role) -> bool:
        if self is Audience.EVERYONE:
            return True
        return self is Audience.OWNER_AND_ADMINS and role in (Role.OWNER, Role.ADMIN)


_SEVERITY = {audience: rank for rank, audience in enumerate(Audience)}


def stronger_banner(current: str, new: Audience) -> str:
    """Merging the banners of cases told at once (a banner never softens within one slice)."""
    return new.value if Audience(current).severity < new.severity else current


def banner_seen(account_banner: str, status: str, role: Role, reactivation_running: bool = False) -> str:
    """Which banner a member sees now: none, owner_and_admins, everyone, the cancelled page, or,
    for the owner during a temporary reactivation, what to do now and until when."""
    if status == AccountStatus.CANCELLED:
        return "reactivated" if reactivation_running and role is Role.OWNER else "cancelled"
    if status == AccountStatus.DELETED:
        return "deleted"
    audience = Audience(account_banner)
    return audience.value if audience.includes(role) else Audience.NONE.value


def banners_seen(account_banner: str, status: str, reactivation_running: bool = False) -> dict[str, str]:
    """What each role sees: what events tell the host product."""
    return {role.value: banner_seen(account_banner, status, role, reactivation_running) for role in Role}


class Severity(StrEnum):
    """How urgent a banner is, for the host product's dashboard to style it."""

    WARNING = "warning"  # a payment failed: the owner can still fix the card before anything is lost
    CRITICAL = "critical"  # the account is about to be, or is, cancelled


def banner_severity(seen: str) -> Severity | None:
    """The severity of what a member sees (`banner_seen`), None for no banner: the owner's and
    admins' banner of a failed payment is a warning; from the announced cancellation on, every
    banner is critical (a reactivated owner has days to pay before the account closes again)."""
    if seen == Audience.NONE.value:
        return None
    return Severity.WARNING if seen == Audience.OWNER_AND_ADMINS.value else Severity.CRITICAL


def banner_in_words(code: str, locale: str = "en") -> str:
    """A banner as words ("payment failed warning"), not its policy code ("owner_and_admins"):
    what the command line and the demo print; --json keeps the code."""
    message = f"banner.kind.{code}"
    return text(message, locale) if has_text(message) else code.replace("_", " ")
