"""Support's forms in the console act through the use cases the API and the command line use: a
temporary reactivation (R9.2), a transfer of ownership (R6.1), a month's invoices sent again
(R2.3); each audited with the staff member as the actor and its reason. A refusal of the rules is
said on the account's page, with what was typed; nothing changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from html import unescape

from sqlalchemy import func, select

from renewly.accounts.accounts import add_member, describe_account
from renewly.adapters.db.tables import audit_log, outbox, reactivations
from renewly.scheduler import advance
from tests.builders import OPERATOR, subscribed
from tests.web.console.conftest import SUPPORT, shown, submit

DECLINES = "4000000000000341"  # the card saves fine; every charge is declined
OWNER, ADMIN = "owner@acme.test", "admin@acme.test"


def audited(app, action: str) -> list[tuple[str, str]]:
    with app.engine.connect() as conn:
        return [tuple(row) for row in conn.execute(select(audit_log.c.actor, audit_log.c.reason)
                                                   .where(audit_log.c.action == action).order_by(audit_log.c.id))]


def test_r9_2_support_grants_a_reactivation_with_its_reason_in_the_audit_log(app, staff, browsers):
    account_id, _ = subscribed(app, card=DECLINES)
    add_member(app, account_id, email=ADMIN, role="admin", actor=OPERATOR)
    advance(app, datetime(2026, 1, 31, 12, tzinfo=UTC) - app.clock.now())  # cancelled on day 29
    browser = browsers.signed_in(SUPPORT)
    page = f"/console/accounts/{account_id}"
    done = submit(browser, page, page + "/reactivate", {"reason": "the owner called", "days": "3"})
    assert (done.status_code, done.headers["location"]) == (303, page + "?done=reactivated")
    shown(browser.get(done.headers["location"]), 200, 'data-done="reactivated"')
    assert audited(app, "reactivation.granted") == [(f"console:staff-{staff[SUPPORT]}", "the owner called")]
    with app.engine.connect() as conn:
        assert conn.execute(select(reactivations.c.granted_by)).scalar_one() == f"console:staff-{staff[SUPPORT]}"
    # The timeline names who did it; a second window is refused by the rule, said on the page.
    again = submit(browser, page, page + "/reactivate", {"reason": "again", "days": ""})
    text = shown(again, 403, "already has a temporary reactivation running")
    assert 'value="again"' in text  # what was typed is kept
    assert "Sam Support (console:staff-" in browser.get(page).text


def test_a_reactivation_needs_a_reason_and_a_window_the_policy_allows(app, staff, browsers):
    account_id, _ = subscribed(app, card=DECLINES)
    advance(app, timedelta(days=30))
    browser = browsers.signed_in(SUPPORT)
    page = f"/console/accounts/{account_id}"
    shown(submit(browser, page, page + "/reactivate", {"reason": " "}), 400, "Give a reason, for the audit log.")
    shown(submit(browser, page, page + "/reactivate", {"reason": "x", "days": "0"}), 400, "1 to")
    shown(submit(browser, page, page + "/reactivate", {"reason": "x", "days": "abc"}), 400, "1 to")
    assert audited(app, "reactivation.granted") == []


def test_r6_1_support_transfers_ownership_to_a_member(app, staff, browsers):
    account_id, _ = subscribed(app)
    add_member(app, account_id, email=ADMIN, role="admin", actor=OPERATOR)
    browser = browsers.signed_in(SUPPORT)
    page = f"/console/accounts/{account_id}"
    shown(submit(browser, page, page + "/transfer-ownership", {"to": "stranger@else.test", "reason": "left"}), 404,
          "not a member")
    done = submit(browser, page, page + "/transfer-ownership", {"to": ADMIN, "reason": "the owner left"})
    assert (done.status_code, done.headers["location"]) == (303, page + "?done=transferred")
    assert describe_account(app, account_id)["members"] == [{"email": ADMIN, "role": "owner"},
                                                             {"email": OWNER, "role": "admin"}]
    assert audited(app, "ownership.transferred") == [(f"console:staff-{staff[SUPPORT]}", "the owner left")]


def test_r2_3_support_resends_a_month_s_invoices_which_writes_their_e_mails(app, staff, browsers):
    account_id, _ = subscribed(app)
    browser = browsers.signed_in(SUPPORT)
    page = f"/console/accounts/{account_id}"

    def invoice_emails() -> int:
        with app.engine.connect() as conn:
            return conn.execute(select(func.count()).select_from(outbox).where(
                outbox.c.topic == "email", outbox.c.payload["kind"].as_string() == "invoice")).scalar_one()

    before = invoice_emails()
    shown(submit(browser, page, page + "/resend-invoices", {"month": "2025-12", "reason": "lost"}), 404,
          "no invoice issued in 2025-12")
    shown(submit(browser, page, page + "/resend-invoices", {"month": "2026-13", "reason": "lost"}), 400,
          "Give a month as YYYY-MM")
    done = submit(browser, page, page + "/resend-invoices", {"month": "2026-01", "reason": "lost in spam"})
    assert (done.status_code, done.headers["location"]) == (303, page + "?done=resent")
    assert invoice_emails() == before + 1
    assert audited(app, "invoices.resent") == [(f"console:staff-{staff[SUPPORT]}", "lost in spam")]


def test_r12_1_a_refused_action_is_said_in_the_browser_s_language_not_the_rule_s_english(app, staff, browsers):
    account_id, _ = subscribed(app)
    browser = browsers.signed_in(SUPPORT)
    browser.headers["Accept-Language"] = "fr-FR,fr;q=0.9"
    page = f"/console/accounts/{account_id}"
    refused = unescape(shown(submit(browser, page, page + "/reactivate", {"reason": "x", "days": "0"}), 400,
                             'data-error="reactivated"'))
    assert "Une réactivation dure de 1 à" in refused and "a reactivation lasts" not in refused
    refused = unescape(shown(submit(browser, page, page + "/reactivate", {"reason": "the owner called"}), 403,
                             'data-error="reactivated"'))
    assert "Ce compte n'est pas résilié : il n'y a rien à réactiver." in refused and "not cancelled" not in refused
    refused = unescape(shown(submit(browser, page, page + "/resend-invoices", {"month": "2025-12", "reason": "lost"}),
                             404, 'data-error="resent"'))
    assert "Ce compte n'a aucune facture émise en 2025-12." in refused
