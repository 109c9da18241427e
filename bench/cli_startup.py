"""CPU time of ``berth --help`` and of parsing a command (``berth list --help``), in a fresh
process each, as a user pays it: with bytecode cached (one warm-up run writes it).

    python -m bench.cli_startup [--runs 5] [--berth PATH]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
from pathlib import Path

TARGET_SECONDS = 0.3
COMMANDS: tuple[tuple[str, ...], ...] = (("--help",), ("list", "--help"), ("version",))


def cpu_of(berth: str, args: tuple[str, ...], env: dict[str, str]) -> float:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([berth, *args], env=env, stdout=subprocess.DEVNULL, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--berth", default=str(Path(sys.executable).parent / "berth"))
    options = parser.parse_args()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["COLUMNS"] = "80"
    slow = False
    for args in COMMANDS:
        cpu_of(options.berth, args, env)  # warm-up: writes the bytecode caches
        times = [cpu_of(options.berth, args, env) for _ in range(options.runs)]
        median = statistics.median(times)
        slow |= args == ("--help",) and median > TARGET_SECONDS
        print(
            f"berth {' '.join(args):14}  CPU median {median:.3f} s  "
            f"(min {min(times):.3f}, max {max(times):.3f}, {options.runs} runs)"
        )
    print(f"target for `berth --help`: under {TARGET_SECONDS} s CPU: {'MISSED' if slow else 'met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
