"""`renewly import FILE`: the operator's customers from another system, in bulk (docs/import.md).

Load (the plans, the keys and gateway customers the database already has), decide (the whole
file checked by onboarding/rules/records.py: one problem anywhere and nothing is written), then
write slice after slice, each one transaction of a few set-based statements (COPY on
PostgreSQL): the rows, audit entries and outbox events that `accounts create`, `members add`,
`subscriptions create` and `cards add` write, without a query per account.

What differs from the single commands, on purpose:
- a subscription continues from its next renewal date: no invoice is issued at import (its
  periods before were billed by the previous system); the renewal batch issues the first one
  on that date, as for a subscription created today to start on that date;
- a card is the gateway's customer and token, saved as the previous system kept it: no
  verification authorization is asked for (R5.1 happened when the card was saved there; ten
  thousand authorizations would take the gateway's time, not seconds). The first charge is its
  check;
- each account keeps the file's key (`accounts.external_key`): a second run of the same file
  skips the accounts it finds by key (their owner must match, else the row is refused), so an
  import stopped half-way is finished by running it again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import Connection, select
from sqlalchemy.exc import IntegrityError

from renewly.accounts.rules.members import AccountStatus, Role
from renewly.adapters.clock import LATEST_TEST_CLOCK
from renewly.adapters.db.bulk import allocate_ids, among_texts, chunked, insert_rows
from renewly.adapters.db.tables import (
    accounts,
    audit_log,
    cards,
    gateway_customers,
    members,
    plans,
    subscriptions,
)
from renewly.onboarding.rules.records import (
    Account,
    BadFile,
    Context,
    PlanTerms,
    Problem,
    check_records,
    csv_column,
    decode,
    format_of,
    read_records,
)
from renewly.outbox import writer
from renewly.ports import Ports
from renewly.shared.calendar import local_midnight_utc
from renewly.shared.errors import Conflict

LOOKUP_SIZE = 5000  # values per IN list: SQLite takes at most 32,766 parameters a statement
REASON = "bulk import"  # the audit entries' reason


@dataclass
class ImportReport:
    """What an import wrote (or, dry run or refused, would have written)."""

    file: str
    format: str
    dry_run: bool
    accounts: int = 0  # each with its owner
    members: int = 0  # besides the owners
    subscriptions: int = 0
    cards: int = 0
    skipped: int = 0  # already imported: found by key, with the same owner
    problems: list[Problem] = field(default_factory=list)
    # Asked to stop (Ctrl-C) between slices: how many accounts were written by then; None when
    # the import was not stopped. A second run of the file writes the rest.
    stopped_after: int | None = None

    @property
    def refused(self) -> bool:
        return bool(self.problems)

    @property
    def written(self) -> bool:
        return not self.dry_run and not self.refused


def import_file(app: Ports, path: str | Path, *, fmt: str | None = None, dry_run: bool = False, actor: str,
                on_slice: Callable[[int, int], None] | None = None) -> ImportReport:
    """Check the whole file, then (not a dry run, no problem) write it. `on_slice(done, total)`
    before the first slice and after each one written. An unreadable file raises BadFile (or OSError)."""
    path = Path(path)
    chosen = format_of(path.name, fmt)
    text = decode(path.name, path.read_bytes())
    return import_text(app, text, name=path.name, fmt=chosen, dry_run=dry_run, actor=actor, on_slice=on_slice)


def import_text(app: Ports, text: str, *, name: str, fmt: str, dry_run: bool = False, actor: str,
                on_slice: Callable[[int, int], None] | None = None) -> ImportReport:
    report = ImportReport(file=name, format=fmt, dry_run=dry_run)
    now = app.clock.now()
    with app.engine.connect() as conn:
        context = Context(plans=_plans(conn), now=now, last_day=LATEST_TEST_CLOCK.date())
        checked = check_records(read_records(name, text, fmt), context, csv_names=fmt == "csv")
        if not checked.accounts and not checked.problems:
            raise BadFile(f"{name} holds no account")
        fresh, problems = _against_the_database(conn, checked.accounts)
    if fmt == "csv":
        problems = [Problem(p.line, csv_column(p.field), p.reason) for p in problems]
    report.problems = sorted(checked.problems + problems)
    report.skipped = len(checked.accounts) - len(fresh)
    report.accounts, report.members = len(fresh), sum(len(a.members) for a in fresh)
    report.subscriptions = sum(len(a.subscriptions) for a in fresh)
    report.cards = sum(1 for a in fresh if a.card)
    if report.refused or dry_run or not fresh:
        return report
    gateway = app.gateway.name if report.cards else ""
    done = 0
    if on_slice:
        on_slice(0, len(fresh))  # checked: the writing begins
    for part in chunked(fresh, app.settings.batches.chunk_size):
        if app.stop.asked:  # between slices: each written slice is whole, the rest waits for a re-run
            report.stopped_after = done
            break
        try:
            with app.engine.begin() as conn:
                write_accounts(conn, part, now=now, actor=actor, gateway=gateway)
        except IntegrityError as error:
            if "external_key" not in str(error.orig):
                raise
            raise Conflict(f"another import wrote some of these accounts meanwhile; {done} were written by this "
                           "one: run it again, it skips the accounts already imported", code="import_raced") from None
        done += len(part)
        if on_slice:
            on_slice(done, len(fresh))
    return report


def _plans(conn: Connection) -> dict[str, PlanTerms]:
    return {row.code: PlanTerms(row.id, row.code, row.currency, row.interval)
            for row in conn.execute(select(plans.c.id, plans.c.code, plans.c.currency, plans.c.interval))}


def _against_the_database(conn: Connection, checked: Sequence[Account]) -> tuple[list[Account], list[Problem]]:
    """The accounts to write, and what the database refuses: a key already imported with
    another owner, a gateway customer or card token another account holds. A key already
    imported with the same owner is skipped (the second run of a file)."""
    owner = (select(members.c.email).where(members.c.account_id == accounts.c.id, members.c.role == Role.OWNER.value)
             .scalar_subquery())
    imported = dict(_lookup(conn, select(accounts.c.external_key, accounts.c.id, owner), accounts.c.external_key,
                            [account.key for account in checked], pairs=False))
    customers = dict(_lookup(conn, select(gateway_customers.c.customer, gateway_customers.c.account_id),
                             gateway_customers.c.customer, [a.card.customer for a in checked if a.card]))
    tokens = dict(_lookup(conn, select(cards.c.token, cards.c.account_id).where(cards.c.status == "active"),
                          cards.c.token, [a.card.token for a in checked if a.card]))
    fresh, problems = [], []
    for account in checked:
        if account.key in imported:
            account_id, its_owner = imported[account.key]
            if its_owner != account.owner_email:
                problems.append(Problem(account.line, "key", f"already imported as account {account_id}, whose "
                                                             f"owner is {its_owner}, not {account.owner_email}"))
            continue
        if account.card and account.card.customer in customers:
            problems.append(Problem(account.line, "card.customer",
                                    f"this gateway customer is account {customers[account.card.customer]}'s"))
        elif account.card and account.card.token in tokens:
            problems.append(Problem(account.line, "card.token",
                                    f"this card token is account {tokens[account.card.token]}'s card"))
        else:
            fresh.append(account)
    return fresh, problems


def _lookup(conn: Connection, query, column, values: list[str], *, pairs: bool = True) -> Iterable[tuple]:
    """The rows of `query` whose `column` is among `values`, a few thousand values a statement;
    as (value, other) pairs, or (value, (the others...))."""
    for part in chunked(sorted(set(values)), LOOKUP_SIZE):
        for row in conn.execute(query.where(among_texts(conn, column, part))):
            yield (row[0], row[1]) if pairs else (row[0], tuple(row[1:]))


def write_accounts(conn: Connection, part: Sequence[Account], *, now: datetime, actor: str, gateway: str) -> None:
    """One slice, inside the caller's transaction: ids first, then one bulk insert per table."""
    account_ids = allocate_ids(conn, accounts, len(part))
    subscription_ids = iter(allocate_ids(conn, subscriptions, sum(len(a.subscriptions) for a in part)))
    insert_rows(conn, accounts, ((
        account_id, a.key, a.name, a.locale, a.timezone, a.currency, AccountStatus.ACTIVE.value,
        *(a.buyer[name] for name in _BUYER), now, now) for account_id, a in zip(account_ids, part)),
        _ACCOUNT_COLUMNS, binary=True)
    insert_rows(conn, members, ((account_id, email, role, now) for account_id, a in zip(account_ids, part)
                                for email, role in ((a.owner_email, Role.OWNER.value),
                                                    *((m.email, m.role) for m in a.members))),
                ("account_id", "email", "role", "created_at"), binary=True)
    subscription_rows, audit_rows, events = [], [], []
    for account_id, a in zip(account_ids, part):
        # In each account's order as the single commands make them: created, members, card, subscriptions.
        audit_rows.append(_audit(now, actor, "account.created", "account", account_id,
                                 {"owner": a.owner_email}))
        events.append(writer.event(now, "account.created", account_id, {"account_id": account_id}))
        audit_rows += [_audit(now, actor, "member.added", "account", account_id, {"email": m.email, "role": m.role})
                       for m in a.members]
        events += [writer.event(now, "account.updated", account_id, {"account_id": account_id, "changed": ["members"]})
                   for _ in a.members]
        if a.card:
            audit_rows.append(_audit(now, actor, "gateway_customer.created", "account", account_id, {}))
            audit_rows.append(_audit(now, actor, "card.updated", "account", account_id, {
                "brand": a.card.brand, "last4": a.card.last4, "retries_requested": 0}))
            events.append(writer.event(now, "payment_method.updated", account_id,
                                       {"brand": a.card.brand, "last4": a.card.last4}))
        for s in a.subscriptions:
            subscription_id = next(subscription_ids)
            subscription_rows.append((subscription_id, account_id, s.plan.id, s.seats, "active", s.next_renewal, 0,
                                      local_midnight_utc(s.next_renewal, a.timezone), now))
            audit_rows.append(_audit(now, actor, "subscription.created", "subscription", subscription_id, {
                "account_id": account_id, "plan": s.plan.code, "seats": s.seats,
                "start": s.next_renewal.isoformat()}))
            events.append(writer.event(now, "subscription.created", account_id,
                                       {"subscription_id": subscription_id}))
    insert_rows(conn, subscriptions, subscription_rows, ("id", "account_id", "plan_id", "seats", "status",
                                                         "anchor_date", "periods_invoiced", "renews_at",
                                                         "created_at"), binary=True)
    with_cards = [(account_id, a.card) for account_id, a in zip(account_ids, part) if a.card]
    insert_rows(conn, gateway_customers, [(account_id, gateway, card.customer, now) for account_id, card in with_cards],
                ("account_id", "gateway", "customer", "created_at"), binary=True)
    insert_rows(conn, cards, [(account_id, card.token, card.brand, card.last4, card.exp_month, card.exp_year,
                               "active", actor, now) for account_id, card in with_cards],
                ("account_id", "token", "brand", "last4", "exp_month", "exp_year", "status", "added_by",
                 "added_at"), binary=True)
    insert_rows(conn, audit_log, audit_rows, ("at", "actor", "action", "target_type", "target_id", "reason",
                                              "details"), binary=True)
    writer.write_many(conn, events)


_BUYER = ("name", "line1", "line2", "postcode", "city", "country", "vat_id")
_ACCOUNT_COLUMNS = ("id", "external_key", "name", "locale", "timezone", "currency", "status",
                    *(f"buyer_{name}" for name in _BUYER), "created_at", "updated_at")


def _audit(at: datetime, actor: str, action: str, target_type: str, target_id: int, details: dict) -> tuple:
    return at, actor, action, target_type, str(target_id), REASON, details
