"""The command line's log lines: JSON when the settings ask (log_format), one line each."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from renewly.adapters.logs import renderer


def test_a_json_log_line_is_one_line_with_its_instants_in_iso_and_its_traceback_as_text():
    try:
        raise ValueError("a bug")
    except ValueError:
        line = renderer("json")(None, "error", {"event": "batch failed", "at": datetime(2026, 2, 1, tzinfo=UTC),
                                                "exc_info": True})
    assert "\n" not in line
    logged = json.loads(line)
    assert (logged["event"], logged["at"]) == ("batch failed", "2026-02-01T00:00:00+00:00")
    assert logged["exception"].startswith("Traceback") and "ValueError: a bug" in logged["exception"]


def test_a_plain_log_line_reads_as_text():
    assert "batch run" in renderer("plain")(None, "info", {"event": "batch run", "batch": "renew"})
