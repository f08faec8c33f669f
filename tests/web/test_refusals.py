"""A refusal on a page for people (the portal, the console) is said in the reader's language,
chosen by its stable code, never the English message the API and the command line give; a code
without words of its own reads as its status's generic sentence, translated too."""

from __future__ import annotations

import pytest
from babel.messages.pofile import read_po

from renewly.config.catalogues import catalogue_path
from renewly.shared.errors import BillingError, Conflict, InvalidInput, NotAllowed, NotFound
from renewly.web.refusals import BY_STATUS, FIELDS, REFUSALS, refusal_in_words

# What each form of the portal and the console can be refused with (the use cases they call).
FORMS = {
    "portal: buyer address (R3.1)": {
        "invalid_text.empty", "invalid_text.control", "invalid_address.empty", "text_too_long", "unknown_country",
        "country_required", "owner_required", "not_a_member", "account_deleted", "account_cancelled",
        "billing_only"},
    "portal: billing contacts (R4.1, R4.2)": {
        "invalid_email", "owner_required", "unknown_contact_request", "contact_changed", "account_deleted",
        "owner_is_contact", "unknown_contact", "contact_is_owner", "contact_exists", "contact_already_requested",
        "unknown_action"},
    "portal: the card (R5.1, R5.4)": {
        "card_declined", "gateway_unavailable", "owner_required", "billing_only", "account_cancelled",
        "account_deleted"},
    "portal: a removal link (R4.2)": {"removal_links_unconfigured", "owner_is_contact", "account_deleted"},
    "portal: an invoice's PDF (R2.2)": {"unknown_invoice"},
    "console: reactivation (R9.2)": {
        "reason_required", "invalid_text.control", "invalid_days", "not_cancelled", "reactivation_running",
        "account_deleted", "unknown_account"},
    "console: transfer of ownership (R6.1)": {
        "invalid_email", "reason_required", "invalid_text.control", "unknown_member", "already_owner",
        "account_deleted"},
    "console: invoices sent again (R2.3)": {
        "invalid_month", "reason_required", "invalid_text.control", "account_deleted", "no_invoice"},
    "console: the owner's consent recorded (R4.1)": {
        "invalid_email", "evidence_required", "invalid_text.control", "text_too_long", "contact_is_owner",
        "contact_exists", "contact_changed", "account_deleted", "unknown_account"},
    "console: a contact removed at its request (R4.2)": {
        "invalid_email", "evidence_required", "invalid_text.control", "text_too_long", "owner_is_contact",
        "unknown_contact", "contact_changed", "account_deleted", "unknown_account"},
}


def french() -> dict[str, str]:
    with catalogue_path("fr").open("rb") as po_file:
        return {message.id: message.string for message in read_po(po_file, locale="fr") if message.id}


@pytest.mark.parametrize("form", FORMS)
def test_every_refusal_a_form_can_meet_has_its_own_words(form):
    assert sorted(FORMS[form] - set(REFUSALS)) == []


def test_every_refusal_s_words_have_a_real_french_translation():
    translated = french()
    for sentence in (*REFUSALS.values(), *BY_STATUS.values(), *FIELDS.values()):
        assert translated.get(sentence), f"no French for {sentence!r}"
        assert translated[sentence] != sentence, f"the French of {sentence!r} is the English"


def test_a_refusal_is_said_in_the_reader_s_language_with_its_specifics():
    too_long = InvalidInput("the buyer's city is at most 100 characters (got 101)", code="text_too_long",
                            values={"field": "city", "limit": 100})
    assert refusal_in_words(too_long, "fr") == "Ville : 100 caractères au plus."
    assert refusal_in_words(too_long, "en") == "City: at most 100 characters."
    unknown = NotFound("books@acme.test is not a billing contact of account 7", code="unknown_contact",
                       values={"email": "books@acme.test"})
    assert refusal_in_words(unknown, "fr") == "books@acme.test n'est pas un contact de facturation de ce compte."


@pytest.mark.parametrize("refused, french_words", [
    (InvalidInput("something new", code="brand_new_rule"), "Cette demande a été refusée ; rien n'a été modifié."),
    (NotAllowed("something new", code="brand_new_rule"), "Ce n'est pas permis ; rien n'a été modifié."),
    (NotFound("something new", code="brand_new_rule"), "Cela n'existe pas ; rien n'a été modifié."),
    (Conflict("something new", code="brand_new_rule"),
     "Cela a changé entre-temps, ou a déjà été fait ; rien n'a été modifié."),
    # Words that name a value the raise site did not give: the status's, not half a sentence.
    (NotFound("no billing contact any more", code="unknown_contact"), "Cela n'existe pas ; rien n'a été modifié."),
    (InvalidInput("a key's name cannot be empty", code="invalid_text", values={"field": "key", "case": "empty"}),
     "Cette demande a été refusée ; rien n'a été modifié."),
])
def test_a_code_without_words_of_its_own_reads_as_its_status_in_the_reader_s_language(refused, french_words):
    assert refusal_in_words(refused, "fr") == french_words
    assert refused.message not in refusal_in_words(refused, "en")


def test_the_english_message_stays_for_the_api_and_the_command_line():
    refused = BillingError("a resend needs a --reason", code="reason_required")
    assert (refused.code, refused.message, str(refused)) == (
        "reason_required", "a resend needs a --reason", "a resend needs a --reason")
    assert refusal_in_words(refused, "en") == "Give a reason, for the audit log."
