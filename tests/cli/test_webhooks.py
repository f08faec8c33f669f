"""`renewly webhooks ...`: an endpoint's secret printed once, the reads in 80 columns and as JSON,
a delivery's log and its replay, `send` without a worker; bad input is one line, exit 2."""

from __future__ import annotations

from datetime import timedelta

from standardwebhooks import Webhook

from renewly.webhooks.rules.events import TYPES
from tests.builders import customer
from tests.webhooks.receiver import SERVER_ERROR


def fits(text: str) -> bool:
    return max((len(line) for line in text.splitlines()), default=0) <= 80


def test_an_endpoint_is_added_its_secret_printed_once_then_its_events_sent_logged_and_replayed(
        app, renewly, receiver):
    added = renewly("webhooks", "add", f"{receiver.url}/hooks/renewly-production", "--event", "account.*",
                    "--event", "invoice.issued", "--description", "production")
    assert added.code == 0, added.err
    secret = added.out.splitlines()[-1]
    assert "signing secret, shown this once" in added.out
    assert secret.startswith("whsec_") and fits(added.out)

    listed = renewly("webhooks", "list")
    assert listed.code == 0 and "/hooks/renewly" in listed.out and "enabled" in listed.out
    assert secret not in listed.out and fits(listed.out)
    [endpoint] = renewly("webhooks", "list", "--json").json()
    assert (endpoint["event_types"], endpoint["description"]) == (["account.*", "invoice.issued"], "production")
    assert "secret" not in endpoint

    customer(app)
    receiver.answers = [SERVER_ERROR]
    failed_once = renewly("webhooks", "send")
    assert (failed_once.code, failed_once.out.strip()) == (1, "1 event(s) handed over, 0 webhook(s) delivered, "
                                                                "1 to try again (HTTP 503)")
    app.test_clock.set(app.clock.now() + timedelta(seconds=5))  # the schedule's first wait
    sent = renewly("webhooks", "send", "--json")
    assert (sent.code, sent.json()["delivered"], sent.json()["resent"]) == (0, 1, 1)
    first, second = receiver.received()
    assert Webhook(secret).verify(second.body, second.headers)["type"] == "account.created"

    shown = renewly("outbox", "show", "1")
    assert "handed to the webhook endpoints that want it" in shown.out and "--event 1" in shown.out
    deliveries = renewly("webhooks", "deliveries")
    assert deliveries.code == 0 and "account.created" in deliveries.out and fits(deliveries.out)
    [delivery] = renewly("webhooks", "deliveries", "--endpoint", str(endpoint["id"]), "--json").json()
    assert (delivery["status"], delivery["attempts"], delivery["webhook_id"]) == ("delivered", 2, "msg_1")
    assert renewly("webhooks", "deliveries", "--failed", "--json").json() == []
    log = renewly("webhooks", "attempts", str(delivery["id"]))
    assert log.code == 0 and "HTTP 503" in log.out and "HTTP 200" in log.out and fits(log.out)

    replayed = renewly("webhooks", "replay", str(delivery["id"]))
    assert replayed.code == 0 and fits(replayed.out)
    assert renewly("webhooks", "send").code == 0
    assert [request.webhook_id for request in receiver.received()] == ["msg_1"] * 3
    assert [attempt["replay"] for attempt in renewly("webhooks", "attempts", str(delivery["id"]), "--json")
            .json()["attempts"]] == [False, False, True]


def test_disabled_listed_as_such_enabled_again_removed(app, renewly):
    assert renewly("webhooks", "add", "https://host.example/h", "--event", "*").code == 0
    assert renewly("webhooks", "disable", "1", "--reason", "receiver moved").code == 0
    listed = renewly("webhooks", "list")
    assert "disabled" in listed.out and "receiver" in listed.out and fits(listed.out)
    assert renewly("webhooks", "list", "--json").json()[0]["disabled_reason"] == "receiver moved"
    assert "webhooks: endpoint 1 (https://host.example/h) disabled" in renewly("worker", "status").out
    assert renewly("worker", "status", "--json").json()["webhook_endpoints_disabled"][0]["id"] == 1
    assert renewly("webhooks", "enable", "1").code == 0
    assert renewly("webhooks", "remove", "1").code == 0
    assert renewly("webhooks", "list", "--json").json() == []


def test_a_secret_is_rotated_the_new_one_printed_once_the_old_one_signing_for_a_while(app, renewly):
    added = renewly("webhooks", "add", "https://host.example/h", "--event", "*")
    old = added.out.splitlines()[-1]
    rotated = renewly("webhooks", "rotate-secret", "1", "--overlap-hours", "2")
    assert rotated.code == 0 and fits(rotated.out), rotated.err
    new = rotated.out.splitlines()[-1]
    assert new.startswith("whsec_") and new != old
    assert "the old one signs beside it until" in rotated.out
    assert renewly("webhooks", "list", "--json").json()[0]["previous_secret_until"] is not None
    assert new not in renewly("webhooks", "list", "--json").out
    leaked = renewly("webhooks", "rotate-secret", "1", "--overlap-hours", "0")
    assert "the old one signs no more" in leaked.out
    assert renewly("webhooks", "list", "--json").json()[0]["previous_secret_until"] is None


def test_the_types_are_listed(renewly):
    assert sorted(renewly("webhooks", "types", "--json").json()) == sorted(TYPES)
    assert renewly("webhooks", "types").out.split() == sorted(TYPES)


REFUSALS = [
    (["add", "ftp://host.example", "--event", "*"], "http:// or https:// only"),
    (["add", "https://host.example"], "Missing option '--event'"),
    (["add", "https://host.example", "--event", ""], "at least one event type"),
    (["add", "https://host.example", "--event", "invoice.paid"], "unknown event type invoice.paid"),
    (["add", "https://user:secret@host.example", "--event", "*"], "user or password"),
    (["disable", "7"], "no webhook endpoint 7"),
    (["enable", "7"], "no webhook endpoint 7"),
    (["remove", "7"], "no webhook endpoint 7"),
    (["replay", "7"], "no webhook delivery 7"),
    (["attempts", "7"], "no webhook delivery 7"),
    (["deliveries", "--endpoint", "7"], "no webhook endpoint 7"),
    (["deliveries", "--limit", "0"], "from 1 to 1000"),
    (["rotate-secret", "7"], "no webhook endpoint 7"),
    (["rotate-secret", "7", "--overlap-hours", "169"], "less than or equal to 168"),
]


def test_bad_input_is_one_line_exit_2_and_changes_nothing(app, renewly):
    before = renewly("webhooks", "list", "--json").out
    for arguments, said in REFUSALS:
        refused = renewly("webhooks", *arguments)
        assert (refused.code, refused.out) == (2, ""), arguments
        assert refused.err.count("\n") == 1 and said in refused.err and "secret" not in refused.err, refused.err
    assert renewly("webhooks", "list", "--json").out == before
