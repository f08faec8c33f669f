"""E-mail delivery: the e-mails of the outbox leave over SMTP (docs/mail.md).

`delivery.py` is the batch (`renewly mail send`, the worker's `mail` batch): it claims the
e-mails due, sends them through the transport of `Ports.mailer` (adapters/mail/) and marks
each delivered, to try again later, or failed; `letters.py` turns an outbox row into the
message sent (its Message-ID fixed by the row); `rules/` decides what an SMTP answer means
and when a temporary failure is tried again.
"""
