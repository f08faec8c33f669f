"""The test suite's own machinery: `make test` runs two processes with --dist loadgroup, and the
modules marked `xdist_group` (an expensive module fixture shared by their tests; the scaleout
bench's network namespaces made one at a time) count on each group running in one process."""

from __future__ import annotations

import os
import subprocess
import sys

GROUPED = '''
import os
import pytest

pytestmark = pytest.mark.xdist_group("together")


@pytest.mark.parametrize("n", range(8))
def test_where(n):
    with open(os.environ["WHERE_FILE"], "a") as where:
        where.write(os.environ["PYTEST_XDIST_WORKER"] + "\\n")
'''


def test_an_xdist_group_runs_in_one_process_under_make_test_s_options(tmp_path):
    (tmp_path / "test_grouped.py").write_text(GROUPED)
    where = tmp_path / "where.txt"
    done = subprocess.run([sys.executable, "-m", "pytest", "-n", "2", "--dist", "loadgroup", "-q", "-p",
                           "no:cacheprovider", "--rootdir", str(tmp_path), str(tmp_path / "test_grouped.py")],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "WHERE_FILE": str(where)})
    assert done.returncode == 0, done.stdout + done.stderr
    workers = where.read_text().split()
    assert len(workers) == 8 and len(set(workers)) == 1, workers

