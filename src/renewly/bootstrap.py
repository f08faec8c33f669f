"""The one place that wires adapters: configuration in, ready `Ports` (see renewly.ports) out.

What most commands never use is imported when first used, not here: the simulated gateway (when
a command first charges or asks the gateway) and dunning's settlement (when an invoice is first
settled); a read's start is mostly imports (docs/performance.md, "A command's start").
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from renewly.adapters.clock import Clock, PersistedTestClock, SystemClock
from renewly.adapters.db.engine import ensure_schema, make_engine
from renewly.adapters.db.locks import several_writers
from renewly.config.policy import load_policy
from renewly.config.settings import Settings, load_settings
from renewly.dunning.rules.schedule import Policy
from renewly.outbox.rendering import mail_templates
from renewly.ports import Ports, Settlement

if TYPE_CHECKING:
    from datetime import datetime

    from sqlalchemy import Connection

    from renewly.adapters.gateways.port import PaymentGateway
    from renewly.adapters.mail.port import MailTransport

# The name the command line, the demo and the tests know the application by.
App = Ports


def bootstrap(settings: Settings | None = None, *, clock: Clock | None = None, gateway: PaymentGateway | None = None,
              policy: Policy | None = None, upgrade: bool = True) -> App:
    settings = settings or load_settings()
    templates = mail_templates(settings.templates_dir)
    # An invalid policy file stops everything here, before any work; so does a step whose e-mail
    # has no templates.
    policy = policy or load_policy(has_email=templates.has_email)
    if settings.templates_dir is not None:
        # An operator's templates and translations, compiled and rendered in every language: a
        # bad one is refused now (file, line, reason) rather than in the middle of a sweep. The
        # shipped ones alone are checked by the suite: a start without the folder compiles nothing.
        templates.check(step.email for step in policy.steps if step.email)
    engine = make_engine(settings.database_url)
    if upgrade:
        ensure_schema(engine)
    if clock is None:
        clock = PersistedTestClock(engine) if settings.clock == "test" else SystemClock()
    running_clock = clock

    def connect_gateway() -> PaymentGateway:
        if gateway is not None:  # a test's, or a fake
            return gateway
        from renewly.adapters.gateways.simulated import SimulatedGateway
        return SimulatedGateway(settings.simulator_url(), running_clock,
                                latency=settings.payments.simulator_latency_ms / 1000)

    def connect_mailer() -> MailTransport:
        from renewly.adapters.mail.smtp import SmtpTransport  # aiosmtplib: only when e-mails leave
        return SmtpTransport(settings.mail)

    ports = Ports(settings=settings, engine=engine, clock=clock, policy=policy, connect_gateway=connect_gateway,
                  settlement=DunningSettlementOnFirstUse(),
                  connect_mailer=connect_mailer if settings.mail.configured else None)
    if several_writers(engine):
        # PostgreSQL: work a transaction makes due is queued in it for the workers
        # (procrastinate, imported only when a job is first written: most commands write none).
        from renewly.worker.follow_ups import QueuedFollowUps
        ports.follow_ups = QueuedFollowUps(ports)
    return ports


class DunningSettlementOnFirstUse:
    """`Ports.settlement`: dunning's (renewly.dunning.recovery.DunningSettlement), its module
    imported by the first charge answered or invoice voided, which a read never settles."""

    def after_charges(self, conn: Connection, app: Ports, *, account_ids: set[int], paid_invoice_ids: list[int],
                      answered_attempt_ids: list[int], as_of: datetime) -> None:
        dunning_settlement().after_charges(conn, app, account_ids=account_ids, paid_invoice_ids=paid_invoice_ids,
                                           answered_attempt_ids=answered_attempt_ids, as_of=as_of)

    def after_void(self, conn: Connection, app: Ports, invoice_id: int, as_of: datetime) -> None:
        dunning_settlement().after_void(conn, app, invoice_id, as_of)


@cache
def dunning_settlement() -> Settlement:
    from renewly.dunning.recovery import DunningSettlement
    return DunningSettlement()

