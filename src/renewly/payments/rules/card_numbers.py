"""Card numbers (PANs) in free text: Renewly never stores, logs nor repeats one (R5.4).

A PAN is 12 to 19 digits, often written in groups separated by spaces or dashes, whose last digit
is Luhn's check digit. A text that holds one (a gateway token field given a card number, a name
pasted from the wrong box) is refused or has it withheld before it is written anywhere.
"""

from __future__ import annotations

import re

_DIGIT_RUN = re.compile(r"\d(?:[ -]?\d){11,18}")
WITHHELD = "[card number withheld]"


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
