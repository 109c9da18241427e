from berth.intake.tables import SCHEMA, metadata
from berth.shared.migrations import run_env

run_env(metadata, SCHEMA)
