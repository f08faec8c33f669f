"""The two append-only records every use case writes beside its change: audit and outbox."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from renewly.adapters.db.tables import audit_log, outbox


def audit(conn: Connection, at: datetime, actor: str, action: str, target_type: str, target_id: object,
          reason: str = "", details: Mapping[str, Any] | None = None) -> None:
    conn.execute(audit_log.insert().values(at=at, actor=actor, action=action, target_type=target_type,
                                           target_id=str(target_id), reason=reason, details=dict(details or {})))


def publish(conn: Connection, at: datetime, topic: str, account_id: int | None, payload: Mapping[str, Any]) -> None:
    conn.execute(outbox.insert().values(created_at=at, topic=topic, account_id=account_id, payload=dict(payload)))
