"""Card numbers (PANs) in free text: Renewly never stores, logs nor repeats one (R5.4).

A PAN is 12 to 19 digits, often written in groups separated by spaces or dashes, whose last digit
is Luhn's check digit, standing apart from other letters and digits. A text that holds one (a
gateway token field given a card number, a name pasted from the wrong box) is refused or has it
withheld before it is written anywhere.
"""

from __future__ import annotations

import re
from typing import Any

from renewly.shared.errors import InvalidInput

# A number standing apart from letters and digits: a gateway's token (`pm_sim_` and random hex)
# often holds a dozen digits in a row, a tenth of which pass Luhn's check, and is no card number.
_DIGIT_RUN = re.compile(r"(?<![0-9A-Za-z])\d(?:[ -]?\d){11,18}(?![0-9A-Za-z])")
WITHHELD = "[card number withheld]"


class CardNumberRefused(InvalidInput):
    """A card number where Renewly takes none (a card token, a request's body): refused, and the
    refusal does not repeat it."""

    code = "card_number_refused"

    def __init__(self) -> None:
        super().__init__("a card number was sent: Renewly never takes one (R5.4); send the token the payment "
                         "gateway's card form gives")


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def _is_pan(run: str) -> bool:
    digits = run.replace(" ", "").replace("-", "")
    return 12 <= len(digits) <= 19 and luhn_valid(digits)


def holds_card_number(text: str) -> bool:
    return any(_is_pan(match.group()) for match in _DIGIT_RUN.finditer(text))


def withhold_card_numbers(text: str) -> str:
    """`text` with every card number in it replaced by WITHHELD."""
    return _DIGIT_RUN.sub(lambda match: WITHHELD if _is_pan(match.group()) else match.group(), text)


def holds_card_number_anywhere(document: Any) -> bool:
    """Whether a card number is in a JSON document (a request's body): in any string of it, key
    or value, at any depth. Numbers are left alone: they are ids and amounts, and a field that
    takes text refuses a number."""
    pending = [document]
    while pending:  # a loop, not recursion: a body nested thousands deep is no stack overflow
        value = pending.pop()
        if isinstance(value, str):
            if holds_card_number(value):
                return True
        elif isinstance(value, dict):
            pending.extend(value.keys())
            pending.extend(value.values())
        elif isinstance(value, list):
            pending.extend(value)
    return False
