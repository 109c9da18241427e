"""``berth logs``: a workload's container logs, read from its cluster's API by the cluster's
agent (the CLI speaks only NATS) and returned in chunks; ``--follow`` asks for the next chunk
until the container ends."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from berth.cli.common import NatsOpt, ProjectOpt, fail, project_or_default, with_client

if TYPE_CHECKING:
    from berth.cli.client import BerthClient

# Seconds between two reads of a followed log: the cluster's log grows line by line anyway.
FOLLOW_INTERVAL = 1.0


def register(app: typer.Typer) -> None:
    app.command()(logs)


def logs(
    name: Annotated[str, typer.Argument(metavar="NAME", help="The workload's name.")],
    project: ProjectOpt = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing lines until the container ends.")
    ] = False,
    tail: Annotated[
        int | None, typer.Option("--tail", metavar="N", help="Only the last N lines.")
    ] = None,
    pod: Annotated[
        str | None, typer.Option("--pod", metavar="POD", help="Which pod (default: the first).")
    ] = None,
    container: Annotated[
        str | None, typer.Option("--container", "-c", metavar="NAME", help="Which container.")
    ] = None,
    nats_url: NatsOpt = None,
) -> None:
    """Print a workload's container log (one pod's; --pod chooses)."""
    chosen = project_or_default(project)

    async def go(client: BerthClient) -> None:
        import asyncio

        from berth.contracts.queries import LogsQuery, LogsReply
        from berth.contracts.subjects import rpc_logs

        view = await client.workload(chosen, name)
        if not view.clusterId or view.status in ("received", "approved", "rejected"):
            raise fail(f"{name} has not reached a cluster (status {view.status})", 1)
        query = LogsQuery(
            workloadId=view.workloadId, pod=pod, container=container, tail=tail, offset=0
        )
        while True:
            try:
                reply: LogsReply = await client.request(
                    rpc_logs(view.clusterId), query, LogsReply, timeout=10
                )
            except Exception as exc:
                raise fail(f"cannot read logs from cluster {view.clusterId}: {exc}", 1) from None
            for line in reply.lines:
                print(line, flush=True)
            if reply.error and not (follow and not reply.finished and reply.pods):
                raise fail(reply.error, 1)
            if not follow or reply.finished:
                return
            query = query.model_copy(update={"offset": reply.offset, "pod": reply.pod or pod})
            await asyncio.sleep(FOLLOW_INTERVAL)

    with_client(nats_url, None, go)
