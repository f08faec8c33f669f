"""The mail batch: every e-mail due leaves the outbox over SMTP, at least once (docs/mail.md).

Slice by slice: claim up to `mail.slice_size` e-mails due (neither delivered nor failed, never
tried or due again, and claimed by no live process), send them over the session's connections,
then mark each by what the server answered (renewly.mail.rules.answers): delivered; to try again
later (a 4xx reply, no connection, a timeout: `attempts + 1`, `next_attempt_at` further each
time, never given up); or failed (a 5xx reply: `failed_at` and the server's reply, listed by
`renewly outbox list --failed`).

A claim is a wall-clock lease (`claimed_until`), committed before anything is sent, so that no
lock is held while the server answers and batches at once (several `renewly mail send`, workers)
never send one e-mail twice: each claims what nobody holds (FOR UPDATE SKIP LOCKED on
PostgreSQL) and marks only the e-mails still under its own lease. A process that dies between
sending and marking leaves its e-mails claimed until the lease ends; they are then sent again,
with the same Message-ID (fixed by the row): at least once, and a resend is recognisable.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, func, or_, select, text

from renewly.accounts.removal_links import RemovalLinks
from renewly.adapters.clock import wall_clock
from renewly.adapters.db.bulk import among
from renewly.adapters.db.locks import claim_unheld, hold_until_commit
from renewly.adapters.db.tables import MAIL_DUE, outbox
from renewly.adapters.logs import get_logger
from renewly.adapters.mail.port import Envelope, MailMisconfigured
from renewly.batches.reports import Reported
from renewly.billing.documents import documents_of
from renewly.mail.letters import Unsendable, attached_invoices, envelope_of, letters_of
from renewly.mail.rules.answers import SmtpAnswer, Verdict, combine, retry_delay, verdict
from renewly.ports import Ports
from renewly.shared.errors import InvalidInput

log = get_logger(__name__)

NO_SMTP = "no SMTP server configured (mail.host): e-mails stay in the outbox (renewly outbox show ID)"


@dataclass
class MailReport(Reported):
    delivered: int = 0
    to_retry: int = 0  # temporary failures: tried again later
    failed: int = 0  # permanent failures (5xx): `renewly outbox list --failed`
    resent: int = 0  # of the delivered, those tried before (a resend may be a duplicate)
    last_error: str = ""  # the last temporary failure, as the server or the network said it

    @property
    def did_anything(self) -> bool:
        return bool(self.delivered or self.failed)

    @property
    def left_undone(self) -> bool:
        return bool(self.to_retry or self.failed)

    def describe(self) -> str:
        line = f"{self.delivered} e-mail(s) delivered"
        if self.to_retry:
            line += f", {self.to_retry} to try again ({self.last_error})"
        if self.failed:
            line += f", {self.failed} failed (renewly outbox list --failed)"
        return line


def deliver_due(app: Ports, as_of: datetime, on_slice: Callable[[MailReport], None] | None = None) -> MailReport:
    """Send every e-mail due by now (`as_of` at the latest: a tick's instant), slice by slice,
    until none is left or a stop is asked. `on_slice` is told the report after each slice.

    While a slice is at the server, the next one is claimed and built: the connections wait for
    the database only at the first slice."""
    transport = app.mailer
    if transport is None:
        raise InvalidInput(NO_SMTP, code="mail_off")
    # Before anything is claimed: without a key (system clock), no contact's e-mail can be made.
    links = RemovalLinks.of(app.settings)
    report = MailReport()
    sending = ThreadPoolExecutor(1, thread_name_prefix="mail-send")
    try:
        with transport.session() as session:
            in_flight: tuple[_Slice, Future[list[SmtpAnswer]]] | None = None
            while True:
                ready = None if app.stop.asked else _prepare(app, as_of, links)
                if in_flight is not None:
                    try:
                        _finish(app, *in_flight, as_of, report)
                    except MailMisconfigured:
                        if ready is not None:  # claimed, never sent: let go, untried
                            _mark(app, ready.rows, {}, as_of, ready.lease, report)
                        raise
                    if on_slice is not None:
                        on_slice(report)
                if ready is None:
                    break
                in_flight = (ready, sending.submit(session.send, [envelope for _, envelope in ready.envelopes]))
    except BaseException:
        # Stopped at once (a second Ctrl-C) or failed: the slice at the server is not waited for;
        # its e-mails stay claimed until their lease ends, then are sent again.
        sending.shutdown(wait=False, cancel_futures=True)
        raise
    sending.shutdown()
    return report


@dataclass
class _Slice:
    rows: Sequence[Any]
    lease: datetime
    # Each message to send and its row's id, in the rows' order: a row addressed to billing
    # contacts is several messages (one per contact, with its removal link: mail/letters.py).
    envelopes: list[tuple[int, Envelope]]
    answers: dict[int, SmtpAnswer]  # those decided before sending (an e-mail that cannot be made)


def _prepare(app: Ports, as_of: datetime, links: RemovalLinks) -> _Slice | None:
    """The next slice: claimed under a lease of its own, its e-mails built (with the invoices'
    PDFs they attach, rendered and stored now for those never downloaded)."""
    settings = app.settings.mail
    lease = wall_clock() + timedelta(seconds=settings.lease_seconds)
    rows = _claim(app, max(as_of, app.clock.now()), lease, settings.slice_size)
    if not rows:
        return None
    documents = documents_of(app, set().union(*(attached_invoices(row.payload) for row in rows)))
    envelopes: list[tuple[int, Envelope]] = []
    answers: dict[int, SmtpAnswer] = {}
    for row in rows:
        try:
            letters = letters_of(row, settings, app.settings.seller, links=links, documents=documents)
        except Unsendable as error:
            answers[row.id] = SmtpAnswer(None, str(error), permanent=True)
            continue
        envelopes += [(row.id, envelope_of(letter)) for letter in letters]
    return _Slice(rows, lease, envelopes, answers)


def _finish(app: Ports, work: _Slice, sent: Future[list[SmtpAnswer]], as_of: datetime, report: MailReport) -> None:
    """Wait for the server's answers to a slice and mark its rows."""
    answers = dict(work.answers)
    try:
        answers.update(_by_row(work.envelopes, sent.result()))
    except MailMisconfigured as error:
        # What was sent before it came to light is marked; the rest is let go, untried.
        answers.update(_by_row(work.envelopes, error.answers))
        _mark(app, work.rows, answers, max(as_of, app.clock.now()), work.lease, report)
        raise
    _mark(app, work.rows, answers, max(as_of, app.clock.now()), work.lease, report)


def _by_row(envelopes: Sequence[tuple[int, Envelope]], answers: Sequence[SmtpAnswer | None]
            ) -> dict[int, SmtpAnswer]:
    """One answer per row from its messages' answers (`combine`); a row with a message not sent
    (a misconfiguration stopped the slice) is left out: let go, untried."""
    per_row: dict[int, list[tuple[tuple[str, ...], SmtpAnswer | None]]] = {}
    for index, (row_id, envelope) in enumerate(envelopes):
        per_row.setdefault(row_id, []).append((envelope.recipients, answers[index] if index < len(answers) else None))
    return {row_id: combine([(recipients, answer) for recipients, answer in found if answer is not None])
            for row_id, found in per_row.items() if all(answer is not None for _, answer in found)}


def _claim(app: Ports, now: datetime, lease: datetime, size: int) -> Sequence[Any]:
    query = (select(outbox.c.id, outbox.c.created_at, outbox.c.account_id, outbox.c.payload, outbox.c.attempts)
             # MAIL_DUE as text, so that PostgreSQL sees its partial index's own condition.
             .where(text(MAIL_DUE),
                    or_(outbox.c.next_attempt_at.is_(None), outbox.c.next_attempt_at <= now),
                    or_(outbox.c.claimed_until.is_(None), outbox.c.claimed_until < wall_clock()))
             .order_by(outbox.c.id).limit(size))
    with app.engine.begin() as conn:
        rows = conn.execute(claim_unheld(query, conn)).all()  # what another batch claims is its own
        if rows:
            conn.execute(outbox.update().where(among(conn, outbox.c.id, [row.id for row in rows]))
                         .values(claimed_until=lease))
    return rows


_MARK = (outbox.update()
         .where(outbox.c.id == bindparam("row_id"))
         .values(attempts=outbox.c.attempts + 1, claimed_until=None, delivered_at=bindparam("delivered"),
                 failed_at=bindparam("failed"), next_attempt_at=bindparam("next"), last_error=bindparam("error")))


def _mark(app: Ports, rows: Sequence[Any], answers: dict[int, SmtpAnswer], now: datetime, lease: datetime,
          report: MailReport) -> None:
    """Write what became of each e-mail answered, if it is still under this batch's lease; let
    go of those not sent (a misconfiguration stopped the slice)."""
    mail = app.settings.mail
    first, cap = timedelta(seconds=mail.retry_first_seconds), timedelta(seconds=mail.retry_max_seconds)
    marks, untried = [], []
    counts = {Verdict.DELIVERED: 0, Verdict.TRY_AGAIN: 0, Verdict.FAILED: 0}
    resent = 0
    with app.engine.begin() as conn:
        ours = _still_claimed(conn, [row.id for row in rows], lease)
        for row in rows:
            if row.id not in ours:
                continue  # its lease ran out and another batch took it over: its answer is the other's
            answer = answers.get(row.id)
            if answer is None:
                untried.append(row.id)
                continue
            decided = verdict(answer)
            counts[decided] += 1
            if decided is Verdict.DELIVERED:
                resent += row.attempts > 0
                marks.append({"row_id": row.id, "delivered": now, "failed": None, "next": None,
                              "error": f"refused: {', '.join(answer.refused)}" if answer.refused else None})
            elif decided is Verdict.FAILED:
                marks.append({"row_id": row.id, "delivered": None, "failed": now, "next": None,
                              "error": answer.describe()})
            else:
                report.last_error = answer.describe()
                marks.append({"row_id": row.id, "delivered": None, "failed": None,
                              "next": now + retry_delay(row.attempts + 1, first, cap), "error": answer.describe()})
        if marks:
            conn.execute(_MARK, marks)
        if untried:
            conn.execute(outbox.update().where(among(conn, outbox.c.id, untried)).values(claimed_until=None))
    report.delivered += counts[Verdict.DELIVERED]
    report.to_retry += counts[Verdict.TRY_AGAIN]
    report.failed += counts[Verdict.FAILED]
    report.resent += resent
    if counts[Verdict.FAILED]:
        log.warning("e-mails failed for good", failed=counts[Verdict.FAILED])
    if counts[Verdict.TRY_AGAIN]:
        log.warning("e-mails to try again", count=counts[Verdict.TRY_AGAIN], reason=report.last_error)


def _still_claimed(conn: Connection, ids: list[int], lease: datetime) -> set[int]:
    """The e-mails still under `lease`, locked to the end of the transaction: one whose lease ran
    out may have been taken over (and sent) by another batch."""
    query = select(outbox.c.id).where(among(conn, outbox.c.id, ids), outbox.c.claimed_until == lease)
    return set(conn.execute(hold_until_commit(query, conn)).scalars())


def next_mail_at(conn: Connection, app: Ports) -> datetime | None:
    """When the next e-mail is due, if delivery is on and one waits."""
    if not app.settings.mail.configured:
        return None
    return conn.execute(select(func.min(func.coalesce(outbox.c.next_attempt_at, outbox.c.created_at)))
                        .where(text(MAIL_DUE))).scalar()


def due_count(app: Ports, now: datetime) -> int:
    """How many e-mails are due by `now` (a progress bar's total)."""
    with app.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(outbox).where(
            text(MAIL_DUE), or_(outbox.c.next_attempt_at.is_(None), outbox.c.next_attempt_at <= now))).scalar_one()
