"""`renewly apikeys ...`: the secret keys the host product calls the `/v1` API with (docs/api.md)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from renewly.cli.common import JsonFlag, actor, group, open_app, print_json, print_table, utc_minute

app = group("Secret API keys for the /v1 REST API.")
KeyId = Annotated[int, typer.Argument(help="The key's id (renewly apikeys list).")]


@app.command("create")
def apikeys_create(name: Annotated[str, typer.Argument(help="What the key is for, e.g. 'backend prod'.")],
                   as_json: JsonFlag = False) -> None:
    """Make a key; its secret is printed once, never again (only its hash is kept)."""
    from renewly.web.keys import create_key
    row, secret = create_key(open_app(), name=name, actor=actor())
    if as_json:
        print_json({**row, "secret": secret})
        return
    typer.echo(f"API key {row['id']} ({row['name']}): {secret}")
    typer.echo("Keep it now: it is shown once. Send it as 'Authorization: Bearer <key>'.")


@app.command("list")
def apikeys_list(as_json: JsonFlag = False) -> None:
    """The keys: name, prefix, made, last used (to the minute), revoked."""
    from renewly.web.keys import list_keys
    rows = list_keys(open_app())
    if as_json:
        print_json(rows)
        return
    print_table("API keys", ["id", "name", "prefix", "created (UTC)", "last used (UTC)", "revoked (UTC)"],
                [[row["id"], row["name"], row["prefix"], _minute(row["created_at"]), _minute(row["last_used_at"]),
                  _minute(row["revoked_at"])] for row in rows], whole=("prefix",))


@app.command("revoke")
def apikeys_revoke(key: KeyId, as_json: JsonFlag = False) -> None:
    """Refuse every request with this key from now on (401); a running server within a second."""
    from renewly.web.keys import revoke_key
    row = revoke_key(open_app(), key, actor=actor())
    print_json(row) if as_json else typer.echo(f"API key {key} ({row['name']}) revoked")


def _minute(value: Any) -> str:
    return utc_minute(value) if value is not None else ""
