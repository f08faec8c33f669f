"""`renewly gateway ...`: scripting the simulated gateway's faults."""

from __future__ import annotations

from typing import Annotated

import typer

from renewly.cli.common import (
    group,
    open_app,
)
from renewly.shared.errors import InvalidInput

app = group("The simulated gateway's fault scripting (tests and demos).")


@app.command("fault")
def gateway_fault(kind: Annotated[str, typer.Argument(help="timeout_after, timeout_before, server_error or "
                                                            "decline")],
                  count: Annotated[int, typer.Option(min=1, help="How many operations.")] = 1,
                  code: Annotated[str, typer.Option(help="decline: the decline code.")] = "insufficient_funds",
                  account: Annotated[int | None, typer.Option(help="decline: only this account's charges.")] = None,
                  ) -> None:
    """Make the simulated gateway's next COUNT operations fail this way (decline: the next COUNT
    charges are declined, then cards behave as they would)."""
    from renewly.adapters.gateways.simulated import Fault
    application = open_app()
    try:
        fault = Fault(kind)
    except ValueError:
        raise InvalidInput(f"unknown fault {kind!r}: expected one of {', '.join(f.value for f in Fault)}",
                           code="unknown_fault") from None
    if fault is not Fault.DECLINE and (code != "insufficient_funds" or account is not None):
        raise InvalidInput(f"--code and --account go with the decline fault, not {fault.value}",
                           code="option_not_for_fault")
    script = getattr(application.gateway, "script", None)
    if script is None:
        raise InvalidInput("only the simulated gateway takes scripted faults", code="not_simulated")
    script(fault, count, decline_code=code, account_id=account)
    if fault is Fault.DECLINE:
        whose = f"account {account}'s" if account is not None else "any account's"
        typer.echo(f"the next {count} charge(s) of {whose}: declined ({code}), then as the card would")
    else:
        typer.echo(f"the next {count} gateway operation(s): {fault.value}")
