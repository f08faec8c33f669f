"""An import file read and checked whole, without a database: each account's fields refused
by the rules of the single commands, each problem with its line and field."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from renewly.onboarding.rules.records import (
    BadFile,
    Context,
    PlanTerms,
    Problem,
    check_records,
    decode,
    format_of,
    looks_like_card_number,
    read_records,
)

ROOT = Path(__file__).resolve().parents[3]
PLANS = {"team-eur": PlanTerms(1, "team-eur", "EUR", "month"), "team-usd": PlanTerms(2, "team-usd", "USD", "month"),
         "pro-year": PlanTerms(3, "pro-year", "USD", "year")}
CONTEXT = Context(plans=PLANS, now=datetime(2026, 1, 1, 5, tzinfo=UTC), last_day=date(9900, 1, 1))
HEADER = "key,name,owner_email,country,members,plan,seats,next_renewal"


def checked_csv(text: str):
    return check_records(read_records("f.csv", text, "csv"), CONTEXT, csv_names=True)


def checked_jsonl(*records) -> object:
    text = "\n".join(record if isinstance(record, str) else json.dumps(record) for record in records)
    return check_records(read_records("f.jsonl", text, "jsonl"), CONTEXT, csv_names=False)


def account(**fields) -> dict:
    return {"key": "k1", "name": "Acme", "owner_email": "boss@acme.test", "address": {"country": "FR"}, **fields}


def test_the_example_files_say_the_same_accounts_in_both_formats():
    def accounts(name: str, fmt: str):
        text = decode(name, (ROOT / "examples" / "import" / name).read_bytes())
        found = check_records(read_records(name, text, fmt), CONTEXT, csv_names=fmt == "csv")
        assert found.problems == []
        return [replace(found, line=0) for found in found.accounts]  # a CSV file's first line is its header

    assert accounts("accounts.csv", "csv") == accounts("accounts.jsonl", "jsonl")


def test_a_csv_row_holds_its_members_one_subscription_and_one_card():
    [acme] = checked_csv("key,name,owner_email,locale,timezone,currency,country,city,members,plan,seats,"
                         "next_renewal,card_customer,card_token,card_brand,card_last4,card_exp\n"
                         "crm-1, Acme ,Boss@Acme.test,fr,Europe/Paris,eur,fr,Paris,a@acme.test:admin; "
                         "b@acme.test:agent,team-eur,5,2026-01-15,cus_1,pm_1,Visa,4242,12/2030\n").accounts
    assert (acme.key, acme.name, acme.owner_email, acme.locale, acme.timezone, acme.currency) == (
        "crm-1", "Acme", "boss@acme.test", "fr", "Europe/Paris", "EUR")
    assert acme.buyer == {"name": "Acme", "line1": "", "line2": "", "postcode": "", "city": "Paris",
                          "country": "FR", "vat_id": ""}
    assert [(m.email, m.role) for m in acme.members] == [("a@acme.test", "admin"), ("b@acme.test", "agent")]
    [subscription] = acme.subscriptions
    assert (subscription.plan.code, subscription.seats, subscription.next_renewal) == ("team-eur", 5,
                                                                                       date(2026, 1, 15))
    assert (acme.card.customer, acme.card.token, acme.card.brand, acme.card.last4, acme.card.exp_month,
            acme.card.exp_year) == ("cus_1", "pm_1", "visa", "4242", 12, 2030)


def test_defaults_are_those_of_accounts_create():
    [found] = checked_jsonl(account()).accounts
    assert (found.locale, found.timezone, found.currency, found.members, found.subscriptions, found.card) == (
        "en", "UTC", "USD", (), (), None)


def test_every_problem_of_every_row_is_reported_with_its_line_and_column():
    found = checked_csv(f"{HEADER}\n"
                        "k1,Acme,not-an-email,FR,,,,\n"
                        "k2,,b@x.test,XX,c@x.test:owner,,,\n"
                        "k3,Globex,g@x.test,US,,nope,0,2026-13-01\n")
    assert found.accounts == []
    assert [(p.line, p.field) for p in found.problems] == [
        (2, "owner_email"), (3, "country"), (3, "members"), (3, "name"),
        (4, "next_renewal"), (4, "plan"), (4, "seats")]
    reasons = {(p.line, p.field): p.reason for p in found.problems}
    assert reasons[(3, "members")] == "an account has exactly one owner; support transfers ownership instead"
    assert "no plan with code 'nope'" in reasons[(4, "plan")]


def test_a_line_of_a_quoted_multiline_cell_counts_as_a_line():
    found = checked_csv(f'{HEADER}\nk1,"Acme\nLtd",a@x.test,FR,,,,\nk2,B,bad,FR,,,,\n')
    assert [(p.line, p.field) for p in found.problems] == [(2, "name"), (4, "owner_email")]


def test_json_lines_name_the_field_by_its_path():
    found = checked_jsonl(account(members=[{"email": "a@x.test", "role": "boss"}],
                                  subscriptions=[{"plan": "team-usd", "seats": 2, "next_renewal": "2025-12-31"}],
                                  card={"customer": "c", "token": "t", "brand": "visa", "last4": "42",
                                        "exp": "01/2020"}, colour="red"))
    assert [p.field for p in found.problems] == ["card.exp", "card.last4", "colour", "members[0].role",
                                                 "subscriptions[0].next_renewal"]


def test_r5_4_a_value_that_looks_like_a_card_number_is_refused_wherever_it_is_and_never_echoed():
    found = checked_jsonl(account(card={"customer": "cus_1", "token": "4242 4242 4242 4242", "brand": "visa",
                                        "last4": "4242", "exp": "12/2030"}, name="5555555555554444"))
    assert [(p.field, "card number" in p.reason) for p in found.problems] == [("card.token", True), ("name", True)]
    assert not any("4242 4242" in p.reason or "5555" in p.reason for p in found.problems)


def test_a_card_number_is_13_to_19_digits_that_pass_the_luhn_check():
    assert looks_like_card_number("4242424242424242") and looks_like_card_number("4242-4242-4242-4242")
    assert not looks_like_card_number("4242424242424241")  # Luhn fails
    assert not looks_like_card_number("pm_4242424242424242") and not looks_like_card_number("4242")


def test_r2_1_an_account_needs_its_buyers_country():
    found = checked_jsonl(account(address={"city": "Paris"}))
    assert [(p.field, p.reason) for p in found.problems] == [
        ("address.country", "an account needs its buyer's country (ISO 3166, e.g. FR): it decides the tax")]


def test_a_plan_priced_in_another_currency_than_the_account_is_refused():
    found = checked_jsonl(account(currency="USD", subscriptions=[{"plan": "team-eur", "next_renewal": "2026-01-02"}]))
    assert [p.reason for p in found.problems] == ["plan team-eur is priced in EUR but the account pays in USD"]


@pytest.mark.parametrize(("next_renewal", "zone", "plan", "accepted"), [
    ("2026-01-01", "UTC", "team-usd", True),  # today: the next renewal batch invoices it
    ("2025-12-31", "UTC", "team-usd", False),  # the past is never invoiced at import
    ("2025-12-31", "Pacific/Honolulu", "team-usd", True),  # still 2025-12-31 there (UTC-10, at 05:00 UTC)
    ("2026-02-01", "UTC", "team-usd", True),  # one month ahead at most
    ("2026-02-02", "UTC", "team-usd", False),
    ("2027-01-01", "UTC", "pro-year", True),
    ("2027-01-02", "UTC", "pro-year", False),
])
def test_the_next_renewal_is_today_or_later_in_the_accounts_zone_and_within_one_period(next_renewal, zone, plan,
                                                                                        accepted):
    found = checked_jsonl(account(timezone=zone, subscriptions=[{"plan": plan, "next_renewal": next_renewal}]))
    assert (found.problems == []) is accepted, found.problems


def test_seats_follow_the_subscriptions_bounds():
    found = checked_jsonl(account(subscriptions=[{"plan": "team-usd", "seats": 1_000_001,
                                                  "next_renewal": "2026-01-02"}]),
                          account(key="k2", subscriptions=[{"plan": "team-usd", "seats": True,
                                                            "next_renewal": "2026-01-02"}]))
    assert [(p.line, p.reason) for p in found.problems] == [
        (1, "a subscription has at most 1000000 seats (got 1000001)"),
        (2, "expected a whole number of seats, not True")]


def test_a_member_twice_or_the_owner_again_is_refused():
    found = checked_jsonl(account(members=[{"email": "BOSS@acme.test", "role": "admin"},
                                           {"email": "a@acme.test", "role": "admin"},
                                           {"email": "a@acme.test", "role": "agent"}]))
    assert [(p.field, p.reason) for p in found.problems] == [
        ("members[0].email", "boss@acme.test is already a member of this account (its owner)"),
        ("members[2].email", "a@acme.test is already a member of this account")]


def test_a_key_card_token_or_gateway_customer_given_twice_in_the_file_is_refused_on_its_second_line():
    card = {"customer": "cus_1", "token": "pm_1", "brand": "visa", "last4": "4242", "exp": "12/2030"}
    found = checked_jsonl(account(card=card), account(key="k2", card=card), account())
    assert [(p.line, p.field, p.reason) for p in found.problems] == [
        (2, "card.customer", "this gateway customer is already on line 1"),
        (2, "card.token", "this card token is already on line 1"),
        (3, "key", "this key is already on line 1")]
    assert found.accounts == [found.accounts[0]] and found.accounts[0].line == 1


def test_a_json_line_that_is_not_an_object_is_a_problem_of_its_line():
    found = checked_jsonl(account(), "[1, 2]", "{not json", "", account(key="k2"))
    assert [(p.line, p.field) for p in found.problems] == [(2, "(line)"), (3, "(line)")]
    assert [a.line for a in found.accounts] == [1, 5]


def test_a_csv_row_longer_than_its_header_is_refused():
    found = checked_csv(f"{HEADER}\nk1,Acme,a@x.test,FR,,,,,surplus\n")
    assert found.problems == [Problem(2, "(line)", "1 more field(s) than the header has columns")]


@pytest.mark.parametrize(("name", "content", "fmt", "message"), [
    ("a.txt", b"", None, "cannot tell the format of a.txt from its name: give --format csv or jsonl"),
    ("a.csv", b"\xff\xfe", None, "a.csv is not UTF-8 text (line 1, byte 1): save it as UTF-8"),
    ("a.csv", b"", None, "a.csv is empty: expected a header line, then one account per line"),
    ("a.csv", b"key,name,owner_email,country,colour\n", None,
     "a.csv: unknown column(s) 'colour' (docs/import.md lists the columns)"),
    ("a.csv", b"key,name,owner_email\n", None, "a.csv: missing column(s) country (docs/import.md lists the columns)"),
    ("a.csv", b'key,name,owner_email,country\nk,"a"b,c,d\n', None, "a.csv is not CSV: line 2: ',' expected after '\"'"),
    ("a.jsonl", b"key,name\n", None, "a.jsonl is not JSON lines: line 1: Expecting value"),
    ("a.dat", b"", "xml", "unknown format 'xml': expected csv or jsonl"),
])
def test_a_file_that_is_not_an_import_file_is_refused_in_one_line(name, content, fmt, message):
    with pytest.raises(BadFile) as refused:
        chosen = format_of(name, fmt)
        list(read_records(name, decode(name, content), chosen))
    assert refused.value.message == message


def test_the_format_follows_the_extension_unless_given():
    assert (format_of("a.CSV", None), format_of("a.jsonl", None), format_of("a.ndjson", None),
            format_of("a.txt", "CSV")) == ("csv", "jsonl", "jsonl", "csv")
