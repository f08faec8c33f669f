"""Payments: the gateway contract's plain values, card rules and decline codes in words.

A decline is a value, not an exception; a timeout or an ambiguous answer is an outcome of its
own (UNKNOWN), never mistaken for a decline: the charge may have happened, and only the
gateway can say (the janitor asks it by idempotency key).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

from renewly.config.texts import LANGUAGES, has_text, text
from renewly.shared.errors import InvalidInput


class Outcome(StrEnum):
    SUCCEEDED = "succeeded"
    DECLINED = "declined"
    UNKNOWN = "unknown"  # timeout, server error, connection lost: the gateway may or may not have acted


class AttemptStatus(StrEnum):
    PENDING = "pending"  # committed before the gateway call; the call may be in flight
    SUCCEEDED = "succeeded"
    DECLINED = "declined"
    UNKNOWN = "unknown"  # the call ended without a definite answer
    NOT_SENT = "not_sent"  # the gateway confirmed it never saw the idempotency key


UNSETTLED = (AttemptStatus.PENDING, AttemptStatus.UNKNOWN)


@dataclass(frozen=True, slots=True)
class SavedCard:
    """All Renewly ever keeps of a card (R5.4): the gateway's token and what a person needs to recognise it."""

    token: str
    brand: str
    last4: str
    exp_month: int
    exp_year: int


@dataclass(frozen=True, slots=True)
class GatewayResult:
    """The answer to an authorization, a charge or a void."""

    outcome: Outcome
    reference: str | None = None  # the gateway's id of the charge or authorization
    decline_code: str | None = None
    amount: int | None = None

    @property
    def succeeded(self) -> bool:
        return self.outcome == Outcome.SUCCEEDED


@dataclass(frozen=True, slots=True)
class ChargeRequest:
    customer: str
    card_token: str
    amount: int
    currency: str
    idempotency_key: str
    description: str = ""


@dataclass(frozen=True, slots=True)
class LedgerCharge:
    """A charge as the gateway's own ledger has it, for reconciliation."""

    reference: str
    idempotency_key: str
    amount: int
    currency: str
    outcome: Outcome


# Why a charge failed, in words a customer reads (the catalogue's `decline.CODE`, by the gateway's
# code; an unknown one reads as a decline); `no_card`: nothing could be charged.
NO_CARD = "no_card"


def decline_in_words(code: str | None, locale: str = "en") -> str:
    message = f"decline.{code}" if code and has_text(f"decline.{code}") else "decline.card_declined"
    return text(message, locale if locale in LANGUAGES else "en")


def parse_expiry(text: str, today: date) -> tuple[int, int]:
    """`MM/YYYY` (or MM/YY) to (month, year); a card that expired before this month is refused."""
    try:
        month_text, year_text = text.strip().split("/")
        month, year = int(month_text), int(year_text)
    except ValueError:
        raise InvalidInput(f"malformed expiry {text!r}: expected MM/YYYY", code="invalid_expiry") from None
    if year < 100:
        year += 2000
    if not 1 <= month <= 12:
        raise InvalidInput(f"malformed expiry {text!r}: the month must be 01 to 12", code="invalid_expiry")
    if (year, month) < (today.year, today.month):
        raise InvalidInput(f"the card expired in {month:02d}/{year}", code="expired_card")
    if year > today.year + 50:  # no card is issued for longer; 12/99999 is a typo
        raise InvalidInput(f"malformed expiry {text!r}: the year must be before {today.year + 51}",
                           code="invalid_expiry")
    return month, year


def attempt_key(invoice_id: int, attempt_number: int) -> str:
    """One idempotency key per attempt; a new one only after a definite answer (Lago #3042)."""
    return f"renewly-invoice-{invoice_id}-attempt-{attempt_number}"


def verification_key(verification_id: int) -> str:
    return f"renewly-verification-{verification_id}"
