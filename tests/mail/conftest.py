from __future__ import annotations

import pytest

from tests.mail.smtp_server import SmtpServer


@pytest.fixture
def smtp():
    """A real SMTP server on loopback, running for the test."""
    server = SmtpServer().start()
    yield server
    server.stop()

