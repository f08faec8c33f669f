"""The billing-contact e-mails (R4), in English and French: str.format templates.

Placeholders: {account} {contact} {requested_by} {owner} {support_email}. The signed links of
R4.1 and R4.2 come with the web issue; until then the texts point to the billing settings.
"""

from __future__ import annotations

from collections.abc import Mapping

from renewly.dunning.rules.schedule import EmailTemplate

CONTACT_TEMPLATES: Mapping[tuple[str, str], EmailTemplate] = {
    ("contact_request", "en"): EmailTemplate(
        subject="{requested_by} asks to add {contact} to {account}'s billing contacts",
        body="{requested_by} asked for {contact} to receive {account}'s invoices and payment e-mails. "
             "Nothing changes without your consent: approve or refuse the request in the billing settings. "
             "Questions: {support_email}."),
    ("contact_request", "fr"): EmailTemplate(
        subject="{requested_by} demande d'ajouter {contact} aux contacts de facturation de {account}",
        body="{requested_by} a demandé que {contact} reçoive les factures et les e-mails de paiement de "
             "{account}. Rien ne change sans votre accord : acceptez ou refusez la demande dans les réglages "
             "de facturation. Des questions : {support_email}."),
    ("contact_added", "en"): EmailTemplate(
        subject="You are now a billing contact of {account}",
        body="{owner} approved: you will receive {account}'s invoices and payment e-mails. To stop receiving "
             "them, ask to be removed in the billing settings or write to {support_email}."),
    ("contact_added", "fr"): EmailTemplate(
        subject="Vous êtes désormais contact de facturation de {account}",
        body="{owner} a accepté : vous recevrez les factures et les e-mails de paiement de {account}. Pour ne "
             "plus les recevoir, demandez à être retiré dans les réglages de facturation ou écrivez à "
             "{support_email}."),
}
