"""How fast a command answers (issue 10, item 11): `renewly --help` and three simple reads.

    .venv/bin/python bench/cli.py              # 15 runs of each, medians
    .venv/bin/python bench/cli.py --runs 41
    .venv/bin/python bench/cli.py --tiny       # 2 runs of each: tests/test_benches.py

Each command runs as the operator runs it, a process of its own (the installed `renewly`
script), on an SQLite database in a folder of its own with the test clock: `renewly --help`,
`renewly clock show`, `renewly plans list` and `renewly accounts show 1`. `python -c pass` runs
in the same rounds, so the
ratios say what Renewly adds to Python's own start on this machine whatever its load. The runs
take turns, round after round, so a busy moment weighs on every command alike. The target is
0.3 s for each (a median); the result of each command is checked (a wrong one exits 1). The last
line is key=value pairs, for scripts.

The commands run with Python's bytecode cache on, as an installed Renewly does (pip compiles it
at install): a shell with PYTHONDONTWRITEBYTECODE=1 would otherwise have every run of an
editable install compile Renewly's modules again (about 0.1 s a command here), a cost no
operator pays. The untimed commands before the rounds write the cache.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 0.3


def renewly_command() -> list[str]:
    """The console script beside this Python (as `pip install` makes it), else its entry point."""
    script = Path(sys.executable).with_name("renewly")
    return [str(script)] if script.exists() else [sys.executable, "-c", "from renewly.cli import main; main()"]


def environment(folder: Path) -> dict[str, str]:
    """The operator's shell, minus any Renewly setting it names: this bench's database and clock;
    and the bytecode cache on (see above)."""
    kept = {name: value for name, value in os.environ.items()
            if not name.startswith("RENEWLY_") and name != "PYTHONDONTWRITEBYTECODE"}
    return {**kept, "RENEWLY_DATABASE_URL": f"sqlite:///{folder / 'bench.db'}", "RENEWLY_CLOCK": "test"}


def timed(command: list[str], env: dict[str, str], cwd: Path, expect: str) -> tuple[float, float]:
    """The command's wall-clock seconds, and its CPU seconds (user and system): on a busy machine
    the first grow with the load, the second much less."""
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0 or expect not in done.stdout:
        sys.exit(f"{' '.join(command)} answered {done.returncode}, without {expect!r}:\n{done.stdout}{done.stderr}")
    return seconds, (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15, help="runs of each command (medians)")
    parser.add_argument("--tiny", action="store_true",
                        help="a check that the bench still runs and checks its results, not a measure: 2 runs")
    parser.add_argument("--postgres-url", help="ignored: the commands read an SQLite database of their own "
                                               "(accepted as every bench takes it, tests/test_benches.py)")
    options = parser.parse_args()
    runs = 2 if options.tiny else options.runs
    renewly = renewly_command()
    with tempfile.TemporaryDirectory(prefix="renewly-bench-cli-") as folder_name:
        folder = Path(folder_name)
        env = environment(folder)
        # The first commands create the schema, start the clock and write what the reads read:
        # not simple reads, not timed.
        timed([*renewly, "plans", "create", "--code", "team", "--name", "Team", "--interval", "month",
               "--price", "1900", "--currency", "EUR"], env, folder, "")
        timed([*renewly, "accounts", "create", "--name", "Acme", "--owner-email", "owner@acme.example",
               "--country", "FR", "--currency", "EUR"], env, folder, "1")
        commands = {
            "python": ([sys.executable, "-c", "pass"], ""),
            "help": ([*renewly, "--help"], "Usage: renewly"),
            "read": ([*renewly, "clock", "show"], "test clock: "),
            "plans": ([*renewly, "plans", "list"], "team"),
            "account": ([*renewly, "accounts", "show", "1"], "account 1: Acme"),
        }
        times: dict[str, list[float]] = {name: [] for name in commands}
        cpu: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(runs):
            for name, (command, expect) in commands.items():
                seconds, cpu_seconds = timed(command, env, folder, expect)
                times[name].append(seconds)
                cpu[name].append(cpu_seconds)
    wall = {name: statistics.median(seconds) for name, seconds in times.items()}
    used = {name: statistics.median(seconds) for name, seconds in cpu.items()}
    print(f"{runs} runs of each, medians (target: {TARGET_S} s for each command):")
    print(f"  {'python -c pass':<24} {wall['python']:.3f} s ({used['python']:.3f} s of CPU)")
    for name, label in (("help", "renewly --help"), ("read", "renewly clock show"), ("plans", "renewly plans list"),
                        ("account", "renewly accounts show 1")):
        met = "meets" if wall[name] < TARGET_S else "MISSES"
        print(f"  {label:<24} {wall[name]:.3f} s ({used[name]:.3f} s of CPU), {wall[name] / wall['python']:.1f} x "
              f"python; {met} the target")
    timed_commands = ("help", "read", "plans", "account")
    figures = {f"{name}_s": wall[name] for name in (*timed_commands, "python")}
    figures |= {f"{name}_cpu_s": used[name] for name in (*timed_commands, "python")}
    figures |= {f"{name}_ratio": wall[name] / wall["python"] for name in timed_commands}
    print(" ".join(f"{key}={value:.3f}" for key, value in figures.items()) + f" target_s={TARGET_S} runs={runs}")


if __name__ == "__main__":
    main()
