"""`renewly webhooks ...`: the endpoints the host product receives events at, their deliveries,
and sending what is due (docs/webhooks.md)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from renewly.cli.common import JsonFlag, actor, echo_wrapped, group, open_app, print_json, print_table, utc_minute

app = group("Webhooks to the host product: endpoints, deliveries, sending (docs/webhooks.md).")

EndpointId = Annotated[int, typer.Argument(metavar="ID", help="The endpoint's id (renewly webhooks list).")]
DeliveryId = Annotated[int, typer.Argument(metavar="DELIVERY_ID",
                                           help="The delivery's id (renewly webhooks deliveries).")]


@app.command("add")
def webhooks_add(url: Annotated[str, typer.Argument(help="Where events are POSTed: an http:// or https:// URL.")],
                 event: Annotated[list[str], typer.Option(
                     "--event", metavar="TYPE", help="An event type it receives (renewly webhooks types), a "
                                                     "family (contact.*) or * for all; repeat for more.")],
                 description: Annotated[str, typer.Option(help="What it is, for the operator.")] = "") -> None:
    """Register an endpoint for some event types; prints its signing secret, this once."""
    from renewly.webhooks.endpoints import add_endpoint
    added = add_endpoint(open_app(), url=url, event_types=event, description=description, actor=actor())
    echo_wrapped(f"webhook endpoint {added.id}: {added.url} receives {', '.join(added.event_types)}")
    typer.echo("its signing secret, shown this once (the receiver verifies with it):")
    typer.echo(added.secret)  # alone on its line: 50 characters, a terminal's double click takes it whole


@app.command("list")
def webhooks_list(as_json: JsonFlag = False) -> None:
    """The endpoints, their event types, whether they are sent to, their deliveries."""
    from renewly.webhooks.endpoints import list_endpoints
    rows = list_endpoints(open_app())
    if as_json:
        print_json(rows)
        return
    print_table("Webhook endpoints", ["id", "url", "events", "state", "delivered", "failed", "waiting"],
                [[row["id"], row["url"], " ".join(row["event_types"]), _state(row), row["deliveries"]["delivered"],
                  row["deliveries"]["failed"], row["deliveries"]["pending"] + row["deliveries"]["replay"]]
                 for row in rows], whole=("id",))


def _state(row: dict[str, Any]) -> str:
    if row["disabled_at"] is not None:
        return f"disabled {utc_minute(row['disabled_at'])} UTC: {row['disabled_reason']}"
    if row["failing_since"] is not None:
        return f"failing since {utc_minute(row['failing_since'])} UTC"
    return "enabled"


@app.command("disable")
def webhooks_disable(endpoint: EndpointId,
                     reason: Annotated[str, typer.Option(help="Why, for the audit log and the list.")] = "") -> None:
    """Stop sending to an endpoint; its deliveries wait until it is enabled again."""
    from renewly.webhooks.endpoints import disable_endpoint
    disable_endpoint(open_app(), endpoint, reason=reason, actor=actor())
    typer.echo(f"webhook endpoint {endpoint} disabled")


@app.command("enable")
def webhooks_enable(endpoint: EndpointId) -> None:
    """Send to an endpoint again: new events, and at once the deliveries that waited."""
    from renewly.webhooks.endpoints import enable_endpoint
    waiting = enable_endpoint(open_app(), endpoint, actor=actor())
    echo_wrapped(f"webhook endpoint {endpoint} enabled; {waiting} delivery(ies) that waited are due now")


@app.command("rotate-secret")
def webhooks_rotate_secret(endpoint: EndpointId,
                           overlap_hours: Annotated[int, typer.Option(
                               min=0, max=168, help="How long the old secret still signs beside the new one; "
                                                    "0 if it leaked.")] = 24) -> None:
    """Give an endpoint a new signing secret, printed this once; the old one still signs for a while."""
    from renewly.webhooks.endpoints import rotate_secret
    rotated = rotate_secret(open_app(), endpoint, overlap_hours=overlap_hours, actor=actor())
    if rotated.previous_secret_until is None:
        echo_wrapped(f"webhook endpoint {endpoint}: a new signing secret; the old one signs no more")
    else:
        echo_wrapped(f"webhook endpoint {endpoint}: a new signing secret; the old one signs beside it until "
                     f"{utc_minute(rotated.previous_secret_until)} UTC")
    typer.echo("the new signing secret, shown this once (give it to the receiver):")
    typer.echo(rotated.secret)


@app.command("remove")
def webhooks_remove(endpoint: EndpointId) -> None:
    """Remove an endpoint, with its deliveries and their log."""
    from renewly.webhooks.endpoints import remove_endpoint
    remove_endpoint(open_app(), endpoint, actor=actor())
    typer.echo(f"webhook endpoint {endpoint} removed")


@app.command("deliveries")
def webhooks_deliveries(endpoint: Annotated[int | None, typer.Option(
                            "--endpoint", metavar="ID", help="Only this endpoint's.")] = None,
                        event: Annotated[int | None, typer.Option(
                            "--event", metavar="OUTBOX_ID", help="Only this outbox event's (outbox list).")] = None,
                        failed: Annotated[bool, typer.Option(
                            "--failed", help="Only those whose every try failed (replay them).")] = False,
                        limit: Annotated[int, typer.Option(help="At most this many, newest first.")] = 50,
                        as_json: JsonFlag = False) -> None:
    """Deliveries of events to endpoints, newest first: where each stands."""
    from renewly.webhooks.deliveries import list_deliveries
    rows = list_deliveries(open_app(), endpoint_id=endpoint, event_id=event, failed=failed, limit=limit)
    if as_json:
        print_json(rows)
        return
    print_table("Webhook deliveries", ["id", "endpoint", "type", "status", "tries", "when (UTC)"],
                [[row["id"], row["endpoint_id"], row["type"], row["status"], row["attempts"], _when(row)]
                 for row in rows], whole=("id", "type", "when (UTC)"))


def _when(row: dict[str, Any]) -> str:
    """The moment that matters for where it stands: delivered, failed, or its next try."""
    moment = {"delivered": row["delivered_at"], "failed": row["failed_at"]}.get(row["status"], row["next_attempt_at"])
    return utc_minute(moment) if moment is not None else ""


@app.command("attempts")
def webhooks_attempts(delivery: DeliveryId, as_json: JsonFlag = False) -> None:
    """A delivery's log: each try, what the endpoint answered, how long it took."""
    from renewly.webhooks.deliveries import get_delivery
    found = get_delivery(open_app(), delivery)
    if as_json:
        print_json(found)
        return
    echo_wrapped(f"delivery {found['id']}: {found['type']} (outbox event {found['outbox_id']}, "
                 f"{found['webhook_id']}) to endpoint {found['endpoint_id']}, {found['status']}")
    print_table("", ["at (UTC)", "answer", "ms", "response"],
                [[utc_minute(attempt["at"]) + (" replay" if attempt["replay"] else ""),
                  f"HTTP {attempt['http_status']}" if attempt["http_status"] is not None else attempt["error"],
                  attempt["latency_ms"], " ".join(attempt["response_excerpt"].split())[:200]]
                 for attempt in found["attempts"]], whole=("ms",))


@app.command("replay")
def webhooks_replay(delivery: DeliveryId) -> None:
    """Try a delivery once more, with the same webhook-id, at the next send."""
    from renewly.webhooks.deliveries import replay_delivery
    replay_delivery(open_app(), delivery, actor=actor())
    echo_wrapped(f"delivery {delivery} is due again: the worker's webhooks batch or `renewly webhooks send` "
                 "sends it")


@app.command("types")
def webhooks_types(as_json: JsonFlag = False) -> None:
    """The event types an endpoint may receive."""
    from renewly.webhooks.rules.events import TYPES
    open_app()  # a broken configuration is refused here as by every command, before it is relied on
    if as_json:
        print_json(sorted(TYPES))
        return
    for name in sorted(TYPES):
        typer.echo(name)


@app.command("send")
def webhooks_send(as_json: JsonFlag = False) -> None:
    """Send every webhook due, once (what the worker's webhooks batch does); exit 1 if some
    failed or are to be tried again."""
    from renewly.cli.common import stopping_on_ctrl_c
    from renewly.cli.progress import bar
    from renewly.webhooks.delivery import deliver_due, due_count
    application = open_app()
    now = application.clock.now()
    total = due_count(application, now) if not as_json else None
    with (bar("webhooks", total, as_json=as_json, unit="webhooks") as update,
          stopping_on_ctrl_c(application, say=update and (lambda said: update(what=said)))):
        report = deliver_due(application, now, on_slice=update and (
            lambda done: update(completed=done.delivered + done.to_retry + done.failed)))
    print_json(report.as_json()) if as_json else echo_wrapped(report.describe())
    if application.stop.asked:
        echo_wrapped("interrupted: stopped after the slice in hand; `renewly webhooks send` sends the rest",
                     err=as_json)
        raise typer.Exit(130)
    if report.left_undone:
        raise typer.Exit(1)
