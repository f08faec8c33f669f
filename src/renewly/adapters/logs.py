"""The command line's log lines (structlog), on stderr: stdout stays the command's answer, which
scripts read (--json).

Their format is the setting `log_format`, read at the first line logged rather than at start:
most commands log nothing, and a configuration file that cannot be read is the command's to
refuse, with its one line, not the logs'.

Most commands never log, so structlog (with the Rich it brings for tracebacks, about 0.1 s to
import) is imported only by the modules that log, through `get_logger`: a command's start asks
for the command line's logs (`configure_command_line_logs`), and they are set up when structlog
arrives, before any line can be logged.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from renewly.shared.errors import BillingError

if TYPE_CHECKING:
    from structlog.typing import EventDict

# Asked for by a command's start before structlog was imported (with the format it asked for,
# None: the settings'): applied when structlog is.
_command_line_logs_asked: tuple[str | None] | None = None


def configure_command_line_logs(log_format: str | None = None) -> None:
    """stderr, plain or JSON as the settings say, or `log_format` whatever they say (`renewly
    worker` logs JSON lines): now if structlog is loaded, else when it is."""
    global _command_line_logs_asked
    if "structlog" in sys.modules:
        _configure_command_line_logs(log_format)
    else:
        _command_line_logs_asked = (log_format,)


def get_logger(name: str) -> Any:
    """structlog's logger for a module that logs, the command line's configuration applied first
    when a command asked for it before structlog was loaded."""
    global _command_line_logs_asked
    import structlog
    if _command_line_logs_asked is not None:
        (log_format,), _command_line_logs_asked = _command_line_logs_asked, None
        _configure_command_line_logs(log_format)
    return structlog.get_logger(name)


def _configure_command_line_logs(log_format: str | None) -> None:
    import structlog
    structlog.configure(processors=[structlog.processors.add_log_level,
                                    structlog.processors.TimeStamper(fmt="iso", utc=True),
                                    RenderAsConfigured(log_format)],
                        logger_factory=lambda *_: structlog.PrintLogger(sys.stderr))  # today's stderr


class RenderAsConfigured:
    """The last processor: JSON or plain text, as the settings say."""

    def __init__(self, log_format: str | None = None) -> None:
        self.renderer: Any = None if log_format is None else renderer(log_format)

    def __call__(self, logger: Any, method: str, event: EventDict) -> str:
        if self.renderer is None:
            self.renderer = renderer(configured_format())
        return self.renderer(logger, method, event)


def configured_format() -> str:
    from renewly.config.settings import load_settings
    try:
        return load_settings().log_format
    except BillingError:
        return "plain"


def renderer(log_format: str) -> Any:
    import structlog
    if log_format == "json":
        # A traceback as one string field: the line stays one line of JSON.
        as_text, as_json = structlog.processors.format_exc_info, structlog.processors.JSONRenderer(default=_as_text)
        return lambda logger, method, event: as_json(logger, method, as_text(logger, method, event))
    return structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)


def _as_text(value: Any) -> str:
    """A value JSON has no type for: an instant (`at=`) in ISO 8601, anything else as Python shows it."""
    return value.isoformat() if hasattr(value, "isoformat") else repr(value)
