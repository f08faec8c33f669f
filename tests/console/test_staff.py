"""Staff accounts: checked at the door (the same on SQLite and PostgreSQL), the password kept only
as its Argon2id hash, a disabled staff member's sessions ended, every change audited."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from sqlalchemy import select

from renewly.adapters.db.tables import audit_log, staff, staff_sessions
from renewly.console import staff as staff_module
from renewly.console.sessions import SignInRefused, sign_in
from renewly.console.staff import create_staff, disable_staff, list_staff, set_staff_password
from renewly.shared.errors import Conflict, InvalidInput, NotFound
from tests.builders import OPERATOR, database_rows

PASSWORD = "correct horse battery staple"


def test_only_an_argon2id_hash_of_the_password_is_kept_with_rfc_9106_s_parameters(app):
    """The real parameters (no cheap_argon2 here): 64 MiB, 3 passes, 4 lanes."""
    create_staff(app, email="Sam@Renewly.example", name=" Sam ", role="Support", password=PASSWORD, actor=OPERATOR)
    rows = database_rows(app)
    assert PASSWORD not in repr(rows)
    [row] = rows["staff"]
    assert (row.email, row.name, row.role) == ("sam@renewly.example", "Sam", "support")
    assert row.password_hash.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert PasswordHasher().verify(row.password_hash, PASSWORD)
    assert [(entry.actor, entry.action) for entry in rows["audit_log"]] == [(OPERATOR, "staff.created")]


@pytest.mark.parametrize(("fields", "code"), [
    ({"email": "not-an-address"}, "invalid_email"),
    ({"name": ""}, "invalid_name"), ({"name": "x" * 101}, "invalid_name"), ({"name": "a\nb"}, "invalid_name"),
    ({"role": "admin"}, "invalid_role"),
    ({"password": "short"}, "invalid_password"), ({"password": "x" * 1025}, "invalid_password"),
    ({"password": "twelve chars\nand a line"}, "invalid_password"),
])
def test_what_is_refused_at_the_door(app, cheap_argon2, fields, code):
    with pytest.raises(InvalidInput) as refused:
        create_staff(app, **{"email": "sam@renewly.example", "name": "Sam", "role": "support", "password": PASSWORD,
                             **fields}, actor=OPERATOR)
    assert refused.value.code == code
    assert list_staff(app) == []


def test_an_address_is_one_staff_member(app, cheap_argon2):
    create_staff(app, email="sam@renewly.example", name="Sam", role="support", password=PASSWORD, actor=OPERATOR)
    with pytest.raises(Conflict):
        create_staff(app, email="SAM@renewly.example", name="Sam 2", role="finance", password=PASSWORD, actor=OPERATOR)


def test_disabling_refuses_sign_in_ends_sessions_and_keeps_the_row(app, cheap_argon2):
    made = create_staff(app, email="sam@renewly.example", name="Sam", role="support", password=PASSWORD,
                        actor=OPERATOR)
    sign_in(app, email="sam@renewly.example", password=PASSWORD, ip="192.0.2.1")
    at = disable_staff(app, "sam@renewly.example", actor=OPERATOR)
    assert disable_staff(app, "sam@renewly.example", actor=OPERATOR) == at  # twice: the first date stays
    with pytest.raises(SignInRefused):
        sign_in(app, email="sam@renewly.example", password=PASSWORD, ip="192.0.2.1")
    with app.engine.connect() as conn:
        assert conn.execute(select(staff_sessions.c.ended_at)).scalar_one() == at
        assert conn.execute(select(staff.c.disabled_at)).scalar_one() == at
        assert conn.execute(select(audit_log.c.action).where(audit_log.c.target_type == "staff")
                            .order_by(audit_log.c.id)).scalars().all() == [
            "staff.created", "console.signed_in", "staff.disabled"]
    assert made.actor == f"console:staff-{made.id}"
    with pytest.raises(NotFound):
        disable_staff(app, "nobody@renewly.example", actor=OPERATOR)


def test_a_hash_made_with_older_parameters_is_made_again_at_sign_in(app, cheap_argon2, monkeypatch):
    create_staff(app, email="sam@renewly.example", name="Sam", role="support", password=PASSWORD, actor=OPERATOR)
    monkeypatch.setattr(staff_module, "PARAMETERS", staff_module.profiles.RFC_9106_LOW_MEMORY)
    sign_in(app, email="sam@renewly.example", password=PASSWORD, ip="192.0.2.1")
    with app.engine.connect() as conn:
        assert conn.execute(select(staff.c.password_hash)).scalar_one().startswith("$argon2id$v=19$m=65536,t=3,p=4$")


def test_a_new_password_replaces_the_old_one_and_signs_out_whoever_knew_it(app, cheap_argon2):
    create_staff(app, email="sam@renewly.example", name="Sam", role="support", password=PASSWORD, actor=OPERATOR)
    sign_in(app, email="sam@renewly.example", password=PASSWORD, ip="192.0.2.1")
    sign_in(app, email="sam@renewly.example", password=PASSWORD, ip="198.51.100.7")  # someone else, elsewhere
    set_staff_password(app, "Sam@Renewly.example", password="a new passphrase, longer", actor=OPERATOR)

    with pytest.raises(SignInRefused):
        sign_in(app, email="sam@renewly.example", password=PASSWORD, ip="192.0.2.1")
    assert sign_in(app, email="sam@renewly.example", password="a new passphrase, longer", ip="192.0.2.1")
    rows = database_rows(app)
    assert "a new passphrase" not in repr(rows)
    assert [session.ended_at is not None for session in rows["staff_sessions"]] == [True, True, False]
    [entry] = [entry for entry in rows["audit_log"] if entry.action == "staff.password_set"]
    assert (entry.actor, entry.details) == (OPERATOR, {"email": "sam@renewly.example", "sessions_ended": 2})


def test_a_new_password_is_refused_at_the_door_and_leaves_a_disabled_member_disabled(app, cheap_argon2):
    create_staff(app, email="sam@renewly.example", name="Sam", role="support", password=PASSWORD, actor=OPERATOR)
    with pytest.raises(InvalidInput):
        set_staff_password(app, "sam@renewly.example", password="short", actor=OPERATOR)
    with pytest.raises(NotFound):
        set_staff_password(app, "nobody@renewly.example", password=PASSWORD, actor=OPERATOR)
    disable_staff(app, "sam@renewly.example", actor=OPERATOR)
    set_staff_password(app, "sam@renewly.example", password="a new passphrase, longer", actor=OPERATOR)
    with pytest.raises(SignInRefused):
        sign_in(app, email="sam@renewly.example", password="a new passphrase, longer", ip="192.0.2.1")
