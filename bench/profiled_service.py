"""Run a berth service under cProfile, profiling only the measured part of a benchmark.

``python -m bench.profiled_service <module> <output.prof> [args...]`` runs ``python -m <module>
[args...]``; SIGUSR1 starts the profiler and SIGUSR2 stops it and writes the statistics. So the
profile holds the run itself, not the imports and migrations of the start (several seconds of
``compile``).

Times are wall-clock (cProfile's default timer): a process that waits for a core on a busy
machine shows it as longer calls. The profiler itself slows the process down, so a profiled run
says where the time goes, not how fast the service is.
"""

from __future__ import annotations

import cProfile
import runpy
import signal
import sys
from types import FrameType


def main() -> None:
    module, output = sys.argv[1], sys.argv[2]
    profiler = cProfile.Profile()

    def start(_signum: int, _frame: FrameType | None) -> None:
        # Handlers run in the main thread, which is the one running the service's event loop.
        profiler.enable()

    def stop(_signum: int, _frame: FrameType | None) -> None:
        profiler.disable()
        profiler.dump_stats(output)

    signal.signal(signal.SIGUSR1, start)
    signal.signal(signal.SIGUSR2, stop)
    sys.argv = [module, *sys.argv[3:]]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
