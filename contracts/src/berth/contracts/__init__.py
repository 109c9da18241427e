"""berth contracts: events, queries and the workload spec."""
