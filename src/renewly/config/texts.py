"""The texts the pure rules need, in one catalogue: `text(message_id, locale, **values)`.

The catalogue is `texts.toml` beside this module: a message id (`invoice.period`,
`decline.expired_card`) names one text per language, with str.format placeholders filled with
values already in the reader's language (dates and amounts formatted by Babel). It is read once,
at the first lookup, and checked whole: every message has every language of `LANGUAGES` and no
other, each language names the same placeholders, none with a format or a conversion.

Not here: the e-mails and the dunning banners (Jinja2 templates with gettext catalogues,
renewly.outbox.rendering), and the invoice document's labels (renewly.config.catalogues).
docs/texts.md says where each text lives and how an operator overrides it.

This module imports nothing from Renewly, so the pure rules (`billing/rules`, `payments/rules`)
may read it.
"""

from __future__ import annotations

import string
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

CATALOGUE_FILE = Path(__file__).with_name("texts.toml")
# The languages an account may choose (accounts.rules.members.SUPPORTED_LOCALES; a test keeps
# the two equal).
LANGUAGES = ("en", "fr")


class CatalogueError(ValueError):
    """The catalogue file is malformed (a bug of the release, caught by the tests)."""


@dataclass(frozen=True, slots=True)
class Message:
    id: str
    texts: Mapping[str, str]  # by language
    placeholders: frozenset[str]


def text(message_id: str, locale: str, /, **values: Any) -> str:
    """The message in the locale's language, its placeholders filled with `values`."""
    try:
        found = catalogue()[message_id].texts[locale]
    except KeyError:
        raise KeyError(f"no text {message_id!r} in {locale!r}") from None
    return found.format(**values)


def has_text(message_id: str) -> bool:
    return message_id in catalogue()


@lru_cache(maxsize=1)
def catalogue() -> Mapping[str, Message]:
    return parse_catalogue(CATALOGUE_FILE.read_text(encoding="utf-8"), str(CATALOGUE_FILE))


def parse_catalogue(source_text: str, source: str = "catalogue") -> dict[str, Message]:
    messages: dict[str, Message] = {}
    _collect(tomllib.loads(source_text), (), messages, source)
    return messages


def _collect(table: dict[str, Any], prefix: tuple[str, ...], messages: dict[str, Message], source: str) -> None:
    texts = {key: value for key, value in table.items() if not isinstance(value, dict)}
    if not texts:  # a group of messages
        for key, value in table.items():
            _collect(value, (*prefix, key), messages, source)
        return
    message_id = ".".join(prefix)
    if len(texts) != len(table) or not prefix:
        raise CatalogueError(f"{source}: {message_id or 'the top'} mixes texts and messages")
    if set(texts) != set(LANGUAGES):
        raise CatalogueError(f"{source}: {message_id} has {', '.join(sorted(texts))}; "
                             f"every message has {', '.join(LANGUAGES)}")
    found = {language: _placeholders(message_id, language, texts[language], source) for language in LANGUAGES}
    if len(set(found.values())) != 1:
        raise CatalogueError(f"{source}: {message_id}: the languages name different placeholders ("
                             + "; ".join(f"{language}: {', '.join(sorted(names)) or 'none'}"
                                         for language, names in found.items()) + ")")
    messages[message_id] = Message(message_id, {language: texts[language] for language in LANGUAGES},
                                   found[LANGUAGES[0]])


def _placeholders(message_id: str, language: str, value: Any, source: str) -> frozenset[str]:
    where = f"{source}: {message_id}.{language}"
    if not isinstance(value, str) or not value.strip():
        raise CatalogueError(f"{where}: a non-empty text is required")
    try:
        fields = [(name, spec, conversion) for _, name, spec, conversion in string.Formatter().parse(value)
                  if name is not None]
    except ValueError as error:
        raise CatalogueError(f"{where}: malformed placeholder: {error}") from None
    for name, spec, conversion in fields:
        # Values come formatted in the reader's language; a named field only ({day}, not {0} or {}).
        if spec or conversion or not name.isidentifier():
            raise CatalogueError(f"{where}: a placeholder is a plain name ({{{name}}}), not {{{name}...}}")
    return frozenset(name for name, _, _ in fields)
