"""The PaymentGateway port, shaped so that Stripe fits: customers and payment-method tokens,
off-session charges (PaymentIntents), authorizations with manual capture whose cancel is the void,
and an idempotency key on every write. Timeouts come back as Outcome.UNKNOWN, never raised."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from renewly.payments.rules.charges import ChargeRequest, GatewayResult, LedgerCharge, SavedCard


class PaymentGateway(Protocol):
    name: str

    def ensure_customer(self, account_id: int, email: str, name: str) -> str:
        """The gateway's customer for this account, created on first use (idempotent per account)."""

    def attach_card(self, customer: str, card_token: str) -> SavedCard:
        """Attach a tokenized card to the customer; raises InvalidInput for a token it does not know."""

    def authorize(self, customer: str, card_token: str, amount: int, currency: str,
                  idempotency_key: str) -> GatewayResult:
        """Hold `amount` on the card without capturing it (amount 0: validate the card only)."""

    def void(self, authorization: str, idempotency_key: str) -> GatewayResult:
        """Release a held authorization."""

    def charge(self, request: ChargeRequest) -> GatewayResult:
        """Charge the card off-session. The same idempotency key never charges twice."""

    def find(self, idempotency_key: str) -> GatewayResult | None:
        """What became of the request with this key; None if the gateway never received it."""

    def ledger(self) -> Iterable[LedgerCharge]:
        """Every charge the gateway holds, for reconciliation."""

    def delete_customer(self, customer: str) -> None:
        """Forget the customer and its cards (R10.1)."""
