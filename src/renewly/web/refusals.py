"""A use case's refusal in the reader's language, for the pages of the portal and the console.

Every BillingError has a stable `code` (renewly.shared.errors); the API and the command line give
its English `message` with it. A page for people gives instead the sentence `REFUSALS` holds for
the code, from the gettext catalogues (src/renewly/locale, `make catalogues`, docs/texts.md),
filled with the error's `values`: the field of a form (by its label), a limit, an address. A code
without a sentence here, or whose sentence names a value the error does not carry, reads as the
generic sentence of its status: a French page never shows the English message.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from renewly.config.catalogues import translations
from renewly.shared.errors import BillingError
from renewly.web.problems import status_of


def N_(sentence: str) -> str:
    """A sentence for `pybabel extract`, translated where it is shown."""
    return sentence


# A form's field, named in a refusal (`values["field"]`) by its label on the form.
FIELDS: Mapping[str, str] = MappingProxyType({
    "name": N_("Organisation name"),
    "line1": N_("Address"),
    "line2": N_("Address (continued)"),
    "postcode": N_("Postcode"),
    "city": N_("City"),
    "country": N_("Country (ISO code, e.g. FR)"),
    "vat_id": N_("VAT number"),
    "reason": N_("Reason, for the audit log"),
    "evidence": N_("Evidence, for the audit log"),
})

# By code; `code.case` where one code covers refusals that need different words (`values["case"]`).
REFUSALS: Mapping[str, str] = MappingProxyType({
    # A field of a form: the buyer address (R3.1), a support action's reason.
    "invalid_text.empty": N_("%(field)s: this cannot be empty."),
    "invalid_text.control": N_("%(field)s: remove the control characters (such as line breaks) from it."),
    "invalid_address.empty": N_("%(field)s: this cannot be empty."),
    "text_too_long": N_("%(field)s: at most %(limit)s characters."),
    "unknown_country": N_("Unknown country “%(country)s”: give its ISO 3166 code, such as FR or US."),
    "country_required": N_("The country is required: it decides the tax of the invoices."),
    "invalid_email": N_("“%(email)s” is not an e-mail address."),
    # Who may act on an account (R1.1, R9.1, R9.2, R10.1).
    "owner_required": N_("Only the account's owner can do this."),
    "not_a_member": N_("You are not a member of this account."),
    "unknown_member": N_("%(email)s is not a member of this account."),
    "unknown_account": N_("This account does not exist."),
    "account_deleted": N_("This account was deleted: it cannot change any more."),
    "account_cancelled": N_("This account was cancelled for an unpaid invoice. Its owner can ask support for a "
                            "temporary reactivation to pay it."),
    "billing_only": N_("This account is cancelled: until its temporary reactivation ends, only its owner may use "
                       "the billing pages, to update the card."),
    # Billing contacts (R4.1, R4.2).
    "contact_is_owner": N_("%(email)s owns this account and always receives its billing e-mails."),
    "contact_exists": N_("%(email)s already receives this account's billing e-mails."),
    "contact_already_requested": N_("%(email)s was already asked for; the owner has not decided yet."),
    "unknown_contact_request": N_("No request of %(email)s is waiting any more."),
    "owner_is_contact": N_("%(email)s owns this account: the owner always receives its billing e-mails and cannot "
                           "be removed."),
    "unknown_contact": N_("%(email)s is not a billing contact of this account."),
    "contact_changed": N_("This billing contact changed meanwhile: reload the page and try again."),
    "evidence_required": N_("Say where it was asked (the e-mail, the ticket), for the audit log."),
    "unknown_action": N_("This action does not exist."),
    "removal_links_unconfigured": N_("Removal links do not work on this service yet: ask the account's owner, who "
                                     "can remove any billing contact."),
    # The card (R5.1, R5.4, R7.1).
    "card_declined": N_("The bank's reason: %(reason)s."),
    "gateway_unavailable": N_("The card could not be checked: the payment gateway did not answer. Nothing was "
                              "saved; try again."),
    "card_number_refused": N_("A card number is typed on the payment gateway's form only, never here."),
    # Support's actions (R9.2, R6.1, R2.3).
    "reason_required": N_("Give a reason, for the audit log."),
    "invalid_days": N_("A reactivation lasts 1 to %(most)s days."),
    "not_cancelled": N_("This account is not cancelled: there is nothing to reactivate."),
    "reactivation_running": N_("This account already has a temporary reactivation running."),
    "already_owner": N_("%(email)s already owns this account."),
    "invalid_month": N_("Give a month as YYYY-MM, such as 2026-03."),
    "no_invoice": N_("This account has no invoice issued in %(month)s."),
    "unknown_invoice": N_("This invoice does not exist."),
})

# What a refusal without its own sentence says, by its status (web/problems.py: status_of).
BY_STATUS: Mapping[int, str] = MappingProxyType({
    400: N_("This request was refused; nothing changed."),
    403: N_("This is not allowed; nothing changed."),
    404: N_("This does not exist; nothing changed."),
    409: N_("This changed meanwhile, or was done already; nothing changed."),
})


def refusal_in_words(refused: BillingError, locale: str, **known: str | int) -> str:
    """The refusal in `locale`'s words, filled with its values and the `known` ones the page adds."""
    gettext = translations(locale).gettext
    case = refused.values.get("case")
    sentence = REFUSALS.get(f"{refused.code}.{case}" if case else refused.code)
    values = {**refused.values, **known}
    if "field" in values:
        label = FIELDS.get(str(values["field"]))
        values = {**values, "field": gettext(label)} if label else {
            name: value for name, value in values.items() if name != "field"}
    if sentence is not None:
        try:
            return gettext(sentence) % values
        except KeyError:  # a value the raise site does not give: the status's words, not half a sentence
            pass
    return gettext(BY_STATUS.get(status_of(refused), BY_STATUS[400]))
