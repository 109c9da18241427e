"""``python -m berth.scheduler_adapter.simulation``: a simulated cluster as its own process."""

from berth.scheduler_adapter.simulation.server import main

main()
