"""Who else may be writing, and how a transaction keeps the rows it works on to itself.

The one place where the engines differ in this. On PostgreSQL several workers (threads of a
batch, other processes) write at once, so a use case locks the rows it reads to change them,
and a batch claims the rows nobody else holds. On SQLite a write transaction (BEGIN IMMEDIATE,
see engine.py) holds the whole database: nobody else writes meanwhile, so each of these is a
no-op there and there is never a second worker. Use cases ask these questions; they never ask
which engine they run on.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypeVar

from sqlalchemy import Connection, Engine, Select, Table, select

from renewly.adapters.db.bulk import among, is_postgres

Query = TypeVar("Query", bound=Select)


def several_writers(bind: Connection | Engine) -> bool:
    """Whether other workers may write while this one does (PostgreSQL); False where the engine
    lets one writer in at a time (SQLite), so that no one else can hold, claim or change a row."""
    return is_postgres(bind)


def claim_unheld(query: Query, conn: Connection, *, of=None, key_share: bool = False) -> Query:
    """The rows `query` reads that no other transaction holds, locked to the end of this one
    (FOR UPDATE SKIP LOCKED): what another worker claims is its own, and it is not waited for.
    `of`: the tables whose rows are locked (all that the query reads if None). `key_share`: FOR
    NO KEY UPDATE, which lets others write rows that point at these ones meanwhile."""
    if not several_writers(conn):
        return query
    return query.with_for_update(of=of, skip_locked=True, key_share=key_share)


def hold_until_commit(query: Query, conn: Connection, *, of=None, key_share: bool = False) -> Query:
    """The rows `query` reads, locked to the end of the transaction (FOR UPDATE), waiting for
    whoever holds them now. `of` and `key_share` as for `claim_unheld`."""
    if not several_writers(conn):
        return query
    return query.with_for_update(of=of, key_share=key_share)


def hold_rows(conn: Connection, table: Table, ids: Iterable[int], *, key_share: bool = False) -> None:
    """Lock the rows of `table` with these ids to the end of the transaction, in id order (so
    that two transactions that lock several take them in the same order, and never wait for
    each other). Nothing to do where the writer holds the whole database already."""
    ids = sorted(ids)
    if ids and several_writers(conn):
        conn.execute(select(table.c.id).where(among(conn, table.c.id, ids))
                     .order_by(table.c.id).with_for_update(key_share=key_share))
