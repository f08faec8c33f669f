"""Reading the outbox (support, scripts, the demo)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from renewly.accounts.rules.members import validate_text
from renewly.adapters.db.tables import outbox
from renewly.ports import Ports
from renewly.shared.errors import NotFound

TOPIC_LENGTH = 64  # outbox.topic (adapters/db/tables.py)


def list_outbox(app: Ports, *, account_id: int | None = None, topic: str | None = None,
                failed: bool = False) -> list[dict[str, Any]]:
    """The rows, oldest first; `failed`: only the e-mails delivery gave up on (a 5xx reply)."""
    query = select(outbox).order_by(outbox.c.id)
    if failed:
        query = query.where(outbox.c.failed_at.is_not(None))
    if account_id is not None:
        query = query.where(outbox.c.account_id == account_id)
    if topic is not None:
        # Checked as stored topics are: PostgreSQL refused a NUL byte that SQLite compared.
        query = query.where(outbox.c.topic == validate_text(topic, "a topic", TOPIC_LENGTH, required=False))
    with app.engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]


def outbox_row(app: Ports, row_id: int) -> dict[str, Any]:
    with app.engine.connect() as conn:
        row = conn.execute(select(outbox).where(outbox.c.id == row_id)).first()
    if row is None:
        raise NotFound(f"no outbox row {row_id}", code="unknown_outbox_row")
    return dict(row._mapping)


def delivery_state(row: dict[str, Any]) -> str:
    """Where an e-mail stands: delivered, failed, waiting, to try again (one short phrase)."""
    if row["topic"] != "email":
        return "delivered" if row["delivered_at"] else "waiting"
    if row["delivered_at"] is not None:
        return "delivered"
    if row["failed_at"] is not None:
        return "failed"
    return "to try again" if row["attempts"] else "waiting"
