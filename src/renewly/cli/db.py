"""`renewly db ...`: the database schema."""

from __future__ import annotations

import typer

from renewly.cli.common import group, open_app

app = group("The database schema.")


@app.command("upgrade")
def db_upgrade() -> None:
    """Bring the database schema to the latest revision."""
    from renewly.adapters.db.engine import current_revision, upgrade
    application = open_app(upgrade=False)
    upgrade(application.engine)
    typer.echo(f"database at revision {current_revision(application.engine)}")
