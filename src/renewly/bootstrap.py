"""The one place that wires adapters: configuration in, a ready `App` out."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from zoneinfo import ZoneInfo

from sqlalchemy import Engine

from renewly.adapters.clock import Clock, PersistedTestClock, SystemClock
from renewly.adapters.db.engine import ensure_schema, make_engine
from renewly.adapters.gateways.port import PaymentGateway
from renewly.adapters.gateways.simulated import SimulatedGateway
from renewly.batches.stopping import StopRequest
from renewly.billing.rules.invoices import TaxTable
from renewly.config.policy import load_policy
from renewly.config.settings import Settings, load_settings
from renewly.dunning.rules.schedule import Policy


@dataclass
class App:
    settings: Settings
    engine: Engine
    clock: Clock
    policy: Policy
    _gateway: PaymentGateway | None = field(default=None, repr=False)
    # Asked (the first Ctrl-C), every batch stops before its next slice.
    stop: StopRequest = field(default_factory=StopRequest, repr=False)

    @cached_property
    def gateway(self) -> PaymentGateway:
        """The payment gateway, connected on first use (most commands never charge)."""
        if self._gateway is not None:
            return self._gateway
        return SimulatedGateway(self.settings.simulator_url(), self.clock,
                                latency=self.settings.payments.simulator_latency_ms / 1000)

    @property
    def taxes(self) -> TaxTable:
        return TaxTable(self.settings.tax_rates, self.settings.default_tax_rate)

    @property
    def seller(self) -> dict[str, str]:
        return self.settings.seller.snapshot()

    @property
    def seller_zone(self) -> ZoneInfo:
        return ZoneInfo(self.settings.seller.timezone)

    @property
    def test_clock(self) -> PersistedTestClock | None:
        return self.clock if isinstance(self.clock, PersistedTestClock) else None


def bootstrap(settings: Settings | None = None, *, clock: Clock | None = None, gateway: PaymentGateway | None = None,
              policy: Policy | None = None, upgrade: bool = True) -> App:
    settings = settings or load_settings()
    policy = policy or load_policy()  # an invalid policy file stops everything here, before any work
    engine = make_engine(settings.database_url)
    if upgrade:
        ensure_schema(engine)
    if clock is None:
        clock = PersistedTestClock(engine) if settings.clock == "test" else SystemClock()
    return App(settings=settings, engine=engine, clock=clock, policy=policy, _gateway=gateway)
