"""Support's actions through the API: a temporary reactivation (R9.2), a transfer of ownership
(R6.1), the invoices of a month sent again (R2.3); each audited with its reason, the API key as
the actor. Accounts and their story are made through the use cases and the test clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from renewly.accounts.accounts import add_member, describe_account
from renewly.adapters.db.tables import audit_log, outbox
from renewly.scheduler import advance
from tests.builders import GOOD_CARD, OPERATOR, subscribed
from tests.web.conftest import problem

DECLINES = "4000000000000341"  # the card saves fine; every charge is declined
OWNER, ADMIN = "owner@acme.test", "admin@acme.test"
KEY_ACTOR = "api:key-1"  # the client fixture's key, the first of its database
REASON = "the owner asked by phone"


def to_day(app, day: int) -> None:
    """The test clock to noon (UTC) of `day` after 2026-01-01, every batch due on the way run."""
    advance(app, datetime(2026, 1, 1, 12, tzinfo=UTC) + timedelta(days=day) - app.clock.now())


def audited(app, action: str) -> list[tuple[str, str]]:
    with app.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(select(audit_log.c.actor, audit_log.c.reason)
                                                   .where(audit_log.c.action == action).order_by(audit_log.c.id))]


# -- temporary reactivation (R9.2) -------------------------------------------------------------------------

def test_r9_2_support_reactivates_a_cancelled_account_then_it_is_refused_once_deleted(app, api):
    account_id, _ = subscribed(app, card=DECLINES)
    add_member(app, account_id, email=ADMIN, role="admin", actor=OPERATOR)
    to_day(app, 30)  # cancelled on day 29

    asked = {"reason": REASON}
    granted = api.post(f"/v1/accounts/{account_id}/reactivate", json=asked, headers={"Idempotency-Key": "r-1"})
    assert granted.status_code == 200, granted.text
    assert granted.json() == {"object": "reactivation", "account_id": account_id, "ends_at": "2026-02-08T00:00:00Z",
                              "last_day": "2026-02-07", "timezone": "UTC"}  # today and the policy's 7 days after
    assert audited(app, "reactivation.granted") == [(KEY_ACTOR, REASON)]
    # The owner alone is told what to do now; the others still see the cancelled page.
    owner = api.get(f"/v1/accounts/{account_id}/banner", params={"member": OWNER}).json()["banner"]
    assert (owner["code"], owner["severity"]) == ("reactivated", "critical")
    assert owner["text"].startswith("Your account is reactivated until Feb 7, 2026 so that you can pay $68.40")
    admin = api.get(f"/v1/accounts/{account_id}/banner", params={"member": ADMIN}).json()["banner"]
    assert admin["code"] == "cancelled"

    # The same request sent again with its key is the same answer; a second window is refused.
    replayed = api.post(f"/v1/accounts/{account_id}/reactivate", json=asked, headers={"Idempotency-Key": "r-1"})
    assert (replayed.json(), replayed.headers["Idempotent-Replayed"]) == (granted.json(), "true")
    problem(api.post(f"/v1/accounts/{account_id}/reactivate", json=asked), 403, "reactivation_running")
    assert len(audited(app, "reactivation.granted")) == 1

    to_day(app, 120)  # the window ended unpaid; 90 days after the cancellation the data is deleted (R10.1)
    problem(api.post(f"/v1/accounts/{account_id}/reactivate", json=asked), 403, "account_deleted")
    problem(api.post(f"/v1/accounts/{account_id}/transfer_ownership", json={"to": ADMIN, "reason": REASON}), 403,
            "account_deleted")
    problem(api.post(f"/v1/accounts/{account_id}/resend_invoices", json={"month": "2026-01", "reason": REASON}),
            403, "account_deleted")
    problem(api.get(f"/v1/accounts/{account_id}/banner", params={"member": OWNER}), 404, "unknown_member")


def test_a_reactivation_refused(app, api):
    active, _ = subscribed(app, card=GOOD_CARD)
    path = f"/v1/accounts/{active}/reactivate"
    problem(api.post(path, json={"reason": REASON}), 403, "not_cancelled")
    problem(api.post("/v1/accounts/2/reactivate", json={"reason": REASON}), 404, "unknown_account")
    problem(api.post(path, json={"reason": "   "}), 400, "reason_required")
    problem(api.post(path, json={"reason": "a\x1b[2Jb"}), 400, "invalid_text")
    for refused in ({}, {"reason": ""}, {"reason": "x" * 2001}, {"reason": REASON, "days": 0},
                    {"reason": REASON, "days": 366}, {"reason": REASON, "days": 1.5},
                    {"reason": REASON, "actor": "someone else"}):
        problem(api.post(path, json=refused), 422, "invalid_input")
    problem(api.post("/v1/accounts/0/reactivate", json={"reason": REASON}), 422, "invalid_input")
    assert audited(app, "reactivation.granted") == []


# -- ownership transfer (R6.1) -------------------------------------------------------------------------------

def test_r6_1_support_makes_another_member_the_owner_audited_as_the_api_key(app, api):
    account_id, _ = subscribed(app, card=GOOD_CARD)
    add_member(app, account_id, email=ADMIN, role="admin", actor=OPERATOR)
    moved = api.post(f"/v1/accounts/{account_id}/transfer_ownership",
                        json={"to": "Admin@Acme.test", "reason": "the owner left the company"})
    assert moved.status_code == 200, moved.text
    assert moved.json() == {"object": "ownership_transfer", "account_id": account_id, "owner": ADMIN,
                            "previous_owner": OWNER}
    assert {m["email"]: m["role"] for m in describe_account(app, account_id)["members"]} == {
        OWNER: "admin", ADMIN: "owner"}
    assert audited(app, "ownership.transferred") == [(KEY_ACTOR, "the owner left the company")]


def test_an_ownership_transfer_refused(app, api):
    account_id, _ = subscribed(app, card=GOOD_CARD)
    path = f"/v1/accounts/{account_id}/transfer_ownership"
    problem(api.post(path, json={"to": "nobody@acme.test", "reason": REASON}), 404, "unknown_member")
    problem(api.post(path, json={"to": OWNER, "reason": REASON}), 400, "already_owner")
    problem(api.post("/v1/accounts/2/transfer_ownership", json={"to": OWNER, "reason": REASON}), 404,
            "unknown_account")
    problem(api.post(path, json={"to": OWNER, "reason": " "}), 400, "reason_required")
    for refused in ({"to": "not an e-mail", "reason": REASON}, {"reason": REASON}, {"to": OWNER},
                    {"to": OWNER, "reason": REASON, "role": "owner"}):
        problem(api.post(path, json=refused), 422, "invalid_input")
    assert audited(app, "ownership.transferred") == []


# -- the invoices of a month sent again (R2.3) ----------------------------------------------------------------

def invoice_emails(app, account_id: int) -> list[dict]:
    with app.engine.connect() as conn:
        return [payload for payload in conn.execute(select(outbox.c.payload).where(
            outbox.c.topic == "email", outbox.c.account_id == account_id).order_by(outbox.c.id)).scalars()
            if payload["kind"] == "invoice"]


def test_r2_3_support_resends_the_invoices_of_a_month_to_the_billing_contacts(app, api):
    account_id, _ = subscribed(app, card=GOOD_CARD)  # its first invoice issued on 2026-01-01
    assert len(invoice_emails(app, account_id)) == 1
    sent = api.post(f"/v1/accounts/{account_id}/resend_invoices",
                       json={"month": "2026-01", "reason": "the accountant lost it"})
    assert sent.status_code == 200, sent.text
    assert sent.json() == {"object": "invoice_resend", "account_id": account_id, "month": "2026-01",
                           "invoices": ["2026-000001"]}
    first, again = invoice_emails(app, account_id)
    assert again["recipients"] == first["recipients"] == [OWNER]
    assert audited(app, "invoices.resent") == [(KEY_ACTOR, "the accountant lost it")]


def test_a_resend_refused(app, api):
    account_id, _ = subscribed(app, card=GOOD_CARD)
    path = f"/v1/accounts/{account_id}/resend_invoices"
    problem(api.post(path, json={"month": "2026-02", "reason": REASON}), 404, "no_invoice")
    problem(api.post("/v1/accounts/2/resend_invoices", json={"month": "2026-01", "reason": REASON}), 404,
            "unknown_account")
    problem(api.post(path, json={"month": "0000-01", "reason": REASON}), 400, "invalid_month")
    problem(api.post(path, json={"month": "2026-01", "reason": "\t"}), 400, "reason_required")
    for refused in ({"month": "2026-13", "reason": REASON}, {"month": "2026-1", "reason": REASON},
                    {"month": "January", "reason": REASON}, {"reason": REASON}, {"month": "2026-01"}):
        problem(api.post(path, json=refused), 422, "invalid_input")
    assert audited(app, "invoices.resent") == []
