"""The operator's command line, one module per command group (`renewly GROUP ...`).

Every read takes --json; bad input is one line on stderr, exit 2. `renewly.cli.app` is the Typer
application, `renewly.cli.main` the console script (pyproject.toml). Importing it stays light:
each command imports the services it calls when it runs.
"""

from renewly.cli.root import app, main

__all__ = ["app", "main"]
