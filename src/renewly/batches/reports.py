"""What every batch report says of itself, so that the command line prints them all one way.

Each batch (renewals, payments, dunning, voids, retention) returns its own dataclass of counts;
`BatchReport` is what the command line and the scheduler ask of any of them: one line in words,
whether it did anything, whether it left rows undone, and its counts as JSON.
"""

from __future__ import annotations

from dataclasses import Field, dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable


@runtime_checkable
class BatchReport(Protocol):
    # Every report is a dataclass: the scheduler adds up rounds and logs runs field by field.
    __dataclass_fields__: ClassVar[dict[str, Field[Any]]]

    @property
    def did_anything(self) -> bool: ...

    @property
    def left_undone(self) -> bool: ...

    @property
    def parked(self) -> int: ...

    def describe(self) -> str: ...

    def as_json(self) -> dict[str, Any]: ...


class Reported:
    """The parts every report shares; a report that parks rows declares its own `parked` field."""

    parked = 0  # rows left aside with the reason (`renewly problems`)

    @property
    def left_undone(self) -> bool:
        """Rows it could not process: the run exits 1 once everything else is done."""
        return bool(self.parked)

    def as_json(self) -> dict[str, Any]:
        return dict(vars(self))


def parked_note(report: BatchReport) -> str:
    """The tail every report that parks rows ends its line with."""
    return f"; {report.parked} parked (renewly problems)" if report.parked else ""


@dataclass(frozen=True)
class BatchFailed(Reported):
    """The report of a batch that stopped on something its rows could not explain (a bug): the
    other batches of the tick ran all the same."""

    reason: str
    did_anything: bool = False

    @property
    def left_undone(self) -> bool:
        return True

    def describe(self) -> str:
        return f"failed: {self.reason}"
