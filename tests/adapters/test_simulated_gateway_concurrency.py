"""The simulated gateway answers one request sent twice at once as a real gateway does: it acts
once, and both get that answer. On a ledger in PostgreSQL (READ COMMITTED) both find no answer
under the key and both write one: the unique key refuses the second, which reads the first's."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.engine import make_url

from renewly.adapters.gateways.simulated import SimulatedGateway, sim_operations
from renewly.payments.rules.charges import Outcome
from tests.adapters.test_simulated_gateway import FixedClock, card_of
from tests.conftest import ADMIN_URL, admin_connection

pytestmark = pytest.mark.postgres_only


@pytest.fixture
def pg_ledger():
    """A simulated gateway whose ledger is a database of its own on the test server."""
    admin = admin_connection()
    name = f"renewly_ledger_{uuid.uuid4().hex[:10]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    gateway = SimulatedGateway(make_url(ADMIN_URL).set(drivername="postgresql+psycopg", database=name)
                               .render_as_string(False), FixedClock())
    yield gateway
    gateway._engine.dispose()
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()


def test_r5_2_two_voids_of_one_hold_at_once_under_one_key_both_get_its_one_answer(pg_ledger):
    gateway = pg_ledger
    customer, token = card_of(gateway, "4242424242424242")
    held = gateway.authorize(customer, token, 100, "USD", "check-1")
    answers = []
    voids = [threading.Thread(target=lambda: answers.append(gateway.void(held.reference, "check-1-void")))
             for _ in range(2)]
    with gateway._engine.connect() as holder, gateway._engine.connect() as watcher:
        # Both find no answer under the key, then wait to release the hold: let go together.
        holder.execute(select(sim_operations.c.id).where(sim_operations.c.id == held.reference).with_for_update())
        for void in voids:
            void.start()
        deadline = time.monotonic() + 30
        while watcher.execute(text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                   "AND cardinality(pg_blocking_pids(pid)) > 0")).scalar() < 2:
            watcher.rollback()
            assert time.monotonic() < deadline, "the two voids never both waited"
            time.sleep(0.02)
        holder.rollback()
    for void in voids:
        void.join(timeout=30)

    assert [(answer.outcome, answer.amount) for answer in answers] == [(Outcome.SUCCEEDED, 100)] * 2
    assert gateway.held_authorizations() == []
    with gateway._engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(sim_operations)
                            .where(sim_operations.c.kind == "void")).scalar() == 1
