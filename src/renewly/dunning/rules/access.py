"""Who may use the dashboard of an account in dunning, cancelled or deleted (R9.1, R9.2)."""

from __future__ import annotations

from enum import StrEnum

from renewly.accounts.rules.members import AccountStatus, Role


class Access(StrEnum):
    FULL = "full"
    BILLING_ONLY = "billing_only"  # the owner, during a temporary reactivation (R9.2)
    NONE = "none"  # cancelled (R9.1) or deleted


def dashboard_access(status: str, role: Role, reactivation_running: bool) -> Access:
    if status in (AccountStatus.ACTIVE, AccountStatus.PAST_DUE):
        return Access.FULL
    if status == AccountStatus.CANCELLED and reactivation_running and role is Role.OWNER:
        return Access.BILLING_ONLY
    return Access.NONE


def refusal(status: str, access: Access, *, billing: bool) -> str | None:
    """Why a member is refused the page they ask for (a stable code), or None: a deleted account
    (R10.1), a cancelled one (R9.1), or, during a temporary reactivation, a page other than
    billing (R9.2)."""
    if status == AccountStatus.DELETED:
        return "account_deleted"
    if access is Access.NONE:
        return "account_cancelled"
    if access is Access.BILLING_ONLY and not billing:
        return "billing_only"
    return None
