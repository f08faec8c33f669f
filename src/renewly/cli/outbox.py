"""`renewly outbox ...`: e-mails and events waiting for delivery."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from renewly.cli.common import (
    AccountFilter,
    JsonFlag,
    group,
    json_default,
    open_app,
    print_json,
    print_table,
    utc_minute,
)

app = group("E-mails and events waiting for delivery.")


@app.command("list")
def outbox_list(account: AccountFilter = None,
                topic: Annotated[str | None, typer.Option(help="e.g. email")] = None, as_json: JsonFlag = False,
                ) -> None:
    """E-mails and events written by Renewly, oldest first."""
    from renewly.outbox.reading import list_outbox
    rows = list_outbox(open_app(), account_id=account, topic=topic)
    if as_json:
        print_json(rows)
        return
    print_table("Outbox", ["at (UTC)", "account", "topic", "what"],
                [[utc_minute(r["created_at"]), r["account_id"], r["topic"],
                  (f"{r['payload']['subject']} → {', '.join(r['payload']['recipients'])}" if r["topic"] == "email"
                   else json.dumps(r["payload"], default=json_default))] for r in rows], whole=("at (UTC)", "topic"))
