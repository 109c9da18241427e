"""Throughput and latency benchmarks of berth, and bare nats-py baselines to compare them with.

``python -m bench.run`` runs them all; ``bench.suite_bench`` and ``bench.bare_pipeline`` run alone.
"""
