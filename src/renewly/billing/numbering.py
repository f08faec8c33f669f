"""R2.1: taking gapless numbers for issued documents, under the series lock.

A series' counter row is locked by the UPDATE that takes a block of numbers, until the commit:
numbers are gapless and in issue order, even with several workers, and a rolled back issue
gives its numbers back.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import Connection, update

from renewly.adapters.db.bulk import insert_ignoring_conflicts
from renewly.adapters.db.tables import invoice_series
from renewly.billing.rules.numbering import by_series, invoice_number


def take_sequences(conn: Connection, series: str, count: int) -> int:
    """Reserve `count` consecutive numbers in `series`; returns the first. Holds the series lock."""
    _create_series(conn, series)
    first = conn.execute(update(invoice_series).where(invoice_series.c.series == series)
                         .values(next_sequence=invoice_series.c.next_sequence + count)
                         .returning(invoice_series.c.next_sequence)).scalar_one() - count
    return first


def _create_series(conn: Connection, series: str) -> None:
    conn.execute(insert_ignoring_conflicts(conn)(invoice_series).values(series=series, next_sequence=1)
                 .on_conflict_do_nothing())


def take_numbers(conn: Connection, series_of: Sequence[str]) -> list[tuple[str, int]]:
    """(number, sequence) for each document, in order, numbered within its own series."""
    numbers: list[tuple[str, int]] = [("", 0)] * len(series_of)
    for series, positions in by_series(series_of):
        first = take_sequences(conn, series, len(positions))
        for offset, position in enumerate(positions):
            numbers[position] = (invoice_number(series, first + offset), first + offset)
    return numbers
