from berth.scheduler_adapter.tables import SCHEMA, metadata
from berth.shared.migrations import run_env

run_env(metadata, SCHEMA)
