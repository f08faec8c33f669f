"""`renewly import`'s use case on both engines: a valid file writes what the single commands
would, a file with any problem writes nothing, a second run skips what the first wrote."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from renewly.accounts.accounts import add_member, create_account
from renewly.adapters.db.tables import (
    accounts,
    audit_log,
    cards,
    gateway_customers,
    invoices,
    members,
    outbox,
    subscriptions,
)
from renewly.billing.renewals import renew_due
from renewly.billing.subscriptions import create_subscription
from renewly.onboarding.importing import import_file, import_text
from renewly.payments.cards import add_card
from tests.builders import OPERATOR, database_rows, team_plan

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_CSV = ROOT / "examples" / "import" / "accounts.csv"
EXAMPLE_JSONL = ROOT / "examples" / "import" / "accounts.jsonl"


def the_examples_plans(app) -> None:
    team_plan(app, code="team-eur", currency="EUR")
    team_plan(app, code="team-usd", currency="USD", price=2100)


def jsonl(*records: dict) -> str:
    return "\n".join(json.dumps(record) for record in records) + "\n"


def record(key: str = "k1", owner: str = "boss@acme.test", **fields) -> dict:
    return {"key": key, "name": f"Account {key}", "owner_email": owner, "address": {"country": "FR"}, **fields}


def state(app) -> dict[str, list]:
    """What an operator or the host product sees of the accounts, the same whichever way they
    came: the card's gateway token and customer and who saved it aside (a card saved by the owner
    through `cards add` has the simulated gateway's fresh ones), the import's key and the audit
    entries' actor and reason aside."""
    def rows(query):
        with app.engine.connect() as conn:
            return [tuple(row) for row in conn.execute(query)]

    return {
        "accounts": rows(select(*(c for c in accounts.c if c.name != "external_key")).order_by(accounts.c.id)),
        "members": rows(select(members.c.account_id, members.c.email, members.c.role, members.c.created_at)
                        .order_by(members.c.account_id, members.c.email)),
        "subscriptions": rows(select(subscriptions).order_by(subscriptions.c.id)),
        "cards": rows(select(cards.c.account_id, cards.c.brand, cards.c.last4, cards.c.exp_month, cards.c.exp_year,
                             cards.c.status, cards.c.added_at).order_by(cards.c.id)),
        "gateway_customers": rows(select(gateway_customers.c.account_id, gateway_customers.c.gateway)
                                  .order_by(gateway_customers.c.account_id)),
        "outbox": rows(select(outbox.c.topic, outbox.c.account_id, outbox.c.payload, outbox.c.created_at)
                       .order_by(outbox.c.id)),
        "audit": rows(select(audit_log.c.action, audit_log.c.target_type, audit_log.c.target_id, audit_log.c.details,
                             audit_log.c.at).where(audit_log.c.action != "plan.created").order_by(audit_log.c.id)),
        "invoices": rows(select(invoices.c.id)),
    }


def test_the_example_file_gives_the_state_the_single_commands_give(databases, db_kind):
    imported = databases.fresh_app(db_kind)
    the_examples_plans(imported)
    report = import_file(imported, EXAMPLE_CSV, actor=OPERATOR)
    assert (report.accounts, report.members, report.subscriptions, report.cards, report.skipped,
            report.problems) == (3, 3, 2, 2, 0, [])

    by_hand = databases.fresh_app(db_kind)
    the_examples_plans(by_hand)
    acme = create_account(by_hand, name="Acme SAS", owner_email="ceo@acme.example", locale="fr",
                          timezone="Europe/Paris", currency="EUR", country="FR", actor=OPERATOR,
                          address={"line1": "12 rue de la Paix", "postcode": "75002", "city": "Paris",
                                   "vat_id": "FR40303265045"})
    add_member(by_hand, acme, email="cfo@acme.example", role="admin", actor=OPERATOR)
    add_member(by_hand, acme, email="desk@acme.example", role="agent", actor=OPERATOR)
    add_card(by_hand, acme, card_token=by_hand.gateway.tokenize("4242424242424242", 12, 2030),
             acting_email="ceo@acme.example")
    create_subscription(by_hand, acme, plan_code="team-eur", seats=5, start=date(2026, 1, 15), actor=OPERATOR)
    globex = create_account(by_hand, name="Globex Inc", owner_email="owner@globex.example",
                            timezone="America/New_York", currency="USD", country="US", actor=OPERATOR,
                            address={"line1": "1 Infinite Loop", "postcode": "95014", "city": "Cupertino"})
    create_subscription(by_hand, globex, plan_code="team-usd", seats=12, start=date(2026, 1, 31), actor=OPERATOR)
    initech = create_account(by_hand, name="Initech, Ltd", owner_email="boss@initech.example",
                             timezone="Europe/London", currency="USD", country="GB", actor=OPERATOR)
    add_member(by_hand, initech, email="ops@initech.example", role="admin", actor=OPERATOR)
    add_card(by_hand, initech, card_token=by_hand.gateway.tokenize("5555555555554444", 3, 2027),
             acting_email="boss@initech.example")

    assert state(imported) == state(by_hand)


def test_the_csv_and_json_lines_examples_write_the_same(databases, db_kind):
    written = []
    for example in (EXAMPLE_CSV, EXAMPLE_JSONL):
        app = databases.fresh_app(db_kind)
        the_examples_plans(app)
        import_file(app, example, actor=OPERATOR)
        written.append(state(app))
    assert written[0] == written[1]


def test_the_imports_audit_entries_name_the_operator_and_the_reason_and_each_account_its_key(app):
    the_examples_plans(app)
    import_file(app, EXAMPLE_JSONL, actor="cli:ops")
    with app.engine.connect() as conn:
        entries = conn.execute(select(audit_log.c.actor, audit_log.c.reason)
                               .where(audit_log.c.action != "plan.created")).all()
        keys = conn.execute(select(accounts.c.external_key).order_by(accounts.c.id)).scalars().all()
    assert len(entries) == 12 and {tuple(row) for row in entries} == {("cli:ops", "bulk import")}
    assert keys == ["crm-0001", "crm-0002", "crm-0003"]


def test_an_imported_subscription_is_first_invoiced_on_its_next_renewal_date_never_for_the_past(app):
    the_examples_plans(app)
    import_file(app, EXAMPLE_CSV, actor=OPERATOR)
    assert renew_due(app, datetime(2026, 1, 14, 12, tzinfo=UTC)).invoices_issued == 0

    renew_due(app, datetime(2026, 1, 15, 12, tzinfo=UTC))

    with app.engine.connect() as conn:
        issued = conn.execute(select(invoices.c.account_id, invoices.c.period_start, invoices.c.period_end,
                                     invoices.c.subtotal)).all()
    assert [tuple(row) for row in issued] == [(1, date(2026, 1, 15), date(2026, 2, 15), 5 * 1900)]


def test_a_file_with_one_bad_row_writes_nothing_and_reports_each_problem(app):
    the_examples_plans(app)
    before = database_rows(app)
    report = import_text(app, jsonl(record("k1"), record("k2", owner="nobody"),
                                    record("k3", subscriptions=[{"plan": "gold", "next_renewal": "2026-01-05"}])),
                         name="f.jsonl", fmt="jsonl", actor=OPERATOR)
    assert [(p.line, p.field) for p in report.problems] == [(2, "owner_email"), (3, "subscriptions[0].plan")]
    assert report.refused and not report.written
    assert database_rows(app) == before


def test_a_second_run_of_the_same_file_skips_every_account_and_writes_nothing(app):
    the_examples_plans(app)
    import_file(app, EXAMPLE_CSV, actor=OPERATOR)
    before = database_rows(app)

    again = import_file(app, EXAMPLE_JSONL, actor=OPERATOR)

    assert (again.skipped, again.accounts, again.problems, again.written) == (3, 0, [], True)
    assert database_rows(app) == before


def test_an_import_stopped_half_way_is_finished_by_running_it_again(app):
    first_two = [record("k1"), record("k2", owner="two@x.test")]
    import_text(app, jsonl(*first_two), name="f.jsonl", fmt="jsonl", actor=OPERATOR)

    report = import_text(app, jsonl(*first_two, record("k3", owner="three@x.test")), name="f.jsonl", fmt="jsonl",
                         actor=OPERATOR)

    assert (report.skipped, report.accounts) == (2, 1)
    with app.engine.connect() as conn:
        assert conn.execute(select(accounts.c.external_key).order_by(accounts.c.id)).scalars().all() == [
            "k1", "k2", "k3"]


def test_a_key_already_imported_for_another_owner_is_refused(app):
    import_text(app, jsonl(record("k1")), name="f.jsonl", fmt="jsonl", actor=OPERATOR)
    before = database_rows(app)
    report = import_text(app, jsonl(record("k2", owner="two@x.test"), record("k1", owner="other@x.test")),
                         name="f.jsonl", fmt="jsonl", actor=OPERATOR)
    assert [(p.line, p.field, p.reason) for p in report.problems] == [
        (2, "key", "already imported as account 1, whose owner is boss@acme.test, not other@x.test")]
    assert database_rows(app) == before


def test_a_gateway_customer_or_card_token_another_account_holds_is_refused(app):
    card = {"customer": "cus_1", "token": "pm_1", "brand": "visa", "last4": "4242", "exp": "12/2030"}
    import_text(app, jsonl(record("k1", card=card)), name="f.csv", fmt="jsonl", actor=OPERATOR)
    report = import_text(app, "key,name,owner_email,country,card_customer,card_token,card_brand,card_last4,card_exp\n"
                              "k2,B,b@x.test,FR,cus_1,pm_2,visa,4242,12/2030\n"
                              "k3,C,c@x.test,FR,cus_3,pm_1,visa,4242,12/2030\n",
                         name="f.csv", fmt="csv", actor=OPERATOR)
    assert [(p.line, p.field, p.reason) for p in report.problems] == [
        (2, "card_customer", "this gateway customer is account 1's"),
        (3, "card_token", "this card token is account 1's card")]


def test_a_dry_run_reports_what_it_would_write_and_writes_nothing(app):
    the_examples_plans(app)
    before = database_rows(app)
    report = import_file(app, EXAMPLE_CSV, dry_run=True, actor=OPERATOR)
    assert (report.accounts, report.members, report.subscriptions, report.cards, report.written) == (3, 3, 2, 2, False)
    assert database_rows(app) == before


def test_a_large_file_is_written_slice_by_slice_each_account_with_its_own_rows(databases, db_kind):
    app = databases.fresh_app(db_kind, batches={"chunk_size": 7})
    team_plan(app, code="team-usd")
    records = [record(f"k{n}", owner=f"o{n}@x.test", members=[{"email": f"a{n}@x.test", "role": "agent"}],
                      subscriptions=[{"plan": "team-usd", "seats": n, "next_renewal": "2026-01-20"}],
                      card={"customer": f"cus_{n}", "token": f"pm_{n}", "brand": "visa", "last4": "4242",
                            "exp": "12/2030"}) for n in range(1, 31)]
    slices = []
    report = import_text(app, jsonl(*records), name="f.jsonl", fmt="jsonl", actor=OPERATOR,
                         on_slice=lambda done, total: slices.append((done, total)))
    assert slices == [(0, 30), (7, 30), (14, 30), (21, 30), (28, 30), (30, 30)]
    assert (report.accounts, report.members, report.subscriptions, report.cards) == (30, 30, 30, 30)
    with app.engine.connect() as conn:
        joined = conn.execute(
            select(accounts.c.external_key, members.c.email, subscriptions.c.seats, cards.c.token)
            .join(members, (members.c.account_id == accounts.c.id) & (members.c.role == "owner"))
            .join(subscriptions, subscriptions.c.account_id == accounts.c.id)
            .join(cards, cards.c.account_id == accounts.c.id).order_by(accounts.c.id)).all()
        events = conn.execute(select(outbox.c.topic).order_by(outbox.c.id)).scalars().all()
    assert [tuple(row) for row in joined] == [(f"k{n}", f"o{n}@x.test", n, f"pm_{n}") for n in range(1, 31)]
    assert events == ["account.created", "account.updated", "payment_method.updated", "subscription.created"] * 30


@pytest.mark.parametrize("bad", [b"\xff\xfe", b"not,a\x00csv"])
def test_an_unreadable_file_is_refused_before_anything_is_read_from_the_database(app, tmp_path, bad):
    from renewly.onboarding.rules.records import BadFile
    path = tmp_path / "f.csv"
    path.write_bytes(bad)
    with pytest.raises(BadFile):
        import_file(app, path, actor=OPERATOR)


def test_r10_1_an_imported_accounts_key_is_deleted_with_its_personal_data(app):
    from renewly.scheduler import advance
    from tests.retention.test_deletion import DELETION_DUE, cancelled_account
    account_id = cancelled_account(app)
    with app.engine.begin() as conn:  # as if imported: the key may name the customer (an e-mail, a name)
        conn.execute(accounts.update().where(accounts.c.id == account_id)
                     .values(external_key="jeanne@dupont-plomberie.test"))

    advance(app, DELETION_DUE - app.clock.now())

    with app.engine.connect() as conn:
        found = conn.execute(select(accounts.c.status, accounts.c.external_key)
                             .where(accounts.c.id == account_id)).one()
    assert tuple(found) == ("deleted", None)


def test_two_imports_of_one_account_at_once_write_it_once_and_the_second_says_run_it_again(app):
    from renewly.shared.errors import Conflict

    def another_import_meanwhile(done: int, _total: int) -> None:
        if done == 0:  # checked, not yet written: the other import writes k2 now
            import_text(app, jsonl(record("k2", owner="two@x.test")), name="other.jsonl", fmt="jsonl",
                        actor=OPERATOR)

    with pytest.raises(Conflict) as refused:
        import_text(app, jsonl(record("k1"), record("k2", owner="two@x.test")), name="f.jsonl", fmt="jsonl",
                    actor=OPERATOR, on_slice=another_import_meanwhile)
    assert refused.value.code == "import_raced"
    with app.engine.connect() as conn:
        assert conn.execute(select(accounts.c.external_key)).scalars().all() == ["k2"]

    again = import_text(app, jsonl(record("k1"), record("k2", owner="two@x.test")), name="f.jsonl", fmt="jsonl",
                        actor=OPERATOR)
    assert (again.accounts, again.skipped) == (1, 1)


def test_a_ctrl_c_stops_the_import_between_slices_each_written_slice_whole_and_a_rerun_writes_the_rest(
        databases, db_kind):
    app = databases.fresh_app(db_kind, batches={"chunk_size": 7})
    records = [record(f"k{n}", owner=f"o{n}@x.test") for n in range(1, 31)]

    def ctrl_c_during_the_second_slice(done, total):
        if done == 7:
            app.stop.ask()

    report = import_text(app, jsonl(*records), name="f.jsonl", fmt="jsonl", actor=OPERATOR,
                         on_slice=ctrl_c_during_the_second_slice)

    assert report.stopped_after == 7
    with app.engine.connect() as conn:
        assert conn.execute(select(accounts.c.external_key).order_by(accounts.c.id)).scalars().all() == [
            f"k{n}" for n in range(1, 8)]
        assert conn.execute(select(outbox.c.topic)).scalars().all() == ["account.created"] * 7

    app.stop = type(app.stop)()  # a new command: nobody asked it to stop
    again = import_text(app, jsonl(*records), name="f.jsonl", fmt="jsonl", actor=OPERATOR)
    assert (again.skipped, again.accounts, again.stopped_after) == (7, 23, None)
