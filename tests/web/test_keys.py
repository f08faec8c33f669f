"""Secret API keys: shown once, stored as a hash, revoked for good; their last use recorded at
most once a minute."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from renewly.adapters.db.tables import api_keys
from renewly.shared.errors import Conflict, InvalidInput, NotFound
from renewly.web import keys
from renewly.web.keys import (
    TRUSTED_FOR_SECONDS,
    authenticate,
    create_key,
    list_keys,
    recognised,
    revoke_key,
    secret_hash,
)
from tests.conftest import START


def test_a_key_is_stored_as_its_hash_only(app):
    row, secret = create_key(app, name="backend prod", actor="test:operator")
    assert secret.startswith("rnw_sk_") and len(secret) == 50
    with app.engine.connect() as conn:
        stored = conn.execute(select(api_keys)).one()
    assert stored.secret_hash == secret_hash(secret) and secret not in str(stored._mapping.values())
    assert row == {"id": stored.id, "name": "backend prod", "prefix": secret[:12], "created_at": START,
                   "last_used_at": None, "revoked_at": None}
    assert create_key(app, name="other", actor="test:operator")[1] != secret


def test_a_key_s_name_is_held_to_its_column(app):
    for name in ("", "x" * 101, "tab\there"):
        try:
            create_key(app, name=name, actor="test:operator")
        except InvalidInput:
            continue
        raise AssertionError(f"{name!r} was accepted")
    assert list_keys(app) == []


def test_only_a_live_key_authenticates(app):
    _row, secret = create_key(app, name="k", actor="test:operator")
    assert authenticate(app, secret).name == "k"
    assert authenticate(app, secret + "x") is None
    assert authenticate(app, "rnw_sk_" + "a" * 43) is None
    revoke_key(app, 1, actor="test:operator")
    assert authenticate(app, secret) is None


def test_a_key_is_revoked_once_and_an_unknown_one_is_not_found(app):
    create_key(app, name="k", actor="test:operator")
    assert revoke_key(app, 1, actor="test:operator")["revoked_at"] == START
    for key_id, refusal in ((1, Conflict), (2, NotFound)):
        try:
            revoke_key(app, key_id, actor="test:operator")
        except refusal:
            continue
        raise AssertionError(f"key {key_id} was revoked")


def test_last_use_is_written_at_most_once_a_minute(app):
    _row, secret = create_key(app, name="k", actor="test:operator")
    authenticate(app, secret)
    assert list_keys(app)[0]["last_used_at"] == START
    app.test_clock.set(START + timedelta(seconds=59))
    authenticate(app, secret)
    assert list_keys(app)[0]["last_used_at"] == START  # a read stays a read
    app.test_clock.set(START + timedelta(seconds=60))
    authenticate(app, secret)
    assert list_keys(app)[0]["last_used_at"] == START + timedelta(seconds=60)


def test_a_key_found_live_is_trusted_for_a_second_without_a_lookup(app, trust_clock):
    _row, secret = create_key(app, name="k", actor="test:operator")
    assert recognised(app, secret) is None  # never looked up: not known
    found = authenticate(app, secret)
    trust_clock.now += TRUSTED_FOR_SECONDS - 0.001
    assert recognised(app, secret) == found
    assert recognised(app, secret + "x") is None and recognised(app, "rnw_sk_" + "a" * 43) is None
    trust_clock.now += 0.001
    assert recognised(app, secret) is None  # looked up again (authenticate)


def test_a_key_revoked_by_another_process_is_refused_within_a_second(app, client, api_key, trust_clock):
    assert client.get("/v1/plans").status_code == 200
    # What `renewly apikeys revoke` does from its own process: this one is not told.
    with app.engine.begin() as conn:
        conn.execute(api_keys.update().where(api_keys.c.secret_hash == secret_hash(api_key)).values(revoked_at=START))
    assert client.get("/v1/plans").status_code == 200  # trusted a moment more, without a lookup
    trust_clock.now += TRUSTED_FOR_SECONDS
    assert client.get("/v1/plans").status_code == 401


def test_a_revocation_made_while_a_lookup_is_under_way_is_not_undone_by_it(app, trust_clock, monkeypatch):
    """The lookup read the key live just before this process revoked it: it answers for that
    request, but the key is not trusted afterwards."""
    _row, secret = create_key(app, name="k", actor="test:operator")
    record_use = keys._record_use

    def revoked_meanwhile(*args) -> None:  # between the lookup's read and its trust
        revoke_key(app, 1, actor="test:operator")
        record_use(*args)

    monkeypatch.setattr(keys, "_record_use", revoked_meanwhile)
    assert authenticate(app, secret) is not None
    assert recognised(app, secret) is None
    assert authenticate(app, secret) is None
