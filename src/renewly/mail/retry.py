"""An operator sends failed e-mails again (`renewly outbox retry`, docs/mail.md).

A 5xx reply marks an e-mail failed for good (renewly.mail.delivery); once the cause is mended (a
mailbox full, an address typed wrong and corrected at the recipient's server, a relay's policy),
the operator puts it back: its row is due again at once, and the next delivery sends it as it
was, with the same Message-ID, Date and bytes (all fixed by the row), so that the recipient's
server and mail client recognise it as the same message. Its attempts and last error are kept
(`renewly outbox show ID` says "to try again ... last: 550 ..."), and each e-mail put back gets
an audit line (`email.retried`, by whom).

Asked again for an e-mail already put back and not yet sent, it does nothing (idempotent); an
e-mail that did not fail (delivered, still waiting, an event) is refused, and nothing changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import Connection, String, Text, cast, literal, select

from renewly.adapters.db.bulk import among, among_texts, chunked
from renewly.adapters.db.locks import hold_until_commit
from renewly.adapters.db.tables import audit_log, outbox
from renewly.ports import Ports
from renewly.shared.errors import NotAllowed, NotFound

RETRIED = "email.retried"  # the audit action, one line per e-mail put back
# Rows locked and put back per statement: an IN list SQLite takes, an array PostgreSQL sends at once.
SLICE = 1000
MOST_NAMED = 5  # ids named in one line of refusal


@dataclass(frozen=True)
class Retried:
    """What a retry did: the e-mails put back (due again now), and those asked for that were put
    back before and are not sent yet (nothing to do)."""

    retried: list[int] = field(default_factory=list)
    already_due: list[int] = field(default_factory=list)


def retry_emails(app: Ports, ids: Iterable[int], *, actor: str) -> Retried:
    """Put these failed e-mails back, all or none: an unknown id, an event, an e-mail delivered or
    one that never failed refuses the whole request."""
    wanted = sorted(set(ids))
    if not wanted:
        raise NotAllowed("name the e-mails to send again (their outbox ids), or ask for every failed one",
                         code="nothing_to_retry")
    now = app.clock.now()
    with app.engine.begin() as conn:
        found: dict[int, Any] = {}
        for ids_slice in chunked(wanted, SLICE):
            found.update((row.id, row) for row in conn.execute(hold_until_commit(
                select(outbox.c.id, outbox.c.topic, outbox.c.delivered_at, outbox.c.failed_at)
                .where(among(conn, outbox.c.id, ids_slice)), conn)))
        _refuse_unknown(wanted, found)
        _refuse_events(wanted, found)
        _refuse_delivered(wanted, found)
        waiting = [row_id for row_id in wanted if found[row_id].failed_at is None]
        put_back_before = _put_back_before(conn, waiting)
        never_failed = [row_id for row_id in waiting if row_id not in put_back_before]
        if never_failed:
            raise NotAllowed(f"{_named('e-mail', never_failed)}: not failed, still waiting for delivery; nothing "
                             "to send again (renewly outbox show ID)", code="email_not_failed")
        failed = [row_id for row_id in wanted if found[row_id].failed_at is not None]
        _put_back(conn, failed, now, actor)
    return Retried(retried=failed, already_due=waiting)


def retry_failed(app: Ports, *, since: date | None = None, actor: str) -> Retried:
    """Put back every e-mail that failed for good (on `since` or later, a UTC day, if given)."""
    now = app.clock.now()
    query = select(outbox.c.id).where(outbox.c.topic == "email", outbox.c.failed_at.is_not(None))
    if since is not None:
        query = query.where(outbox.c.failed_at >= datetime.combine(since, time.min, tzinfo=UTC))
    with app.engine.begin() as conn:
        failed = list(conn.execute(hold_until_commit(query.order_by(outbox.c.id), conn)).scalars())
        _put_back(conn, failed, now, actor)
    return Retried(retried=failed)


def _put_back(conn: Connection, ids: Sequence[int], now: datetime, actor: str) -> None:
    """Due again at once, slice by slice: one INSERT of audit lines and one UPDATE each.
    The attempts and the last error stay: they are the e-mail's history."""
    for ids_slice in chunked(ids, SLICE):
        # The audit lines first, from the rows themselves (INSERT ... SELECT: nothing per row in Python).
        conn.execute(audit_log.insert().from_select(
            ["at", "actor", "action", "target_type", "target_id", "reason", "details"],
            select(literal(now, audit_log.c.at.type), literal(actor, String()), literal(RETRIED, String()),
                   literal("outbox", String()), cast(outbox.c.id, String()), literal("", Text()),
                   literal({}, audit_log.c.details.type))
            .where(among(conn, outbox.c.id, ids_slice), outbox.c.failed_at.is_not(None)).order_by(outbox.c.id)))
        conn.execute(outbox.update().where(among(conn, outbox.c.id, ids_slice), outbox.c.failed_at.is_not(None))
                     .values(failed_at=None, next_attempt_at=now, claimed_until=None))


def _put_back_before(conn: Connection, ids: Sequence[int]) -> set[int]:
    """Of these e-mails, not failed now, those an operator put back: the audit log says so."""
    found: set[int] = set()
    for ids_slice in chunked(ids, SLICE):
        found.update(int(target) for target in conn.execute(
            select(audit_log.c.target_id).distinct().where(
                audit_log.c.target_type == "outbox", audit_log.c.action == RETRIED,
                among_texts(conn, audit_log.c.target_id, [str(row_id) for row_id in ids_slice]))).scalars())
    return found


def _refuse_unknown(wanted: Sequence[int], found: dict[int, Any]) -> None:
    unknown = [row_id for row_id in wanted if row_id not in found]
    if unknown:
        raise NotFound(f"no {_named('outbox row', unknown)} (renewly outbox list --failed)",
                       code="unknown_outbox_row")


def _refuse_events(wanted: Sequence[int], found: dict[int, Any]) -> None:
    events = [row_id for row_id in wanted if found[row_id].topic != "email"]
    if events:
        raise NotAllowed(f"{_named('outbox row', events)}: an event, not an e-mail; events go to webhooks "
                         "(renewly webhooks replay)", code="not_an_email")


def _refuse_delivered(wanted: Sequence[int], found: dict[int, Any]) -> None:
    delivered = [row_id for row_id in wanted if found[row_id].delivered_at is not None]
    if delivered:
        raise NotAllowed(f"{_named('e-mail', delivered)}: delivered already, nothing to send again",
                         code="email_not_failed")


def _named(what: str, ids: Sequence[int]) -> str:
    """'e-mail 4', 'e-mails 4, 7', 'e-mails 4, 7, 9, 12, 15 and 3 more'."""
    shown = ", ".join(str(row_id) for row_id in ids[:MOST_NAMED])
    more = f" and {len(ids) - MOST_NAMED} more" if len(ids) > MOST_NAMED else ""
    return f"{what}{'s' if len(ids) > 1 else ''} {shown}{more}"
