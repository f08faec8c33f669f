"""`renewly demo`: the whole dunning story on the embedded default, on a test clock, in seconds.

A fresh SQLite database (replacing only an earlier demo's), the simulated gateway with its
ledger beside it, and the outbox; an operator and a handful of accounts, each with its own story,
then 130 days walked one by one: every batch (renewal, payments, dunning, card-check voids,
retention) runs when it falls due, as in production.
It prints a timeline: date, account, what happened, who got which e-mail, who sees a banner.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import sqlite3
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NoReturn

from rich.console import Console
from sqlalchemy.engine import make_url

from renewly.accounts.accounts import add_member, create_account
from renewly.adapters.gateways.simulated import SimulatedGateway
from renewly.billing.plans import create_plan
from renewly.billing.subscriptions import create_subscription
from renewly.bootstrap import App, bootstrap
from renewly.config.settings import gateway_ledger_beside, load_settings
from renewly.dunning.reactivation import grant_reactivation
from renewly.dunning.rules.banners import banner_in_words
from renewly.outbox.reading import list_outbox
from renewly.payments.cards import CardRefused, add_card
from renewly.scheduler import advance
from renewly.shared.calendar import local_date
from renewly.shared.errors import Conflict, InvalidInput
from renewly.shared.money import Money

START = datetime(2026, 1, 31, 12, tzinfo=UTC)  # the 31st in every demo time zone
DAYS = 130
OPERATOR = "support@renewly.example"
GOOD, DECLINING, INSUFFICIENT = "4242424242424242", "4000000000000341", "4000000000009995"


@dataclass(frozen=True)
class Story:
    name: str
    owner: str
    locale: str
    timezone: str
    currency: str
    country: str
    plan: str
    card: str | None
    starts_on_day: int
    tells: str


STORIES = (
    Story("Acme Inc.", "ops@acme.example", "en", "America/Los_Angeles", "USD", "US", "team", GOOD, 0,
          "pays fine; its accountant asks to receive the invoices and the owner approves"),
    Story("Boulangerie Martin", "claire@martin.example", "fr", "Europe/Paris", "EUR", "FR", "equipe", DECLINING, 0,
          "is declined, then the owner fixes the card on day 3"),
    Story("Globex GmbH", "it@globex.example", "en", "Europe/Berlin", "EUR", "DE", "equipe", DECLINING, 40,
          "starts on day 40, is declined until cancelled"),
    Story("Initech SARL", "finance@initech.example", "fr", "Europe/Paris", "EUR", "FR", "equipe", INSUFFICIENT, 0,
          "is cancelled, reactivated by support and pays"),
    Story("Umbrella Ltd", "boss@umbrella.example", "en", "Europe/London", "EUR", "IE", "equipe", None, 0,
          "never adds a card: cancelled on day 29, deleted 90 days later"),
)


def run_demo(database: str, *, as_json: bool, console: Console,
             on_day: Callable[[int, int], None] | None = None) -> None:
    """Tell the stories on a fresh database, then print the timeline; `on_day(day, DAYS)` is told
    as each simulated day begins (the command line's progress bar)."""
    path = Path(database)
    url = f"sqlite:///{path}"
    if make_url(url).database != str(path):
        raise InvalidInput(f"{path}: a name a database URL cannot hold; choose another --database",
                           code="demo_database_name")
    replace_demo_files(path, Path(gateway_ledger_beside(str(path))))
    settings = load_settings().model_copy(update={"database_url": url, "clock": "test"})
    settings.payments = settings.payments.model_copy(update={"simulator_url": None})  # beside the database
    app = bootstrap(settings)
    try:
        tell_the_stories(app, as_json=as_json, console=console, on_day=on_day)
    finally:
        app.engine.dispose()
        gateway = app.__dict__.get("gateway")  # connected on first use
        if isinstance(gateway, SimulatedGateway):
            gateway.dispose()


def tell_the_stories(app: App, *, as_json: bool, console: Console,
                     on_day: Callable[[int, int], None] | None = None) -> None:
    clock = app.test_clock
    if clock is None:
        raise RuntimeError("the demo's stories need the test clock (settings.clock = 'test')")
    clock.set(START)
    timeline = Timeline(app, as_json=as_json)

    create_plan(app, code="team", name="Team", interval="month", price=1900, currency="USD", actor=OPERATOR)
    create_plan(app, code="equipe", name="Équipe", interval="month", price=2900, currency="EUR", actor=OPERATOR)
    accounts: dict[str, int] = {}

    def start(story: Story) -> Callable[[], None]:
        def begin() -> None:
            account_id = create_account(app, name=story.name, owner_email=story.owner, locale=story.locale,
                                        timezone=story.timezone, currency=story.currency, country=story.country,
                                        actor=OPERATOR)
            accounts[story.name] = account_id
            timeline.names[account_id] = story.name
            timeline.zones[account_id] = story.timezone
            add_member(app, account_id, email=f"admin@{story.owner.split('@')[1]}", role="admin", actor=OPERATOR)
            add_member(app, account_id, email=f"agent@{story.owner.split('@')[1]}", role="agent", actor=OPERATOR)
            timeline.note(story.name, f"signs up: {story.tells}")
            if story.card:
                save_card(story, story.card)
            create_subscription(app, account_id, plan_code=story.plan, seats=3, actor=OPERATOR)
            timeline.note(story.name, "subscribes to 3 seats; the first invoice is issued")
        return begin

    def save_card(story: Story, number: str) -> None:
        gateway = app.gateway
        if not isinstance(gateway, SimulatedGateway):
            raise RuntimeError("the demo's cards are numbers, which only the simulated gateway tokenizes")
        token = gateway.tokenize(number, 12, 2030)
        try:
            saved = add_card(app, accounts[story.name], card_token=token, acting_email=story.owner)
            timeline.note(story.name, f"the owner saves a card •••• {saved.card.last4} (1 unit authorized, voided "
                                      f"after {app.policy.verification_void_delay_days} days)"
                          + (f"; {saved.retries_requested} unpaid invoice(s) to retry" if saved.retries_requested
                             else ""))
        except CardRefused as refused:
            timeline.note(story.name, f"the owner's card is refused: {refused.message}")

    by_name = {story.name: story for story in STORIES}
    script: dict[int, list[Callable[[], None]]] = {}
    for story in STORIES:
        script.setdefault(story.starts_on_day, []).append(start(story))
    script.setdefault(1, []).append(lambda: contact_request(app, timeline, accounts["Acme Inc."]))
    script.setdefault(3, []).append(lambda: save_card(by_name["Boulangerie Martin"], GOOD))

    def reactivate_initech() -> None:
        grant_reactivation(app, accounts["Initech SARL"], days=None, reason="the owner called support",
                           actor=OPERATOR)
        timeline.note("Initech SARL", f"support grants a temporary reactivation ({app.policy.reactivation_days} "
                                      "days, owner only, billing pages only)")

    script.setdefault(34, []).append(reactivate_initech)
    script.setdefault(35, []).append(lambda: save_card(by_name["Initech SARL"], GOOD))

    for day in range(0, DAYS + 1):
        if on_day:
            on_day(day, DAYS)
        if day:
            advance(app, timedelta(days=1))
        timeline.collect_outbox()
        for action in script.get(day, []):
            action()
            timeline.collect_outbox()
    # A timeline wants room: wider than the 80 columns Rich assumes when output is not a terminal.
    timeline.render(console)


# The demo replaces only files it made. It marks each of its two files, its database and the
# simulated gateway's ledger beside it, with SQLite's application id, written into the file's
# header as the demo creates it, before anything else. No other file carries it: a Renewly
# database the demo did not make has none.
DEMO_APPLICATION_ID = 0x524E5744  # "RNWD"
SQLITE_HEADER = b"SQLite format 3\x00"
# The files kept beside a database: SQLite's own, and the test clock's lock (adapters/clock.py).
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal", "-clock-lock")


def replace_demo_files(database: Path, ledger: Path) -> None:
    """Create the demo's database and ledger afresh, deleting an earlier demo's. Anything else at
    either place is refused before a file is touched."""
    earlier = [path for path, role in ((database, ""), (ledger, f", the gateway ledger of {database}"))
               if _made_by_the_demo(path, role)]
    for path in earlier:
        for file in (path, *_companions(path)):
            file.unlink(missing_ok=True)
    for path in (database, ledger):
        _create_marked(path)


def _made_by_the_demo(path: Path, role: str) -> bool:
    """True for a file an earlier demo made, False for nothing there; anything else is refused."""
    def refuse(why: str, where: Path = path) -> NoReturn:
        raise Conflict(f"refusing to replace {where}{role}: {why}; the demo replaces only files it made, "
                       "choose another --database", code="not_a_demo_file")

    if not _present(path):
        for companion in filter(_present, _companions(path)):
            refuse(f"left there without its database {path.name}", companion)
        return False
    if path.is_symlink():
        refuse("a symbolic link")
    if not path.is_file():
        refuse("a directory" if path.is_dir() else "not a regular file")
    try:
        with path.open("rb") as file:
            header = file.read(100)
    except OSError as error:
        refuse(f"unreadable: {error.strerror}")
    if len(header) < 100 or not header.startswith(SQLITE_HEADER):
        refuse("not an SQLite database")
    if int.from_bytes(header[68:72], "big") != DEMO_APPLICATION_ID:
        refuse("an SQLite database the demo did not make")
    for companion in filter(_present, _companions(path)):
        if companion.is_symlink() or not companion.is_file():
            refuse("not a regular file", companion)
    return True


def _present(path: Path) -> bool:
    return path.exists() or path.is_symlink()


def _companions(path: Path) -> list[Path]:
    return [path.with_name(path.name + suffix) for suffix in SQLITE_COMPANIONS]


def _create_marked(path: Path) -> None:
    try:
        path.touch(exist_ok=False)  # the demo's from its first byte, even if a file appeared meanwhile
        with contextlib.closing(sqlite3.connect(path, isolation_level=None)) as connection:
            connection.execute(f"PRAGMA application_id = {DEMO_APPLICATION_ID}")
    except OSError as error:
        raise InvalidInput(f"cannot create {path}: {error.strerror}", code="demo_file_not_created") from None
    except sqlite3.Error as error:
        raise InvalidInput(f"cannot create {path}: {error}", code="demo_file_not_created") from None


def contact_request(app: App, timeline: Timeline, account_id: int) -> None:
    """R4: the accountant asks to receive the invoices; the owner consents."""
    from renewly.accounts import contacts
    contacts.request_contact(app, account_id, email="accounting@acme.example", requested_by="admin@acme.example")
    timeline.collect_outbox()
    contacts.approve_contact(app, account_id, email="accounting@acme.example", acting_email="ops@acme.example")
    timeline.note("Acme Inc.", "the owner approves accounting@acme.example as a billing contact (R4.1)")


class Timeline:
    """What the demo prints: scripted actions, the outbox's e-mails and events, banner changes."""

    def __init__(self, app: App, *, as_json: bool) -> None:
        self.app, self.as_json = app, as_json
        self.rows: list[dict] = []
        self.names: dict[int, str] = {}
        self.zones: dict[int, str] = {}  # dates are printed in each account's own calendar
        self.last_outbox_id = 0
        self.numbers: dict[int, str] = {}  # invoice id -> number, from the invoice.issued events

    def today(self, account: str = "") -> str:
        account_id = next((i for i, name in self.names.items() if name == account), None)
        zone = self.zones.get(account_id, "UTC") if account_id is not None else "UTC"
        return local_date(self.app.clock.now(), zone).isoformat()

    def note(self, account: str, what: str, *, email: str = "", banner: str = "", banner_words: str = "",
             at: str | None = None) -> None:
        self.rows.append({"date": at or self.today(account), "account": account, "event": what, "email": email,
                          "banner": banner, "banner_words": banner_words or banner})

    def collect_outbox(self) -> None:
        for row in list_outbox(self.app):
            if row["id"] <= self.last_outbox_id:
                continue
            self.last_outbox_id = row["id"]
            account, payload, at = self.names.get(row["account_id"], ""), row["payload"], row["created_at"]
            day = local_date(at, self.zones.get(row["account_id"], "UTC")).isoformat()
            if row["topic"] == "email":
                self.note(account, f"e-mail {payload['kind']}: “{payload['subject']}”",
                          email=", ".join(payload["recipients"]), at=day)
            elif row["topic"] == "invoice.issued":
                self.numbers[payload["invoice_id"]] = payload["number"]
                amount = Money(payload["total"], payload["currency"]).format("en")
                self.note(account, f"invoice {payload['number']} issued: {amount}", at=day)
            elif row["topic"] == "payment.succeeded":  # each charge names its invoice: two in a day read apart
                self.note(account, f"charge for {self.numbers[payload['invoice_id']]} succeeded: "
                                   f"{Money(payload['amount'], payload['currency']).format('en')}", at=day)
            elif row["topic"] == "payment.declined":
                self.note(account, f"charge for {self.numbers[payload['invoice_id']]} declined "
                                   f"({payload['decline_code']})", at=day)
            elif row["topic"] == "account.dunning_state":  # what each role sees now, from the event
                who: dict[str, list[str]] = {}
                for role, banner in payload["banners"].items():
                    who.setdefault(banner, []).append(role)
                # --json keeps the policy's codes; the timeline says them in words.
                self.note(account, f"account {payload['status'].replace('_', ' ')}; what members see:", at=day,
                          banner="; ".join(f"{', '.join(roles)}: {banner}" for banner, roles in who.items()),
                          banner_words="; ".join(f"{', '.join(roles)}: {banner_in_words(banner)}"
                                                 for banner, roles in who.items()))
            elif row["topic"] in ("reactivation.expired", "account.deleted", "dunning.recovered"):
                self.note(account, {"reactivation.expired": "the reactivation window ended unpaid",
                                    "account.deleted": "personal data deleted, the host product is told (R10)",
                                    "dunning.recovered": "payment recovered: case closed, account active (R8.6)",
                                    }[row["topic"]], at=day)

    def render(self, console: Console) -> None:
        rows = sorted(self.rows, key=lambda r: r["date"])  # stable: same-day rows keep their order
        if self.as_json:
            for row in rows:
                sys.stdout.write(json.dumps({k: v for k, v in row.items() if k != "banner_words"}, ensure_ascii=False)
                                 + "\n")
            return
        # 80 columns: date and account, then what happened, folded under itself.
        width, indent = 80, 32
        console.print(textwrap.fill(f"Renewly demo: {DAYS} days from {START.date()} on a test clock, policy "
                                    f"{self.app.policy.version}", width=width), markup=False, highlight=False,
                      soft_wrap=True)
        for row in rows:
            what = row["event"] + (f" → {row['email']}" if row["email"] else "") + (
                f" {row['banner_words']}" if row["banner_words"] else "")
            lead = f"{row['date']}  {row['account']:<{indent - 12}}"
            console.print(textwrap.fill(what, width=width, initial_indent=lead, subsequent_indent=" " * indent,
                                        break_on_hyphens=False), markup=False, highlight=False, soft_wrap=True)
        # The database and the command as seen from here (after `make demo`: .venv/bin/renewly).
        database, command = (_from_here(Path(self.app.settings.database_url.removeprefix("sqlite:///"))),
                             _from_here(Path(sys.executable).with_name("renewly")))
        url = f"sqlite:///{database}"
        # Lines to paste as they are: the settings exported, then a command, never folded in between.
        console.print(f"Database: {database}. Look around with:\n"
                      f"  export RENEWLY_DATABASE_URL={shlex.quote(url)} RENEWLY_CLOCK=test\n"
                      f"  {shlex.quote(str(command))} accounts list",
                      markup=False, highlight=False, soft_wrap=True)

def _from_here(path: Path) -> Path:
    return path.relative_to(Path.cwd()) if path.is_absolute() and path.is_relative_to(Path.cwd()) else path
