"""A real SMTP server on loopback (aiosmtpd) for the delivery tests and bench/mail.py: it keeps
what it accepts and answers as a test tells it (a reply for the next e-mails, a recipient it
refuses, a connection it drops in the middle of the data, a latency)."""

from __future__ import annotations

import asyncio
import socket
from collections import Counter, deque
from email import message_from_bytes, policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller

# Told for the next e-mail instead of a reply: the connection is closed in the middle of its
# data, before any reply; KEEP_THEN_DROP keeps the e-mail first (the reply is what is lost).
DROP = "drop"
KEEP_THEN_DROP = "keep then drop"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Mailbox:
    """The handler of the server: what it accepted, and how it answers."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.replies: deque[str] = deque()  # the DATA replies (or DROP) of the next e-mails
        self.refused: dict[str, str] = {}  # recipient -> its RCPT reply
        self.latency = 0.0  # seconds before the reply to each e-mail's data
        self.tls: list[str | None] = []  # the TLS version each kept e-mail came over (None: plain text)

    @property
    def message_ids(self) -> Counter[str]:
        return Counter(message["Message-ID"] for message in self.messages)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.refused:
            return self.refused[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.latency:
            await asyncio.sleep(self.latency)
        reply = self.replies.popleft() if self.replies else None
        if reply in (DROP, KEEP_THEN_DROP):
            if reply == KEEP_THEN_DROP:
                self._keep(server, envelope)
            server.transport.close()
            return "250 never heard"
        if reply is not None:
            return reply
        self._keep(server, envelope)
        return "250 2.0.0 queued"

    def _keep(self, server, envelope) -> None:
        tls = server.transport.get_extra_info("ssl_object")
        self.tls.append(tls.version() if tls is not None else None)
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))


class SmtpServer:
    """aiosmtpd on 127.0.0.1:`port`, started and stopped at will (a server down, then back)."""

    def __init__(self, mailbox: Mailbox | None = None, port: int | None = None, **controller) -> None:
        self.mailbox = mailbox or Mailbox()
        self.port = port or free_port()
        self._controller_options = controller
        self._controller: Controller | None = None

    def start(self) -> SmtpServer:
        self._controller = Controller(self.mailbox, hostname="127.0.0.1", port=self.port,
                                      **self._controller_options)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


def mail_settings(port: int, **more) -> dict:
    """The `[mail]` settings of a Renewly sending to 127.0.0.1:`port` (plain SMTP on loopback).
    A long timeout: on a loaded CI machine the sink answers late; a test of timeouts sets its own."""
    return {"host": "127.0.0.1", "port": port, "security": "none", "from_address": "Billing <billing@seller.example>",
            "retry_first_seconds": 60, "retry_max_seconds": 3600, "timeout_seconds": 60, **more}
