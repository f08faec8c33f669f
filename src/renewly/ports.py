"""What a use case is given to work with: the application's ports.

`Ports` is one small typed object, the only thing a use case receives from outside (its
parameter is still called `app`): the database (a SQLAlchemy engine; what differs between
SQLite and PostgreSQL is answered by renewly.adapters.db), the clock, the payment gateway
(connected on first use), the e-mail transport, the settings, the dunning policy, and the stop request that batch
loops look at between slices. Use cases import this module, never renewly.bootstrap:
bootstrap.py, the one composition root, builds a `Ports` from the configuration, and tests
build theirs through it too (with a fake gateway or a test clock).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Protocol
from zoneinfo import ZoneInfo

from renewly.adapters.clock import Clock, PersistedTestClock

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy import Connection, Engine

    from renewly.adapters.gateways.port import PaymentGateway
    from renewly.adapters.mail.port import MailTransport
    from renewly.billing.rules.invoices import TaxTable
    from renewly.config.settings import Settings
    from renewly.dunning.rules.schedule import Policy


class StopRequest:
    """Asked once (the first Ctrl-C), seen by every batch loop of the application from then on.

    A batch stops between slices, never inside one: each loop looks at `asked` before it claims
    its next slice (or before its next phase), so that the slice in hand finishes, its
    transaction commits and its gateway calls get their answers recorded, leaving nothing
    pending for the janitor. Any thread may ask or look: the batches' workers run in threads of
    their own on PostgreSQL.
    """

    def __init__(self) -> None:
        self._asked = threading.Event()

    def ask(self) -> None:
        self._asked.set()

    @property
    def asked(self) -> bool:
        return self._asked.is_set()


class LeaseHolder:
    """Who holds this process's leases on pending charges: on PostgreSQL a queue worker's
    procrastinate id, set once procrastinate has registered the worker, and written on each
    attempt the process claims. A janitor takes over such an attempt as soon as that worker is
    seen dead (silent for `worker.stalled_seconds`), not only once its lease has run out: a
    killed worker's charges are settled by the tick run again after it, and their notices keep
    the tick's date. None outside a worker (`renewly run`, SQLite): a lease then ends with its
    time only."""

    def __init__(self) -> None:
        self.worker_id: int | None = None


class Settlement(Protocol):
    """What settling invoices means beyond them, told in the transaction that records it.

    Payments (answers to charges recorded) and billing (an open invoice voided by a credit note)
    sit below dunning and call this; dunning implements it (renewly.dunning.recovery.
    DunningSettlement: cases recovered or closed, a step's awaited notice given, the owner told
    of a declined card retry) and bootstrap wires it in.
    """

    def after_charges(self, conn: Connection, app: Ports, *, account_ids: set[int], paid_invoice_ids: list[int],
                      answered_attempt_ids: list[int], as_of: datetime) -> None:
        """The accounts are already locked by the caller."""

    def after_void(self, conn: Connection, app: Ports, invoice_id: int, as_of: datetime) -> None:
        """An open invoice just voided: nothing left to chase on it."""


class FollowUps(Protocol):
    """Work a transaction makes due for a batch, told in that transaction, so that a queue worker
    runs it at the batch's next tick without waiting to look for it (a card update's retry for
    the next payment batch, R7.1): the job is written with the work or not at all. On PostgreSQL
    renewly.worker.follow_ups queues a job (bootstrap wires it); on SQLite nothing is queued, the
    embedded worker finds due work by looking (scheduler.tick_due)."""

    def work_due(self, conn: Connection, batch: str, due_at: datetime) -> None:
        """`batch` has work due from `due_at` on, written in `conn`'s transaction."""


class NoFollowUps:
    def work_due(self, conn: Connection, batch: str, due_at: datetime) -> None:
        return None


@dataclass
class Ports:
    settings: Settings
    engine: Engine
    clock: Clock
    policy: Policy
    # How to reach the payment gateway; called once, on first use (most commands never charge).
    connect_gateway: Callable[[], PaymentGateway] = field(repr=False)
    # What settled invoices mean for dunning, which sits above payments and billing.
    settlement: Settlement = field(repr=False)
    # Asked (the first Ctrl-C), every batch stops before its next slice.
    stop: StopRequest = field(default_factory=StopRequest, repr=False)
    # How e-mails leave (SMTP); None while no SMTP server is configured (delivery off).
    connect_mailer: Callable[[], MailTransport] | None = field(default=None, repr=False)
    # Work a transaction makes due, told to the job queue in it (PostgreSQL); nothing on SQLite.
    follow_ups: FollowUps = field(default_factory=NoFollowUps, repr=False)
    # The queue worker whose heartbeat vouches for this process's pending charges, if any.
    leases: LeaseHolder = field(default_factory=LeaseHolder, repr=False)

    @cached_property
    def gateway(self) -> PaymentGateway:
        """The payment gateway, connected on first use."""
        return self.connect_gateway()

    @cached_property
    def mailer(self) -> MailTransport | None:
        """The e-mail transport, made on first use; None when delivery is off."""
        return self.connect_mailer() if self.connect_mailer is not None else None

    @property
    def taxes(self) -> TaxTable:
        from renewly.billing.rules.invoices import TaxTable  # with Babel's dates: not for every command
        return TaxTable(self.settings.tax_rates, self.settings.default_tax_rate)

    @property
    def seller(self) -> dict[str, str]:
        return self.settings.seller.snapshot()

    @property
    def seller_zone(self) -> ZoneInfo:
        return ZoneInfo(self.settings.seller.timezone)

    @property
    def test_clock(self) -> PersistedTestClock | None:
        """The clock an operator may move (RENEWLY_CLOCK=test); None on the system clock."""
        return self.clock if isinstance(self.clock, PersistedTestClock) else None
