"""Per-kind manifest builders; ``berth.scheduler_adapter.render.render`` is the entry point."""
