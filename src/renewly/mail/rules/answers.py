"""What an SMTP server's answer to one e-mail means for its outbox row.

A 2xx reply to the data is delivery. A 4xx reply, or no reply at all (no connection, a
connection dropped before the data was accepted, a timeout), is temporary: the e-mail is tried
again later, as many times as it takes, so that a server down for hours loses nothing. A 5xx
reply is permanent: the row is marked failed with the server's words (RFC 5321 section 4.2.1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from enum import Enum


class Verdict(Enum):
    DELIVERED = "delivered"
    TRY_AGAIN = "try_again"
    FAILED = "failed"


@dataclass(frozen=True)
class SmtpAnswer:
    """The server's last word on one e-mail: its reply code (None: no reply came) and text, and
    the recipients it refused while accepting the e-mail for the others. `permanent`: a failure
    no retry can mend though no server said so (an address that cannot go in an envelope)."""

    code: int | None
    text: str
    refused: tuple[str, ...] = ()
    permanent: bool = False

    def describe(self) -> str:
        """One line: the reply as the server said it ("550 5.1.1 no such user"), or what happened."""
        said = " ".join(self.text.split())
        return (f"{self.code} {said}" if self.code is not None else said)[:1000]


def verdict(answer: SmtpAnswer) -> Verdict:
    if answer.permanent:
        return Verdict.FAILED
    if answer.code is None or 400 <= answer.code < 500:
        return Verdict.TRY_AGAIN
    if answer.code >= 500:
        return Verdict.FAILED
    return Verdict.DELIVERED


def combine(answers: Sequence[tuple[tuple[str, ...], SmtpAnswer]]) -> SmtpAnswer:
    """The answer for an outbox row sent as several messages (one per billing contact), from each
    message's recipients and answer: tried again if any message is to be tried again (all of them
    go again: at least once), failed if all failed, otherwise delivered, the recipients of the
    messages refused for good named among the refused."""
    if not answers:
        raise ValueError("no answer to combine")
    if len(answers) == 1:
        return answers[0][1]
    verdicts = [verdict(answer) for _, answer in answers]
    for decided, (_, answer) in zip(verdicts, answers):
        if decided is Verdict.TRY_AGAIN:
            return answer
    if all(decided is Verdict.FAILED for decided in verdicts):
        return answers[0][1]
    delivered = next(answer for decided, (_, answer) in zip(verdicts, answers) if decided is Verdict.DELIVERED)
    refused = [recipient for decided, (recipients, answer) in zip(verdicts, answers)
               for recipient in (recipients if decided is Verdict.FAILED else answer.refused)]
    return SmtpAnswer(delivered.code, delivered.text, refused=tuple(refused))


# 2**20 times the first delay is already far past any cap the settings allow.
_MOST_DOUBLINGS = 20


def retry_delay(failures: int, first: timedelta, cap: timedelta) -> timedelta:
    """How long after its `failures`-th temporary failure (1, 2, ...) an e-mail is tried again:
    `first`, then doubled at each failure, never more than `cap`."""
    return min(first * (1 << min(max(failures, 1) - 1, _MOST_DOUBLINGS)), cap)
