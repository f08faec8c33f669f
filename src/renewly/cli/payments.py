"""`renewly payments ...`: payment attempts."""

from __future__ import annotations

from renewly.cli.common import (
    AccountFilter,
    JsonFlag,
    group,
    money,
    open_app,
    print_json,
    print_table,
    utc_minute,
)

app = group("Payment attempts.")


@app.command("list")
def payments_list(account: AccountFilter = None, as_json: JsonFlag = False) -> None:
    """List payment attempts."""
    from renewly.payments.history import list_attempts
    rows = list_attempts(open_app(), account)
    if as_json:
        print_json(rows)
        return
    print_table("Payment attempts", ["invoice", "#", "amount", "status", "decline", "at (UTC)"],
                [[r["invoice_number"], r["number"], money(r["amount"], r["currency"]), r["status"],
                  r["decline_code"] or "", utc_minute(r["created_at"])] for r in rows], whole=("invoice", "at (UTC)"))
