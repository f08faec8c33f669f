"""Loading and validating the dunning policy file (TOML): refused at start with file, line, reason.

The shipped default is `policies/default.toml` (the R8 table); `$RENEWLY_POLICY_FILE` names
another. The file is parsed with tomllib and its shape checked by the pydantic models below (a
whole number in range, a known audience, a text with known placeholders); what spans several
keys (days that increase, a template a step names, the warning before the cancellation) by the
file model's own check. tomllib keeps no line numbers, so each refusal's path (`steps[3].day`,
pydantic's error `loc`) is found again in the text: the key's line, else its table's header.
The file keeps the schedule and names each step's e-mail (`email = "payment_failed_1"`); the
e-mails and banners themselves are templates with gettext catalogues (renewly.outbox.rendering,
docs/texts.md). A file that still holds the texts of earlier releases (`[templates.*]`,
`[banners.*]`) is refused with the line of the first one and where they live now: silently
ignoring an operator's edited texts would send other words than theirs.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, model_validator

from renewly.dunning.rules.banners import Audience
from renewly.dunning.rules.schedule import Policy, Step
from renewly.shared.errors import InvalidInput

DEFAULT_POLICY = Path(__file__).with_name("policies") / "default.toml"
TEMPLATES_MOVED = ("the e-mail and banner texts are no longer in the policy file: they are templates "
                   "and catalogues, overridden from the templates_dir folder (docs/texts.md)")

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


def load_policy(path: Path | None = None, *, has_email: Callable[[str], bool] | None = None) -> Policy:
    """The policy file; `has_email(name)`: whether the templates of a step's e-mail exist
    (renewly.outbox.rendering.MailTemplates.has_email), unchecked without it."""
    path = path or policy_path()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise PolicyError(f"{path}: cannot read the policy file ({error.strerror})") from None
    except UnicodeDecodeError as error:
        raise PolicyError(f"{path}: not a text file (TOML is UTF-8; byte {error.start} is not)") from None
    return parse_policy(text, str(path), has_email=has_email)


def parse_policy(text: str, source: str = "policy", *, has_email: Callable[[str], bool] | None = None) -> Policy:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        # Python 3.11's error has no lineno: the position ends its message.
        found = re.search(r"\(at line (\d+), column \d+\)$", str(error))
        line = found.group(1) if found else max(len(text.splitlines()), 1)
        raise PolicyError(f"{source}:{line}: not valid TOML: {error}") from None
    try:
        return PolicyFile.model_validate(data, context={"has_email": has_email}).policy()
    except ValidationError as error:
        path, reason = refusal(error)
    except _Refused as refused:
        path, reason = refused.path, refused.reason
    raise PolicyError(f"{source}:{line_of(text.splitlines(), path)}: {where(path)}: {reason}")


# -- the file's shape ------------------------------------------------------------------------------------

class _Refused(Exception):
    """A rule that spans several keys is broken: the key to blame, and why (not a ValueError, so
    that pydantic lets it through with its path intact)."""

    def __init__(self, path: tuple, reason: str) -> None:
        super().__init__(reason)
        self.path, self.reason = path, reason


def _version(version: str) -> str:
    # Recorded with every step, in a column of 64 characters on both engines.
    if not 1 <= len(version.strip()) <= 64:
        raise ValueError("1 to 64 characters")
    return version


_STRICT = ConfigDict(strict=True, extra="forbid", frozen=True)


class StepEntry(BaseModel):
    """One [[steps]] table."""

    model_config = _STRICT
    # The name is how a case knows its step (the position changes when steps are added or removed),
    # stored in a column of STEP_NAME_LENGTH characters on both engines.
    name: str = Field(pattern=rf"^[a-z0-9_]{{1,{STEP_NAME_LENGTH}}}$")
    day: int = Field(ge=0, le=MAX_DAY)
    charge: bool = False
    email: str | None = Field(None, pattern=r"^[a-z0-9_]{1,64}$")  # its templates' name: mail/<email>.txt
    banner: Audience = Field(Audience.NONE, strict=False)  # its value, as written in the file
    cancel: bool = False


class PolicyFile(BaseModel):
    """The policy file as written; `policy()` turns it into the `Policy` the engine reads."""

    model_config = _STRICT
    version: Annotated[str, AfterValidator(_version)]
    reactivation_days: int = Field(7, ge=1, le=365)  # R9.2: a temporary reactivation granted by support
    deletion_days: int = Field(90, ge=0, le=MAX_DAY)  # R10.1
    invoice_retention_years: int = Field(10, ge=1, le=100)  # R10.2
    verification_void_delay_days: int = Field(3, ge=0, le=30)  # R5.2
    minimum_warning_days: int | None = Field(None, ge=0, le=MAX_DAY)  # default: the schedule's gap
    steps: list[StepEntry] = Field(min_length=1)
    # The texts of earlier releases, refused (TEMPLATES_MOVED).
    templates: dict[str, Any] | None = None
    banners: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _across_keys(self, info: ValidationInfo) -> PolicyFile:
        for table in ("templates", "banners"):
            found = getattr(self, table)
            if found is not None:
                raise _Refused((table, *list(found)[:1]), TEMPLATES_MOVED)
        has_email = (info.context or {}).get("has_email")
        names: set[str] = set()
        previous_day, last = -1, len(self.steps) - 1
        for index, step in enumerate(self.steps):
            if step.name in names:
                raise _Refused(("steps", index, "name"), f"step {step.name!r} is defined twice")
            names.add(step.name)
            if step.day <= previous_day:
                raise _Refused(("steps", index, "day"), f"must come after the previous step's day ({previous_day})")
            previous_day = step.day
            if step.email is not None and has_email is not None and not has_email(step.email):
                raise _Refused(("steps", index, "email"), f"no templates mail/{step.email}.txt and .html, "
                                                          "shipped or in the templates_dir folder (docs/texts.md)")
            if step.cancel and index != last:
                raise _Refused(("steps", index, "cancel"), "only the last step may cancel the account")
            if step.cancel and step.charge:
                raise _Refused(("steps", index, "charge"), "a cancelling step cannot charge: a cancelled account "
                                                           "is charged only after a temporary reactivation (R9)")
        self._minimum_warning()
        return self

    def _minimum_warning(self) -> int:
        """Days the warning (the step before the cancelling one) must precede the cancellation;
        by default the schedule's own gap, so that a late run cannot shorten it."""
        days = self.minimum_warning_days
        if not self.steps[-1].cancel or len(self.steps) < 2:
            if days:
                raise _Refused(("minimum_warning_days",), "needs a warning step before a cancelling last step")
            return 0
        warning, cancel = self.steps[-2], self.steps[-1]
        gap = cancel.day - warning.day
        days = gap if days is None else days
        if days > gap:
            raise _Refused(("minimum_warning_days",), f"must be at most {gap}, the days between the warning step "
                                                      f"{warning.name!r} and the cancellation, or the schedule moves")
        if days and warning.email is None:
            raise _Refused(("minimum_warning_days",),
                           f"the warning step {warning.name!r} has no e-mail to warn with")
        return days

    def policy(self) -> Policy:
        return Policy(
            version=self.version.strip(),
            steps=tuple(Step(name=s.name, day=s.day, charge=s.charge, email=s.email, banner=s.banner,
                             cancel=s.cancel) for s in self.steps),
            reactivation_days=self.reactivation_days, deletion_days=self.deletion_days,
            invoice_retention_years=self.invoice_retention_years,
            verification_void_delay_days=self.verification_void_delay_days,
            minimum_warning_days=self._minimum_warning())


# -- pydantic's errors in the file's words ---------------------------------------------------------------

def _whole(minimum: int, maximum: int, unit: str = "") -> str:
    return f"must be a whole number {unit}from {minimum} to {maximum}, got {{input!r}}"


# Why a key is refused, by its path (`*`: any step, template or locale), whatever pydantic found
# wrong with it; `{input!r}` is the value as written (None when missing).
REFUSALS: dict[tuple, str] = {
    ("version",): "a version of 1 to 64 characters is required (it is recorded with every step)",
    **{(name,): _whole(minimum, maximum) for name, minimum, _, maximum in LIMITS},
    ("minimum_warning_days",): _whole(0, MAX_DAY),
    ("steps",): "at least one [[steps]] table is required (and nothing else)",
    ("steps", "*"): "at least one [[steps]] table is required (and nothing else)",
    ("steps", "*", "name"): f"a name of at most {STEP_NAME_LENGTH} lowercase letters, digits and _ is required",
    ("steps", "*", "day"): _whole(0, MAX_DAY, "of days "),
    ("steps", "*", "charge"): "must be true or false",
    ("steps", "*", "cancel"): "must be true or false",
    ("steps", "*", "email"): "a template name of 1 to 64 lowercase letters, digits and _ is required",
    ("steps", "*", "banner"): "unknown audience {input!r}: expected none, owner_and_admins or everyone",
    ("templates",): TEMPLATES_MOVED,
    ("banners",): TEMPLATES_MOVED,
}


def refusal(error: ValidationError) -> tuple[tuple, str]:
    """The path and the reason of the one refusal to show, in the order a reader checks the file:
    an unknown key at the top first (a misspelt key explains the missing one); then key by key,
    within a step its unknown key, then the first thing wrong in it."""
    errors = error.errors()
    groups: dict[tuple, int] = {}
    for found in errors:
        groups.setdefault(tuple(found["loc"][:2]), len(groups))

    def rank(numbered: tuple[int, Any]) -> tuple[int, int, int, int]:
        number, found = numbered
        path, kind = found["loc"], found["type"]
        top_unknown = kind == "extra_forbidden" and len(path) == 1
        within = 1 if kind == "extra_forbidden" else 2
        return (not top_unknown, groups[tuple(path[:2])], within, number)

    _, first = min(enumerate(errors), key=rank)
    path, kind = tuple(first["loc"]), first["type"]
    if kind == "extra_forbidden":
        expected = StepEntry.model_fields if path[0] == "steps" else PolicyFile.model_fields
        return path, f"unknown key (expected one of {', '.join(sorted(expected))})"
    if path[0] == "steps" and len(path) == 2:  # an item that is not a table: the whole list is wrong
        path = ("steps",)
    pattern = (path[0], *("*" for _ in path[1:]))
    if path[0] == "steps" and len(path) == 3:
        pattern = ("steps", "*", path[2])
    value = None if kind == "missing" else first["input"]
    return path, REFUSALS[pattern].format(input=value)


def where(path: tuple) -> str:
    return ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in path).replace(".[", "[")


def line_of(lines: list[str], path: tuple) -> int:
    """The line that defines `path` (best effort: the key's line, else its table's header)."""
    header_line, index_seen, want_table, want_index, key = 0, -1, None, None, path[-1]
    if path[0] == "steps" and len(path) >= 2 and isinstance(path[1], int):
        want_table, want_index = "[[steps]]", path[1]
    elif path[0] in ("templates", "banners") and len(path) >= 2:
        want_table = "[" + ".".join(str(p) for p in path[:-1 if len(path) > 2 else None]) + "]"
    in_wanted = want_table is None
    for number, raw in enumerate(lines, start=1):
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
    return header_line or next((number for number, raw in enumerate(lines, start=1)
                                if raw.strip() == table + "]" or raw.strip().startswith(table + ".")), 1)
