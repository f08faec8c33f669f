"""Set-based writes for batches: one statement (or one COPY) per slice, never one per row.

PostgreSQL gets COPY; SQLite, an in-process engine, gets executemany. Both run inside the
caller's transaction, so a slice commits whole or not at all.
"""

from __future__ import annotations

import json
import typing
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    ColumnElement,
    Connection,
    Engine,
    Table,
    Text,
    any_,
    bindparam,
    cast,
    func,
    select,
    text,
)
from sqlalchemy.exc import DBAPIError

from renewly.adapters.db.tables import Document


def is_postgres(conn: Connection | Engine) -> bool:
    return conn.dialect.name == "postgresql"


def insert_ignoring_conflicts(conn: Connection):
    """The dialect's INSERT construct, whose `on_conflict_do_nothing` skips the rows a unique key
    refuses, and `on_conflict_do_update` updates them instead (both engines speak ON CONFLICT)."""
    if is_postgres(conn):
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert
        return postgresql_insert
    from sqlalchemy.dialects.sqlite import insert as sqlite_insert
    return sqlite_insert


def among(conn: Connection, column: ColumnElement, values: Sequence[int]) -> ColumnElement[bool]:
    """`column IN values`. On PostgreSQL, one array parameter: an IN list of a slice's thousands
    of parameters costs more to send and parse than the lookups themselves. And `IN (SELECT
    unnest(array))` rather than `= ANY(array)`: the planner then probes the index once per value,
    where for ANY it may scan a whole small table (billing contacts) for every slice."""
    if is_postgres(conn):
        from sqlalchemy.dialects.postgresql import ARRAY
        # Sent as the text of an array literal: psycopg's list dumper costs a microsecond per element.
        array = cast(bindparam(None, "{" + ",".join(str(int(value)) for value in values) + "}", type_=Text),
                     ARRAY(BigInteger))
        return column.in_(select(func.unnest(array)))
    return column.in_(values)


def among_texts(conn: Connection, column: ColumnElement, values: Sequence[str]) -> ColumnElement[bool]:
    """`column IN values` for text values; on PostgreSQL one array parameter, not thousands
    (as `among` for ids)."""
    if is_postgres(conn):
        from sqlalchemy.dialects.postgresql import ARRAY
        return column == any_(bindparam(None, list(values), type_=ARRAY(Text)))
    return column.in_(values)


def allocate_ids(conn: Connection, table: Table, count: int) -> list[int]:
    """Primary keys for rows about to be written, so that child rows can point at them."""
    if count == 0:
        return []
    if is_postgres(conn):
        # One array, not `count` result rows: a slice of 20,000 ids costs one small round trip.
        return conn.execute(text("SELECT array_agg(nextval(pg_get_serial_sequence(:table, 'id'))) "
                                 "FROM generate_series(1, :n)"), {"table": table.name, "n": count}).scalar_one()
    # SQLite: BEGIN IMMEDIATE holds the only write lock, so nobody else takes these ids meanwhile.
    highest = conn.execute(select(func.coalesce(func.max(table.c.id), 0))).scalar_one()
    if table.dialect_options["sqlite"]["autoincrement"]:
        # Past every id ever given, as SQLite's AUTOINCREMENT would be (inserting them moves it on):
        # the rows with the highest ids may have been deleted.
        given = conn.execute(text("SELECT seq FROM sqlite_sequence WHERE name = :table"), {"table": table.name})
        highest = max(highest, given.scalar() or 0)
    return list(range(highest + 1, highest + 1 + count))


def insert_rows(conn: Connection, table: Table, rows: Iterable[Mapping[str, Any]] | Iterable[Sequence[Any]],
                columns: Sequence[str] | None = None, *, binary: bool = False) -> None:
    """Insert mappings, or tuples of values in the order of `columns`.

    With `columns`, `rows` may be a generator: PostgreSQL consumes it while the COPY streams, so
    that Python builds the next rows while the server writes the first ones. JSON values are dicts
    or lists; one object given in many rows is serialised once. `binary=True` sends binary COPY,
    several times cheaper per row for both sides, for callers whose every value has its column's
    Python type: int for integers, str for strings, date, aware datetime, dict or list for JSON.
    """
    if isinstance(rows, Sequence) and not rows:
        return
    tuples: Iterable[Sequence[Any]]
    if columns is None:
        mappings = typing.cast("list[Mapping[str, Any]]", list(rows))  # no columns: the rows are mappings
        columns = list(mappings[0].keys())
        tuples = [[row[column] for column in columns] for row in mappings]
    else:
        tuples = typing.cast("Iterable[Sequence[Any]]", rows)  # columns: the rows are tuples of values
    if not is_postgres(conn):
        values = [dict(zip(columns, row)) for row in tuples]
        if values:  # an empty executemany would insert one row of defaults
            conn.execute(table.insert(), values)
        return
    _copy(conn, table, table.name, columns, tuples, binary)


def update_rows(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]], key: str = "id", *,
                binary: bool = False) -> None:
    """Set each row's columns where `key` matches: COPY into a scratch table and one UPDATE on PostgreSQL.

    `binary` as for `insert_rows`.
    """
    if not rows:
        return
    columns = [column for column in rows[0].keys() if column != key]
    if not is_postgres(conn):
        statement = (table.update().where(table.c[key] == bindparam("_key"))
                     .values({column: bindparam(column) for column in columns}))
        conn.execute(statement, [{**{c: row[c] for c in columns}, "_key": row[key]} for row in rows])
        return
    scratch = f"_update_{table.name}"
    # Same column types as the table, none of its constraints.
    conn.exec_driver_sql(f"CREATE TEMP TABLE {scratch} ON COMMIT DROP AS "
                         f"SELECT {key}, {', '.join(columns)} FROM {table.name} WITH NO DATA")
    names = [key, *columns]
    _copy(conn, table, scratch, names, [[row[name] for name in names] for row in rows], binary)
    assignments = ", ".join(f"{column} = s.{column}" for column in columns)
    # The list of keys lets the planner fetch the rows by index. Without it, it may merge-join along
    # the whole primary key (or hash the whole table), and every slice costs as much as the table.
    conn.exec_driver_sql(f"UPDATE {table.name} t SET {assignments} FROM {scratch} s "
                         f"WHERE t.{key} = s.{key} AND t.{key} = ANY(%(keys)s)", {"keys": [row[key] for row in rows]})
    conn.exec_driver_sql(f"DROP TABLE {scratch}")


class JsonDocuments:
    """JSON values made ready for COPY ahead of time, each distinct object (by identity) once.

    A batch prepares its documents before it takes a lock, so that the time under the lock is the
    database's alone. On SQLite the values are kept as they are (the JSON column type serialises them).
    """

    def __init__(self, conn: Connection, *, binary: bool = True) -> None:
        self.postgres, self.binary = is_postgres(conn), binary
        if self.postgres:  # PostgreSQL's driver, imported where it is used: SQLite commands never load it
            from psycopg.types.json import Jsonb
            self._jsonb: type = Jsonb
        # id() of a value -> (the value, what COPY sends). Holding the value keeps its id from being reused.
        self._dumped: dict[int, tuple[Any, Any]] = {}

    def __call__(self, value: Any) -> Any:
        if value is None or not self.postgres:
            return value
        if isinstance(value, (self._jsonb, _DumpedText)):
            return value
        known = self._dumped.get(id(value))
        if known is None:
            text_value = json.dumps(value)
            # Text COPY: the server parses the text. Binary: the same text, as jsonb.
            sent = self._jsonb(text_value, dumps=str) if self.binary else _DumpedText(text_value)
            known = self._dumped[id(value)] = (value, sent)
        return known[1]


class _DumpedText(str):
    """JSON already serialised for a text COPY."""


def _copy(conn: Connection, table: Table, target: str, columns: Sequence[str], rows: Iterable[Sequence[Any]],
          binary: bool) -> None:
    """COPY rows of `table`'s columns into `target` (the table or a scratch copy of it)."""
    import psycopg  # PostgreSQL's driver (COPY is PostgreSQL's): an SQLite command never loads it

    json_positions = [position for position, name in enumerate(columns)
                      if isinstance(table.c[name].type, (JSON, Document))]
    documents = JsonDocuments(conn, binary=binary)
    driver_connection = conn.connection.driver_connection
    if driver_connection is None:
        raise RuntimeError("COPY needs the driver's connection, and this one has none (closed?)")
    cursor = driver_connection.cursor()
    statement = f"COPY {target} ({', '.join(columns)}) FROM STDIN{' (FORMAT BINARY)' if binary else ''}"
    try:
        with cursor.copy(statement) as copy:
            if binary:
                # Binary values carry no text to parse: the column types choose how each one is sent.
                copy.set_types([table.c[name].type.compile(dialect=conn.dialect).lower().split("(")[0]
                                for name in columns])
            for row in rows:
                if json_positions:
                    row = list(row)
                    for position in json_positions:
                        row[position] = documents(row[position])
                copy.write_row(row)
    except psycopg.Error as error:
        # The driver's cursor bypasses SQLAlchemy: raise what SQLAlchemy would (IntegrityError for a
        # unique key, ...), so that callers catch one kind of error whichever way rows were written.
        raise DBAPIError.instance(statement, None, error, psycopg.Error) from error


def chunked(items: Iterable[Any], size: int) -> Iterable[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
