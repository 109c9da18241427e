"""Policy's schema: the outcome of every evaluation."""

from sqlalchemy import Column, DateTime, Table, Text, func
from sqlalchemy.dialects.postgresql import JSONB

from berth.shared.db import service_metadata

SCHEMA = "policy"
metadata = service_metadata(SCHEMA)

evaluations = Table(
    "evaluations",
    metadata,
    Column("workload_id", Text, primary_key=True),
    Column("outcome", Text, nullable=False),
    Column("effective_spec", JSONB, nullable=True),
    Column("issues", JSONB, nullable=False, server_default="[]"),
    Column("evaluated_at", DateTime(timezone=True), server_default=func.now(), nullable=False),
)
