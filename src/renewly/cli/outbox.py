"""`renewly outbox ...`: e-mails and events Renewly wrote, and where their delivery stands."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Annotated, Any

import typer

from renewly.cli.common import (
    AccountFilter,
    JsonFlag,
    actor,
    echo_wrapped,
    group,
    json_default,
    open_app,
    parse_date,
    print_json,
    print_table,
    utc_minute,
    write_new_file,
)

app = group("E-mails and events written by Renewly, and their delivery.")


@app.command("list")
def outbox_list(account: AccountFilter = None,
                topic: Annotated[str | None, typer.Option(help="e.g. email")] = None,
                failed: Annotated[bool, typer.Option("--failed", help="Only the e-mails that failed for good "
                                                                      "(a 5xx reply), with the reason.")] = False,
                as_json: JsonFlag = False,
                ) -> None:
    """E-mails and events written by Renewly, oldest first."""
    from renewly.outbox.reading import list_outbox
    rows = list_outbox(open_app(), account_id=account, topic=topic, failed=failed)
    if as_json:
        print_json(rows)
        return
    if failed:
        print_table("E-mails that failed", ["id", "failed (UTC)", "account", "to", "reason"],
                    [[r["id"], utc_minute(r["failed_at"]), r["account_id"], ", ".join(r["payload"]["recipients"]),
                      r["last_error"]] for r in rows], whole=("id", "failed (UTC)"))
        return
    print_table("Outbox", ["at (UTC)", "account", "topic", "what"],
                [[utc_minute(r["created_at"]), r["account_id"], r["topic"],
                  (f"{r['payload']['subject']} → {', '.join(r['payload']['recipients'])}" if r["topic"] == "email"
                   else json.dumps(r["payload"], default=json_default))] for r in rows], whole=("at (UTC)", "topic"))


@app.command("show")
def outbox_show(row_id: Annotated[int, typer.Argument(metavar="ID", help="The outbox row's id (outbox list --json).")],
                eml: Annotated[Path | None, typer.Option(
                    "--eml", metavar="FILE", help="Write the e-mail, exactly as it is sent, to FILE (a new file: "
                                                  "an existing one is never overwritten).")] = None,
                to: Annotated[str | None, typer.Option(
                    "--to", metavar="EMAIL", help="The message to this recipient (a billing contact gets one "
                                                  "of its own, with its removal link); default: the first.")] = None,
                as_json: JsonFlag = False) -> None:
    """One e-mail or event: where its delivery stands, and the e-mail as it is sent."""
    from renewly.outbox.reading import delivery_state, outbox_row
    from renewly.shared.errors import InvalidInput
    application = open_app()
    row = outbox_row(application, row_id)
    messages = _messages(application, row) if row["topic"] == "email" else []
    if to is not None:
        wanted = to.strip().lower()
        messages = [message for message in messages
                    if wanted in (address.addr_spec.lower() for address in message["To"].addresses)]
        if not messages:
            raise InvalidInput(f"outbox row {row_id} has no message to {to}", code="no_such_recipient")
    message = messages[0] if messages else None
    if eml is not None:
        if message is None:
            raise InvalidInput(f"outbox row {row_id} is an event ({row['topic']}), not an e-mail",
                               code="not_an_email")
        write_new_file(eml, message.as_bytes())
    if as_json:
        print_json({**row, "state": delivery_state(row), "message_id": message["Message-ID"] if message else None,
                    "message_ids": [m["Message-ID"] for m in messages]})
        return
    if eml is not None:
        echo_wrapped(f"wrote {eml}: outbox row {row_id}'s e-mail, as it is sent")
        return
    typer.echo(f"outbox row {row_id}: {row['topic']}, account {row['account_id']}, "
               f"written {utc_minute(row['created_at'])} UTC")
    echo_wrapped(_delivery_line(row, delivery_state(row)), indent=2)
    typer.echo("")
    if message is None:
        typer.echo(json.dumps(row["payload"], default=json_default, ensure_ascii=False, indent=2))
        return
    if len(messages) > 1:
        echo_wrapped(f"{len(messages)} messages (a billing contact gets one of its own); the first, "
                     "--to EMAIL for another: " + ", ".join(str(m["To"]) for m in messages))
        typer.echo("")
    for name in ("Message-ID", "Date", "From", "To", "Subject"):
        echo_wrapped(f"{name}: {message[name]}")
    for part in message.iter_attachments():
        echo_wrapped(f"Attached: {part.get_filename()} ({part.get_content_type()}, "
                     f"{len(part.get_content())} bytes)")
    typer.echo("")
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            for line in part.get_content().rstrip("\n").splitlines():
                typer.echo(_folded(line))
            break


def _folded(line: str) -> str:
    """A line of an e-mail's text as shown: folded to 80 columns, its indent kept (the message
    itself is as written: `--eml`); a word longer than that, a link, stays whole."""
    if len(line) <= 80:
        return line
    indent = line[:len(line) - len(line.lstrip())]
    return textwrap.fill(line.lstrip(), width=80, initial_indent=indent, subsequent_indent=indent,
                         break_long_words=False, break_on_hyphens=False)


def _messages(application, row: dict[str, Any]) -> list:
    """The row's messages as they are sent: the invoices it attaches rendered (and stored) now if
    they never were, as delivery would."""
    from types import SimpleNamespace

    from renewly.accounts.removal_links import RemovalLinks
    from renewly.adapters.mail.message import build
    from renewly.billing.documents import documents_of
    from renewly.mail.letters import Unsendable, attached_invoices, letters_of
    from renewly.shared.errors import InvalidInput
    payload = row["payload"]
    links = RemovalLinks.of(application.settings) if isinstance(payload, dict) and payload.get("contacts") else None
    try:
        letters = letters_of(SimpleNamespace(**row), application.settings.mail, application.settings.seller,
                             links=links, documents=documents_of(application, attached_invoices(payload)))
    except Unsendable as error:
        raise InvalidInput(f"outbox row {row['id']}'s e-mail cannot be made: {error}", code="unsendable") from None
    return [build(letter) for letter in letters]


def _delivery_line(row: dict[str, Any], state: str) -> str:
    if row["topic"] != "email":
        if state == "delivered":
            return (f"handed to the webhook endpoints that want it {utc_minute(row['delivered_at'])} UTC "
                    f"(renewly webhooks deliveries --event {row['id']})")
        return "waiting for the webhooks batch (while no endpoint is enabled, events wait)"
    if state == "delivered":
        return f"delivered {utc_minute(row['delivered_at'])} UTC" + (
            f" after {row['attempts']} attempts" if row.get("attempts", 0) > 1 else "")
    if state == "failed":
        return f"failed {utc_minute(row['failed_at'])} UTC: {row['last_error']}"
    if state == "to try again":
        return (f"to try again from {utc_minute(row['next_attempt_at'])} UTC, {row['attempts']} attempt(s) so "
                f"far; last: {row['last_error']}")
    return "waiting for delivery"


@app.command("retry")
def outbox_retry(row_ids: Annotated[list[int] | None, typer.Argument(
                     metavar="ID", help="The failed e-mails' outbox ids (outbox list --failed).",
                     show_default=False)] = None,
                 failed: Annotated[bool, typer.Option("--failed", help="Every e-mail that failed for good.")] = False,
                 since: Annotated[str | None, typer.Option(
                     "--since", metavar="DATE", help="With --failed: only those that failed on DATE (UTC) or "
                                                     "later.")] = None,
                 as_json: JsonFlag = False) -> None:
    """Send failed e-mails again, with the same Message-ID, at the next delivery.

    An e-mail that did not fail (delivered, still waiting, an event) is refused, and nothing
    changes; one already put back and not sent yet is left as it is."""
    from renewly.mail.retry import retry_emails, retry_failed
    from renewly.shared.errors import InvalidInput
    if failed and row_ids:
        raise InvalidInput("name e-mails or ask for --failed, not both", code="ids_and_failed")
    if since is not None and not failed:
        raise InvalidInput("--since goes with --failed", code="since_without_failed")
    if not failed and not row_ids:
        raise InvalidInput("name the e-mails to send again (outbox list --failed), or --failed for all of them",
                           code="nothing_to_retry")
    day = parse_date(since, "--since date") if since is not None else None
    application = open_app()
    done = retry_failed(application, since=day, actor=actor()) if failed else retry_emails(
        application, row_ids or [], actor=actor())
    if as_json:
        print_json({"retried": done.retried, "already_due": done.already_due})
        return
    if not done.retried and not done.already_due:
        typer.echo("no failed e-mail to send again")
        return
    if done.retried:
        echo_wrapped(f"{len(done.retried)} e-mail(s) due again, with the same Message-ID: {_ids(done.retried)}; "
                     "the worker's mail batch or `renewly mail send` sends them")
    if done.already_due:
        echo_wrapped(f"{len(done.already_due)} e-mail(s) put back before, not sent yet: {_ids(done.already_due)}")


def _ids(ids: list[int], shown: int = 10) -> str:
    return ", ".join(str(row_id) for row_id in ids[:shown]) + (f" and {len(ids) - shown} more" if len(ids) > shown
                                                               else "")
