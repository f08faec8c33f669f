"""Idempotency-Key on a POST: the same request again replays the first answer; the key with
another request is 409; two at once: one runs, the other waits and replays."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from renewly.adapters.db.tables import audit_log, idempotency_keys, plans
from renewly.billing.plans import create_plan
from renewly.retention.deletion import delete_personal_data
from renewly.web import idempotency
from renewly.web.app import ROUTERS, create_app
from renewly.web.keys import create_key
from tests.web.conftest import problem

PLAN = {"code": "team", "name": "Team", "interval": "month", "unit_amount": 1900, "currency": "USD"}


def count(app, table) -> int:
    with app.engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(table)).scalar_one()


def test_the_same_request_again_gets_the_first_answer_replayed(app, client):
    first = client.post("/v1/plans", json=PLAN, headers={"Idempotency-Key": "k-1"})
    # The same content, its keys in another order and spaced otherwise: the same request.
    again = client.post("/v1/plans", content=b'{"currency": "USD", "unit_amount": 1900, "interval": "month", '
                                             b'"name": "Team", "code": "team"}',
                        headers={"Idempotency-Key": "k-1", "Content-Type": "application/json"})
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true" and "idempotent-replayed" not in first.headers
    assert count(app, plans) == 1


def test_a_refusal_is_replayed_too(app, client):
    first = client.post("/v1/plans", json={**PLAN, "name": " "}, headers={"Idempotency-Key": "k-1"})
    problem(first, 400, "invalid_plan")
    again = client.post("/v1/plans", json={**PLAN, "name": " "}, headers={"Idempotency-Key": "k-1"})
    assert (again.status_code, again.json(), again.headers["content-type"]) == (400, first.json(),
                                                                                "application/problem+json")


def test_the_key_with_another_body_or_path_is_a_conflict(app, client):
    assert client.post("/v1/plans", json=PLAN, headers={"Idempotency-Key": "k-1"}).status_code == 201
    problem(client.post("/v1/plans", json={**PLAN, "unit_amount": 2900}, headers={"Idempotency-Key": "k-1"}),
            409, "idempotency_key_reused")
    problem(client.post("/v1/plans?x=1", json=PLAN, headers={"Idempotency-Key": "k-1"}), 409,
            "idempotency_key_reused")
    assert count(app, plans) == 1


def test_r5_4_a_card_number_sent_by_mistake_is_not_kept_in_a_requests_fingerprint():
    def of(body: bytes) -> str:
        return idempotency.fingerprint("POST", "/v1/accounts/1/payment_method", b"", body)

    # A hash of a body with a card number would let its digits be found by trying them all.
    assert of(b'{"token": "4242424242424242"}') == of(b'{"token": "5555 5555 5555 4444"}')
    assert of(b'{"token": "4242424242424242"}') != of(b'{"token": "pm_sim_1"}')
    assert of(b"number=4242424242424242") == of(b"number=5555-5555-5555-4444")
    assert of(b'{"token": "\\ud800"}') != of(b"\xff\xfe") != of(b"\xff")  # no text: hashed all the same


def test_keys_belong_to_the_api_key_that_sent_them(app, client):
    other = create_key(app, name="other", actor="test:operator")[1]
    assert client.post("/v1/plans", json=PLAN, headers={"Idempotency-Key": "k-1"}).status_code == 201
    response = client.post("/v1/plans", json=PLAN, headers={"Idempotency-Key": "k-1",
                                                            "Authorization": f"Bearer {other}"})
    problem(response, 409, "plan_exists")  # ran: not the first key's answer


def test_without_a_key_a_post_runs_each_time(app, client):
    assert client.post("/v1/plans", json=PLAN).status_code == 201
    problem(client.post("/v1/plans", json=PLAN), 409, "plan_exists")


@pytest.mark.parametrize("key", [b"", b"x" * 256, "caf\u00e9".encode(), b"line\tbreak"])
def test_a_malformed_key_is_refused(app, client, key):
    problem(client.post("/v1/plans", json=PLAN, headers={"Idempotency-Key": key}), 400, "invalid_idempotency_key")
    assert count(app, plans) == 0


def test_a_door_refusal_is_kept_like_any_answer_below_500(app, client):
    refused = client.post("/v1/plans", json={"code": "team"}, headers={"Idempotency-Key": "k-1"})
    problem(refused, 422, "invalid_input")
    assert client.post("/v1/plans", json={"code": "team"}, headers={"Idempotency-Key": "k-1"}).headers[
        "idempotent-replayed"] == "true"


def test_after_a_server_error_the_key_is_released_for_the_retry(app, client, monkeypatch):
    def broken(*_args, **_kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr("renewly.web.routes.plans.create_plan", broken)
    problem(client.post("/v1/plans", json=PLAN, headers={"Idempotency-Key": "k-1"}), 500, "internal_error")
    monkeypatch.setattr("renewly.web.routes.plans.create_plan", create_plan)
    retried = client.post("/v1/plans", json=PLAN, headers={"Idempotency-Key": "k-1"})
    assert retried.status_code == 201 and "idempotent-replayed" not in retried.headers


def test_a_key_is_kept_24_hours_of_wall_clock_then_purged(app, client, monkeypatch):
    now = idempotency.wall_clock()
    assert client.post("/v1/plans", json=PLAN, headers={"Idempotency-Key": "k-1"}).status_code == 201
    monkeypatch.setattr(idempotency, "wall_clock", lambda: now + timedelta(hours=23, minutes=59))
    assert client.post("/v1/plans", json=PLAN, headers={"Idempotency-Key": "k-1"}).headers[
        "idempotent-replayed"] == "true"
    monkeypatch.setattr(idempotency, "wall_clock", lambda: now + timedelta(hours=24, seconds=1))
    problem(client.post("/v1/plans", json=PLAN, headers={"Idempotency-Key": "k-1"}), 409, "plan_exists")  # ran again
    assert client.post("/v1/plans", json={**PLAN, "code": "solo"}, headers={"Idempotency-Key": "k-2"}
                       ).status_code == 201
    with app.engine.connect() as conn:
        assert conn.execute(select(idempotency_keys.c.key)).scalars().all() == ["k-1", "k-2"]
    monkeypatch.setattr(idempotency, "wall_clock", lambda: now + timedelta(hours=49))
    client.post("/v1/plans", json={**PLAN, "code": "duo"}, headers={"Idempotency-Key": "k-3"})
    with app.engine.connect() as conn:  # the expired ones went as a new key was written
        assert conn.execute(select(idempotency_keys.c.key)).scalars().all() == ["k-3"]


def slow_create_plan(started: threading.Event, delay: float):
    def slowly(*args, **kwargs):
        started.set()
        threading.Event().wait(delay)
        return create_plan(*args, **kwargs)
    return slowly


def post_at_once(app, api_key, count: int = 2) -> list:
    answers: list = [None] * count
    barrier = threading.Barrier(count)

    def send(index: int) -> None:
        with TestClient(create_app(app), headers={"Authorization": f"Bearer {api_key}"}) as own:
            barrier.wait()
            answers[index] = own.post("/v1/plans", json=PLAN, headers={"Idempotency-Key": "same"})

    threads = [threading.Thread(target=send, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return answers


def test_duplicates_at_once_one_runs_the_others_wait_and_replay(app, api_key, monkeypatch):
    started = threading.Event()
    monkeypatch.setattr("renewly.web.routes.plans.create_plan", slow_create_plan(started, 0.5))
    answers = post_at_once(app, api_key, count=3)
    assert [answer.status_code for answer in answers] == [201, 201, 201]
    assert sorted(answer.headers.get("idempotent-replayed", "no") for answer in answers) == ["no", "true", "true"]
    assert len({answer.text for answer in answers}) == 1
    assert count(app, plans) == 1


def test_a_duplicate_that_waited_too_long_is_told_to_try_again(app, api_key, monkeypatch):
    started = threading.Event()
    monkeypatch.setattr("renewly.web.routes.plans.create_plan", slow_create_plan(started, 1.5))
    monkeypatch.setattr(idempotency, "WAIT_FOR_THE_FIRST", 0.2)
    answers = post_at_once(app, api_key)
    statuses = sorted(answer.status_code for answer in answers)
    assert statuses == [201, 409], [answer.text for answer in answers]
    waited = next(answer for answer in answers if answer.status_code == 409)
    problem(waited, 409, "idempotency_key_in_progress")
    assert waited.headers["retry-after"] == "1"
    assert count(app, plans) == 1


def test_a_key_whose_request_died_is_taken_over_after_its_lease(app, client, monkeypatch):
    reservation = idempotency.reserve(app, 1, "k-1", idempotency.fingerprint("POST", "/v1/plans", b"", b"{}"))
    assert isinstance(reservation, idempotency.Run)  # and its process died there
    now = idempotency.wall_clock()
    assert isinstance(idempotency.reserve(app, 1, "k-1", idempotency.fingerprint("POST", "/v1/plans", b"", b"{}")),
                      idempotency.InProgress)
    monkeypatch.setattr(idempotency, "wall_clock", lambda: now + idempotency.LEASE + timedelta(seconds=1))
    taken = idempotency.reserve(app, 1, "k-1", idempotency.fingerprint("POST", "/v1/plans", b"", b"{}"))
    assert taken == reservation


def test_a_body_over_a_mebibyte_is_refused(app, client):
    problem(client.post("/v1/plans", content=b"{" + b" " * idempotency.LARGEST_BODY + b"}",
                        headers={"Content-Type": "application/json"}), 413, "request_too_large")


def test_a_long_request_keeps_its_key_while_it_runs(app, api_key, monkeypatch):
    monkeypatch.setattr(idempotency, "LEASE", timedelta(seconds=1.2))  # renewed every 0.4 s
    started = threading.Event()
    monkeypatch.setattr("renewly.web.routes.plans.create_plan", slow_create_plan(started, 2.5))
    answers = post_at_once(app, api_key)  # the second one waits past several leases, then replays
    assert sorted(answer.headers.get("idempotent-replayed", "no") for answer in answers) == ["no", "true"]
    assert count(app, plans) == 1


def test_every_post_documents_its_idempotency_key(anonymous):
    document = anonymous.get("/v1/openapi.json").json()
    posts = [operations["post"] for operations in document["paths"].values() if "post" in operations]
    assert len(posts) >= 8
    for operation in posts:
        assert {"name": "Idempotency-Key", "in": "header", "required": False}.items() <= next(
            parameter for parameter in operation["parameters"] if parameter["name"] == "Idempotency-Key").items()


ACME = {"name": "Acme", "owner_email": "boss@acme.test", "locale": "en", "timezone": "UTC", "currency": "EUR",
        "country": "FR", "address": {"line1": "1 rue de la Paix", "city": "Paris"}}


def kept(app) -> dict[str, int | None]:
    """Each key's account, as kept for replays."""
    with app.engine.connect() as conn:
        return dict(conn.execute(select(idempotency_keys.c.key, idempotency_keys.c.account_id)).all())


def test_r10_1_the_answers_kept_for_replays_are_deleted_with_the_accounts_personal_data(app, client):
    account_id = client.post("/v1/accounts", json=ACME, headers={"Idempotency-Key": "account"}).json()["id"]
    member = {"email": "ann@acme.test", "role": "admin"}
    added = client.post(f"/v1/accounts/{account_id}/members", json=member, headers={"Idempotency-Key": "member"})
    assert added.status_code == 201 and "ann@acme.test" in added.text
    client.post("/v1/plans", json=PLAN, headers={"Idempotency-Key": "plan"})
    assert kept(app) == {"account": account_id, "member": account_id, "plan": None}

    with app.engine.begin() as conn:
        delete_personal_data(conn, [account_id], app.clock.now())

    assert kept(app) == {"plan": None}  # no answer naming ann@ or boss@ is left to replay
    again = client.post(f"/v1/accounts/{account_id}/members", json=member, headers={"Idempotency-Key": "member"})
    assert "idempotent-replayed" not in again.headers and "ann@acme.test" not in again.text
    with app.engine.connect() as conn:
        [details] = conn.execute(select(audit_log.c.details)
                                 .where(audit_log.c.action == "account.personal_data_deleted")).scalars()
    assert details["idempotent_answers"] == 2


def test_r10_1_an_answer_finished_after_its_account_was_deleted_is_not_kept(app, client):
    account_id = client.post("/v1/accounts", json=ACME).json()["id"]
    [run] = [idempotency.reserve(app, 1, "late", "fingerprint")]
    with app.engine.begin() as conn:  # the deletion commits while the request runs
        delete_personal_data(conn, [account_id], app.clock.now())
    idempotency.finish(app, run.row_id, 201, "application/json", b'{"email": "ann@acme.test"}', account_id)
    assert kept(app) == {}


@pytest.mark.parametrize(("path_params", "body", "account_id"), [
    ({"account_id": "7"}, b'{"email": "ann@acme.test"}', 7),
    ({}, b'{"object": "account", "id": 8, "owner_email": "boss@acme.test"}', 8),
    ({}, b'{"object": "subscription", "id": 3, "account_id": 9}', 9),
    ({}, b'{"object": "seat_change", "subscription": {"id": 3, "account_id": 10}}', 10),
    ({}, b'{"object": "plan", "id": 1}', None),
    ({"account_id": "9223372036854775808"}, b'{"type": "about:blank"}', None),  # refused by the route
    ({"account_id": "x"}, b'{}', None), ({}, b'{"account_id": true}', None), ({}, b'{"account_id": 0}', None),
    ({}, b'not json', None),
    ({}, b'[1, 2]', None),
])
def test_the_account_an_answer_is_about(path_params, body, account_id):
    assert idempotency.account_of(path_params, body) == account_id


# POSTs whose answer names no account: nothing of a customer's is kept for their replays.
ABOUT_NO_ACCOUNT = {"/v1/plans", "/v1/test_clock/advance", "/v1/webhook_endpoints",
                    "/v1/webhook_endpoints/{endpoint_id}/disable", "/v1/webhook_endpoints/{endpoint_id}/enable",
                    "/v1/webhook_endpoints/{endpoint_id}/rotate_secret",
                    "/v1/webhook_deliveries/{delivery_id}/replay"}


def test_r10_1_every_posts_answer_names_its_account_or_is_about_none():
    """Read from the route table, so that a new POST cannot keep a customer's answer unnamed."""
    from fastapi.routing import APIRoute
    from pydantic import BaseModel

    def names_an_account(model: type[BaseModel]) -> bool:
        fields = model.model_fields
        if "account_id" in fields or model.__name__ == "Account":
            return True
        nested = fields["subscription"].annotation if "subscription" in fields else None
        return isinstance(nested, type) and issubclass(nested, BaseModel) and "account_id" in nested.model_fields

    posts = [(f"/v1{route.path}", route) for router in ROUTERS for route in router.routes
             if isinstance(route, APIRoute) and "POST" in route.methods]
    assert len(posts) >= 20
    for path, route in posts:
        if path in ABOUT_NO_ACCOUNT:
            continue
        assert "{account_id}" in path or names_an_account(route.response_model), path
