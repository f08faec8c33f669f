"""Reading the outbox (support, scripts, the demo)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from renewly.accounts.rules.members import validate_text
from renewly.adapters.db.tables import outbox
from renewly.ports import Ports

TOPIC_LENGTH = 64  # outbox.topic (adapters/db/tables.py)


def list_outbox(app: Ports, *, account_id: int | None = None, topic: str | None = None) -> list[dict[str, Any]]:
    query = select(outbox).order_by(outbox.c.id)
    if account_id is not None:
        query = query.where(outbox.c.account_id == account_id)
    if topic is not None:
        # Checked as stored topics are: PostgreSQL refused a NUL byte that SQLite compared.
        query = query.where(outbox.c.topic == validate_text(topic, "a topic", TOPIC_LENGTH, required=False))
    with app.engine.connect() as conn:
        return [dict(row._mapping) for row in conn.execute(query)]
