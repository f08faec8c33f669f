"""`renewly mail send`: the e-mails due leave the outbox over SMTP (docs/mail.md)."""

from __future__ import annotations

import typer

from renewly.cli.common import JsonFlag, echo_wrapped, group, open_app, print_json, stopping_on_ctrl_c

app = group("E-mail delivery over SMTP (docs/mail.md).")


@app.command("send")
def send(as_json: JsonFlag = False) -> None:
    """Send every e-mail due, once (what the worker's mail batch does); exit 1 if some are left.

    Temporary failures (4xx, no connection) are tried again later, 5xx ones marked failed
    (renewly outbox list --failed). Without an SMTP server configured: exit 2."""
    from renewly.cli.progress import bar
    from renewly.mail.delivery import NO_SMTP, deliver_due, due_count
    from renewly.shared.errors import InvalidInput
    application = open_app()
    if application.mailer is None:
        raise InvalidInput(NO_SMTP, code="mail_off")
    now = application.clock.now()
    total = due_count(application, now) if not as_json else None
    with (bar("e-mails", total, as_json=as_json, unit="e-mails") as update,
          stopping_on_ctrl_c(application, say=update and (lambda said: update(what=said)))):
        report = deliver_due(application, now, on_slice=update and (
            lambda done: update(completed=done.delivered + done.to_retry + done.failed)))
    print_json(report.as_json()) if as_json else echo_wrapped(report.describe())
    if application.stop.asked:
        echo_wrapped("interrupted: stopped after the slice in hand; `renewly mail send` sends the rest",
                     err=as_json)
        raise typer.Exit(130)
    if report.left_undone:
        raise typer.Exit(1)
