"""The support console's pages and forms (docs/console.md). Every page but sign-in wants a staff
session; without one, the browser is sent to the sign-in form.

- anyone signed in (support, finance): search accounts, an account with its members, its banners
  of today and its timeline (invoices, payment attempts, dunning steps, e-mails, events, audit log);
  the recovery of failed payments week by week, with its charts (docs/dunning.md, "The recovery
  report");
- `support` only: the forms that act, through the use cases the API and the command line use:
  a temporary reactivation (R9.2), a transfer of ownership (R6.1), a month's invoices sent again
  (R2.3), a billing contact added with the owner's consent support was given (R4.1) or removed at
  its own request (R4.2); each audited with the staff member as the actor (`console:staff-ID`)
  and its reason or evidence.
  For `finance` those forms are not shown, and posting one anyway is refused (403).
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response

from renewly.accounts.accounts import describe_account, transfer_ownership
from renewly.accounts.contacts import list_contacts, record_owner_consent, remove_contact_on_request
from renewly.billing.invoices import resend_invoices_of_month
from renewly.console.accounts import QUERY_LENGTH, at_minute, search_accounts, timeline
from renewly.console.rules.staff import may_act
from renewly.console.sessions import SignInRefused, SignInThrottled, StaffSession, session_of, sign_in, sign_out
from renewly.console.staff import StaffMember
from renewly.dunning.reactivation import banners_by_role, grant_reactivation
from renewly.dunning.recovery_report import recovery_report_of
from renewly.dunning.rules.recovery_report import DEFAULT_WEEKS, MAX_WEEKS
from renewly.ports import Ports
from renewly.shared.errors import BillingError, InvalidInput
from renewly.web.authentication import CONSOLE_PREFIX
from renewly.web.portal.rendering import browser_locale, page
from renewly.web.portal.security import cookie_is_secure
from renewly.web.problems import status_of
from renewly.web.recovery_page import recovery_page
from renewly.web.refusals import refusal_in_words
from renewly.web.routes.support import MOST_REACTIVATION_DAYS

TEMPLATES = Path(__file__).resolve().parent / "templates"
SESSION_COOKIE = "renewly_console"
MONTH = re.compile(r"[0-9]{4}-(0[1-9]|1[0-2])")
EMAIL_LENGTH = 320
router = APIRouter()


class SignInRequired(Exception):
    """No live staff session: to the sign-in form."""


class ReadOnly(Exception):
    """A form that acts, sent by a role that only reads (finance): 403."""


def ports(request: Request) -> Ports:
    return request.app.state.ports


AppPorts = Annotated[Ports, Depends(ports)]


def current_session(request: Request, app: AppPorts) -> StaffSession:
    secret = request.cookies.get(SESSION_COOKIE)
    found = session_of(app, secret) if secret else None
    if found is None:
        raise SignInRequired()
    return found


def staff_member(session: Annotated[StaffSession, Depends(current_session)]) -> StaffMember:
    return session.staff


def acting_staff_member(who: Annotated[StaffMember, Depends(staff_member)]) -> StaffMember:
    """A staff member whose role may change accounts (support); finance reads only."""
    if not may_act(who.role):
        raise ReadOnly()
    return who


Staff = Annotated[StaffMember, Depends(staff_member)]
ActingStaff = Annotated[StaffMember, Depends(acting_staff_member)]


def console_page(request: Request, name: str, status: int = 200, **values: Any) -> Response:
    return page(request, name, locale=browser_locale(request), status=status, templates=TEMPLATES,
                base=CONSOLE_PREFIX, **values)


def problem_page(request: Request, status: int, kind: str, detail: str = "") -> Response:
    return console_page(request, "problem.html", status=status, kind=kind, detail=detail)


def _cookie_options(request: Request, app: Ports) -> dict[str, Any]:
    # Strict: a link from elsewhere (an e-mail, a chat) opens the console without the session.
    return {"path": CONSOLE_PREFIX, "httponly": True, "samesite": "strict",
            "secure": cookie_is_secure(request.scope, app.settings.portal.https_only)}


# -- signing in and out --------------------------------------------------------------------------

@router.get("/sign-in")
def sign_in_page(request: Request) -> Response:
    return console_page(request, "sign_in.html", email="", error="", retry_at="")


@router.post("/sign-in")
def sign_in_form(request: Request, app: AppPorts, email: Annotated[str, Form(max_length=EMAIL_LENGTH)] = "",
                 password: Annotated[str, Form()] = "") -> Response:
    """A new session (any this browser held is ended); refused alike for an unknown address, a
    wrong password and a disabled staff member; throttled per IP address and per address typed."""
    ip = request.client.host if request.client else "unknown"
    try:
        started = sign_in(app, email=email, password=password, ip=ip,
                          replacing=request.cookies.get(SESSION_COOKIE))
    except SignInThrottled as throttled:
        seconds = max(math.ceil((throttled.retry_at - app.clock.now()).total_seconds()), 1)
        answer = console_page(request, "sign_in.html", status=429, email=email, error="throttled",
                              retry_at=at_minute(throttled.retry_at), retry_iso=throttled.retry_at.isoformat())
        answer.headers["retry-after"] = str(seconds)
        return answer
    except SignInRefused:
        return console_page(request, "sign_in.html", status=401, email=email, error="refused", retry_at="")
    answer = RedirectResponse(CONSOLE_PREFIX + "/", status_code=303)
    answer.set_cookie(SESSION_COOKIE, started.secret, **_cookie_options(request, app))
    return answer


@router.post("/sign-out")
def sign_out_form(request: Request, app: AppPorts) -> Response:
    secret = request.cookies.get(SESSION_COOKIE)
    if secret:
        sign_out(app, secret)
    answer = RedirectResponse(CONSOLE_PREFIX + "/sign-in", status_code=303)
    answer.delete_cookie(SESSION_COOKIE, **_cookie_options(request, app))
    return answer


# -- reading: search, an account and its timeline ------------------------------------------------

@router.get("/")
def search_page(request: Request, app: AppPorts, who: Staff,
                q: Annotated[str, Query(max_length=QUERY_LENGTH)] = "") -> Response:
    """Accounts by id, name, or a member's (the owner's included) e-mail."""
    found = search_accounts(app, q) if q.strip() else []
    return console_page(request, "search.html", who=who, q=q, found=found, searched=bool(q.strip()))


@router.get("/accounts/{account_id}")
def account_page(account_id: int, request: Request, app: AppPorts, who: Staff, done: str = "") -> Response:
    return _account(request, app, who, account_id, done=done)


def _account(request: Request, app: Ports, who: StaffMember, account_id: int, *, done: str = "", error: str = "",
             status: int = 200, sent: dict[str, str] | None = None) -> Response:
    account = describe_account(app, account_id)  # an unknown id: NotFound, the 404 page
    entries = timeline(app, account_id)
    live = account["status"] != "deleted"
    banners = banners_by_role(app, account_id) if live else {}
    contacts = list_contacts(app, account_id) if live else []
    return console_page(request, "account.html", status=status, who=who, account=account, entries=entries,
                        banners=banners, contacts=contacts, may_act=may_act(who.role), done=done, error=error,
                        sent=sent or {},
                        most_days=MOST_REACTIVATION_DAYS, at_minute=_shown_at)


@router.get("/recovery")
def recovery(request: Request, app: AppPorts, who: Staff,
             weeks: Annotated[int, Query(ge=1, le=MAX_WEEKS)] = DEFAULT_WEEKS) -> Response:
    """The recovery of failed payments over the last `weeks` ISO weeks: charts and tables per currency."""
    locale = browser_locale(request)
    report = recovery_page(recovery_report_of(app, weeks), locale=locale, timezone=app.settings.seller.timezone)
    return console_page(request, "recovery_page.html", who=who, recovery=report, weeks=weeks, most_weeks=MAX_WEEKS)


def _shown_at(instant: datetime | None) -> str:
    return at_minute(instant) if instant else ""


# -- acting (support only) -----------------------------------------------------------------------

Reason = Annotated[str, Form(max_length=2000)]


@router.post("/accounts/{account_id}/reactivate")
def reactivate_form(account_id: int, request: Request, app: AppPorts, who: ActingStaff, reason: Reason = "",
                    days: Annotated[str, Form(max_length=6)] = "") -> Response:
    """A temporary reactivation of a cancelled account: its owner may pay on the billing pages (R9.2)."""
    def act() -> None:
        grant_reactivation(app, account_id, days=_days(days), reason=reason, actor=who.actor)
    return _acted(request, app, who, account_id, "reactivated", act, {"reason": reason, "days": days})


@router.post("/accounts/{account_id}/transfer-ownership")
def transfer_form(account_id: int, request: Request, app: AppPorts, who: ActingStaff, reason: Reason = "",
                  to: Annotated[str, Form(max_length=EMAIL_LENGTH)] = "") -> Response:
    """Another member becomes the owner; the previous owner becomes an admin (R6.1)."""
    def act() -> None:
        transfer_ownership(app, account_id, to_email=to, reason=reason, actor=who.actor)
    return _acted(request, app, who, account_id, "transferred", act, {"reason": reason, "to": to})


@router.post("/accounts/{account_id}/resend-invoices")
def resend_form(account_id: int, request: Request, app: AppPorts, who: ActingStaff, reason: Reason = "",
                month: Annotated[str, Form(max_length=7)] = "") -> Response:
    """A month's invoices e-mailed again to the account's billing contacts (R2.3)."""
    def act() -> None:
        if not MONTH.fullmatch(month):
            raise InvalidInput(f"{month!r} is not a month: YYYY-MM", code="invalid_month")
        year, number = (int(part) for part in month.split("-"))
        resend_invoices_of_month(app, account_id, year=year, month=number, reason=reason, actor=who.actor)
    return _acted(request, app, who, account_id, "resent", act, {"reason": reason, "month": month})


@router.post("/accounts/{account_id}/contacts/consent")
def consent_form(account_id: int, request: Request, app: AppPorts, who: ActingStaff, evidence: Reason = "",
                 email: Annotated[str, Form(max_length=EMAIL_LENGTH)] = "") -> Response:
    """An address becomes a billing contact with the consent its owner gave support (R4.1)."""
    def act() -> None:
        record_owner_consent(app, account_id, email=email, actor=who.actor, evidence=evidence)
    return _acted(request, app, who, account_id, "consent_recorded", act, {"evidence": evidence, "email": email})


@router.post("/accounts/{account_id}/contacts/remove")
def remove_contact_form(account_id: int, request: Request, app: AppPorts, who: ActingStaff, evidence: Reason = "",
                        email: Annotated[str, Form(max_length=EMAIL_LENGTH)] = "") -> Response:
    """A billing contact (or a request) removed because that address asked support to (R4.2)."""
    def act() -> None:
        remove_contact_on_request(app, account_id, email=email, actor=who.actor, evidence=evidence)
    return _acted(request, app, who, account_id, "contact_removed", act, {"evidence": evidence, "email": email})


def _acted(request: Request, app: Ports, who: StaffMember, account_id: int, done: str, act, sent: dict[str, str],
           ) -> Response:
    """Done: back to the account's page, saying so (303); refused: the page again with why and
    what was typed, under the refusal's status (the account unknown: the 404 page)."""
    try:
        act()
    except BillingError as refused:
        return _account(request, app, who, account_id, error=refusal_in_words(refused, browser_locale(request)),
                        status=status_of(refused),
                        sent={**sent, "action": done})
    return RedirectResponse(f"{CONSOLE_PREFIX}/accounts/{account_id}?done={done}", status_code=303)


def _days(days: str) -> int | None:
    if not days.strip():
        return None  # the policy's window
    if not days.strip().isdigit() or not 1 <= int(days) <= MOST_REACTIVATION_DAYS:
        raise InvalidInput(f"a reactivation lasts 1 to {MOST_REACTIVATION_DAYS} days", code="invalid_days",
                           values={"most": MOST_REACTIVATION_DAYS})
    return int(days)
