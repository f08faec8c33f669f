"""Set-based writes for batches: one statement (or one COPY) per slice, never one per row.

PostgreSQL gets COPY; SQLite, an in-process engine, gets executemany. Both run inside the
caller's transaction, so a slice commits whole or not at all.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

from psycopg.types.json import Jsonb
from sqlalchemy import Connection, Table, bindparam, func, select, text


def is_postgres(conn: Connection) -> bool:
    return conn.dialect.name == "postgresql"


def allocate_ids(conn: Connection, table: Table, count: int) -> list[int]:
    """Primary keys for rows about to be written, so that child rows can point at them."""
    if count == 0:
        return []
    if is_postgres(conn):
        rows = conn.execute(text("SELECT nextval(pg_get_serial_sequence(:table, 'id')) FROM generate_series(1, :n)"),
                            {"table": table.name, "n": count})
        return [row[0] for row in rows]
    # SQLite: BEGIN IMMEDIATE holds the only write lock, so nobody else takes these ids meanwhile.
    highest = conn.execute(select(func.coalesce(func.max(table.c.id), 0))).scalar_one()
    return list(range(highest + 1, highest + 1 + count))


def insert_rows(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]) -> None:
    if not rows:
        return
    if not is_postgres(conn):
        conn.execute(table.insert(), list(rows))
        return
    columns = list(rows[0].keys())
    cursor = conn.connection.driver_connection.cursor()
    with cursor.copy(f"COPY {table.name} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([_copy_value(row[column]) for column in columns])


def update_rows(conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]], key: str = "id") -> None:
    """Set each row's columns where `key` matches: COPY into a scratch table and one UPDATE on PostgreSQL."""
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
    cursor = conn.connection.driver_connection.cursor()
    with cursor.copy(f"COPY {scratch} ({key}, {', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row([_copy_value(row[key])] + [_copy_value(row[column]) for column in columns])
    assignments = ", ".join(f"{column} = s.{column}" for column in columns)
    conn.exec_driver_sql(f"UPDATE {table.name} t SET {assignments} FROM {scratch} s WHERE t.{key} = s.{key}")
    conn.exec_driver_sql(f"DROP TABLE {scratch}")


def _copy_value(value: Any) -> Any:
    return Jsonb(value) if isinstance(value, (dict, list)) else value


def chunked(items: Iterable[Any], size: int) -> Iterable[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
