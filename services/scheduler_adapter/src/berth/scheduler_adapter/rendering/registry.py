"""Where each kind's renderer is registered: ``render_kind`` dispatches on the submission's type.

A kind's module of this package registers its renderer with ``@render_kind.register``; the
package imports every module, so a new kind is its module and nothing else here.
"""

from __future__ import annotations

from functools import singledispatch
from typing import Any

from berth.contracts.events import WorkloadRef
from berth.scheduler_adapter.rendering.capabilities import ClusterCapabilities


@singledispatch
def render_kind(
    submission: object,
    workload: WorkloadRef,  # noqa: ARG001
    trace_id: str | None,  # noqa: ARG001
    capabilities: ClusterCapabilities,  # noqa: ARG001
) -> list[dict[str, Any]]:
    """The objects of one kind of submission (``workload`` already names its queue)."""
    raise TypeError(f"no renderer for {type(submission).__name__}")
