"""The second Ctrl-C stops a command at once (cli/common.py), even when Python swallows the
KeyboardInterrupt its handler raises: a signal handler runs wherever the main thread is, a
garbage collector's or a weakref's callback included (SQLAlchemy's event registry, its pool's
finalizer), where an exception is printed as "Exception ignored" and dropped."""

from __future__ import annotations

import subprocess
import sys
import time

SWALLOWED = """
import sys, time, weakref
from renewly.cli import common

class Held: pass

def callback(_ref):
    raise KeyboardInterrupt  # as the second Ctrl-C's handler does when it runs in here

common._start_the_at_once_backstop()
common.STOPPED_AT_ONCE.set()
held = Held()
ref = weakref.ref(held, callback)
del held  # the callback runs; Python swallows its KeyboardInterrupt
print("the slice goes on", flush=True)
time.sleep(30)
print("never printed")
"""


def test_a_swallowed_second_ctrl_c_still_stops_at_once_with_its_one_message():
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", SWALLOWED], capture_output=True, text=True, timeout=60)
    assert time.monotonic() - started < 20  # not the 30 s the slice would take
    assert (done.returncode, done.stdout) == (130, "the slice goes on\n")
    assert done.stderr == ("interrupted: stopped at once; charges in flight stay pending until their\n"
                           "lease ends, then the next payment batch settles them (renewly reconcile)\n")
