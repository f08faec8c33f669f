"""`renewly subscriptions cancel`: never renewed again; what will not be invoiced is said."""

from __future__ import annotations

from tests.builders import subscribed


def test_a_subscription_is_cancelled_once(app, renewly):
    _, subscription_id = subscribed(app)
    done = renewly("subscriptions", "cancel", str(subscription_id))
    assert (done.code, done.out) == (0, f"subscription {subscription_id}: cancelled\n")
    again = renewly("subscriptions", "cancel", str(subscription_id))
    assert (again.code, again.err) == (2, f"error: subscription {subscription_id} is cancelled\n")
