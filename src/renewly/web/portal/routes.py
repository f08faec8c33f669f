"""The portal's pages and forms (docs/portal.md). Every page but sign-in wants a session; who
may see what is decided by the account at each request (renewly.portal.pages):

- the owner: plan and seats, the card on file and its change through the gateway's own card
  form (R5.4, R6.1, R7.1), invoices with their PDF (R2.2), the buyer address (R3.1), billing
  contacts (R4); during a temporary reactivation too, these being the
  billing pages (R9.2);
- an admin or an agent: their banner of today (R8.3, R8.4), and on every billing page who can
  (the owner, named: R1.1); they may ask to become a billing contact (R4.1);
- anyone of a cancelled account (but the owner during a reactivation): why, and how to ask
  support (R9.1).

Without a session: the page a billing e-mail's removal link opens (R4.2), which says which address
leaves which account's billing e-mails and removes it only when its button is pressed (a GET
changes nothing: mail scanners follow links), or at RFC 8058's one-click POST from a mail client.

A form posts, then the browser is sent back to its page (303); htmx (static/htmx.min.js)
replaces only the contacts' list when it is there, the same answer otherwise.
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import RedirectResponse, Response
from itsdangerous import BadData, URLSafeSerializer
from sqlalchemy import select

from renewly.accounts.accounts import update_buyer_address
from renewly.accounts.contacts import (
    approve_contact,
    refuse_contact,
    removal_locale,
    removal_of,
    remove_contact,
    request_contact,
    unsubscribe_contact,
)
from renewly.adapters.db.tables import invoices
from renewly.adapters.gateways.card_form import form_url
from renewly.billing.documents import MEDIA_TYPE, invoice_pdf
from renewly.dunning.rules.access import Access
from renewly.outbox.rendering import templates_of
from renewly.payments.cards import CardRefused, add_card, may_change_card
from renewly.payments.rules.charges import decline_in_words
from renewly.portal.overview import billing_overview
from renewly.portal.pages import Visitor, plans_of, visitor
from renewly.portal.sessions import PortalSession, session_of, sign_in, sign_out
from renewly.ports import Ports
from renewly.shared.errors import BillingError, InvalidInput, NotFound
from renewly.web.authentication import PORTAL_PREFIX
from renewly.web.portal.rendering import browser_locale, page
from renewly.web.portal.security import ONE_CLICK, cookie_is_secure
from renewly.web.problems import status_of
from renewly.web.refusals import refusal_in_words

SESSION_COOKIE = "renewly_portal"
ADDRESS_FIELDS = ("name", "line1", "line2", "postcode", "city", "country", "vat_id")
router = APIRouter()


class SignInRequired(Exception):
    """No live session: the page says how to get a link (401)."""


class Refused(Exception):
    """A member who may not see this page: the page says why (403)."""

    def __init__(self, kind: str, who: Visitor) -> None:
        super().__init__(kind)
        self.kind, self.who = kind, who


def ports(request: Request) -> Ports:
    return request.app.state.ports


AppPorts = Annotated[Ports, Depends(ports)]


def current_session(request: Request, app: AppPorts) -> PortalSession:
    secret = request.cookies.get(SESSION_COOKIE)
    found = session_of(app, secret) if secret else None
    if found is None:
        raise SignInRequired()
    return found


def member(app: AppPorts, session: Annotated[PortalSession, Depends(current_session)]) -> Visitor:
    """A member who may use the portal now: not one of a cancelled account (R9.1, R9.2)."""
    who = visitor(app, session.account_id, session.member)
    if who.access is Access.NONE:
        raise Refused("cancelled", who)
    return who


def owner(who: Annotated[Visitor, Depends(member)]) -> Visitor:
    """The account's owner: anyone else is told who can (R1.1)."""
    if not who.is_owner:
        raise Refused("owner_only", who)
    return who


Member = Annotated[Visitor, Depends(member)]
Owner = Annotated[Visitor, Depends(owner)]


def _page(request: Request, name: str, who: Visitor, status: int = 200, **values) -> Response:
    return page(request, name, locale=who.locale, status=status, who=who, base=PORTAL_PREFIX, **values)


def _back(path: str) -> RedirectResponse:
    return RedirectResponse(PORTAL_PREFIX + path, status_code=303)


# -- signing in and out --------------------------------------------------------------------------

@router.get("/sign-in/{token}")
def sign_in_page(token: str, request: Request, app: AppPorts) -> Response:
    """Opening a one-time link: a new session (any this browser held is ended), then home."""
    try:
        started = sign_in(app, token, replacing=request.cookies.get(SESSION_COOKIE))
    except BillingError as refused:
        status = 404 if refused.code == "portal_link_invalid" else 403
        return page(request, "problem.html", locale=browser_locale(request), status=status, kind=refused.code,
                    base=PORTAL_PREFIX, detail="")
    answer = _back("/")
    answer.set_cookie(SESSION_COOKIE, started.secret, path=PORTAL_PREFIX, httponly=True, samesite="lax",
                      secure=cookie_is_secure(request.scope, app.settings.portal.https_only))
    return answer


@router.post("/sign-out")
def sign_out_form(request: Request, app: AppPorts) -> Response:
    secret = request.cookies.get(SESSION_COOKIE)
    if secret:
        sign_out(app, secret)
    answer = page(request, "problem.html", locale=browser_locale(request), status=200, kind="signed_out",
                  base=PORTAL_PREFIX, detail="")
    answer.delete_cookie(SESSION_COOKIE, path=PORTAL_PREFIX, httponly=True, samesite="lax",
                         secure=cookie_is_secure(request.scope, app.settings.portal.https_only))
    return answer


# -- a billing e-mail's removal link (R4.2): no session -----------------------------------------

REMOVAL_REFUSALS = frozenset({"removal_link_invalid", "removal_link_expired", "removal_link_used", "unknown_contact"})


@router.get("/billing-contacts/remove/{token}")
def removal_page(token: str, request: Request, app: AppPorts) -> Response:
    """Which address stops receiving which account's billing e-mails, and a button: nothing yet."""
    try:
        removal = removal_of(app, token)
    except BillingError as refused:
        return _removal_refused(request, app, token, refused)
    return page(request, "removal.html", locale=removal.locale, removal=removal, done=False, base=PORTAL_PREFIX,
                action=f"{PORTAL_PREFIX}/billing-contacts/remove/{token}")


@router.post("/billing-contacts/remove/{token}")
def removal_form(token: str, request: Request, app: AppPorts,
                 one_click: Annotated[str, Form(alias="List-Unsubscribe")] = "") -> Response:
    """The page's button (with its CSRF token), or a mail client's one-click POST (RFC 8058:
    `List-Unsubscribe=One-Click`, no token, no cookie): the contact leaves, once."""
    if request.scope.get(ONE_CLICK) and one_click != "One-Click":
        return page(request, "problem.html", locale=browser_locale(request), status=403, kind="csrf",
                    base=PORTAL_PREFIX, detail="")
    try:
        removal = removal_of(app, token)
        unsubscribe_contact(app, token)
    except BillingError as refused:
        return _removal_refused(request, app, token, refused)
    return page(request, "removal.html", locale=removal.locale, removal=removal, done=True, base=PORTAL_PREFIX,
                action="")


def _removal_refused(request: Request, app: Ports, token: str, refused: BillingError) -> Response:
    """Expired, used, altered: a page in the account's language when the link still names one."""
    kind = refused.code if refused.code in REMOVAL_REFUSALS else "removal_refused"
    try:
        locale = removal_locale(app, token) or browser_locale(request)
    except BillingError:  # links unconfigured (no public_url): said in the page's detail
        locale = browser_locale(request)
    status = {"removal_link_expired": 410, "removal_link_invalid": 404}.get(kind) or status_of(refused)
    detail = "" if kind in REMOVAL_REFUSALS else refusal_in_words(refused, locale)
    return page(request, "removal.html", locale=locale, status=status, kind=kind, removal=None, detail=detail,
                done=False, base=PORTAL_PREFIX, action="")


# -- home ----------------------------------------------------------------------------------------

@router.get("/")
def home(request: Request, app: AppPorts, who: Member) -> Response:
    """The owner: plan, seats and card; an admin or an agent: their banner, and who manages billing."""
    if not who.is_owner:
        return _page(request, "member_home.html", who)
    overview = billing_overview(app, who.account_id, acting_email=who.member)
    plans = plans_of(app, {subscription["plan_id"] for subscription in overview["subscriptions"]})
    return _page(request, "owner_home.html", who, overview=overview, plans=plans)


@router.post("/contact-request")
def ask_to_be_a_contact(request: Request, app: AppPorts, who: Member) -> Response:
    """An admin or an agent asks the owner to receive billing e-mails (R4.1): nothing is added
    before the owner approves."""
    if who.is_owner:
        return _back("/contacts")
    request_contact(app, who.account_id, email=who.member, requested_by=who.member)
    return _page(request, "member_home.html", who, asked=True)


# -- the owner's billing pages -------------------------------------------------------------------

@router.get("/invoices")
def invoices_page(request: Request, app: AppPorts, who: Owner) -> Response:
    overview = billing_overview(app, who.account_id, acting_email=who.member)
    return _page(request, "invoices.html", who, invoices=list(reversed(overview["invoices"])))


@router.get("/invoices/{invoice_id}/pdf")
def invoice_download(invoice_id: int, app: AppPorts, who: Owner) -> Response:
    """The stored PDF (R2.2, R2.4), only of this account's invoices: any other id is unknown."""
    with app.engine.connect() as conn:
        row = conn.execute(select(invoices.c.number, invoices.c.locale).where(
            invoices.c.id == invoice_id, invoices.c.account_id == who.account_id)).first()
    if row is None:
        raise NotFound(f"no invoice {invoice_id}", code="unknown_invoice")
    pdf = invoice_pdf(app, row.number, acting_email=who.member)
    name = templates_of(app).attachment_name(row.locale, row.number)
    fallback = name.encode("ascii", "replace").decode().replace("?", "_").replace('"', "_")
    return Response(pdf, media_type=MEDIA_TYPE, headers={
        "Content-Disposition": f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name)}"})


@router.get("/address")
def address_page(request: Request, app: AppPorts, who: Owner) -> Response:
    overview = billing_overview(app, who.account_id, acting_email=who.member)
    return _page(request, "address.html", who, buyer=overview["buyer"], error="", saved=False)


@router.post("/address")
def address_form(request: Request, app: AppPorts, who: Owner, name: Annotated[str, Form()] = "",
                 line1: Annotated[str, Form()] = "", line2: Annotated[str, Form()] = "",
                 postcode: Annotated[str, Form()] = "", city: Annotated[str, Form()] = "",
                 country: Annotated[str, Form()] = "", vat_id: Annotated[str, Form()] = "") -> Response:
    """The buyer address of invoices issued from now on; those issued keep theirs (R3.1)."""
    sent = {"name": name, "line1": line1, "line2": line2, "postcode": postcode, "city": city,
            "country": country.strip().upper(), "vat_id": vat_id}
    try:
        update_buyer_address(app, who.account_id, changes=sent, acting_email=who.member,
                             actor=f"portal:{who.member}")
    except InvalidInput as refused:
        return _page(request, "address.html", who, status=400, buyer=sent, error=refusal_in_words(refused, who.locale),
                     saved=False)
    overview = billing_overview(app, who.account_id, acting_email=who.member)
    return _page(request, "address.html", who, buyer=overview["buyer"], error="", saved=True)


@router.get("/contacts")
def contacts_page(request: Request, app: AppPorts, who: Owner) -> Response:
    return _contacts(request, app, who)


@router.post("/contacts/{action}")
def contacts_form(action: str, request: Request, app: AppPorts, who: Owner,
                  email: Annotated[str, Form(max_length=320)]) -> Response:
    """Approve or refuse a request (R4.1), remove a contact (R4.2; never the owner)."""
    decide = {"approve": approve_contact, "refuse": refuse_contact, "remove": remove_contact}.get(action)
    if decide is None:
        raise InvalidInput(f"unknown action {action!r}", code="unknown_action")
    error = ""
    try:
        decide(app, who.account_id, email=email, acting_email=who.member)
    except BillingError as refused:
        error = refusal_in_words(refused, who.locale)
    partial = request.headers.get("hx-request") == "true"
    if partial or error:
        # htmx swaps only a 2xx answer: the list with the refusal in it; without htmx, the page (400).
        return _contacts(request, app, who, error=error, partial=partial, status=400 if error and not partial else 200)
    return _back("/contacts")


# -- the card: through the gateway's own form (R5.4), the owner only (R6.1) -------------------------
#
# The page links to the gateway's form with a `state` signed for this session and account; the
# gateway sends the browser back to /card/return with that state and a token, never a number.
# The state makes a token brought by anyone else's link (another session, a forged address, one
# older than CARD_FORM_MINUTES) change nothing.

CARD_FORM_MINUTES = 30
CARD_STATE_SALT = "renewly.portal.card-form"


def _card_state(request: Request, session: PortalSession, now: float) -> str:
    return URLSafeSerializer(request.app.state.secret, salt=CARD_STATE_SALT).dumps(
        [session.session_id, session.account_id, int(now)])


def _card_state_holds(request: Request, session: PortalSession, state: str, now: float) -> bool:
    try:
        value = URLSafeSerializer(request.app.state.secret, salt=CARD_STATE_SALT).loads(state)
    except BadData:
        return False
    return (isinstance(value, list) and len(value) == 3 and value[:2] == [session.session_id, session.account_id]
            and isinstance(value[2], int) and 0 <= now - value[2] <= CARD_FORM_MINUTES * 60)


@router.get("/card")
def card_page(request: Request, app: AppPorts, who: Owner, session: Annotated[PortalSession, Depends(current_session)],
              saved: int = 0, retries: int = 0) -> Response:
    """The card on file and the way to the gateway's card form (a link: no number is typed here)."""
    overview = billing_overview(app, who.account_id, acting_email=who.member)
    may_change_card(app, who.account_id, who.member)
    available = app.gateway.name == "simulated"
    url = form_url(PORTAL_PREFIX + "/card/return", _card_state(request, session, app.clock.now().timestamp()),
                   who.locale) if available else ""
    return _page(request, "card.html", who, card=overview["payment_method"], form_url=url, saved=bool(saved),
                 retries=max(retries, 0), error="", detail="")


@router.get("/card/return")
def card_return(request: Request, app: AppPorts, who: Owner,
                session: Annotated[PortalSession, Depends(current_session)],
                state: str = "", token: Annotated[str, Query(max_length=255)] = "") -> Response:
    """Back from the gateway's form with a token: saved for the owner after its verification
    (R5.1), unpaid invoices retried at the next payment batch (R7.1); a declined card says why."""
    if not token:  # the form's "cancel"
        return _back("/card")
    if not _card_state_holds(request, session, state, app.clock.now().timestamp()):
        return _card_refused(request, app, who, "state")
    try:
        saved = add_card(app, who.account_id, card_token=token, acting_email=who.member)
    except CardRefused as refused:
        if refused.code != "card_declined":  # not checked (the gateway did not answer): said so
            return _card_refused(request, app, who, "refused", refusal_in_words(refused, who.locale))
        reason = decline_in_words(str(refused.values.get("decline", "")), who.locale)
        return _card_refused(request, app, who, "declined", refusal_in_words(refused, who.locale, reason=reason))
    except InvalidInput:  # a token the gateway does not know
        return _card_refused(request, app, who, "token")
    return _back(f"/card?saved=1&retries={saved.retries_requested}")


def _card_refused(request: Request, app: Ports, who: Visitor, error: str, detail: str = "") -> Response:
    overview = billing_overview(app, who.account_id, acting_email=who.member)
    return _page(request, "card.html", who, status=400, card=overview["payment_method"], form_url="", saved=False,
                 retries=0, error=error, detail=detail)


def _contacts(request: Request, app: AppPorts, who: Visitor, *, error: str = "", partial: bool = False,
              status: int = 200) -> Response:
    overview = billing_overview(app, who.account_id, acting_email=who.member)
    return _page(request, "contacts_list.html" if partial else "contacts.html", who, status=status,
                 contacts=overview["billing_contacts"], requests=overview["contact_requests"], error=error)
