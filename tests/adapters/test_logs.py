"""The command line's log lines: JSON when the settings ask (log_format), one line each."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime

import pytest

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


@pytest.mark.parametrize("log_format", ["plain", "json"])
def test_logs_asked_for_before_structlog_is_loaded_go_to_stderr_as_configured(log_format, tmp_path):
    # A command asks for the command line's logs at its start; structlog comes later, with the
    # first module that logs (most commands never load it).
    script = ("import sys\n"
              "from renewly.adapters.logs import configure_command_line_logs, get_logger\n"
              "configure_command_line_logs()\n"
              "assert 'structlog' not in sys.modules\n"
              "get_logger('renewly.batches.parking').warning('row parked', batch='renew', subject_id=7)\n")
    shell = {**{name: value for name, value in os.environ.items() if not name.startswith("RENEWLY_")},
             "RENEWLY_LOG_FORMAT": log_format}
    done = subprocess.run([sys.executable, "-c", script], env=shell, cwd=tmp_path, capture_output=True, text=True,
                          check=True)

    assert done.stdout == "" and done.stderr.count("\n") == 1, done
    if log_format == "json":
        logged = json.loads(done.stderr)
        assert (logged["event"], logged["level"], logged["batch"], logged["subject_id"]) == ("row parked", "warning",
                                                                                           "renew", 7)
    else:
        assert "row parked" in done.stderr and "batch=renew" in done.stderr and "subject_id=7" in done.stderr


def test_the_mail_batchs_warnings_go_to_stderr_as_configured_not_to_stdout(tmp_path):
    # `renewly mail send --json` prints its report on stdout: a warning there would break it. The
    # module used to take structlog's own logger, unconfigured when it was the first to log.
    script = ("from renewly.adapters.logs import configure_command_line_logs\n"
              "configure_command_line_logs()\n"
              "from renewly.mail import delivery\n"
              "delivery.log.warning('e-mails to try again', count=3)\n")
    shell = {**{name: value for name, value in os.environ.items() if not name.startswith("RENEWLY_")},
             "RENEWLY_LOG_FORMAT": "json"}
    done = subprocess.run([sys.executable, "-c", script], env=shell, cwd=tmp_path, capture_output=True, text=True,
                          check=True)

    assert done.stdout == "" and json.loads(done.stderr)["event"] == "e-mails to try again", done
