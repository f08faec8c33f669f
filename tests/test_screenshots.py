"""`make screenshots` (bench/screenshots.py) runs at a tiny size in the suite, so that it cannot
rot: into a temporary folder, never over docs/screenshots. Each file must be a PNG of the size
asked, of a page the script saw its marker on, in the language its name says (the script checks
both before each shot and exits non-zero otherwise)."""

from __future__ import annotations

import struct
import subprocess
import sys
from pathlib import Path

from tests.conftest import require_chromium

ROOT = Path(__file__).resolve().parents[1]
PAGES = {"portal-overview": "tr[data-subscription]", "portal-invoices": "tr[data-invoice]",
         "portal-admin-banner": '[role="alert"][data-banner]', "portal-cancelled": '[data-problem="cancelled"]',
         "console-account": "table.timeline [data-entry]", "console-recovery": "section.recovery-currency"}
TALL = {"console-account", "console-recovery"}  # twice the window's height


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", f"{path.name} is not a PNG"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_the_tiny_run_shoots_every_main_page_in_both_languages(tmp_path):
    require_chromium()
    committed = {path.name: path.stat().st_mtime_ns for path in (ROOT / "docs" / "screenshots").glob("*.png")}
    run = subprocess.run([sys.executable, str(ROOT / "bench" / "screenshots.py"), "--tiny", "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.strip().splitlines()
    expected = {f"{page}-{language}.png": marker for page, marker in PAGES.items() for language in ("fr", "en")}
    assert {path.name for path in tmp_path.iterdir()} == set(expected)
    for name, marker in expected.items():
        assert f"shot={name} marker={marker!r} " in "\n".join(lines)
        assert png_size(tmp_path / name) == (320, 480 if name.rsplit("-", 1)[0] in TALL else 240)
    assert lines[-1].startswith("screenshots=12 width=320 height=240 ")
    assert {path.name: path.stat().st_mtime_ns
            for path in (ROOT / "docs" / "screenshots").glob("*.png")} == committed  # left alone
