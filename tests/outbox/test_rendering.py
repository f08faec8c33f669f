"""E-mails and banners from templates (issue 12, item 3): every kind renders in every language,
text and HTML, its words from the catalogues; an operator's folder wins, template by template and
sentence by sentence; a bad operator template is refused at start with its file, line and reason."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from sqlalchemy import select

from renewly import cli
from renewly.accounts.rules.members import SUPPORTED_LOCALES
from renewly.adapters.db.tables import outbox
from renewly.bootstrap import bootstrap
from renewly.config.catalogues import CatalogueRefused
from renewly.config.settings import load_settings
from renewly.outbox.rendering import (
    BANNER_KEYS,
    SHIPPED_KINDS,
    TEMPLATES,
    MailTemplates,
    TemplateRefused,
    mail_templates,
    values_of,
)


def sample(kind: str) -> dict[str, str]:
    return {name: f"[{name}]" for name in values_of(kind)}


def operator_folder(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content, encoding="utf-8")
    return root


def catalogue(*messages: tuple[str, str]) -> str:
    header = 'msgid ""\nmsgstr ""\n"Content-Type: text/plain; charset=utf-8\\n"\n'
    return header + "".join(f'\nmsgid "{msgid}"\nmsgstr "{msgstr}"\n' for msgid, msgstr in messages)


# -- the shipped templates ---------------------------------------------------------------------------

def test_the_shipped_templates_pass_the_check_an_operator_s_folder_gets_at_start():
    MailTemplates().check()


@pytest.mark.parametrize("locale", SUPPORTED_LOCALES)
@pytest.mark.parametrize("kind", SHIPPED_KINDS)
def test_every_e_mail_renders_its_subject_text_and_html_in_every_language(kind, locale):
    rendered = mail_templates().email(kind, locale, sample(kind))
    assert rendered.subject and "\n" not in rendered.subject
    assert rendered.text and "{" not in rendered.text and "%(" not in rendered.text
    assert rendered.html.startswith("<!DOCTYPE html>") and f'<html lang="{locale}">' in rendered.html
    assert "{%" not in rendered.html and "%(" not in rendered.html
    # Every value the text names is in the HTML too: the two parts say the same thing.
    named = {value for value in sample(kind).values() if value in rendered.text}
    assert named and all(value in rendered.html for value in named)


def test_a_french_reader_reads_french_and_an_english_reader_english():
    values = sample("payment_failed_1")
    french = mail_templates().email("payment_failed_1", "fr", values)
    english = mail_templates().email("payment_failed_1", "en", values)
    assert french.subject == "Échec du paiement de la facture [invoice]"
    assert english.subject == "Payment failed for invoice [invoice]"
    assert french.text.startswith("Nous n'avons pas pu prélever [amount] pour la facture [invoice]")
    assert "\n\nNous réessaierons le [next_attempt_date]." in french.text  # paragraphs, one blank line apart
    assert "<p>Des questions ? Écrivez à [support_email].</p>" in french.html.replace(
        ' style="color: #555; font-size: 13px;"', "")


def test_html_escapes_what_an_account_is_named_and_the_text_keeps_it_as_written():
    values = {**sample("payment_confirmed"), "account": "<script>alert(1)</script> & Co"}
    rendered = mail_templates().email("payment_confirmed", "en", values)
    assert "<script>" not in rendered.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; Co" in rendered.html
    assert "<script>alert(1)</script> & Co's invoice" in rendered.text


def test_a_line_break_in_a_value_does_not_reach_the_subject_header():
    values = {**sample("contact_added"), "account": "Acme\nBcc: everyone@example.com"}
    assert mail_templates().email("contact_added", "en", values).subject == (
        "You are now a billing contact of Acme Bcc: everyone@example.com")


def test_the_invoice_e_mail_says_why_it_is_sent_again_only_when_it_is():
    at_issue = mail_templates().email("invoice", "fr", {**sample("invoice"), "reason": ""})
    resent = mail_templates().email("invoice", "fr", {**sample("invoice"), "reason": "perdue"})
    assert "Envoyée de nouveau" not in at_issue.text + at_issue.html
    assert at_issue.text.endswith("\n\nElle a été émise au renouvellement de votre abonnement.")
    assert resent.text.endswith("\n\nEnvoyée de nouveau à votre demande (perdue).")
    assert "émise au renouvellement" not in resent.text + resent.html


def test_the_attached_pdf_is_named_in_the_reader_s_language():
    assert mail_templates().attachment_name("fr", "2026-000002") == "facture-2026-000002.pdf"
    assert mail_templates().attachment_name("en", "2026-000002") == "invoice-2026-000002.pdf"


def test_the_removal_footer_is_the_catalogue_s_sentence_with_a_slot_for_each_contact_s_link():
    footer = mail_templates().removal_footer("fr")
    assert footer.text == ("Vous recevez cet e-mail en tant que contact de facturation. Pour ne plus recevoir les "
                           "e-mails de facturation de ce compte : {removal_url}")
    assert footer.html.endswith('ce compte : <a href="{removal_url}">{removal_url}</a></p>')
    # The page itself, the owner's message, ends without it.
    page = mail_templates().email("invoice", "fr", sample("invoice")).html
    assert "removal_url" not in page and "contact de facturation" not in page


def test_an_operator_s_removal_footer_and_file_name_win(tmp_path):
    folder = operator_folder(tmp_path, {
        "mail/layout.txt": "{% block removal_footer %}Leave: {{ removal_url }}{% endblock %}"
                           "{% block invoice_filename %}acme-{{ number }}.pdf{% endblock %}"})
    templates = MailTemplates(folder)
    assert templates.removal_footer("en").text == "Leave: {removal_url}"
    assert templates.attachment_name("en", "7") == "acme-7.pdf"
    # The HTML footer stays the shipped one.
    assert templates.removal_footer("en").html.endswith('<a href="{removal_url}">{removal_url}</a></p>')


@pytest.mark.parametrize("key", BANNER_KEYS)
def test_every_banner_is_one_line_in_every_language(key):
    values = sample("payment_failed_1")
    french, english = (mail_templates().banner(key, locale, values) for locale in ("fr", "en"))
    assert french and english and french != english and "\n" not in french


# -- an operator's folder ------------------------------------------------------------------------------

def test_an_operator_s_template_and_translation_win_and_the_rest_stays_shipped(tmp_path):
    folder = operator_folder(tmp_path, {
        "mail/payment_confirmed.txt": "{% block subject %}{% trans %}Thanks for {{ invoice }}{% endtrans %}"
                                      "{% endblock %}{% block body %}{% trans %}Paid: {{ amount }}.{% endtrans %}"
                                      "{% endblock %}\n",
        "locale/fr/LC_MESSAGES/messages.po": catalogue(
            ("Thanks for %(invoice)s", "Merci pour %(invoice)s"), ("Paid: %(amount)s.", "Payé : %(amount)s."),
            ("Payment failed for invoice %(invoice)s", "Impayé : %(invoice)s")),
    })
    templates = MailTemplates(folder)
    templates.check()
    confirmed = templates.email("payment_confirmed", "fr", sample("payment_confirmed"))
    assert (confirmed.subject, confirmed.text) == ("Merci pour [invoice]", "Payé : [amount].")
    # Its HTML part is still the shipped one.
    assert "Merci : nous avons reçu [amount]" in confirmed.html
    # A shipped template, with the operator's translation of one of its sentences.
    assert templates.email("payment_failed_1", "fr", sample("payment_failed_1")).subject == "Impayé : [invoice]"
    # The shipped templates and catalogues are untouched for a process without the folder.
    assert mail_templates().email("payment_failed_1", "fr", sample("payment_failed_1")).subject == (
        "Échec du paiement de la facture [invoice]")


def test_a_step_the_operator_adds_has_its_e_mail_in_the_folder(tmp_path):
    folder = operator_folder(tmp_path, {
        "mail/friendly_reminder.txt": "{% block subject %}Reminder{% endblock %}{% block body %}"
                                      "{{ invoice }}: {{ amount }}{% endblock %}",
        "mail/friendly_reminder.html": '{% extends "mail/layout.html" %}{% block body %}<p>{{ amount }}</p>'
                                       "{% endblock %}"})
    templates = MailTemplates(folder)
    assert templates.has_email("friendly_reminder") and not mail_templates().has_email("friendly_reminder")
    templates.check(["friendly_reminder"])
    assert templates.email("friendly_reminder", "en", sample("friendly_reminder")).text == "[invoice]: [amount]"


BAD = {
    "an_unknown_value": ({"mail/payment_confirmed.txt": "{% block subject %}Paid{% endblock %}\n"
                                                        "{% block body %}\n{{ invoice }}\n{{ invoice_no }}\n"
                                                        "{% endblock %}\n"},
                         "mail/payment_confirmed.txt", 4, "unknown value 'invoice_no'; this template may name "),
    "an_unknown_value_in_a_sentence": ({"banners.txt": "{% block owner_and_admins %}x{% endblock %}\n"
                                                       "{% block everyone %}{% trans %}On {{ date }}{% endtrans %}"
                                                       "{% endblock %}"},
                                       "banners.txt", 2, "unknown value 'date'"),
    "a_syntax_error": ({"mail/contact_added.html": '{% extends "mail/layout.html" %}\n{% block body %}\n'
                                                   "<p>{{ account }</p>\n{% endblock %}"},
                       "mail/contact_added.html", 3, "unexpected '}'"),
    "an_unknown_filter": ({"mail/invoice.html": '{% extends "mail/layout.html" %}{% block body %}\n\n'
                                                "{{ total|money }}{% endblock %}"},
                          "mail/invoice.html", 3, "No filter named 'money'"),
    "a_text_without_its_subject": ({"mail/invoice.txt": "{% block body %}{{ total }}{% endblock %}"},
                                   "mail/invoice.txt", 1, "no block 'subject'"),
    "a_sentence_without_its_french": ({"mail/invoice.txt": "{% block subject %}Invoice{% endblock %}\n"
                                                           "{% block body %}\n{% trans %}Here it is: {{ total }}"
                                                           "{% endtrans %}{% endblock %}"},
                                      "mail/invoice.txt", 3, "no fr translation of 'Here it is: %(total)s'; add it "
                                                             "to "),
    "a_translation_naming_a_value_the_sentence_lacks": (
        {"locale/fr/LC_MESSAGES/messages.po": catalogue(("Payment failed for invoice %(invoice)s",
                                                         "Facture %(number)s impayée"))},
        "mail/payment_failed_1.txt", 3, "fails in fr: KeyError: 'number'"),
    "a_catalogue_that_is_not_one": ({"locale/fr/LC_MESSAGES/messages.po": 'msgid "a"\nmsgstr "b"\nfoo bar\n'},
                                    "locale/fr/LC_MESSAGES/messages.po", 3, "Unknown or misformatted keyword"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_operator_template_is_refused_with_its_file_line_and_reason(case, tmp_path):
    files, name, line, reason = BAD[case]
    folder = operator_folder(tmp_path, files)
    with pytest.raises((TemplateRefused, CatalogueRefused)) as refused:
        MailTemplates(folder).check()
    message = refused.value.message
    where = str(TEMPLATES / name) if name.startswith("mail/payment_failed_1") else str(folder / name)
    assert message.startswith(f"{where}:{line}: ") and reason in message and "\n" not in message


def test_a_step_whose_e_mail_has_no_template_is_refused_at_start(tmp_path, monkeypatch, capsys):
    policy = tmp_path / "policy.toml"
    policy.write_text('version = "v"\n\n[[steps]]\nname = "reminder"\nday = 0\nemail = "friendly_reminder"\n',
                      encoding="utf-8")
    monkeypatch.setenv("RENEWLY_POLICY_FILE", str(policy))
    code, out, err = renewly(monkeypatch, capsys, tmp_path, "policy", "check", str(policy))
    assert (code, out) == (2, "")
    assert err.startswith(f"error: {policy}:6: steps[0].email: no templates mail/friendly_reminder.txt and .html")


def renewly(monkeypatch, capsys, folder: Path, *args: str) -> tuple[int, str, str]:
    monkeypatch.chdir(folder)
    monkeypatch.setenv("RENEWLY_DATABASE_URL", f"sqlite:///{folder / 'renewly.db'}")
    monkeypatch.setenv("RENEWLY_CLOCK", "test")
    monkeypatch.setattr(sys, "argv", ["renewly", *args])
    with pytest.raises(SystemExit) as exited:
        cli.main()
    captured = capsys.readouterr()
    return exited.value.code, captured.out, captured.err


def test_no_command_starts_with_a_bad_operator_template_one_line_exit_2(tmp_path, monkeypatch, capsys):
    folder = operator_folder(tmp_path / "texts", BAD["an_unknown_value"][0])
    monkeypatch.setenv("RENEWLY_TEMPLATES_DIR", str(folder))
    code, out, err = renewly(monkeypatch, capsys, tmp_path, "run")
    assert (code, out) == (2, "")
    assert err.startswith(f"error: {folder / 'mail/payment_confirmed.txt'}:4: unknown value 'invoice_no'")
    assert err.count("\n") == 1
    assert not (tmp_path / "renewly.db").exists()  # refused before anything was touched


def test_a_folder_that_does_not_exist_is_refused_by_the_settings(tmp_path):
    with pytest.raises(Exception, match="templates_dir: Value error, .*nowhere is not a folder"):
        load_settings(config_file=None, templates_dir=str(tmp_path / "nowhere"))


# -- written when the change happens ----------------------------------------------------------------

def test_an_e_mail_keeps_what_it_said_when_it_was_written_whatever_the_templates_become(databases, db_kind,
                                                                                       tmp_path):
    from renewly.accounts.contacts import request_contact
    from tests.builders import subscribed

    folder = operator_folder(tmp_path / "texts", {})
    app = databases.fresh_app(db_kind, templates_dir=str(folder))
    account_id, _ = subscribed(app)
    request_contact(app, account_id, email="ap@acme.test", requested_by="admin@acme.test")
    operator_folder(folder, {"mail/contact_request.txt": "{% block subject %}Changed{% endblock %}"
                                                         "{% block body %}Changed{% endblock %}"})
    with app.engine.connect() as conn:
        [payload] = [payload for payload in conn.execute(select(outbox.c.payload).where(outbox.c.topic == "email"))
                     .scalars() if payload["kind"] == "contact_request"]
    assert payload["subject"].startswith("admin@acme.test asks to add ap@acme.test")
    assert payload["html"].startswith("<!DOCTYPE html>") and "ap@acme.test" in payload["html"]
    # And a start with the changed folder accepts it (the check is the one at every start).
    assert bootstrap(app.settings, clock=app.clock, upgrade=False).settings.templates_dir == folder.resolve()
