"""`make screenshots`: the portal's and the console's main pages, in French and in English, as
PNG files (docs/screenshots/, shown by README.md).

    .venv/bin/python bench/screenshots.py                    # docs/screenshots/*.png, 1024 px wide
    .venv/bin/python bench/screenshots.py --tiny --out /tmp/shots   # 320 px: tests/test_screenshots.py

It builds a database as `renewly demo` does (its stories, 130 days on the test clock, on a SQLite
file in a temporary folder), then adds four accounts whose pages the demo does not reach on its
last day: in each language, one cancelled (no card: day 29) and one whose card is declined,
on day 5 of its dunning (the owner's and the admins' banner, R8.3). It serves `renewly serve`'s
application (uvicorn, in this process, on a free port of the loopback) and drives Debian's
Chromium (/usr/bin/chromium) with Playwright: the members sign in by one-time links as the host
product hands them over, the support agent through the console's sign-in form, a browser in
each language (its Accept-Language: the console's language; the portal's is the account's).

Before each shot it waits for the page's own marker (a row of invoices, the banner, the
timeline...) and checks the page's language, so that a shot of a refusal or of the wrong page
fails the run (exit 1). A line per shot, then a last line of key=value pairs, for scripts.
"""

from __future__ import annotations

import argparse
import io
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import uvicorn
from playwright.sync_api import Browser, Page, expect, sync_playwright
from rich.console import Console
from sqlalchemy import select

from renewly.accounts.accounts import add_member, create_account
from renewly.adapters.db.tables import accounts as account_rows
from renewly.adapters.gateways.simulated import SimulatedGateway
from renewly.billing.subscriptions import create_subscription
from renewly.bootstrap import App, bootstrap
from renewly.config.settings import load_settings
from renewly.console.staff import create_staff
from renewly.demo import DECLINING, OPERATOR, STORIES, tell_the_stories
from renewly.payments.cards import add_card
from renewly.portal.sessions import create_link
from renewly.scheduler import advance
from renewly.web.app import create_app

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
STAFF, PASSWORD = "sam@renewly.example", "screenshots only, never a real password"


@dataclass(frozen=True)
class Extra:
    """An account the script adds after the demo's stories."""

    name: str
    owner: str
    locale: str
    timezone: str
    currency: str
    country: str
    plan: str
    card: str | None


CANCELLED = (Extra("Papeterie Durand", "anne@durand.example", "fr", "Europe/Paris", "EUR", "FR", "equipe", None),
             Extra("Hooli Ltd", "gavin@hooli.example", "en", "Europe/London", "EUR", "IE", "equipe", None))
DECLINED = (Extra("Cordonnerie Petit", "luc@petit.example", "fr", "Europe/Paris", "EUR", "FR", "equipe", DECLINING),
            Extra("Pied Piper Inc.", "richard@piedpiper.example", "en", "America/Los_Angeles", "USD", "US", "team",
                  DECLINING))
# The demo's accounts whose pages are shown: an owner with months of invoices in each language,
# and the account whose timeline tells the most (cancelled, reactivated by support, paid).
OWNERS = {"fr": "Boulangerie Martin", "en": "Acme Inc."}
TIMELINE = "Initech SARL"


@dataclass(frozen=True)
class Built:
    accounts: dict[str, int]  # by name
    owners: dict[str, str]  # owner's e-mail, by account name


def build(folder: Path) -> tuple[App, Built]:
    """The demo's database, then the four accounts it does not have."""
    settings = load_settings().model_copy(update={"database_url": f"sqlite:///{folder / 'screenshots.db'}",
                                                  "clock": "test"})
    settings.payments = settings.payments.model_copy(update={"simulator_url": None})  # its ledger beside
    app = bootstrap(settings)
    tell_the_stories(app, as_json=False, console=Console(file=io.StringIO()))
    owners = {story.name: story.owner for story in STORIES}

    def open_account(extra: Extra) -> None:
        account_id = create_account(app, name=extra.name, owner_email=extra.owner, locale=extra.locale,
                                    timezone=extra.timezone, currency=extra.currency, country=extra.country,
                                    actor=OPERATOR)
        domain = extra.owner.split("@")[1]
        add_member(app, account_id, email=f"admin@{domain}", role="admin", actor=OPERATOR)
        if extra.card:
            gateway = app.gateway
            assert isinstance(gateway, SimulatedGateway), "the cards are numbers only the simulator tokenizes"
            add_card(app, account_id, card_token=gateway.tokenize(extra.card, 12, 2030), acting_email=extra.owner)
        create_subscription(app, account_id, plan_code=extra.plan, seats=3, actor=OPERATOR)
        owners[extra.name] = extra.owner

    for extra in CANCELLED:
        open_account(extra)
    advance(app, timedelta(days=25))
    for extra in DECLINED:
        open_account(extra)
    advance(app, timedelta(days=5))  # the first ones are cancelled (day 29), the others at day 5
    with app.engine.connect() as conn:
        accounts = {row.name: row.id for row in conn.execute(select(account_rows.c.name, account_rows.c.id))}
    create_staff(app, email=STAFF, name="Sam Support", role="support", password=PASSWORD, actor=OPERATOR)
    return app, Built(accounts, owners)


@contextmanager
def served(app: App) -> Iterator[str]:
    """`renewly serve`'s application on a free port of the loopback, in a thread of this process."""
    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(app), log_config=None, access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listening]}, daemon=True)
    thread.start()
    while not server.started and thread.is_alive():
        time.sleep(0.01)
    if not server.started:
        raise SystemExit("the application did not start")
    try:
        yield f"http://127.0.0.1:{listening.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join()
        listening.close()


@dataclass(frozen=True)
class Shot:
    name: str
    marker: str  # a CSS selector the page must show before the shot
    visit: Callable[[Page, str, str], None]  # (page, base URL, language): sign in, go to the page
    tall: bool = False  # twice the window's height, from the top of the page: a timeline, charts


def shots(app: App, built: Built) -> list[Shot]:
    def portal(account: Callable[[str], str], member: Callable[[str, str], str], path: str):
        def visit(page: Page, base: str, language: str) -> None:
            name = account(language)
            link = create_link(app, built.accounts[name], member=member(name, language), actor=OPERATOR)
            page.goto(base + urlsplit(link.url).path)
            if path != "/portal/":
                page.goto(base + path)
        return visit

    def owner(name: str, _language: str) -> str:
        return built.owners[name]

    def admin(name: str, _language: str) -> str:
        return "admin@" + built.owners[name].split("@")[1]

    def console(path: Callable[[], str]):
        def visit(page: Page, base: str, _language: str) -> None:
            page.goto(base + "/console/sign-in")
            page.locator('input[name="email"]').fill(STAFF)
            page.locator('input[name="password"]').fill(PASSWORD)
            page.locator('form button[type="submit"]').click()
            expect(page.locator("[data-staff-role]")).to_have_count(1)
            page.goto(base + path())
        return visit

    def by_language(extras: tuple[Extra, ...]) -> Callable[[str], str]:
        return lambda language: next(extra.name for extra in extras if extra.locale == language)

    timeline = built.accounts[TIMELINE]
    return [
        Shot("portal-overview", "tr[data-subscription]", portal(OWNERS.__getitem__, owner, "/portal/")),
        Shot("portal-invoices", "tr[data-invoice]", portal(OWNERS.__getitem__, owner, "/portal/invoices")),
        Shot("portal-admin-banner", '[role="alert"][data-banner]',
             portal(by_language(DECLINED), admin, "/portal/")),
        Shot("portal-cancelled", '[data-problem="cancelled"]', portal(by_language(CANCELLED), owner, "/portal/")),
        Shot("console-account", "table.timeline [data-entry]",
             console(lambda: f"/console/accounts/{timeline}"), tall=True),
        Shot("console-recovery", "section.recovery-currency", console(lambda: "/console/recovery?weeks=26"),
             tall=True),
    ]


def take(browser: Browser, base: str, shot: Shot, language: str, out: Path, width: int, height: int) -> Path:
    context = browser.new_context(viewport={"width": width, "height": height}, locale=language,
                                  extra_http_headers={"Accept-Language": language})
    try:
        page = context.new_page()
        shot.visit(page, base, language)
        expect(page.locator(shot.marker).first).to_be_visible()
        expect(page.locator("html")).to_have_attribute("lang", language)
        path = out / f"{shot.name}-{language}.png"
        if shot.tall:
            page.screenshot(path=str(path), full_page=True, clip={"x": 0, "y": 0, "width": width, "height": 2 * height})
        else:
            page.screenshot(path=str(path))
        return path
    finally:
        context.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--tiny", action="store_true", help="320 x 240 px: the test suite's run")
    args = parser.parse_args(argv)
    width, height = (320, 240) if args.tiny else (args.width, args.height)
    if not CHROMIUM.exists():
        print(f"no Chromium at {CHROMIUM} (apt-get install chromium)", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="renewly-screenshots-") as folder:
        app, built = build(Path(folder))
        try:
            with served(app) as base, sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
                taken = []
                for shot in shots(app, built):
                    for language in ("fr", "en"):
                        path = take(browser, base, shot, language, args.out, width, height)
                        taken.append(path)
                        print(f"shot={path.name} marker={shot.marker!r} bytes={path.stat().st_size}")
                browser.close()
        finally:
            app.engine.dispose()
            gateway = app.__dict__.get("gateway")
            if isinstance(gateway, SimulatedGateway):
                gateway.dispose()
    total = sum(path.stat().st_size for path in taken)
    print(f"screenshots={len(taken)} width={width} height={height} bytes={total} "
          f"seconds={time.perf_counter() - started:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
