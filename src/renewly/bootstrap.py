"""The one place that wires adapters: configuration in, ready `Ports` (see renewly.ports) out."""

from __future__ import annotations

from renewly.adapters.clock import Clock, PersistedTestClock, SystemClock
from renewly.adapters.db.engine import ensure_schema, make_engine
from renewly.adapters.gateways.port import PaymentGateway
from renewly.adapters.gateways.simulated import SimulatedGateway
from renewly.config.policy import load_policy
from renewly.config.settings import Settings, load_settings
from renewly.dunning.recovery import DunningSettlement
from renewly.dunning.rules.schedule import Policy
from renewly.ports import Ports

# The name the command line, the demo and the tests know the application by.
App = Ports


def bootstrap(settings: Settings | None = None, *, clock: Clock | None = None, gateway: PaymentGateway | None = None,
              policy: Policy | None = None, upgrade: bool = True) -> App:
    settings = settings or load_settings()
    policy = policy or load_policy()  # an invalid policy file stops everything here, before any work
    engine = make_engine(settings.database_url)
    if upgrade:
        ensure_schema(engine)
    if clock is None:
        clock = PersistedTestClock(engine) if settings.clock == "test" else SystemClock()
    running_clock = clock

    def connect_gateway() -> PaymentGateway:
        if gateway is not None:  # a test's, or a fake
            return gateway
        return SimulatedGateway(settings.simulator_url(), running_clock,
                                latency=settings.payments.simulator_latency_ms / 1000)

    return Ports(settings=settings, engine=engine, clock=clock, policy=policy, connect_gateway=connect_gateway,
                 settlement=DunningSettlement())
