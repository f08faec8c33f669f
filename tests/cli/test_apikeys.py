"""`renewly apikeys create|list|revoke`: the secret shown once, then only its prefix."""

from __future__ import annotations

from renewly.web.keys import authenticate


def test_a_key_is_created_listed_and_revoked(app, renewly):
    made = renewly("apikeys", "create", "backend prod")
    assert made.code == 0, made.err
    secret = made.out.split(": ", 1)[1].splitlines()[0]
    assert secret.startswith("rnw_sk_") and authenticate(app, secret).name == "backend prod"
    listed = renewly("apikeys", "list")
    assert listed.code == 0 and "backend prod" in listed.out and secret[:12] in listed.out
    assert secret not in listed.out
    assert all(len(line) <= 80 for line in listed.out.splitlines())
    as_json = renewly("apikeys", "list", "--json").json()
    assert [(row["id"], row["name"], row["revoked_at"]) for row in as_json] == [(1, "backend prod", None)]
    assert renewly("apikeys", "revoke", "1").out == "API key 1 (backend prod) revoked\n"
    assert authenticate(app, secret) is None


def test_refusals_are_one_line_and_exit_2(renewly):
    for arguments, said in ((("apikeys", "revoke", "9"), "error: no API key 9\n"),
                            (("apikeys", "create", ""), "error: a key's name cannot be empty\n")):
        refused = renewly(*arguments)
        assert (refused.code, refused.err) == (2, said)
    assert renewly("apikeys", "create", "k", "--json").json()["secret"].startswith("rnw_sk_")
    renewly("apikeys", "revoke", "1")
    again = renewly("apikeys", "revoke", "1")
    assert again.code == 2 and "was revoked on" in again.err
