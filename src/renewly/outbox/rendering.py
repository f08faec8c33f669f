"""E-mails and banners from Jinja2 templates, their words from the gettext catalogues.

Every e-mail kind is a pair of templates under `templates/mail/`: `<kind>.txt` defines the
blocks `subject` and `body` (plain text, nothing escaped), `<kind>.html` the HTML part (it
extends `mail/layout.html`; every value escaped). The dunning banners are the blocks of
`templates/banners.txt`. Their sentences are `{% trans %}` blocks whose translations come from
`renewly/locale` (renewly.config.catalogues), in the reader's language; the values they name
arrive already in that language (dates and amounts formatted by Babel: outbox/emails.py).

An operator's folder (the `templates_dir` setting) holds the same layout, `mail/<kind>.txt|html`,
`banners.txt`, `locale/<lang>/LC_MESSAGES/messages.po`: a file there wins over the shipped one
(a Jinja2 ChoiceLoader), a translation there over the shipped one. `check` compiles and renders
every template in every language at start (bootstrap), and refuses a bad one with its file,
line and reason: a syntax error, a value the kind does not have, an operator's sentence without
a translation. The shipped templates are checked the same way by the suite
(tests/outbox/test_rendering.py), so a start without an operator's folder compiles nothing.

Two pieces are rendered apart from an e-mail's parts, from blocks of `mail/layout.txt`. The
invoice's attachment file name is its `invoice_filename`. The removal footer of a billing
contact's message (R4.2) is its `removal_footer` (text) and that of `mail/layout.html`: rendered
when the e-mail is written, with `REMOVAL_URL` as the link, and kept in the row; delivery
(mail/letters.py) puts each contact's own link in its place, at the end of that contact's
message only (the owner's has none).

A rendering is done when the e-mail is written: the outbox row keeps subject, text and HTML as
they were then (outbox/writer.py), whatever templates or settings come later.
"""

from __future__ import annotations

import re
import traceback
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache, partial
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from renewly.accounts.rules.members import SUPPORTED_LOCALES
from renewly.ports import Ports
from renewly.shared.errors import InvalidInput

if TYPE_CHECKING:
    from jinja2 import Environment

TEMPLATES = Path(__file__).with_name("templates")
BANNERS = "banners.txt"
LAYOUT = "mail/layout.html"
TEXT_LAYOUT = "mail/layout.txt"
# Where a contact's removal link goes in the footer rendered at write time: delivery replaces it
# (mail/letters.py). Plain characters, so that HTML escaping leaves it as it is.
REMOVAL_URL = "{removal_url}"
SOURCE_LANGUAGE = "en"  # the msgids' language: an English reader needs no translation

# The values each kind's templates may name, all texts in the reader's language. Every template
# is also given `locale`; an HTML part also its e-mail's `subject`.
DUNNING_VALUES = frozenset({"account", "invoice", "amount", "renewal_date", "cancel_date", "deletion_date",
                            "support_email", "reason", "next_attempt_date", "reactivation_end_date"})
CONTACT_VALUES = frozenset({"account", "contact", "requested_by", "owner", "support_email"})
KIND_VALUES: Mapping[str, frozenset[str]] = {
    # The e-mails outside the schedule: the confirmation that ends a case (R11), the owner's
    # notice that a new card's retry was declined (R7.1).
    "payment_confirmed": DUNNING_VALUES,
    "card_retry_declined": DUNNING_VALUES,
    # The owner's notice that a card's verification was declined (R5.1).
    "card_verification_failed": frozenset({"account", "reason", "support_email"}),
    # An invoice or credit note (R4.3); `reason`: why it is sent again, empty at issue.
    "invoice": frozenset({"number", "seller", "buyer", "issue_date", "total", "reason", "support_email"}),
    # Billing contacts (R4): `requested_by` asked for the change (or made it: a removal).
    "contact_request": CONTACT_VALUES,
    "contact_added": CONTACT_VALUES,
    "contact_removed": CONTACT_VALUES,
    # To the owner: support added `contact` with the consent the owner gave it (`evidence`: where).
    "contact_consent_recorded": CONTACT_VALUES | {"evidence"},
}
# The shipped dunning steps' e-mails; a policy may name others, with the same values, that the
# operator's folder provides.
DUNNING_KINDS = ("payment_failed_1", "payment_failed_2", "payment_failed_3", "suspension_warning",
                 "account_cancelled")
SHIPPED_KINDS = (*DUNNING_KINDS, *KIND_VALUES)
BANNER_KEYS = ("owner_and_admins", "everyone", "cancelled", "reactivated")
LAYOUT_VALUES = frozenset({"locale", "subject", "support_email", "removal_url"})
_KIND_NAME = re.compile(r"^[a-z0-9_]{1,64}$")


class TemplateRefused(InvalidInput):
    """A template or catalogue that cannot be used: its file, line and why."""

    code = "invalid_template"


@dataclass(frozen=True, slots=True)
class Rendered:
    """An e-mail as it is written to the outbox."""

    subject: str
    text: str
    html: str


class RemovalFooter(NamedTuple):
    """The end of a billing contact's message, text and HTML, its link still `REMOVAL_URL`."""

    text: str
    html: str


def values_of(kind: str) -> frozenset[str]:
    """What a kind's templates may name (a dunning step's e-mail, for a kind the policy adds)."""
    return KIND_VALUES.get(kind, DUNNING_VALUES)


def templates_of(app: Ports) -> MailTemplates:
    return mail_templates(app.settings.templates_dir)


@cache
def mail_templates(templates_dir: Path | None = None) -> MailTemplates:
    """The templates of a process: the shipped ones under an operator's folder, if any."""
    return MailTemplates(templates_dir)


class MailTemplates:
    """The templates in every language, compiled when first rendered (or checked)."""

    def __init__(self, templates_dir: Path | None = None) -> None:
        self.templates_dir = templates_dir
        self.roots = ((templates_dir,) if templates_dir is not None else ()) + (TEMPLATES,)
        self._environments: dict[str, Environment] = {}
        self._footers: dict[str, RemovalFooter] = {}

    # -- rendering -------------------------------------------------------------------------------

    def email(self, kind: str, locale: str, values: Mapping[str, str]) -> Rendered:
        """The e-mail `kind` in the locale's language, naming `values` (every value of the kind)."""
        environment = self.environment(locale)
        text = environment.get_template(f"mail/{kind}.txt")
        context = text.new_context({**values, "locale": locale})
        # One line: a value with a line break must not start a header of its own.
        subject = " ".join("".join(text.blocks["subject"](context)).split())
        body = _paragraphs("".join(text.blocks["body"](context)))
        html = environment.get_template(f"mail/{kind}.html").render({**values, "locale": locale, "subject": subject})
        return Rendered(subject, body, html)

    def removal_footer(self, locale: str) -> RemovalFooter:
        """The removal footer of a billing contact's message (R4.2), its link `REMOVAL_URL`:
        the same for every e-mail of a language, rendered once."""
        found = self._footers.get(locale)
        if found is None:
            environment = self.environment(locale)
            parts = []
            for name in (TEXT_LAYOUT, LAYOUT):
                template = environment.get_template(name)
                context = template.new_context({"locale": locale, "removal_url": REMOVAL_URL})
                parts.append("".join(template.blocks["removal_footer"](context)).strip())
            found = self._footers[locale] = RemovalFooter(*parts)
        return found

    def attachment_name(self, locale: str, number: str) -> str:
        """The file name of an invoice's PDF attached to its e-mail (`invoice_filename` of mail/layout.txt)."""
        template = self.environment(locale).get_template(TEXT_LAYOUT)
        context = template.new_context({"locale": locale, "number": number})
        return "".join("".join(template.blocks["invoice_filename"](context)).split())

    def banner(self, key: str, locale: str, values: Mapping[str, str]) -> str:
        """A dunning banner's text (`key`: what a member sees, dunning/rules/banners.py)."""
        template = self.environment(locale).get_template(BANNERS)
        context = template.new_context({**values, "locale": locale})
        return " ".join("".join(template.blocks[key](context)).split())

    def has_email(self, kind: str) -> bool:
        """Whether both parts of `kind` exist, in the operator's folder or shipped."""
        return bool(_KIND_NAME.match(kind)) and all(
            any((root / "mail" / f"{kind}.{part}").is_file() for root in self.roots) for part in ("txt", "html"))

    def environment(self, locale: str) -> Environment:
        found = self._environments.get(locale)
        if found is None:
            # Jinja2 and Babel's catalogues come with the first e-mail rendered: every start asks
            # `has_email` (the policy's check), and a read renders nothing.
            from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, select_autoescape

            from renewly.config.catalogues import translations
            found = Environment(
                loader=ChoiceLoader([FileSystemLoader(root) for root in self.roots]),
                autoescape=select_autoescape(enabled_extensions=("html",), default_for_string=False, default=False),
                undefined=StrictUndefined, extensions=["jinja2.ext.i18n"], lstrip_blocks=True,
                auto_reload=False, cache_size=-1)
            # A sentence written over several lines is one message, its lines joined by a space
            # (babel.cfg extracts it the same way: trimmed = true).
            found.policies["ext.i18n.trimmed"] = True
            found.install_gettext_translations(  # type: ignore[attr-defined]
                translations(locale, self.templates_dir), newstyle=True)
            self._environments[locale] = found
        return found

    # -- the check at start ------------------------------------------------------------------------

    def check(self, kinds: Iterable[str] = ()) -> None:
        """Compile and render every template of the shipped kinds and of `kinds` (the policy's
        steps' e-mails) in every language; refuse the first bad one (TemplateRefused)."""
        every = list(dict.fromkeys((*SHIPPED_KINDS, *kinds)))
        for locale in SUPPORTED_LOCALES:
            environment = self.environment(locale)  # a bad operator catalogue is refused here
            self._check_file(environment, LAYOUT, LAYOUT_VALUES, locale, blocks=("removal_footer",))
            self._check_file(environment, TEXT_LAYOUT, frozenset({"locale", "removal_url", "number"}), locale,
                             blocks=("removal_footer", "invoice_filename"))
            self._check_file(environment, BANNERS, DUNNING_VALUES | {"locale"}, locale, blocks=BANNER_KEYS)
            for kind in every:
                if not _KIND_NAME.match(kind):
                    raise TemplateRefused(f"e-mail {kind!r}: a template's name is 1 to 64 of a-z, 0-9 and _")
                allowed = values_of(kind) | {"locale"}
                self._check_file(environment, f"mail/{kind}.txt", allowed, locale, blocks=("subject", "body"))
                self._check_file(environment, f"mail/{kind}.html", allowed | {"subject"}, locale)
        sample = {name: f"[{name}]" for name in DUNNING_VALUES.union(*KIND_VALUES.values())}
        for locale in SUPPORTED_LOCALES:
            for kind in every:
                self._rendering(f"mail/{kind}.txt", locale, partial(
                    self.email, kind, locale, {key: sample[key] for key in values_of(kind)}))
            for key in BANNER_KEYS:
                self._rendering(BANNERS, locale, partial(self.banner, key, locale, sample))
            self._rendering(TEXT_LAYOUT, locale, partial(self.removal_footer, locale))
            self._rendering(TEXT_LAYOUT, locale, partial(self.attachment_name, locale, "[number]"))

    def _check_file(self, environment: Environment, name: str, allowed: frozenset[str], locale: str,
                    blocks: tuple[str, ...] = ()) -> None:
        from jinja2 import TemplateNotFound, TemplateSyntaxError, meta, nodes
        try:
            source, found, _ = environment.loader.get_source(environment, name)  # type: ignore[union-attr]
        except TemplateNotFound:
            where = f"{self.templates_dir} or the shipped ones" if self.templates_dir else "the shipped templates"
            raise TemplateRefused(f"{name}: no such template in {where}") from None
        filename = found or name  # a FileSystemLoader always names the file
        try:
            tree = environment.parse(source, name, filename)
            template = environment.get_template(name)  # compiled: an unknown filter or test is refused here
        except TemplateSyntaxError as error:
            raise TemplateRefused(f"{error.filename or filename}:{error.lineno}: {error.message}") from None
        unknown = meta.find_undeclared_variables(tree) - allowed - set(environment.globals)
        if unknown:
            first = min((node.lineno, node.name) for node in tree.find_all(nodes.Name) if node.name in unknown)
            raise TemplateRefused(f"{filename}:{first[0]}: unknown value {first[1]!r}; this template may name "
                                  f"{', '.join(sorted(allowed))}")
        missing = [block for block in blocks if block not in template.blocks]
        if missing:
            raise TemplateRefused(f"{filename}:1: no block {missing[0]!r}: {name} defines "
                                  f"{', '.join(blocks)}")
        if self.templates_dir is not None and filename.startswith(str(self.templates_dir)) \
                and locale != SOURCE_LANGUAGE:
            self._check_translated(environment, source, filename, locale)

    def _check_translated(self, environment: Environment, source: str, filename: str, locale: str) -> None:
        """An operator's own sentence has a translation in `locale` (else it would be English there)."""
        from renewly.config.catalogues import translations
        known = translations(locale, self.templates_dir)._catalog
        for line, _, message in environment.extract_translations(source):  # type: ignore[attr-defined]
            strings = (message,) if isinstance(message, str) else tuple(message)
            msgid = strings[0]
            key = (msgid, 0) if len(strings) > 1 and strings[1] else msgid  # a plural's first form
            if msgid and key not in known:
                raise TemplateRefused(f"{filename}:{line}: no {locale} translation of {msgid!r}; add it to "
                                      f"{self.templates_dir}/locale/{locale}/LC_MESSAGES/messages.po")

    def _rendering(self, name: str, locale: str, render) -> None:
        try:
            render()
        except Exception as error:  # a template or a translation that fails on sample values
            filename, line = self._where(name, locale, error)
            raise TemplateRefused(f"{filename}:{line}: fails in {locale}: {type(error).__name__}: {error}") from None

    def _where(self, name: str, locale: str, error: Exception) -> tuple[str, int]:
        """The template's file and line: the last frame of the error in a template's code, its
        line mapped back from the compiled code to the template's source."""
        for frame in reversed(traceback.extract_tb(error.__traceback__)):
            for root in self.roots:
                path = Path(frame.filename)
                if path.is_relative_to(root) and path.suffix in (".txt", ".html"):
                    template = self.environment(locale).get_template(path.relative_to(root).as_posix())
                    return frame.filename, template.get_corresponding_lineno(frame.lineno or 1)
        return next((str(root / name) for root in self.roots if (root / name).is_file()), name), 1


def _paragraphs(body: str) -> str:
    """A text body: no blank line at either end, at most one between paragraphs."""
    return re.sub(r"\n{3,}", "\n\n", body).strip()
