"""`renewly members set-role`: an admin made an agent and back; the owner only by a transfer."""

from __future__ import annotations

from renewly.accounts.accounts import add_member, describe_account
from tests.builders import OPERATOR, customer


def test_a_member_s_role_is_set_and_refusals_are_one_line(app, renewly):
    account_id = customer(app)
    add_member(app, account_id, email="ann@acme.test", role="admin", actor=OPERATOR)
    done = renewly("members", "set-role", str(account_id), "--email", "Ann@acme.test", "--role", "agent")
    assert (done.code, done.out) == (0, f"ann@acme.test is now an agent of account {account_id}\n")
    assert {"email": "ann@acme.test", "role": "agent"} in describe_account(app, account_id)["members"]
    refused = renewly("members", "set-role", str(account_id), "--email", "owner@acme.test", "--role", "admin")
    assert (refused.code, refused.err) == (2, "error: the owner's role changes only by a transfer of ownership\n")
