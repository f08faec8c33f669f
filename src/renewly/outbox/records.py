"""The audit log: who did what to which account, and why, written beside the change it records.

Its own append-only table (`audit_log`), not the outbox: events and e-mails go through
`outbox.writer`."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from renewly.adapters.db.tables import audit_log


def audit(conn: Connection, at: datetime, actor: str, action: str, target_type: str, target_id: object,
          reason: str = "", details: Mapping[str, Any] | None = None) -> None:
    conn.execute(audit_log.insert().values(at=at, actor=actor, action=action, target_type=target_type,
                                           target_id=str(target_id), reason=reason, details=dict(details or {})))
