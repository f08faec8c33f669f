"""The port e-mails leave through: a transport opens a session, which sends slices of messages
and answers for each one what the server said (never raising for one e-mail's trouble)."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from renewly.mail.rules.answers import SmtpAnswer
from renewly.shared.errors import InvalidInput


@dataclass(frozen=True)
class Envelope:
    """One e-mail to send: who it is from and to (the SMTP envelope) and its bytes."""

    sender: str  # the address alone
    recipients: tuple[str, ...]
    message: bytes


class MailSession(Protocol):
    def send(self, envelopes: Sequence[Envelope]) -> list[SmtpAnswer]:
        """Send each envelope; the server's answer for each, in their order. Raises
        `MailMisconfigured` (with the answers of what was sent before) when the server refuses
        Renewly itself: no e-mail can leave until the operator mends the settings."""


class MailTransport(Protocol):
    def session(self) -> AbstractContextManager[MailSession]:
        """Connections kept open for as many slices as the session lasts."""


class MailMisconfigured(InvalidInput):
    """The SMTP server refuses Renewly itself (authentication, TLS, a server that is no SMTP
    server): one line and exit 2 at the command line. `answers`: what the e-mails sent before
    it came to light got, None for those not sent."""

    code = "smtp_misconfigured"

    def __init__(self, message: str, answers: Sequence[SmtpAnswer | None] = ()) -> None:
        super().__init__(message)
        self.answers = list(answers)
