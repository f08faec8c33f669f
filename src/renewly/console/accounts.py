"""What the console reads of accounts: a search, and an account's timeline (docs/console.md).

Read-only queries straight on the tables (no domain model: STYLE.md, "CRUD screens"). A timeline
is the account's story, newest first: invoices and credit notes issued, payment attempts, dunning
steps taken, e-mails and events written to the outbox, and the audit log's entries about it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, exists, func, or_, select

from renewly.adapters.db.tables import (
    accounts,
    audit_log,
    dunning_cases,
    dunning_steps,
    invoices,
    members,
    outbox,
    payment_attempts,
    staff,
)
from renewly.console.staff import ACTOR_PREFIX
from renewly.outbox.writer import EMAIL
from renewly.ports import Ports

MOST_FOUND = 50  # accounts a search shows
MOST_ENTRIES = 300  # a timeline's newest entries
QUERY_LENGTH = 320  # a search's text: an e-mail address at most


def search_accounts(app: Ports, query: str) -> list[dict[str, Any]]:
    """Accounts whose id is `query`, or whose name or a member's e-mail (the owner's included)
    contains it, whatever the case; the newest first."""
    text = query.strip().lower()[:QUERY_LENGTH]
    if not text:
        return []
    owner = select(members.c.email).where(members.c.account_id == accounts.c.id,
                                          members.c.role == "owner").scalar_subquery()
    matches = [func.lower(accounts.c.name).contains(text, autoescape=True),
               exists().where(members.c.account_id == accounts.c.id,
                              func.lower(members.c.email).contains(text, autoescape=True))]
    if text.isdigit() and len(text) <= 18:  # an id fits a BIGINT
        matches.append(accounts.c.id == int(text))
    with app.engine.connect() as conn:
        rows = conn.execute(select(accounts.c.id, accounts.c.name, accounts.c.status, owner.label("owner"))
                            .where(or_(*matches)).order_by(accounts.c.id.desc()).limit(MOST_FOUND)).all()
    return [dict(row._mapping) for row in rows]


def timeline(app: Ports, account_id: int) -> list[dict[str, Any]]:
    """The account's newest MOST_ENTRIES entries, newest first; each names its `kind` and `at`."""
    with app.engine.connect() as conn:
        entries = [*_documents(conn, account_id), *_attempts(conn, account_id), *_steps(conn, account_id),
                   *_outbox(conn, account_id), *_audit(conn, account_id)]
    entries.sort(key=lambda entry: entry["at"], reverse=True)
    return entries[:MOST_ENTRIES]


def _documents(conn: Connection, account_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(select(invoices.c.issued_at, invoices.c.number, invoices.c.kind, invoices.c.total,
                               invoices.c.currency, invoices.c.status)
                        .where(invoices.c.account_id == account_id)
                        .order_by(invoices.c.issued_at.desc()).limit(MOST_ENTRIES))
    return [{"kind": row.kind, "at": row.issued_at, "number": row.number, "total": row.total,
             "currency": row.currency, "status": row.status} for row in rows]


def _attempts(conn: Connection, account_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(select(payment_attempts.c.created_at, payment_attempts.c.amount, payment_attempts.c.currency,
                               payment_attempts.c.status, payment_attempts.c.decline_code, payment_attempts.c.reason,
                               invoices.c.number)
                        .join(invoices, invoices.c.id == payment_attempts.c.invoice_id)
                        .where(payment_attempts.c.account_id == account_id)
                        .order_by(payment_attempts.c.created_at.desc()).limit(MOST_ENTRIES))
    return [{"kind": "payment_attempt", "at": row.created_at, "number": row.number, "total": row.amount,
             "currency": row.currency, "status": row.status, "decline_code": row.decline_code or "",
             "reason": row.reason} for row in rows]


def _steps(conn: Connection, account_id: int) -> list[dict[str, Any]]:
    rows = conn.execute(select(dunning_steps.c.taken_at, dunning_steps.c.name, dunning_steps.c.day,
                               dunning_cases.c.id)
                        .join(dunning_cases, dunning_cases.c.id == dunning_steps.c.case_id)
                        .where(dunning_cases.c.account_id == account_id)
                        .order_by(dunning_steps.c.taken_at.desc()).limit(MOST_ENTRIES))
    return [{"kind": "dunning_step", "at": row.taken_at, "name": row.name, "day": row.day, "case_id": row.id}
            for row in rows]


def _outbox(conn: Connection, account_id: int) -> list[dict[str, Any]]:
    """E-mails (subject, recipients, whether delivery is done) and events (their topic)."""
    rows = conn.execute(select(outbox.c.created_at, outbox.c.topic, outbox.c.payload, outbox.c.delivered_at,
                               outbox.c.failed_at)
                        .where(outbox.c.account_id == account_id).order_by(outbox.c.id.desc()).limit(MOST_ENTRIES))
    return [{"kind": "email", "at": row.created_at, "subject": row.payload.get("subject", ""),
             "recipients": ", ".join(row.payload.get("recipients", [])),
             "state": "failed" if row.failed_at else "delivered" if row.delivered_at else "waiting"}
            if row.topic == EMAIL else {"kind": "event", "at": row.created_at, "topic": row.topic}
            for row in rows]


def _audit(conn: Connection, account_id: int) -> list[dict[str, Any]]:
    names = {row.id: row.name for row in conn.execute(select(staff.c.id, staff.c.name))}
    rows = conn.execute(select(audit_log.c.at, audit_log.c.actor, audit_log.c.action, audit_log.c.reason)
                        .where(audit_log.c.target_type == "account", audit_log.c.target_id == str(account_id))
                        .order_by(audit_log.c.id.desc()).limit(MOST_ENTRIES))
    return [{"kind": "audit", "at": row.at, "actor": _actor_name(row.actor, names), "action": row.action,
             "reason": row.reason} for row in rows]


def _actor_name(actor: str, names: dict[int, str]) -> str:
    """A staff member's actor with their name beside it; any other actor as it is written."""
    if actor.startswith(ACTOR_PREFIX) and actor[len(ACTOR_PREFIX):].isdigit():
        name = names.get(int(actor[len(ACTOR_PREFIX):]))
        return f"{name} ({actor})" if name else actor
    return actor


def at_minute(instant: datetime) -> str:
    """A moment for staff, in UTC: the console is read by people in several time zones."""
    return instant.strftime("%Y-%m-%d %H:%M UTC")
