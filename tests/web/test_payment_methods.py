"""`/v1/accounts/{id}/payment_method`: the owner attaches a gateway's card token (R5.1, R6.1), the
API shows brand, last 4 digits and expiry, and a card number is refused wherever it is in the
body: never stored, logged nor repeated (R5.4)."""

from __future__ import annotations

import logging
import re

import pytest
from sqlalchemy import select

from renewly.accounts.accounts import add_member
from renewly.adapters.db.tables import outbox
from tests.builders import OPERATOR, customer, database_rows, subscribed
from tests.payment_builders import every_stored_value
from tests.web.conftest import problem

OWNER = "owner@acme.test"
PAN = "5555555555554444"  # the simulated gateway's Mastercard that authorizes


def billing_rows(app) -> dict[str, list]:
    """Every row but the API's own bookkeeping (a key's last use, the idempotency keys)."""
    return {name: rows for name, rows in database_rows(app).items() if name not in ("api_keys", "idempotency_keys")}


def token(app, number: str = "4242424242424242") -> str:
    """What the gateway's card form gives the host product's page: a token, never the number."""
    return app.gateway.tokenize(number, 12, 2035)


def test_r5_1_the_owner_attaches_a_token_and_the_next_batch_retries_the_unpaid_invoice(client, app):
    account_id, _ = subscribed(app, card=None)  # its first invoice is unpaid
    response = client.post(f"/v1/accounts/{account_id}/payment_method",
                           json={"token": token(app), "acting_member": "Owner@Acme.test"})
    assert response.status_code == 201, response.text
    saved = response.json()
    assert saved == {"object": "payment_method", "account_id": account_id, "brand": "visa", "last4": "4242",
                     "exp_month": 12, "exp_year": 2035, "added_by": OWNER, "added_at": saved["added_at"],
                     "retries_requested": 1}  # R7.1
    del saved["retries_requested"]
    assert client.get(f"/v1/accounts/{account_id}/payment_method").json() == saved
    with app.engine.connect() as conn:
        assert conn.execute(select(outbox.c.payload).where(outbox.c.topic == "payment_method.updated")).scalar() == {
            "brand": "visa", "last4": "4242"}


def test_r6_1_only_the_owner_changes_the_card_and_a_refusal_changes_nothing(client, app):
    account_id, _ = subscribed(app)
    add_member(app, account_id, email="admin@acme.test", role="admin", actor=OPERATOR)
    customer(app, name="Other", owner="boss@other.test")
    before = billing_rows(app)
    for acting in ("admin@acme.test", "boss@other.test", "stranger@elsewhere.test"):
        body = problem(client.post(f"/v1/accounts/{account_id}/payment_method",
                                   json={"token": token(app), "acting_member": acting}), 403, "owner_required")
        assert OWNER in body["detail"]  # told who can, as the command line says it
    assert billing_rows(app) == before
    assert client.get(f"/v1/accounts/{account_id}/payment_method").json()["added_by"] == OWNER


def test_a_payment_method_refused(client, app):
    account_id = customer(app)
    problem(client.get(f"/v1/accounts/{account_id}/payment_method"), 404, "no_payment_method")
    problem(client.get("/v1/accounts/9/payment_method"), 404, "unknown_account")
    problem(client.post("/v1/accounts/9/payment_method", json={"token": token(app), "acting_member": OWNER}),
            404, "unknown_account")
    problem(client.post(f"/v1/accounts/{account_id}/payment_method",
                        json={"token": "pm_sim_unknown", "acting_member": OWNER}), 400, "unknown_card_token")
    declined = problem(client.post(f"/v1/accounts/{account_id}/payment_method",
                                   json={"token": token(app, "4000000000000002"), "acting_member": OWNER}),
                       400, "card_declined")
    assert declined["detail"] == "card declined: the card was declined by the bank (generic_decline); nothing was saved"
    for body in ({"acting_member": OWNER}, {"token": token(app)}, {"token": "", "acting_member": OWNER},
                 {"token": "t" * 256, "acting_member": OWNER}, {"token": token(app), "acting_member": "owner"},
                 {"token": token(app), "acting_member": OWNER, "brand": "visa"}):
        problem(client.post(f"/v1/accounts/{account_id}/payment_method", json=body), 422, "invalid_input")
    problem(client.post("/v1/accounts/0/payment_method", json={"token": token(app), "acting_member": OWNER}),
            422, "invalid_input")
    problem(client.get(f"/v1/accounts/{2**63}/payment_method"), 422, "invalid_input")
    assert client.get(f"/v1/accounts/{account_id}/payment_method").status_code == 404


CARD_NUMBER_BODIES = {
    "as the token": {"token": PAN, "acting_member": OWNER},
    "in groups, inside the token": {"token": "pm 5555 5555 5555 4444", "acting_member": OWNER},
    "with dashes, for the member": {"token": "pm_sim_x", "acting_member": "5555-5555-5555-4444@acme.test"},
    "in a field the API does not take": {"token": "pm_sim_x", "acting_member": OWNER, "card_number": PAN},
    "as a key": {"token": "pm_sim_x", "acting_member": OWNER, PAN: "12/2035"},
    "nested": {"card": {"number": PAN, "exp": "12/2035"}},
}


@pytest.mark.parametrize("idempotency", [False, True])
def test_r5_4_a_card_number_anywhere_in_the_body_is_refused_never_stored_logged_or_repeated(
        client, app, capsys, caplog, idempotency):
    account_id, _ = subscribed(app, card=None)
    caplog.set_level(logging.DEBUG)
    before = billing_rows(app)
    answers = {}
    for case, body in CARD_NUMBER_BODIES.items():
        headers = {"Idempotency-Key": f"key-{len(answers)}"} if idempotency else {}
        answers[case] = client.post(f"/v1/accounts/{account_id}/payment_method", json=body, headers=headers)
    answers["a body that is no JSON"] = client.post(f"/v1/accounts/{account_id}/payment_method",
                                                    content=f"number={PAN}".encode(),
                                                    headers={"Content-Type": "text/plain"})
    for answer in answers.values():
        problem(answer, 400, "card_number_refused")
    # Nothing but the refusals' idempotency keys was written: no card, no gateway customer, no event.
    assert billing_rows(app) == before
    assert len(database_rows(app)["idempotency_keys"]) == (len(CARD_NUMBER_BODIES) if idempotency else 0)

    def digits(text: str) -> str:
        return re.sub(r"[^0-9]", "", text)

    assert [case for case, answer in answers.items()
            if PAN in digits(answer.text) or PAN in digits(str(answer.headers))] == []
    assert [cell for cell in every_stored_value(app) if PAN in digits(cell[2])] == []
    logged = capsys.readouterr()
    assert PAN not in digits(logged.out + logged.err) and PAN not in digits(caplog.text)
