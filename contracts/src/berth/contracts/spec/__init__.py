"""Parts of a workload spec; ``berth.contracts.workload`` assembles them and re-exports them."""
