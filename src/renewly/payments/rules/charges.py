"""Payments: the gateway contract's plain values, card rules and decline codes in words.

A decline is a value, not an exception; a timeout or an ambiguous answer is an outcome of its
own (UNKNOWN), never mistaken for a decline: the charge may have happened, and only the
gateway can say (the janitor asks it by idempotency key).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from enum import StrEnum

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


# Why a charge failed, in words a customer reads; `no_card`: nothing could be charged.
NO_CARD = "no_card"
DECLINE_REASONS = {
    "en": {
        "generic_decline": "the card was declined by the bank",
        "insufficient_funds": "the card has insufficient funds",
        "expired_card": "the card has expired",
        "processing_error": "the bank could not process the card; try again later",
        "incorrect_number": "the card number is incorrect",
        "invalid_expiry": "the expiry date is invalid",
        "card_declined": "the card was declined by the bank",
        "no_card": "no card is on file",
    },
    "fr": {
        "generic_decline": "la carte a été refusée par la banque",
        "insufficient_funds": "le solde de la carte est insuffisant",
        "expired_card": "la carte a expiré",
        "processing_error": "la banque n'a pas pu traiter la carte ; réessayez plus tard",
        "incorrect_number": "le numéro de carte est incorrect",
        "invalid_expiry": "la date d'expiration est invalide",
        "card_declined": "la carte a été refusée par la banque",
        "no_card": "aucune carte n'est enregistrée",
    },
}


def decline_in_words(code: str | None, locale: str = "en") -> str:
    reasons = DECLINE_REASONS.get(locale, DECLINE_REASONS["en"])
    return reasons.get(code or "", reasons["card_declined"])


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
