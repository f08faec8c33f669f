"""Loading and validating the dunning policy file (TOML): refused at start with file, line, reason.

The shipped default is `policies/default.toml` (the R8 table); `$RENEWLY_POLICY_FILE` names
another. The file is parsed with tomllib; its meaning is checked here, and each refusal names
the line of the offending key.
"""

from __future__ import annotations

import os
import re
import string
import tomllib
from pathlib import Path
from typing import Any

from renewly.accounts.rules.members import SUPPORTED_LOCALES
from renewly.dunning.rules.schedule import Audience, EmailTemplate, Policy, Step
from renewly.shared.errors import InvalidInput

DEFAULT_POLICY = Path(__file__).with_name("policies") / "default.toml"
# What a text may name; each is filled in the reader's language (empty where it does not apply).
PLACEHOLDERS = frozenset({"account", "invoice", "amount", "renewal_date", "cancel_date", "deletion_date",
                          "support_email", "reason", "next_attempt_date", "reactivation_end_date"})
# E-mails Renewly sends outside the schedule; the file must provide them too: the confirmation of
# a recovery (R11), and the owner's notice that the retry of a new card was declined (R7.1).
REQUIRED_TEMPLATES = ("payment_confirmed", "card_retry_declined")
# Banners by what a member sees: past due (two audiences), cancelled, and the owner's during a
# temporary reactivation (R9.2).
BANNER_KEYS = ("owner_and_admins", "everyone", "cancelled", "reactivated")
STEP_KEYS = {"name", "day", "charge", "email", "banner", "cancel"}
TOP_KEYS = {"version", "reactivation_days", "deletion_days", "invoice_retention_years",
            "verification_void_delay_days", "minimum_warning_days", "steps", "templates", "banners"}


# Days and years a policy may name, at most: far beyond any schedule, short of dates no calendar
# holds (a step on day 3,000,000 overflowed the date arithmetic of every sweep).
MAX_DAY = 3650
STEP_NAME_LENGTH = 64
LIMITS = (("reactivation_days", 1, 7, 365), ("deletion_days", 0, 90, MAX_DAY),
          ("invoice_retention_years", 1, 10, 100), ("verification_void_delay_days", 0, 3, 30))


class PolicyError(InvalidInput):
    code = "invalid_policy"


def policy_path() -> Path:
    named = os.environ.get("RENEWLY_POLICY_FILE")
    return Path(named) if named else DEFAULT_POLICY


def load_policy(path: Path | None = None) -> Policy:
    path = path or policy_path()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise PolicyError(f"{path}: cannot read the policy file ({error.strerror})") from None
    except UnicodeDecodeError as error:
        raise PolicyError(f"{path}: not a text file (TOML is UTF-8; byte {error.start} is not)") from None
    return parse_policy(text, str(path))


def parse_policy(text: str, source: str = "policy") -> Policy:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        # Python 3.11's error has no lineno: the position ends its message.
        found = re.search(r"\(at line (\d+), column \d+\)$", str(error))
        line = found.group(1) if found else max(len(text.splitlines()), 1)
        raise PolicyError(f"{source}:{line}: not valid TOML: {error}") from None
    checker = _Checker(text, source)
    return checker.policy(data)


class _Checker:
    def __init__(self, text: str, source: str) -> None:
        self.lines = text.splitlines()
        self.source = source

    def fail(self, path: tuple, reason: str):
        where = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in path).replace(".[", "[")
        raise PolicyError(f"{self.source}:{self.line_of(path)}: {where}: {reason}")

    def line_of(self, path: tuple) -> int:
        """The line that defines `path` (best effort: the key's line, else its table's header)."""
        header_line, index_seen, want_table, want_index, key = 0, -1, None, None, path[-1]
        if path[0] == "steps" and len(path) >= 2 and isinstance(path[1], int):
            want_table, want_index = "[[steps]]", path[1]
        elif path[0] in ("templates", "banners") and len(path) >= 2:
            want_table = "[" + ".".join(str(p) for p in path[:-1 if len(path) > 2 else None]) + "]"
        in_wanted = want_table is None
        for number, raw in enumerate(self.lines, start=1):
            line = raw.strip()
            if line.startswith("["):
                if want_table == "[[steps]]" and line == "[[steps]]":
                    index_seen += 1
                    in_wanted = index_seen == want_index
                    header_line = number if in_wanted else header_line
                elif want_table is not None and line == want_table:
                    in_wanted, header_line = True, number
                else:
                    in_wanted = False
                continue
            if in_wanted and isinstance(key, str) and re.match(rf"^{re.escape(key)}\s*=", line):
                return number
        # Else the table named by the path itself, or its first sub-table ([templates.x.en] for templates.x).
        table = "[" + ".".join(str(p) for p in path)
        return header_line or next((number for number, raw in enumerate(self.lines, start=1)
                                    if raw.strip() == table + "]" or raw.strip().startswith(table + ".")), 1)

    def policy(self, data: dict[str, Any]) -> Policy:
        for key in data:
            if key not in TOP_KEYS:
                self.fail((key,), f"unknown key (expected one of {', '.join(sorted(TOP_KEYS))})")
        version = data.get("version")
        # Recorded with every step, in a column of 64 characters on both engines.
        if not isinstance(version, str) or not version.strip() or len(version.strip()) > 64:
            self.fail(("version",), "a version of 1 to 64 characters is required (it is recorded with every step)")
        numbers = {name: self.whole(data, name, minimum, default, maximum)
                   for name, minimum, default, maximum in LIMITS}
        templates = self.templates(data.get("templates", {}))
        steps = self.steps(data.get("steps"), {name for name, _ in templates})
        for name in REQUIRED_TEMPLATES:
            if (name, "en") not in templates:
                self.fail(("templates", name), "this e-mail template is required")
        return Policy(version=version.strip(), steps=steps, templates=templates,
                      banners=self.banners(data.get("banners", {})),
                      minimum_warning_days=self.minimum_warning(data, steps), **numbers)

    def minimum_warning(self, data: dict, steps: tuple[Step, ...]) -> int:
        """Days the warning (the step before the cancelling one) must precede the cancellation;
        by default the schedule's own gap, so that a late run cannot shorten it."""
        if not steps[-1].cancel or len(steps) < 2:
            if self.whole(data, "minimum_warning_days", 0, 0):
                self.fail(("minimum_warning_days",), "needs a warning step before a cancelling last step")
            return 0
        warning, cancel = steps[-2], steps[-1]
        gap = cancel.day - warning.day
        days = self.whole(data, "minimum_warning_days", 0, gap)
        if days > gap:
            self.fail(("minimum_warning_days",), f"must be at most {gap}, the days between the warning step "
                                                 f"{warning.name!r} and the cancellation, or the schedule moves")
        if days and warning.email is None:
            self.fail(("minimum_warning_days",), f"the warning step {warning.name!r} has no e-mail to warn with")
        return days

    def whole(self, data: dict, name: str, minimum: int, default: int, maximum: int = MAX_DAY) -> int:
        value = data.get(name, default)
        if not isinstance(value, int) or isinstance(value, bool) or not minimum <= value <= maximum:
            self.fail((name,), f"must be a whole number from {minimum} to {maximum}, got {value!r}")
        return value

    def steps(self, raw: Any, template_names: set[str]) -> tuple[Step, ...]:
        if not isinstance(raw, list) or not raw or not all(isinstance(item, dict) for item in raw):
            self.fail(("steps",), "at least one [[steps]] table is required (and nothing else)")
        steps, names, previous_day = [], set(), -1
        for index, item in enumerate(raw):
            for key in item:
                if key not in STEP_KEYS:
                    self.fail(("steps", index, key), f"unknown key (expected one of {', '.join(sorted(STEP_KEYS))})")
            name = item.get("name")
            # The name is how a case knows its step (the position changes when steps are added or
            # removed), stored in a column of STEP_NAME_LENGTH characters on both engines.
            if not isinstance(name, str) or not re.fullmatch(rf"[a-z0-9_]{{1,{STEP_NAME_LENGTH}}}", name):
                self.fail(("steps", index, "name"), f"a name of at most {STEP_NAME_LENGTH} lowercase letters, "
                                                    "digits and _ is required")
            if name in names:
                self.fail(("steps", index, "name"), f"step {name!r} is defined twice")
            names.add(name)
            day = item.get("day")
            if not isinstance(day, int) or isinstance(day, bool) or not 0 <= day <= MAX_DAY:
                self.fail(("steps", index, "day"), f"must be a whole number of days from 0 to {MAX_DAY}, got {day!r}")
            if day <= previous_day:
                self.fail(("steps", index, "day"), f"must come after the previous step's day ({previous_day})")
            previous_day = day
            for flag in ("charge", "cancel"):
                if not isinstance(item.get(flag, False), bool):
                    self.fail(("steps", index, flag), "must be true or false")
            email = item.get("email")
            if email is not None and email not in template_names:
                self.fail(("steps", index, "email"), f"no template named {email!r} in [templates]")
            banner = item.get("banner", "none")
            if banner not in {a.value for a in Audience}:
                self.fail(("steps", index, "banner"),
                          f"unknown audience {banner!r}: expected none, owner_and_admins or everyone")
            cancel = item.get("cancel", False)
            if cancel and index != len(raw) - 1:
                self.fail(("steps", index, "cancel"), "only the last step may cancel the account")
            if cancel and item.get("charge", False):
                self.fail(("steps", index, "charge"), "a cancelling step cannot charge: a cancelled account "
                                                      "is charged only after a temporary reactivation (R9)")
            steps.append(Step(name=name, day=day, charge=item.get("charge", False), email=email,
                              banner=Audience(banner), cancel=cancel))
        return tuple(steps)

    def templates(self, raw: Any) -> dict[tuple[str, str], EmailTemplate]:
        found = {}
        if not isinstance(raw, dict):
            self.fail(("templates",), "must be a table of templates")
        for name, by_locale in raw.items():
            if not isinstance(by_locale, dict):
                self.fail(("templates", name), "must be a table of the en and fr versions")
            for locale in SUPPORTED_LOCALES:
                if locale not in by_locale:
                    self.fail(("templates", name), f"the {locale!r} version is missing")
            for locale, template in by_locale.items():
                if locale not in SUPPORTED_LOCALES:
                    self.fail(("templates", name, locale), f"unsupported locale {locale!r}")
                if not isinstance(template, dict):
                    self.fail(("templates", name, locale), "must be a table with a subject and a body")
                for part in ("subject", "body"):
                    self.placeholders(template.get(part), ("templates", name, locale, part))
                found[(name, locale)] = EmailTemplate(subject=template["subject"], body=template["body"])
        return found

    def banners(self, raw: Any) -> dict[tuple[str, str], str]:
        found = {}
        for locale in SUPPORTED_LOCALES:
            texts = raw.get(locale) if isinstance(raw, dict) else None
            if not isinstance(texts, dict):
                self.fail(("banners", locale), "the banner texts for this locale are missing")
            for key in BANNER_KEYS:
                self.placeholders(texts.get(key), ("banners", locale, key))
                found[(key, locale)] = texts[key]
        return found

    def placeholders(self, text: Any, path: tuple) -> None:
        if not isinstance(text, str) or not text.strip():
            self.fail(path, "a non-empty text is required")
        try:
            parsed = [(name, spec, conversion) for _, name, spec, conversion in string.Formatter().parse(text)
                      if name is not None]
        except ValueError as error:
            self.fail(path, f"malformed placeholder: {error}")
        # Every value is a text already in the reader's language: a format ({amount:d}) or a
        # conversion ({amount!r}) would fail, or pad a million spaces, in the middle of a sweep.
        shaped = [name for name, spec, conversion in parsed if spec or conversion]
        if shaped:
            self.fail(path, f"placeholders take no format or conversion: {{{shaped[0]}...}}; write {{{shaped[0]}}}")
        fields = {name for name, _, _ in parsed}
        unknown = fields - PLACEHOLDERS
        if unknown:
            self.fail(path, f"unknown placeholder(s) {', '.join('{' + u + '}' for u in sorted(unknown))}; "
                            f"known: {', '.join('{' + p + '}' for p in sorted(PLACEHOLDERS))}")
