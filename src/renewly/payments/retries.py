"""Retrying a failed payment: where a charge of an unpaid invoice is asked for again.

A `payment_retries` row asks the next payment batch (`payments/collect.py`) to charge an open
invoice again; the next attempt on the invoice fulfils every request open when it is made. Two
things ask: a dunning step that charges (R8.2, reason `dunning:CASE:STEP`, written by the
sweep), and a new card (R7.1, reason `card_updated:CARD`: every unpaid invoice, whatever the
dunning step). A request names its reason once per invoice (a unique key), so a step or a card
asks once.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import Connection

from renewly.adapters.db.bulk import insert_rows
from renewly.adapters.db.tables import payment_retries

CARD_UPDATE = "card_updated:"  # the reason prefix of a card update's retries
RETRY_COLUMNS = ("invoice_id", "reason", "requested_at", "attempt_id")


def dunning_reason(case_id: int, step_name: str) -> str:
    """The reason of the retries a dunning step asks for (the step by name: R8 by name)."""
    return f"dunning:{case_id}:{step_name}"


def card_update_reason(card_id: int) -> str:
    """The reason of the retries a new card asks for (R7.1)."""
    return f"{CARD_UPDATE}{card_id}"


def retry_requests(invoice_ids: Iterable[int], reason: str, requested_at: datetime) -> list[tuple]:
    """The rows asking the next payment batch to charge these invoices again, for `reason`."""
    return [(invoice_id, reason, requested_at, None) for invoice_id in invoice_ids]


def request_retries(conn: Connection, requests: list[tuple]) -> int:
    """Write retry requests (`retry_requests`' rows) in the caller's transaction; returns how many."""
    insert_rows(conn, payment_retries, requests, RETRY_COLUMNS, binary=True)
    return len(requests)
