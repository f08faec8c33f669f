"""How many gateway calls a second the shared rate cap grants (issue 11, item 3).

    .venv/bin/python bench/rate_cap.py --postgres-url postgresql://postgres@127.0.0.1:5432/postgres
    .venv/bin/python bench/rate_cap.py --tiny ...   # a check, not a measure: tests/test_benches.py

On a database of its own (dropped at the end), one process acquires as fast as the cap lets it
(`adapters/db/rate_cap.py: SharedRateCap`, no gateway behind it) for `--seconds` at each rate:
100 a second (Stripe's cap: one slot per statement), 2,000 a second (twenty slots per
statement), and with one slot per statement and no cap to speak of, which is what one process
gets from the database one round trip at a time. Then `--workers` processes share a cap of 2,000
a second. Each run is checked: no second holds more acquisitions than the rate and a tenth,
plus one (a wrong one exits 1): the margin a rate of 90 leaves under a cap of 100, for calls
that leave late (a busy machine wakes a thread late). A cap not shared gives `--workers` times
the rate. The last line is key=value pairs, for scripts.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from bisect import bisect_left
from pathlib import Path

from renewly.adapters.db.engine import make_engine
from renewly.adapters.db.rate_cap import SharedRateCap

sys.path.insert(0, str(Path(__file__).parent))
from renewal import bench_database  # noqa: E402  (a database of our own, as bench/renewal.py)

UNCAPPED = 100_000  # a rate the database cannot grant: what one round trip at a time gives
LATENESS = 0.1  # of the rate: what a second may hold beyond it, calls late after their slot


def acquisitions(url: str, rate: float, seconds: float, slots_at_once: int | None = None) -> list[float]:
    """The wall-clock instants at which `acquire()` returned, for `seconds`, in one process."""
    engine = make_engine(url)
    cap = SharedRateCap(engine, rate, slots_at_once=slots_at_once)
    instants: list[float] = []
    ends = time.monotonic() + seconds
    while time.monotonic() < ends:
        cap.acquire()
        instants.append(time.time())
    engine.dispose()
    return instants


def most_in_one_second(instants: list[float]) -> int:
    ordered = sorted(instants)
    return max((bisect_left(ordered, start + 1.0, lo=i) - i for i, start in enumerate(ordered)), default=0)


def per_second(instants: list[float]) -> float:
    return (len(instants) - 1) / (max(instants) - min(instants))


def checked(label: str, instants: list[float], rate: float) -> tuple[float, int]:
    allowed = math.floor(rate * (1 + LATENESS)) + 1
    busiest = most_in_one_second(instants)
    # Two lines of at most 80 columns; no bound where there is no cap to check.
    print(f"{label}:\n  {per_second(instants):,.1f} acquisitions/s, busiest second {busiest}"
          + (f" (at most {allowed})" if rate < UNCAPPED else ""))
    if rate < UNCAPPED and busiest > allowed:
        sys.exit(f"{label}: {busiest} acquisitions in one second, more than the cap allows ({allowed})")
    return per_second(instants), busiest


def workers(url: str, count: int, rate: float, seconds: float) -> list[float]:
    """`count` processes of this bench sharing a cap of `rate` for `seconds`, started together."""
    command = [sys.executable, __file__, "--worker", url, "--rate", str(rate), "--seconds", str(seconds)]
    started = [subprocess.Popen(command, stdout=subprocess.PIPE, text=True) for _ in range(count)]
    outs = [process.communicate(timeout=seconds + 60)[0] for process in started]
    if any(process.returncode for process in started):
        sys.exit("a worker process failed")
    return [instant for out in outs for instant in json.loads(out)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres",
                        help="a database on the server where the bench creates its own (and drops it)")
    parser.add_argument("--seconds", type=float, default=5.0, help="how long each run acquires")
    parser.add_argument("--workers", type=int, default=4, help="processes sharing the cap in the last run")
    parser.add_argument("--tiny", action="store_true",
                        help="a check that the bench runs, not a measure: 0.5 s runs, 2 workers")
    parser.add_argument("--worker", help=argparse.SUPPRESS)  # a worker process of the last run: its database
    parser.add_argument("--rate", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        # Started one after another, the workers overlap for most of their run, not all of it: the
        # figure is that of the cap, which one process alone nearly reaches too.
        print(json.dumps(acquisitions(args.worker, args.rate, args.seconds)))
        return
    seconds, count = (0.5, 2) if args.tiny else (args.seconds, args.workers)
    figures: dict[str, float] = {"seconds": seconds, "workers": count}
    with bench_database(args.postgres_url) as url:
        figures["rate_100_per_s"], figures["rate_100_busiest"] = checked(
            "one process, rate 100", acquisitions(url, 100, seconds), 100)
        figures["rate_2000_per_s"], figures["rate_2000_busiest"] = checked(
            "one process, rate 2000", acquisitions(url, 2000, seconds), 2000)
        figures["one_per_statement_per_s"], _ = checked(
            "one process, one slot per statement, uncapped", acquisitions(url, UNCAPPED, seconds, 1), UNCAPPED)
        shared = workers(url, count, 2000, seconds)
        figures["workers_2000_per_s"], figures["workers_2000_busiest"] = checked(
            f"{count} processes, rate 2000 for all", shared, 2000)
    print(" ".join(f"{key}={value:.1f}" if key.endswith("_per_s") else f"{key}={value}"
                   for key, value in figures.items()))


if __name__ == "__main__":
    main()
