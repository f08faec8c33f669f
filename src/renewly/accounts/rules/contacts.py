"""Billing contacts (R4): who may add, approve, refuse and remove whom. Pure rules, no I/O.

The owner is always a billing contact, implicitly: never a row, never removable. Anyone else is
added only with the owner's consent: a request waits for the owner's decision, or support records
the consent the owner gave it (R4.1). Anyone on the list may take themselves off it, themselves or
by asking support; the owner may take anyone off it (R4.2).
"""

from __future__ import annotations

from enum import StrEnum

from renewly.shared.errors import Conflict, NotAllowed, NotFound


class ContactStatus(StrEnum):
    REQUESTED = "requested"  # waiting for the owner's consent
    ACTIVE = "active"  # receives billing e-mails (R4.3)
    REFUSED = "refused"
    REMOVED = "removed"


# The statuses that hold an address on an account (a partial unique index keeps one such row).
CURRENT = (ContactStatus.REQUESTED, ContactStatus.ACTIVE)


def check_request(email: str, *, owner: str, current: ContactStatus | None, account_id: int) -> None:
    """A new request for `email`, whose current row on the account (if any) has status `current`."""
    if email == owner:
        raise Conflict(f"{email} owns account {account_id} and always receives its billing e-mails",
                       code="contact_is_owner",
                       values={"email": email})
    if current is ContactStatus.ACTIVE:
        raise Conflict(f"{email} is already a billing contact of account {account_id}", code="contact_exists",
                       values={"email": email})
    if current is ContactStatus.REQUESTED:
        raise Conflict(f"{email} was already requested as a billing contact of account {account_id}; "
                       "the owner has not decided yet", code="contact_already_requested",
                       values={"email": email})


def check_recorded_consent(email: str, *, owner: str, current: ContactStatus | None,
                           account_id: int) -> ContactStatus | None:
    """Support records that the owner consented to `email` (the seed: the address asks support with
    the owner in CC): a request still waiting, or an address that asked support only. The status
    the consent ends (None: no row yet)."""
    if email == owner:
        raise Conflict(f"{email} owns account {account_id} and always receives its billing e-mails",
                       code="contact_is_owner", values={"email": email})
    if current is ContactStatus.ACTIVE:
        raise Conflict(f"{email} is already a billing contact of account {account_id}", code="contact_exists",
                       values={"email": email})
    return current


def check_decision(email: str, *, acting: str, owner: str, current: ContactStatus | None, account_id: int) -> None:
    """Approving or refusing a request: only the owner, only a request still waiting."""
    if acting != owner:
        raise NotAllowed(f"only the account owner ({owner}) can approve or refuse billing contacts",
                         code="owner_required")
    if current is not ContactStatus.REQUESTED:
        raise NotFound(f"no pending billing-contact request for {email} on account {account_id}",
                       code="unknown_contact_request",
                       values={"email": email})


def check_removal(email: str, *, acting: str, owner: str, current: ContactStatus | None,
                  account_id: int) -> ContactStatus:
    """Removing `email` (an active contact, or a request still waiting): oneself, or by the owner.
    The status the removal ends."""
    if email == owner:
        raise NotAllowed(f"{email} owns account {account_id}: the owner is always a billing contact and "
                         "cannot be removed; support transfers ownership first", code="owner_is_contact",
                         values={"email": email})
    if acting not in (owner, email):
        raise NotAllowed(f"only {email} or the account owner ({owner}) can remove this billing contact",
                         code="owner_required")
    if current is None or current not in CURRENT:
        raise NotFound(f"{email} is not a billing contact of account {account_id}", code="unknown_contact",
                       values={"email": email})
    return current
