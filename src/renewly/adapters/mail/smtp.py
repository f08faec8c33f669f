"""The SMTP transport: aiosmtplib over a handful of connections (`mail.connections`).

A session runs an event loop in a thread of its own, so that the batch around it stays plain
synchronous code (and works the same when its caller has a loop of its own). Each slice is
shared by up to `connections` senders, each with one SMTP connection, which stays open from one
slice to the next for as long as the session lasts. What one e-mail's trouble is (a 4xx or 5xx
reply, a connection dropped, a timeout) is its answer, never an exception: the batch decides
what it means (renewly.mail.rules.answers). What is Renewly's own trouble (the server refuses
its username and password, its TLS, or is no SMTP server) raises `MailMisconfigured`.

When no connection can be opened at all (refused, no route, a timeout, 421 at the greeting),
the rest of the slice is answered with that at once, without a connection attempt per e-mail:
a server down for hours costs one attempt per sender (`connections`, made at once) per slice.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

import aiosmtplib

from renewly.adapters.mail.port import Envelope, MailMisconfigured
from renewly.mail.rules.answers import SmtpAnswer

if TYPE_CHECKING:
    from renewly.config.settings import MailSettings


class SmtpTransport:
    def __init__(self, settings: MailSettings) -> None:
        self.settings = settings

    @contextmanager
    def session(self) -> Iterator[SmtpSession]:
        session = SmtpSession(self.settings)
        try:
            yield session
        finally:
            session.close()


@cache
def _local_hostname() -> str:
    """What Renewly says it is in EHLO: this machine's name (asked once: it may ask DNS)."""
    return socket.getfqdn()


@dataclass
class _Slice:
    pending: deque[tuple[int, Envelope]]
    answers: list[SmtpAnswer | None]
    connecting_or_open: int = 0  # senders with a connection, or about to have one
    unreachable: SmtpAnswer | None = None  # no connection could be opened: the rest's answer
    misconfigured: str | None = None


class SmtpSession:
    def __init__(self, settings: MailSettings) -> None:
        self.settings = settings
        self._idle: list[aiosmtplib.SMTP] = []  # connections kept for the next slice
        self._tls = tls_context(settings) if settings.security != "none" else None
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="smtp", daemon=True)
        self._thread.start()

    def send(self, envelopes: Sequence[Envelope]) -> list[SmtpAnswer]:
        if not envelopes:
            return []
        return asyncio.run_coroutine_threadsafe(self._send(list(envelopes)), self._loop).result()

    def close(self) -> None:
        if self._loop.is_running():
            try:
                asyncio.run_coroutine_threadsafe(self._quit_all(), self._loop).result(self.settings.timeout_seconds)
            except Exception:  # closing: a server gone already is no news
                pass
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join()
        self._loop.close()

    async def _quit_all(self) -> None:
        idle, self._idle = self._idle, []
        for client in idle:
            try:
                await client.quit()
            except Exception:
                client.close()

    async def _send(self, envelopes: list[Envelope]) -> list[SmtpAnswer]:
        work = _Slice(deque(enumerate(envelopes)), [None] * len(envelopes))
        # Again while e-mails are left: a sender that could not connect leaves its e-mail to the
        # others, which may have finished meanwhile.
        while work.pending and work.misconfigured is None:
            senders = min(self.settings.connections, len(work.pending))
            await asyncio.gather(*(self._sender(work) for _ in range(senders)))
        if work.misconfigured is not None:
            raise MailMisconfigured(work.misconfigured, work.answers)
        return [answer for answer in work.answers if answer is not None]

    async def _sender(self, work: _Slice) -> None:
        client = self._idle.pop() if self._idle else None
        if client is not None:
            work.connecting_or_open += 1
        try:
            while work.pending and work.misconfigured is None:
                index, envelope = work.pending.popleft()
                if work.unreachable is not None:
                    work.answers[index] = work.unreachable
                    continue
                if client is None or not client.is_connected:
                    if client is None:
                        work.connecting_or_open += 1
                    client = None
                    try:
                        client = await self._connect()
                    except MailMisconfigured as error:
                        work.misconfigured = error.message
                        work.pending.appendleft((index, envelope))
                        work.connecting_or_open -= 1
                        return
                    except _Unreachable as error:
                        work.connecting_or_open -= 1
                        if work.connecting_or_open > 0:  # the others carry on with it
                            work.pending.appendleft((index, envelope))
                            return
                        work.unreachable = error.answer
                        work.answers[index] = error.answer
                        continue
                answer, keep = await self._deliver(client, envelope)
                work.answers[index] = answer
                if not keep:
                    client.close()
                    client = None
                    work.connecting_or_open -= 1
        finally:
            if client is not None:
                work.connecting_or_open -= 1
                if client.is_connected:
                    self._idle.append(client)

    async def _connect(self) -> aiosmtplib.SMTP:
        settings = self.settings
        client = aiosmtplib.SMTP(
            hostname=settings.host, port=settings.smtp_port, timeout=settings.timeout_seconds,
            local_hostname=_local_hostname(), use_tls=settings.security == "tls",
            start_tls=settings.security == "starttls", tls_context=self._tls,
            username=settings.username or None,
            password=settings.password.get_secret_value() or None)
        where = f"{settings.host}:{settings.smtp_port}"
        try:
            await client.connect()
        except aiosmtplib.SMTPAuthenticationError as error:
            raise MailMisconfigured(f"the SMTP server {where} refused mail.username and mail.password: "
                                    f"{_said(error)}") from None
        except aiosmtplib.SMTPNotSupported as error:
            raise MailMisconfigured(f"the SMTP server {where} does not offer what mail.security or "
                                    f"mail.username needs: {error}") from None
        except aiosmtplib.SMTPResponseException as error:
            # A 4xx greeting (421: too busy, shutting down) passes; a 5xx one says no SMTP here for us.
            if 400 <= error.code < 500:
                raise _Unreachable(SmtpAnswer(error.code, f"{where}: {error.message}")) from None
            raise MailMisconfigured(f"the SMTP server {where} refuses Renewly: {_said(error)}") from None
        except (aiosmtplib.SMTPException, OSError) as error:
            if _is_tls_trouble(error):
                hint = "" if not _is_tls_trouble(error, ssl.SSLCertVerificationError) else (
                    f"; its certificate is checked against {settings.ca_file} (mail.ca_file)" if settings.ca_file
                    else "; a private authority's certificate goes in mail.ca_file")
                raise MailMisconfigured(f"TLS with the SMTP server {where} failed ({mail_security(settings)}): "
                                        f"{_first_line(error)}{hint}") from None
            if isinstance(error, aiosmtplib.SMTPException) and not isinstance(error, _NO_CONNECTION):
                # It answered, but not as Renewly needs ("STARTTLS extension not supported").
                raise MailMisconfigured(f"the SMTP server {where} does not offer what mail.security or "
                                        f"mail.username needs: {_first_line(error)}") from None
            raise _Unreachable(SmtpAnswer(None, f"no connection to {where}: {_first_line(error)}")) from None
        return client

    async def _deliver(self, client: aiosmtplib.SMTP, envelope: Envelope) -> tuple[SmtpAnswer, bool]:
        """The server's answer to one e-mail, and whether its connection is fit for the next."""
        try:
            refused, reply = await client.sendmail(envelope.sender, list(envelope.recipients), envelope.message)
        except aiosmtplib.SMTPRecipientsRefused as error:
            codes = [each.code for each in error.recipients]
            # Tried again if one of them may yet accept it; failed when every one refused for good.
            code = next((each for each in codes if 400 <= each < 500), max(codes))
            text = "; ".join(f"{each.recipient}: {each.code} {each.message}" for each in error.recipients)
            return SmtpAnswer(code, f"every recipient refused: {text}"), client.is_connected
        except aiosmtplib.SMTPResponseException as error:
            # 421: the server is closing the connection; after any other reply it took RSET.
            return SmtpAnswer(error.code, error.message), client.is_connected and error.code != 421
        except ValueError as error:  # an address aiosmtplib cannot put in an envelope
            return SmtpAnswer(None, f"cannot be sent: {error}", permanent=True), client.is_connected
        except (aiosmtplib.SMTPException, OSError) as error:
            # Dropped, timed out, or the server said something unreadable: the data may or may not
            # have been accepted; it is sent again, with the same Message-ID.
            return SmtpAnswer(None, f"{type(error).__name__}: {_first_line(error)}"), False
        answer = SmtpAnswer(250, reply, refused=tuple(sorted(refused)))
        return answer, client.is_connected


# What says that the server could not be reached, or went away: a temporary state.
_NO_CONNECTION = (aiosmtplib.SMTPConnectError, aiosmtplib.SMTPTimeoutError, aiosmtplib.SMTPServerDisconnected)


class _Unreachable(Exception):
    def __init__(self, answer: SmtpAnswer) -> None:
        super().__init__(answer.text)
        self.answer = answer


def tls_context(settings: MailSettings) -> ssl.SSLContext:
    """How the server's certificate is checked, for STARTTLS and implicit TLS alike: its chain up
    to an authority the system trusts, or one of `mail.ca_file` alone; its name, `mail.host`; TLS
    1.2 at least (the standard library's defaults, stated here so that nobody loosens them)."""
    context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH,
                                         cafile=str(settings.ca_file) if settings.ca_file else None)
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    context.minimum_version = max(context.minimum_version, ssl.TLSVersion.TLSv1_2)
    return context


def mail_security(settings: MailSettings) -> str:
    return f"mail.security = {settings.security!r}"


def _said(error: aiosmtplib.SMTPResponseException) -> str:
    return f"{error.code} {' '.join(error.message.split())}"


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _is_tls_trouble(error: BaseException, kind: type[BaseException] = ssl.SSLError) -> bool:
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, kind):
            return True
        seen = seen.__cause__ or seen.__context__
    return False
