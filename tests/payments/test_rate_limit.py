"""Gateway calls under the rate cap: one cap for every worker, chosen by where workers may run."""

from __future__ import annotations

import dataclasses
import time

from renewly.adapters.db.rate_cap import SharedRateCap
from renewly.payments.rate_limit import TokenBucket, gateway_rate_cap

IN_PLACE = {"sqlite": TokenBucket, "postgresql": SharedRateCap}


def test_workers_share_the_databases_cap_where_several_may_run_and_one_alone_keeps_its_own(app, db_kind):
    cap = gateway_rate_cap(app)
    assert type(cap) is IN_PLACE[db_kind]
    assert cap.rate == app.settings.payments.rate_limit_per_second  # the total for all workers


def test_the_token_bucket_spaces_acquisitions_at_the_rate():
    bucket = TokenBucket(rate=200)
    started = time.perf_counter()
    for _ in range(41):
        bucket.acquire()
    assert time.perf_counter() - started >= 40 / 200


def test_the_gateway_is_connected_by_the_first_acquisition_before_its_slot(app):
    # Connected by the first calls instead, it held every call that had its slot meanwhile, and
    # they all left together once it was ready, over the cap (bench/scaleout.py --cap).
    connected = []
    real = app.connect_gateway
    app = dataclasses.replace(app, connect_gateway=lambda: connected.append(time.monotonic()) or real())
    cap = gateway_rate_cap(app)
    assert connected == []  # a batch with nothing to charge connects nothing
    cap.acquire()
    cap.acquire()
    assert len(connected) == 1
