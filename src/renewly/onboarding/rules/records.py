"""An import file's records, read and checked whole, pure: what `renewly import` would write.

Each record is one account (docs/import.md): its owner, locale, zone, currency and buyer
address, its other members, its subscriptions (each continues from its next renewal date) and
the gateway's token of its card. Every field is checked with the rules the single commands
apply (`accounts create`, `members add`, `subscriptions create`, `cards add`), and every
problem is kept, with its line and field, so that the operator mends the file in one pass.
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from functools import partial
from typing import Any

from renewly.accounts.rules.members import (
    NAME_LENGTH,
    validate_address_field,
    validate_email,
    validate_locale,
    validate_member_role,
    validate_text,
)
from renewly.billing.rules.plans import validate_seats
from renewly.payments.rules.charges import SavedCard, parse_expiry
from renewly.shared.calendar import local_date, period_boundary, validate_timezone
from renewly.shared.errors import InvalidInput
from renewly.shared.money import validate_currency

FORMATS = ("csv", "jsonl")
KEY_LENGTH = 100  # accounts.external_key
TOKEN_LENGTH, BRAND_LENGTH = 255, 16  # gateway_customers.customer, cards.token; cards.brand
ADDRESS_FIELDS = ("line1", "line2", "postcode", "city", "country", "vat_id")
CARD_FIELDS = ("customer", "token", "brand", "last4", "exp")
SUBSCRIPTION_FIELDS = ("plan", "seats", "next_renewal")
ACCOUNT_FIELDS = ("key", "name", "owner_email", "locale", "timezone", "currency", "buyer_name")
# One row per account in CSV: its address, one subscription and one card flattened into columns,
# its other members in one cell ("ann@x.test:admin; bob@x.test:agent").
CSV_COLUMNS = (*ACCOUNT_FIELDS, *ADDRESS_FIELDS, "members", *SUBSCRIPTION_FIELDS,
               *(f"card_{name}" for name in CARD_FIELDS))
CSV_REQUIRED = ("key", "name", "owner_email", "country")
JSON_FIELDS = (*ACCOUNT_FIELDS, "address", "members", "subscriptions", "card")


class BadFile(InvalidInput):
    """The file cannot be read as an import file at all: one line, nothing checked further."""

    code = "bad_import_file"


@dataclass(frozen=True, slots=True, order=True)
class Problem:
    """Why one field of one record is refused. `field` is the CSV column or the JSON path."""

    line: int
    field: str
    reason: str


@dataclass(frozen=True, slots=True)
class PlanTerms:
    id: int
    code: str
    currency: str
    interval: str


@dataclass(frozen=True, slots=True)
class Member:
    email: str
    role: str


@dataclass(frozen=True, slots=True)
class Subscription:
    plan: PlanTerms
    seats: int
    next_renewal: date


@dataclass(frozen=True, slots=True)
class Card(SavedCard):
    """A saved card as the gateway holds it, for one of its customers."""

    customer: str


@dataclass(frozen=True, slots=True)
class Account:
    """One record, checked: everything `renewly import` writes for it."""

    line: int
    key: str
    name: str
    owner_email: str
    locale: str
    timezone: str
    currency: str
    buyer: Mapping[str, str]
    members: tuple[Member, ...] = ()
    subscriptions: tuple[Subscription, ...] = ()
    card: Card | None = None


@dataclass(frozen=True, slots=True)
class Checked:
    accounts: list[Account]
    problems: list[Problem]


# -- reading ---------------------------------------------------------------------------------------

def format_of(name: str, given: str | None) -> str:
    """The format named by --format, else by the file's extension."""
    if given is not None:
        if given.lower() not in FORMATS:
            raise BadFile(f"unknown format {given!r}: expected csv or jsonl")
        return given.lower()
    lowered = name.lower()
    if lowered.endswith(".csv"):
        return "csv"
    if lowered.endswith((".jsonl", ".ndjson")):
        return "jsonl"
    raise BadFile(f"cannot tell the format of {name} from its name: give --format csv or jsonl")


def decode(name: str, content: bytes) -> str:
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = content.count(b"\n", 0, error.start) + 1
        raise BadFile(f"{name} is not UTF-8 text (line {line}, byte {error.start + 1}): save it as UTF-8") from None


def read_records(name: str, text: str, fmt: str) -> Iterator[tuple[int, Any]]:
    """(line number, record in the nested shape of JSON lines) for every record of the file; a
    CSV row is reshaped. A record that is not a JSON object comes as it is (checked later)."""
    if fmt == "csv":
        yield from _csv_records(name, text)
    else:
        yield from _json_records(name, text)


def _csv_records(name: str, text: str) -> Iterator[tuple[int, Any]]:
    if "\x00" in text:
        raise BadFile(f"{name} is not CSV text (it holds NUL bytes)")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise BadFile(f"{name} is empty: expected a header line, then one account per line")
        header = [column.strip().lower() for column in header]
        unknown = [column for column in header if column not in CSV_COLUMNS]
        if unknown:
            raise BadFile(f"{name}: unknown column(s) {', '.join(map(repr, unknown))} "
                          "(docs/import.md lists the columns)")
        missing = [column for column in CSV_REQUIRED if column not in header]
        if missing:
            raise BadFile(f"{name}: missing column(s) {', '.join(missing)} (docs/import.md lists the columns)")
        repeated = sorted({column for column in header if header.count(column) > 1})
        if repeated:
            raise BadFile(f"{name}: column(s) {', '.join(repeated)} given twice")
        line = reader.line_num + 1
        for row in reader:
            if any(cell.strip() for cell in row):
                yield line, _reshaped(dict(zip(header, row)), len(row) - len(header))
            line = reader.line_num + 1
    except csv.Error as error:
        raise BadFile(f"{name} is not CSV: line {reader.line_num}: {error}") from None


def _reshaped(row: dict[str, str], extra: int) -> dict[str, Any]:
    """A CSV row in the nested shape of a JSON line; empty cells are absent values."""
    cells = {column: value.strip() for column, value in row.items() if value.strip()}
    record: dict[str, Any] = {name: cells[name] for name in ACCOUNT_FIELDS if name in cells}
    record["address"] = {name: cells[name] for name in ADDRESS_FIELDS if name in cells}
    if "members" in cells:
        record["members"] = [_member_cell(item) for item in cells["members"].split(";") if item.strip()]
    if any(name in cells for name in SUBSCRIPTION_FIELDS):
        record["subscriptions"] = [{name: cells[name] for name in SUBSCRIPTION_FIELDS if name in cells}]
    if any(f"card_{name}" in cells for name in CARD_FIELDS):
        record["card"] = {name: cells[f"card_{name}"] for name in CARD_FIELDS if f"card_{name}" in cells}
    if extra > 0:
        record[_EXTRA] = extra
    return record


_EXTRA = "\x00extra"  # never a column name: the header refuses it


def _member_cell(item: str) -> dict[str, str]:
    email, _, role = item.strip().rpartition(":")
    return {"email": email.strip(), "role": role.strip()} if email else {"email": item.strip(), "role": ""}


def _json_records(name: str, text: str) -> Iterator[tuple[int, Any]]:
    parsed = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
            parsed += 1
        except (json.JSONDecodeError, RecursionError) as error:
            if not parsed and number == _first_line(text):
                raise BadFile(f"{name} is not JSON lines: line {number}: {getattr(error, 'msg', error)}") from None
            yield number, _NotJson(str(getattr(error, "msg", error)))


def _first_line(text: str) -> int:
    return next(number for number, line in enumerate(text.splitlines(), start=1) if line.strip())


@dataclass(frozen=True, slots=True)
class _NotJson:
    reason: str


# -- checking --------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Context:
    """What the checks need beyond the file: the plans, the clock, the last day Renewly bills."""

    plans: Mapping[str, PlanTerms]
    now: datetime
    last_day: date


def check_records(records: Iterable[tuple[int, Any]], context: Context, *, csv_names: bool) -> Checked:
    """Every record checked alone, then the file as a whole (a key, card token or gateway
    customer given twice). Problems are named by CSV column (`csv_names`) or JSON path."""
    accounts: list[Account] = []
    problems: list[Problem] = []
    for line, record in records:
        row = _Row(line)
        account = _check_account(row, record, context)
        problems.extend(row.problems)
        if account is not None:
            accounts.append(account)
    problems.extend(_repeated_in_file(accounts))
    if csv_names:
        problems = [Problem(p.line, csv_column(p.field), p.reason) for p in problems]
    # Only the accounts without any problem are kept; with any problem, nothing is written anyway.
    bad_lines = {problem.line for problem in problems}
    return Checked([account for account in accounts if account.line not in bad_lines], sorted(problems))


def csv_column(path: str) -> str:
    """The CSV column of a JSON path: address.city -> city, card.token -> card_token,
    subscriptions[0].plan -> plan, members[1].email -> members."""
    head, _, rest = path.partition(".")
    if head == "address" and rest:
        return rest
    if head == "card" and rest:
        return f"card_{rest}"
    if head.startswith("subscriptions[") and rest:
        return rest
    if head.startswith("members"):
        return "members"
    return path


class _Row:
    """One record's problems; a field with a problem is not checked again (nor its value echoed)."""

    def __init__(self, line: int) -> None:
        self.line = line
        self.problems: list[Problem] = []
        self._refused: set[str] = set()

    def fail(self, path: str, reason: str) -> None:
        if path not in self._refused:
            self._refused.add(path)
            self.problems.append(Problem(self.line, path, reason))

    def check(self, path: str, rule: Callable[..., Any], *values: Any) -> Any:
        """The rule's value, or None with the rule's refusal recorded."""
        if path in self._refused:
            return None
        try:
            return rule(*values)
        except InvalidInput as refusal:
            self.fail(path, refusal.message)
            return None


def _check_account(row: _Row, record: Any, context: Context) -> Account | None:
    if isinstance(record, _NotJson):
        row.fail("(line)", f"not JSON: {record.reason}")
        return None
    if not isinstance(record, dict):
        row.fail("(line)", "expected a JSON object: one account per line")
        return None
    if record.get(_EXTRA):
        row.fail("(line)", f"{record[_EXTRA]} more field(s) than the header has columns")
    for path in _card_numbers(record):
        row.fail(path, "looks like a card number: import the gateway's token, never the number (R5.4)")
    for unknown in sorted(set(record) - set(JSON_FIELDS) - {_EXTRA}):
        row.fail(unknown, "unknown field (docs/import.md lists the fields)")
    key = row.check("key", _required_text, record.get("key"), "an import key", KEY_LENGTH)
    name = row.check("name", _required_text, record.get("name"), "an account's name", NAME_LENGTH)
    owner = row.check("owner_email", _email, record.get("owner_email"))
    locale = row.check("locale", _text_then(validate_locale), record.get("locale", "en"))
    zone = row.check("timezone", _text_then(validate_timezone), record.get("timezone", "UTC"))
    currency = row.check("currency", _text_then(validate_currency), record.get("currency", "USD"))
    buyer = _check_address(row, record.get("address", {}), _given_or(record.get("buyer_name"), name))
    members = _check_members(row, record.get("members", []), owner)
    subscriptions = _check_subscriptions(row, record.get("subscriptions", []), context, zone, currency)
    card = _check_card(row, record.get("card"), context)
    if row.problems:
        return None
    if buyer is None:
        raise RuntimeError(f"line {row.line}: no buyer's address and no problem recorded for it")
    return Account(line=row.line, key=key, name=name, owner_email=owner, locale=locale, timezone=zone,
                   currency=currency, buyer=buyer, members=members, subscriptions=subscriptions, card=card)


def _given_or(value: Any, default: Any) -> Any:
    return default if value is None else value


def _check_address(row: _Row, address: Any, buyer_name: str | None) -> dict[str, str] | None:
    if not isinstance(address, dict):
        row.fail("address", "expected an object of line1, line2, postcode, city, country, vat_id")
        return None
    for unknown in sorted(set(address) - set(ADDRESS_FIELDS)):
        row.fail(f"address.{unknown}", "unknown field of an address")
    if not _is_text(address.get("country")) or not address.get("country", "").strip():
        # As at `accounts create`: its tax follows the buyer's country (R2.1).
        row.fail("address.country", "an account needs its buyer's country (ISO 3166, e.g. FR): it decides the tax")
    if buyer_name is not None:  # else the account's name, refused already
        buyer_name = row.check("buyer_name", _text_then(lambda text: validate_address_field("name", text)),
                               buyer_name)
    checked = {}
    for name in ADDRESS_FIELDS:
        value = address.get(name, "")
        # Each field alone by the address's own rules, so that each problem names its field.
        checked[name] = row.check(f"address.{name}", _text_then(partial(validate_address_field, name)),
                                  value)
    if buyer_name is None or None in checked.values():
        return None
    return {"name": buyer_name, **checked}  # as BuyerAddress(...).snapshot(), each field checked above


def _check_members(row: _Row, members: Any, owner: str | None) -> tuple[Member, ...]:
    if not isinstance(members, list):
        row.fail("members", "expected a list of {email, role}")
        return ()
    found: list[Member] = []
    seen = {owner} if owner else set()
    for index, member in enumerate(members):
        path = f"members[{index}]"
        if not isinstance(member, dict) or set(member) - {"email", "role"}:
            row.fail(path, "expected {email, role}")
            continue
        email = row.check(f"{path}.email", _email, member.get("email"))
        role = row.check(f"{path}.role", _text_then(validate_member_role), member.get("role") or "")
        if email in seen:
            row.fail(f"{path}.email", f"{email} is already a member of this account"
                     + (" (its owner)" if email == owner else ""))
        elif email is not None and role is not None:
            seen.add(email)
            found.append(Member(email, role.value))
    return tuple(found)


def _check_subscriptions(row: _Row, subscriptions: Any, context: Context, zone: str | None,
                         currency: str | None) -> tuple[Subscription, ...]:
    if not isinstance(subscriptions, list):
        row.fail("subscriptions", "expected a list of {plan, seats, next_renewal}")
        return ()
    found = []
    for index, subscription in enumerate(subscriptions):
        path = f"subscriptions[{index}]"
        if not isinstance(subscription, dict):
            row.fail(path, "expected {plan, seats, next_renewal}")
            continue
        for unknown in sorted(set(subscription) - set(SUBSCRIPTION_FIELDS)):
            row.fail(f"{path}.{unknown}", "unknown field of a subscription")
        plan = row.check(f"{path}.plan", _plan, subscription.get("plan"), context.plans)
        if plan is not None and currency is not None and plan.currency != currency:
            row.fail(f"{path}.plan", f"plan {plan.code} is priced in {plan.currency} but the account pays in "
                                     f"{currency}")
        seats = row.check(f"{path}.seats", _seats, subscription.get("seats", 1))
        renewal = row.check(f"{path}.next_renewal", _date, subscription.get("next_renewal"))
        if renewal is not None and zone is not None:
            renewal = row.check(f"{path}.next_renewal", _next_renewal, renewal, plan, zone, context)
        if None not in (plan, seats, renewal):
            found.append(Subscription(plan, seats, renewal))
    return tuple(found)


def _check_card(row: _Row, card: Any, context: Context) -> Card | None:
    if card is None:
        return None
    if not isinstance(card, dict):
        row.fail("card", "expected {customer, token, brand, last4, exp}")
        return None
    for unknown in sorted(set(card) - set(CARD_FIELDS)):
        row.fail(f"card.{unknown}", "unknown field of a card")
    customer = row.check("card.customer", _required_text, card.get("customer"), "the gateway's customer",
                         TOKEN_LENGTH)
    token = row.check("card.token", _required_text, card.get("token"), "the card's token", TOKEN_LENGTH)
    brand = row.check("card.brand", _required_text, card.get("brand"), "the card's brand", BRAND_LENGTH)
    last4 = row.check("card.last4", _last4, card.get("last4"))
    expiry = row.check("card.exp", _expiry, card.get("exp"), context.now.date())
    if None in (customer, token, brand, last4, expiry):
        return None
    exp_month, exp_year = expiry
    return Card(token, brand.lower(), last4, exp_month, exp_year, customer=customer)


def _repeated_in_file(accounts: list[Account]) -> Iterator[Problem]:
    """A key, a card token or a gateway customer given to two accounts: the second is refused."""
    first: dict[tuple[str, str], int] = {}
    for account in accounts:
        given = [("key", account.key)]
        if account.card:
            given += [("card.token", account.card.token), ("card.customer", account.card.customer)]
        for path, value in given:
            line = first.setdefault((path, value), account.line)
            if line != account.line:
                yield Problem(account.line, path, f"{_what[path]} is already on line {line}")


_what = {"key": "this key", "card.token": "this card token", "card.customer": "this gateway customer"}


# -- the rules of single fields --------------------------------------------------------------------

def _is_text(value: Any) -> bool:
    return isinstance(value, str)


def _expect_text(value: Any) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"expected text, not {type(value).__name__ if value is not None else 'null'}")
    return value


def _text_then(rule: Callable[[str], Any]) -> Callable[[Any], Any]:
    return lambda value: rule(_expect_text(value))


def _required_text(value: Any, what: str, length: int) -> str:
    if value is None or value == "":
        raise InvalidInput(f"{what} is required")
    return validate_text(_expect_text(value), what, length)


def _email(value: Any) -> str:
    if value is None or value == "":
        raise InvalidInput("an e-mail address is required")
    return validate_email(_expect_text(value))


def _plan(code: Any, plans: Mapping[str, PlanTerms]) -> PlanTerms:
    if code is None or code == "":
        raise InvalidInput("a subscription needs its plan's code")
    plan = plans.get(_expect_text(code))
    if plan is None:
        raise InvalidInput(f"no plan with code {code!r} (renewly plans list)")
    return plan


def _seats(value: Any) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidInput(f"expected a whole number of seats, not {value!r}")
    return validate_seats(value)


def _date(value: Any) -> date:
    if value is None or value == "":
        raise InvalidInput("a subscription needs its next renewal date (YYYY-MM-DD)")
    try:
        return date.fromisoformat(_expect_text(value))
    except ValueError:
        raise InvalidInput(f"malformed date {value!r}: expected YYYY-MM-DD") from None


def _next_renewal(day: date, plan: PlanTerms | None, zone: str, context: Context) -> date:
    """Today or later in the account's zone (no invoice is issued for the past), before the last
    day Renewly bills, and within one period: later, the customer would have free periods (a
    typo such as 2036 for 2026)."""
    today = local_date(context.now, zone)
    if day < today:
        raise InvalidInput(f"{day} is before today ({today} in {zone}): the next renewal is today or later")
    if day >= context.last_day:
        raise InvalidInput(f"{day} is past the last day Renewly bills ({context.last_day})")
    if plan is not None:
        latest = period_boundary(today, plan.interval, 1)
        if day > latest:
            raise InvalidInput(f"{day} is more than one {plan.interval} ahead (after {latest})")
    return day


def _expiry(value: Any, today: date) -> tuple[int, int]:
    if value is None or value == "":
        raise InvalidInput("the card's expiry (MM/YYYY) is required")
    return parse_expiry(_expect_text(value), today)


_LAST4 = re.compile(r"^[0-9]{4}$")


def _last4(value: Any) -> str:
    if value is None or value == "":
        raise InvalidInput("the card's last 4 digits are required")
    digits = _expect_text(value)
    if not _LAST4.match(digits):
        raise InvalidInput("expected the card's last 4 digits")
    return digits


_CARD_NUMBER = re.compile(r"^[0-9 -]+$")


def looks_like_card_number(value: str) -> bool:
    """13 to 19 digits (spaces and dashes aside) that pass the Luhn check."""
    if len(value) < 13 or not value[0].isdigit() or not _CARD_NUMBER.match(value):
        return False
    digits = [int(char) for char in value if char.isdigit()]
    if not 13 <= len(digits) <= 19:
        return False
    total = sum(digit if index % 2 == 0 else (digit * 2 - 9 if digit > 4 else digit * 2)
                for index, digit in enumerate(reversed(digits)))
    return total % 10 == 0


def _card_numbers(record: dict[str, Any] | list[Any], path: str = "") -> Iterator[str]:
    """The paths of every value of the record that looks like a card number, wherever it is."""
    items = record.items() if isinstance(record, dict) else enumerate(record)
    for name, value in items:
        if isinstance(value, (dict, list)):
            yield from _card_numbers(value, _path(path, name))
        elif isinstance(value, str):
            if len(value) >= 13 and looks_like_card_number(value):
                yield _path(path, name)
        elif isinstance(value, int) and not isinstance(value, bool) and value >= 10 ** 12:
            if looks_like_card_number(str(value)):
                yield _path(path, name)


def _path(path: str, name: str | int) -> str:
    return f"{path}[{name}]" if isinstance(name, int) else (f"{path}.{name}" if path else name)
