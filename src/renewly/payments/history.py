"""Reading payment attempts (support, scripts)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from renewly.adapters.db.tables import invoices, payment_attempts
from renewly.ports import Ports


def list_attempts(app: Ports, account_id: int | None = None) -> list[dict[str, Any]]:
    query = (select(payment_attempts.c.id, payment_attempts.c.account_id, payment_attempts.c.invoice_id,
                    invoices.c.number.label("invoice_number"), payment_attempts.c.number, payment_attempts.c.amount,
                    payment_attempts.c.currency, payment_attempts.c.status, payment_attempts.c.decline_code,
                    payment_attempts.c.reason, payment_attempts.c.idempotency_key, payment_attempts.c.created_at,
                    payment_attempts.c.settled_at)
             .join(invoices, invoices.c.id == payment_attempts.c.invoice_id).order_by(payment_attempts.c.id))
    if account_id is not None:
        query = query.where(payment_attempts.c.account_id == account_id)
    with app.engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]
