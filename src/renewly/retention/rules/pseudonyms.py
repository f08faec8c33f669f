"""What stays of a deleted account's people in the audit log (R10.1): pseudonyms.

The audit log keeps who did what, when, to what, after an account's personal data is deleted:
its entries stay, and each person of the account in them becomes a pseudonym, the same one in
all the account's entries (`account-42/person-1` asked for a billing contact that
`account-42/person-2` then removed). A pseudonym is a number given in the order people first
appear in the account's entries; the list of who got which number lives only in the memory of the
retention batch and goes with it. Nothing, in the database or elsewhere, links a pseudonym back
to an e-mail; and the same person in two deleted accounts gets two unrelated pseudonyms.

A keyed hash of the e-mail (HMAC with a secret of the installation) was weighed and left: whoever
holds the secret can test a guessed address against every pseudonym, so the secret would have
to be kept apart from the database and never lost nor leaked, for years; and one person's
pseudonyms would link their deleted accounts, which nobody needs.

The account's people are the e-mail addresses it knew (members, billing contacts and who asked
for them, who saved a card), every address written in its entries' details and reasons (one
support wrote there was written about the account), and the actors of what only a customer does
(asking for a contact, saving a card). Their addresses become pseudonyms wherever they are
written. In reasons, the account's names, address lines (its own, and each issued invoice's
buyer), card and gateway references become `[deleted]`, as whole words, case aside: a reason may
lose a word that only looked like one of them, never keep one. A card's last four digits go from
details. Texts no rule can recognise (a telephone number support typed) stay: the house rule is
that reasons name no customer (docs/dunning.md, "Deletion").

Staff are not the customer's personal data: `support:alice`, `cli:root`, `system:retention`
stay as they are, the operator's record of which of its people acted. An actor written as an
e-mail address stays too, unless the account's data names it as one of its people.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

# What only the account's people do, through the dashboard or a signed link: the services write
# the customer's address as the actor (contacts, cards). Whatever else an actor is, it is staff's.
CUSTOMER_ACTIONS = frozenset({
    "billing_contact.requested", "billing_contact.added", "billing_contact.refused", "billing_contact.removed",
    "card.updated", "gateway_customer.created",
})
# Details that identify a card, with the other entries of the account.
CARD_DETAILS = frozenset({"last4"})
DELETED_TEXT = "[deleted]"

# An address written in a text. What the services accept (domain/accounts.validate_email) allows
# more: the account's own addresses that this does not read whole are matched as they are too.
_EMAIL = re.compile(r"[\w.!#$%&'*+/=?^`{|}~-]+@[\w-]+(?:\.[\w-]+)+", re.IGNORECASE)


def pseudonym(account_id: int, number: int) -> str:
    return f"account-{account_id}/person-{number}"


@dataclass(frozen=True)
class AuditEntry:
    id: int
    actor: str
    action: str
    reason: str
    details: Any  # the JSON document


@dataclass(frozen=True)
class KnownPersonalData:
    """What the account's own rows say about its people: their e-mail addresses, and the texts
    (names, address lines, references at the gateway) that point at them."""

    emails: frozenset[str] = frozenset()
    texts: frozenset[str] = frozenset()


class Pseudonymiser:
    """One deleted account's pseudonyms, given in the order its entries (by id) first name each person."""

    def __init__(self, account_id: int, known: KnownPersonalData, entries: Iterable[AuditEntry]) -> None:
        self.account_id = account_id
        self._numbers: dict[str, int] = {}
        people = {email.lower() for email in known.emails if email}
        for entry in entries:
            if entry.action in CUSTOMER_ACTIONS and _EMAIL.fullmatch(entry.actor or ""):
                people.add(entry.actor.lower())
            for text in (entry.reason, *_strings(entry.details)):
                people.update(found.lower() for found in _EMAIL.findall(text or ""))
        self.people = frozenset(people)
        self._texts = sorted({text.strip().lower() for text in known.texts if text and text.strip()},
                             key=len, reverse=True)
        # Addresses the services accepted but the pattern does not see whole (`a(b)@x.test`).
        odd = sorted((email for email in people if not _EMAIL.fullmatch(email)), key=len, reverse=True)
        self._odd = [rf"(?P<odd>{'|'.join(map(re.escape, odd))})(?![\w-]|\.[\w-])"] if odd else []
        self._addresses = re.compile("|".join([*self._odd, _EMAIL.pattern]), re.IGNORECASE) if odd else _EMAIL
        self._with_texts: re.Pattern[str] | None = None  # compiled when a text first needs it: most never do

    def of(self, email: str) -> str:
        number = self._numbers.setdefault(email.lower(), len(self._numbers) + 1)
        return pseudonym(self.account_id, number)

    def actor(self, actor: str) -> str:
        """A person of the account becomes their pseudonym; staff stay as they are named."""
        if actor.lower() in self.people:
            return self.of(actor)
        return self._replace(actor, names=True, only_people=True)

    def text(self, text: str) -> str:
        """A free text (a reason): every address in it becomes a pseudonym (one the account did not
        know was written there about it all the same), the account's names and address lines go."""
        return self._replace(text, names=True)

    def details(self, document: Any) -> Any:
        if isinstance(document, Mapping):
            # Keys in their sorted order, whatever order the engine keeps them in (jsonb sorts by
            # length): the same entries give the same numbers on both engines.
            done = {key: "" if key in CARD_DETAILS else self.details(document[key]) for key in sorted(document)}
            return {key: done[key] for key in document}
        if isinstance(document, list):
            return [self.details(value) for value in document]
        if isinstance(document, str):
            # Details are the services' own values (dates, numbers, codes): names and address lines
            # are never put there, and a postcode must not eat the year of an invoice number.
            return self._replace(document, names=False)
        return document

    def entry(self, entry: AuditEntry) -> AuditEntry:
        # In the order a reader meets them: who, what, why.
        actor = self.actor(entry.actor)
        details = self.details(entry.details)
        return replace(entry, actor=actor, details=details, reason=self.text(entry.reason))

    def _replace(self, text: str, *, names: bool, only_people: bool = False) -> str:
        """One pass, the longest first at each place: a pseudonym put in is never matched again,
        and "Dupont Plomberie" goes whole before "Dupont" could."""
        if not text:
            return text
        pattern = self._addresses
        if names and any(known in text.lower() for known in self._texts):
            if self._with_texts is None:
                names_part = rf"(?<!\w)(?P<text>{'|'.join(map(re.escape, self._texts))})(?!\w)"
                self._with_texts = re.compile("|".join([*self._odd, names_part, _EMAIL.pattern]), re.IGNORECASE)
            pattern = self._with_texts

        def substitute(match: re.Match[str]) -> str:
            if match.lastgroup == "text":
                return DELETED_TEXT
            if only_people and match.group().lower() not in self.people:
                return match.group()  # staff's address inside an actor's name
            return self.of(match.group())

        return pattern.sub(substitute, text)


def pseudonymise(account_id: int, known: KnownPersonalData,
                 entries: Sequence[AuditEntry]) -> tuple[Pseudonymiser, list[AuditEntry]]:
    """The account's entries that change, rewritten; and the pseudonymiser, for the account's other
    free texts (a reactivation's reason), so that they give the same person the same pseudonym."""
    ordered = sorted(entries, key=lambda entry: entry.id)
    pseudonymiser = Pseudonymiser(account_id, known, ordered)
    rewritten = [pseudonymiser.entry(entry) for entry in ordered]
    return pseudonymiser, [new for new, old in zip(rewritten, ordered) if new != old]


def _strings(document: Any) -> Iterable[str]:
    if isinstance(document, Mapping):
        for value in document.values():
            yield from _strings(value)
    elif isinstance(document, list):
        for value in document:
            yield from _strings(value)
    elif isinstance(document, str):
        yield document
