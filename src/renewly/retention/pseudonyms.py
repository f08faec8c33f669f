"""A deleted account's people become pseudonyms in the audit log (R10.1), for the retention batch.

Two steps around the deletion, each a few statements for a whole slice of accounts: first what the
accounts' rows say about their people (read before members and contacts are deleted), then, once
the accounts are marked deleted, their audit entries rewritten (the triggers let only that through,
migration 0010), and the other texts support wrote about them: reactivations' and parked rows'
reasons. How pseudonyms are given, and why: domain/pseudonyms.py.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable

from sqlalchemy import Connection, Text, cast, select, union_all

from renewly.adapters.db.bulk import update_rows
from renewly.adapters.db.guards import pseudonymising_audit
from renewly.adapters.db.tables import (
    accounts,
    audit_log,
    billing_contacts,
    cards,
    dunning_cases,
    gateway_customers,
    invoices,
    members,
    parked_rows,
    reactivations,
    subscriptions,
)
from renewly.retention.rules.pseudonyms import AuditEntry, KnownPersonalData, pseudonymise

BUYER_TEXTS = ("name", "line1", "line2", "postcode", "city", "vat_id")  # the country names nobody


def personal_data_of(conn: Connection, account_ids: list[int]) -> dict[int, KnownPersonalData]:
    """The addresses of the accounts' people, and the texts that point at them: names and address
    lines (the account's, and every issued invoice's buyer), cards and the gateway's customer."""
    emails: dict[int, set[str]] = defaultdict(set)
    texts: dict[int, set[str]] = defaultdict(set)
    for table, columns in ((members, ("email",)), (billing_contacts, ("email", "requested_by")),
                           (cards, ("added_by",))):
        for row in conn.execute(select(table.c.account_id, *(table.c[c] for c in columns))
                                .where(table.c.account_id.in_(account_ids))):
            emails[row[0]].update(row[1:])
    for row in conn.execute(select(cards.c.account_id, cards.c.token, cards.c.last4)
                            .where(cards.c.account_id.in_(account_ids))):
        texts[row[0]].update(row[1:])
    for row in conn.execute(select(gateway_customers.c.account_id, gateway_customers.c.customer)
                            .where(gateway_customers.c.account_id.in_(account_ids))):
        texts[row[0]].add(row[1])
    for row in conn.execute(select(accounts.c.id, accounts.c.name, *(accounts.c[f"buyer_{key}"] for key in BUYER_TEXTS))
                            .where(accounts.c.id.in_(account_ids))):
        texts[row[0]].update(row[1:])
    for account_id, buyer in conn.execute(select(invoices.c.account_id, invoices.c.buyer)
                                          .where(invoices.c.account_id.in_(account_ids))):
        texts[account_id].update(str(buyer.get(key) or "") for key in BUYER_TEXTS)
    return {account_id: KnownPersonalData(emails=frozenset(emails[account_id]), texts=frozenset(texts[account_id]))
            for account_id in account_ids}


def pseudonymise_deleted(conn: Connection, known: dict[int, KnownPersonalData]) -> Counter[int]:
    """Rewrite the entries of these accounts, already marked deleted; how many per account."""
    account_ids = list(known)
    entries: dict[int, list[AuditEntry]] = defaultdict(list)
    for row in conn.execute(entries_about(account_ids)):
        entries[row.account_id].append(AuditEntry(id=row.id, actor=row.actor, action=row.action, reason=row.reason,
                                                  details=row.details))
    pseudonymisers, rewritten, counted = {}, [], Counter[int]()
    for account_id in account_ids:
        pseudonymisers[account_id], changed = pseudonymise(account_id, known[account_id], entries[account_id])
        rewritten += changed
        counted[account_id] = len(changed)
    with pseudonymising_audit(conn):
        update_rows(conn, audit_log, [{"id": entry.id, "actor": entry.actor, "reason": entry.reason,
                                       "details": entry.details} for entry in rewritten])
    # Support's reasons for a reactivation, a batch's for a parked row: free texts about the
    # account; and who granted or resolved them, named as in the audit log.
    for table, actor in ((reactivations, "granted_by"), (parked_rows, "resolved_by")):
        rows = conn.execute(select(table.c.id, table.c.account_id, table.c.reason, table.c[actor])
                            .where(table.c.account_id.in_(account_ids))).all()
        update_rows(conn, table, list(_changed(rows, actor, pseudonymisers)))
    return counted


def entries_about(account_ids: list[int]):
    """(account_id, id, actor, action, reason, details) of the entries about these accounts: the
    account itself, one of its subscriptions or dunning cases, or one of its invoices by number.
    Each part probes `ix_audit_log_target` once per target."""
    columns = (audit_log.c.id, audit_log.c.actor, audit_log.c.action, audit_log.c.reason, audit_log.c.details)

    def about(target_type: str, table, account_id, key):
        return (select(account_id.label("account_id"), *columns)
                .join_from(table, audit_log, (audit_log.c.target_type == target_type) & (audit_log.c.target_id == key))
                .where(account_id.in_(account_ids)))

    return union_all(
        about("account", accounts, accounts.c.id, cast(accounts.c.id, Text)),
        about("subscription", subscriptions, subscriptions.c.account_id, cast(subscriptions.c.id, Text)),
        about("dunning_case", dunning_cases, dunning_cases.c.account_id, cast(dunning_cases.c.id, Text)),
        about("invoice", invoices, invoices.c.account_id, invoices.c.number),
    )


def _changed(rows: Iterable, actor: str, pseudonymisers) -> Iterable[dict]:
    for row in rows:
        pseudonymiser, named = pseudonymisers[row.account_id], row._mapping[actor]
        new = {"id": row.id, "reason": pseudonymiser.text(row.reason),
               actor: pseudonymiser.actor(named) if named is not None else None}
        if (new["reason"], new[actor]) != (row.reason, named):
            yield new
