"""Billing contacts (R4): requests that wait for the owner's consent, approval, refusal, removal.

The owner is always a billing contact without a row (`notices.addressees` puts the owner
first); other addresses receive billing e-mails (R4.3) once their row is `active`. Each change is
audited and reported in the outbox of its own transaction: the consent e-mail to the owner, the
welcome e-mail to an approved contact, the notice to a removed one, `billing_contact.*` events for the
host product.

A contact leaves by the signed link of any billing e-mail it receives (R4.2, `unsubscribe_contact`,
accounts/removal_links.py) or is removed by the owner (`remove_contact`).

Support acts on what it is e-mailed (the seed: a non-owner writes to support with the owner in CC;
one writes to support to leave the list): it records the owner's consent it was given
(`record_owner_consent`) or removes a contact at its own request (`remove_contact_on_request`),
each audited with the staff member as the actor and the evidence (the e-mail, the ticket). The
owner is told of a consent recorded on its behalf, so that a consent it never gave is noticed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, case, select
from sqlalchemy.exc import IntegrityError

from renewly.accounts.accounts import _live_account, load_account, owner_of
from renewly.accounts.removal_links import RemovalLinks, RemovalToken
from renewly.accounts.rules.contacts import (
    CURRENT,
    ContactStatus,
    check_decision,
    check_recorded_consent,
    check_removal,
    check_request,
)
from renewly.accounts.rules.members import REASON_LENGTH, validate_email, validate_text
from renewly.adapters.db.tables import accounts, billing_contacts
from renewly.outbox import writer
from renewly.outbox.emails import Addressees, email_row
from renewly.outbox.records import audit
from renewly.outbox.rendering import templates_of
from renewly.ports import Ports
from renewly.shared.errors import Conflict, InvalidInput, NotFound


def request_contact(app: Ports, account_id: int, *, email: str, requested_by: str) -> ContactStatus:
    """R4.1: ask for `email` to receive the account's billing e-mails. It waits for the owner's
    consent, who is e-mailed; a request made by the owner is that consent, so it is added at once."""
    email, requested_by = validate_email(email), validate_email(requested_by)
    now = app.clock.now()
    try:
        with app.engine.begin() as conn:
            account = _live_account(conn, account_id)
            owner = owner_of(conn, account_id)
            check_request(email, owner=owner, current=_current_status(conn, account_id, email), account_id=account_id)
            by_owner = requested_by == owner
            status = ContactStatus.ACTIVE if by_owner else ContactStatus.REQUESTED
            conn.execute(billing_contacts.insert().values(
                account_id=account_id, email=email, status=status.value, requested_by=requested_by,
                requested_at=now, decided_at=now if by_owner else None))
            if by_owner:
                _added(conn, app, account, owner, email, now, actor=requested_by)
            else:
                audit(conn, now, requested_by, "billing_contact.requested", "account", account_id,
                      details={"email": email})
                writer.write(conn, writer.event(now, "billing_contact.requested", account_id,
                                                {"account_id": account_id, "email": email,
                                                 "requested_by": requested_by}))
                _email(conn, app, account, "contact_request", [owner], now, contact=email, requested_by=requested_by,
                       owner=owner)
    except IntegrityError:  # the same request, committed by someone else meanwhile
        raise Conflict(f"{email} was already requested as a billing contact of account {account_id}",
                       code="contact_already_requested", values={"email": email}) from None
    return status


def approve_contact(app: Ports, account_id: int, *, email: str, acting_email: str) -> None:
    """R4.1: the owner consents; the address receives billing e-mails from now on."""
    email, acting = validate_email(email), validate_email(acting_email)
    now = app.clock.now()
    with app.engine.begin() as conn:
        account = _live_account(conn, account_id)
        owner = owner_of(conn, account_id)
        check_decision(email, acting=acting, owner=owner, current=_current_status(conn, account_id, email),
                       account_id=account_id)
        _decide(conn, account_id, email, ContactStatus.REQUESTED, ContactStatus.ACTIVE, decided_at=now)
        _added(conn, app, account, owner, email, now, actor=acting)


def refuse_contact(app: Ports, account_id: int, *, email: str, acting_email: str) -> None:
    """R4.1: the owner says no; the address never receives anything."""
    email, acting = validate_email(email), validate_email(acting_email)
    now = app.clock.now()
    with app.engine.begin() as conn:
        _live_account(conn, account_id)
        owner = owner_of(conn, account_id)
        check_decision(email, acting=acting, owner=owner, current=_current_status(conn, account_id, email),
                       account_id=account_id)
        _decide(conn, account_id, email, ContactStatus.REQUESTED, ContactStatus.REFUSED, decided_at=now)
        audit(conn, now, acting, "billing_contact.refused", "account", account_id, details={"email": email})
        writer.write(conn, writer.event(now, "billing_contact.refused", account_id,
                                        {"account_id": account_id, "email": email}))


def remove_contact(app: Ports, account_id: int, *, email: str, acting_email: str) -> None:
    """R4.2: a contact takes themselves off the list (or withdraws a request), or the owner takes
    anyone off it. The owner cannot be removed."""
    email, acting = validate_email(email), validate_email(acting_email)
    now = app.clock.now()
    with app.engine.begin() as conn:
        account = _live_account(conn, account_id)
        owner = owner_of(conn, account_id)
        current = check_removal(email, acting=acting, owner=owner,
                                current=_current_status(conn, account_id, email), account_id=account_id)
        _removed(conn, account_id, email, current, now, actor=acting)
        if current is ContactStatus.ACTIVE:
            # The address is told it no longer receives anything (a request withdrawn was never told).
            _email(conn, app, account, "contact_removed", [email], now, contact=email, requested_by=acting,
                   owner=owner)


def record_owner_consent(app: Ports, account_id: int, *, email: str, actor: str, evidence: str) -> None:
    """R4.1: support records that the owner consented to `email` (`evidence`: where, such as "the
    owner's e-mail of 27 Nov, ticket 4821"). A request still waiting becomes active; an address that
    asked support only is added, as asked by itself. The contact is welcomed as if the owner had
    approved, and the owner is e-mailed what support did on its behalf, quoting the evidence."""
    email = validate_email(email)
    evidence = _evidence(evidence, "a recorded consent")
    now = app.clock.now()
    try:
        with app.engine.begin() as conn:
            account = _live_account(conn, account_id)
            owner = owner_of(conn, account_id)
            current = check_recorded_consent(email, owner=owner, current=_current_status(conn, account_id, email),
                                             account_id=account_id)
            if current is ContactStatus.REQUESTED:
                requested_by = conn.execute(select(billing_contacts.c.requested_by).where(
                    billing_contacts.c.account_id == account_id, billing_contacts.c.email == email,
                    billing_contacts.c.status == ContactStatus.REQUESTED.value)).scalar_one()
                _decide(conn, account_id, email, ContactStatus.REQUESTED, ContactStatus.ACTIVE, decided_at=now)
            else:
                requested_by = email  # it asked support itself
                conn.execute(billing_contacts.insert().values(
                    account_id=account_id, email=email, status=ContactStatus.ACTIVE.value, requested_by=email,
                    requested_at=now, decided_at=now))
            audit(conn, now, actor, "billing_contact.consent_recorded", "account", account_id, reason=evidence,
                  details={"email": email, "evidence": evidence, "requested_by": requested_by,
                           "was": current.value if current else None})
            _added(conn, app, account, owner, email, now, actor=actor)
            _email(conn, app, account, "contact_consent_recorded", [owner], now, contact=email,
                   requested_by=requested_by, owner=owner, evidence=evidence)
    except IntegrityError:  # the same address, requested by someone else meanwhile
        raise Conflict(f"the billing contact {email} of account {account_id} changed meanwhile; try again",
                       code="contact_changed") from None


def remove_contact_on_request(app: Ports, account_id: int, *, email: str, actor: str, evidence: str) -> None:
    """R4.2: support removes an active contact, or withdraws a request, because that address asked
    it to (`evidence`: its e-mail, the ticket). As if the address had removed itself: never the
    owner; a contact that was active is told it no longer receives anything."""
    email = validate_email(email)
    evidence = _evidence(evidence, "a removal on request")
    now = app.clock.now()
    with app.engine.begin() as conn:
        account = _live_account(conn, account_id)
        owner = owner_of(conn, account_id)
        current = check_removal(email, acting=email, owner=owner, current=_current_status(conn, account_id, email),
                                account_id=account_id)
        _removed(conn, account_id, email, current, now, actor=actor, evidence=evidence)
        if current is ContactStatus.ACTIVE:
            _email(conn, app, account, "contact_removed", [email], now, contact=email, requested_by=email,
                   owner=owner)


def _evidence(evidence: str, what: str) -> str:
    """What support was sent, quoted in the audit log (and to the owner): as a reactivation's reason."""
    if not (evidence or "").strip():
        raise InvalidInput(f"{what} needs its evidence (the e-mail or ticket it was asked in)",
                           code="evidence_required")
    return validate_text(evidence, f"{what}'s evidence", REASON_LENGTH, field="evidence")


@dataclass(frozen=True)
class Removal:
    """What a removal link removes: an address from one account's billing contacts."""

    account_id: int
    account_name: str
    email: str
    locale: str


def removal_of(app: Ports, token: str) -> Removal:
    """R4.2: what a billing e-mail's removal link would remove, nothing changed (the portal's
    page asks before it removes: a mail scanner following the link removes nothing). Refused as
    `unsubscribe_contact` refuses it."""
    named = RemovalLinks.of(app.settings).read(token, app.clock.now())
    with app.engine.connect() as conn:
        email = _still_listed(conn, named)
        account = load_account(conn, named.account_id)
    return Removal(named.account_id, account.name, email, account.locale)


def removal_locale(app: Ports, token: str) -> str | None:
    """The language of the account a removal link names, even expired or used; None if altered."""
    account_id = RemovalLinks.of(app.settings).account_of(token)
    if account_id is None:
        return None
    with app.engine.connect() as conn:
        return conn.execute(select(accounts.c.locale).where(accounts.c.id == account_id)).scalar()


def unsubscribe_contact(app: Ports, token: str) -> tuple[int, str]:
    """R4.2: a contact follows the removal link of a billing e-mail: the contact it names leaves
    that account's billing contacts, as if it had removed itself (audit row, event). Returns
    (account id, address). A link expired, altered, or used already is refused, nothing changed."""
    now = app.clock.now()
    named = RemovalLinks.of(app.settings).read(token, now)
    with app.engine.begin() as conn:
        email = _still_listed(conn, named)
        _removed(conn, named.account_id, email, ContactStatus.ACTIVE, now, actor=email, by_link=True)
    return named.account_id, email


def _still_listed(conn: Connection, named: RemovalToken) -> str:
    """The address of the active contact a link names; refused if it is no longer one."""
    row = conn.execute(select(billing_contacts.c.email, billing_contacts.c.status).where(
        billing_contacts.c.id == named.contact_id, billing_contacts.c.account_id == named.account_id)).first()
    if row is None:  # its account's data deleted since (R10.1)
        raise NotFound("this removal link names no billing contact any more: nothing changed",
                       code="unknown_contact")
    _live_account(conn, named.account_id)
    if row.status != ContactStatus.ACTIVE.value:
        # Used already, or removed since by the owner; an address added again is another row.
        raise Conflict(f"this removal link was used already: {row.email} is no longer a billing contact of "
                       f"account {named.account_id}; nothing changed", code="removal_link_used")
    check_removal(row.email, acting=row.email, owner=owner_of(conn, named.account_id),
                  current=ContactStatus.ACTIVE, account_id=named.account_id)
    return row.email


def _removed(conn: Connection, account_id: int, email: str, current: ContactStatus, at: datetime, *, actor: str,
             by_link: bool = False, evidence: str = "") -> None:
    _decide(conn, account_id, email, current, ContactStatus.REMOVED, removed_at=at)
    audit(conn, at, actor, "billing_contact.removed", "account", account_id, reason=evidence,
          details={"email": email, "was": current.value, **({"by": "removal link"} if by_link else {}),
                   **({"evidence": evidence, "at_request_of": email} if evidence else {})})
    if current is ContactStatus.ACTIVE:
        writer.write(conn, writer.event(at, "billing_contact.removed", account_id,
                                        {"account_id": account_id, "email": email}))


def list_contacts(app: Ports, account_id: int) -> list[dict[str, Any]]:
    """The owner first, then active contacts, then requests waiting for the owner."""
    with app.engine.connect() as conn:
        account = _live_account(conn, account_id)
        owner = owner_of(conn, account_id)
        rows = conn.execute(
            select(billing_contacts).where(billing_contacts.c.account_id == account_id,
                                           billing_contacts.c.status.in_([s.value for s in CURRENT]))
            .order_by(case((billing_contacts.c.status == ContactStatus.ACTIVE.value, 0), else_=1),
                      billing_contacts.c.id)).all()
    return [{"email": owner, "status": ContactStatus.ACTIVE.value, "owner": True, "requested_by": None,
             "requested_at": None, "decided_at": account.created_at},
            *({"email": row.email, "status": row.status, "owner": False, "requested_by": row.requested_by,
               "requested_at": row.requested_at, "decided_at": row.decided_at} for row in rows)]


def _current_status(conn: Connection, account_id: int, email: str) -> ContactStatus | None:
    status = conn.execute(select(billing_contacts.c.status).where(
        billing_contacts.c.account_id == account_id, billing_contacts.c.email == email,
        billing_contacts.c.status.in_([s.value for s in CURRENT]))).scalar()
    return ContactStatus(status) if status else None


def _decide(conn: Connection, account_id: int, email: str, current: ContactStatus, new: ContactStatus,
            **values) -> None:
    changed = conn.execute(billing_contacts.update().where(
        billing_contacts.c.account_id == account_id, billing_contacts.c.email == email,
        billing_contacts.c.status == current.value).values(status=new.value, **values)).rowcount
    if changed != 1:  # a concurrent decision won; this transaction rolls back
        raise Conflict(f"the billing contact {email} of account {account_id} changed meanwhile; try again",
                       code="contact_changed")


def _added(conn: Connection, app: Ports, account, owner: str, email: str, at: datetime, *, actor: str) -> None:
    audit(conn, at, actor, "billing_contact.added", "account", account.id, details={"email": email})
    writer.write(conn, writer.event(at, "billing_contact.added", account.id,
                                    {"account_id": account.id, "email": email}))
    contact_id = conn.execute(select(billing_contacts.c.id).where(
        billing_contacts.c.account_id == account.id, billing_contacts.c.email == email,
        billing_contacts.c.status == ContactStatus.ACTIVE.value)).scalar_one()
    _email(conn, app, account, "contact_added", [email], at, contacts={email: contact_id}, contact=email,
           requested_by="", owner=owner)


def _email(conn: Connection, app: Ports, account, kind: str, recipients: list[str], at: datetime, *,
           contacts: dict[str, int] | None = None, **values: str) -> None:
    """An outbox e-mail in the account's language, rendered from its templates (outbox/rendering.py);
    `contacts`: the recipients who get a removal link (the welcome e-mail's new contact)."""
    values = {"account": account.name, "support_email": app.settings.seller.support_email, **values}
    to = Addressees(recipients, contacts or {})
    writer.write(conn, email_row(templates_of(app), kind, account.locale, account.id, to, values, at,
                                 contact=values["contact"]))
