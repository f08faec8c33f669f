"""Sending e-mail: the message (RFC 5322, message.py), the transport's port (port.py) and the
SMTP transport (smtp.py, aiosmtplib over a handful of connections)."""
