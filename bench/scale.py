"""Costs as state grows: berth with many stored workloads (most finished) and many live ones.

One suite on embedded NATS and PostgreSQL, in this order:

1. a measured run of ``--workloads`` submissions on the empty database (as ``bench.suite_bench``);
2. ``--live`` workloads submitted through the whole chain and left Running on the simulated
   cluster: the agent applied them, the cluster runs them, so a restart has them to resync;
3. finished workloads written straight into the services' tables until ``--stored`` workloads
   are stored: each is a copy of the rows the services wrote for a real workload of step 2 (every
   per-workload table of every service, found through the ``workload_id`` / ``id`` key), with its
   id, name and times replaced and a final phase (70 % Completed, 20 % Failed, 10 % Deleted), plus
   as many inbox rows per service as a real workload left there (measured in step 1). Their times
   are spread over the last ``--history-days`` days, so part of them is older than the inbox
   retention;
4. ``berth list -p PROJECT``'s query (the rpc the CLI sends, one page of 500, as the CLI's ``ui``
   connection with a bearer token): p50/p95/p99 of ``--list-calls`` calls for the first page and
   for a page deep in the list, and the time of the whole listing (every page, each after the one
   before's cursor, as the CLI reads without ``--limit``);
5. the same measured run again on the grown state: the throughput ratio;
6. a ``kill -9`` of the scheduler-adapter (the cluster's agent) and its restart: the time until it
   answers its health query again, which it does only once its start has reconciled every
   unfinished workload it holds with the cluster's listing (applying again those the cluster
   does not hold) and its consumers run again, then until every live workload is still Running
   in intake's read model. Split into the process coming up, the wait for the killed agent's
   lease to expire (``BERTH_LEASE_DURATION_SECONDS`` from the moment the new one first reads
   it), and the resync itself;
7. the resident memory of every process, and the sizes of the outboxes, inboxes and streams at
   each step, with the streams' limits.

Run ``python -m bench.scale --help`` for the options.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import shutil
import signal
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
from opentelemetry.sdk.trace import TracerProvider
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from bench.common import BenchFailure, child_named, format_measurement, postmaster_pid
from bench.suite_bench import (
    ACTOR,
    PROJECT,
    add_common_options,
    bench_suite,
    options_from,
    parse_env,
    start_suite,
)
from berth.cli.client import BerthClient
from berth.cli.suite import AGENT, Suite
from berth.contracts.queries import WorkloadListReply, WorkloadQuery
from berth.contracts.roles import ADMIN, UI
from berth.contracts.subjects import RPC_WORKLOADS_LIST, STREAMS, rpc_health

RESULTS = Path(__file__).resolve().parent / "results"
# Held by the supervising thread during a pass, and by the deliberate kill and restart.
SUPERVISION = threading.Lock()
SCHEMAS = ("intake", "policy", "catalog", "cluster_sync", "ownership", "scheduler_adapter")
OUTBOX, INBOX = "outbox", "processed_events"
# Final phases of the seeded history: i % 10 -> phase.
FINAL = ["Completed"] * 7 + ["Failed"] * 2 + ["Deleted"]
# Each seeded workload's id: a UUID derived from its number, so that reruns do not collide with
# real ones and stay recognisable.
SEED_ID = "(md5('berth-scale-' || g.i)::uuid)::text"
DEFAULT_SCALE_ENV = {
    # The inbox prune runs every few seconds here, so that one run shows it working.
    "BERTH_INBOX_PRUNE_INTERVAL_SECONDS": "15",
}


# --- sizes -------------------------------------------------------------------------------------


async def table_sizes(engine: AsyncEngine) -> dict[str, dict[str, int]]:
    """Rows and bytes (with indexes) of every outbox and inbox, and of the workload tables."""
    sizes: dict[str, dict[str, int]] = {}
    async with engine.connect() as conn:
        for schema in SCHEMAS:
            for table in (OUTBOX, INBOX, "workloads"):
                exists = await conn.scalar(
                    text("SELECT to_regclass(:t) IS NOT NULL"), {"t": f"{schema}.{table}"}
                )
                if not exists:
                    continue
                rows = await conn.scalar(text(f'SELECT count(*) FROM "{schema}"."{table}"'))
                size = await conn.scalar(
                    text("SELECT pg_total_relation_size(:t)"), {"t": f"{schema}.{table}"}
                )
                sizes[f"{schema}.{table}"] = {"rows": int(rows or 0), "bytes": int(size or 0)}
    return sizes


async def stream_sizes(suite: Suite) -> dict[str, dict[str, Any]]:
    nc = await suite.connect(ADMIN, name="berth-bench-scale")
    try:
        js = nc.jetstream()
        out: dict[str, dict[str, Any]] = {}
        for name in STREAMS:
            info = await js.stream_info(name)
            out[name] = {
                "messages": info.state.messages,
                "bytes": info.state.bytes,
                "max_age_days": round((info.config.max_age or 0) / 86400, 2),
                "max_bytes": info.config.max_bytes,
                "max_msgs": info.config.max_msgs,
            }
        return out
    finally:
        await nc.close()


async def sizes(suite: Suite, engine: AsyncEngine) -> dict[str, Any]:
    return {"tables": await table_sizes(engine), "streams": await stream_sizes(suite)}


def rss(suite: Suite) -> dict[str, float]:
    """Resident memory (MiB) of every process of the suite; PostgreSQL is its postmaster and
    every backend added up (shared buffers are counted in each backend that touched them, so
    that sum is an upper bound)."""
    pids: dict[str, list[int]] = {name: [proc.pid] for name, proc in suite.procs.items()}
    nats_pid = child_named("nats-server")
    if nats_pid is not None:
        pids["nats-server"] = [nats_pid]
    pg = postmaster_pid(suite.state_dir / "pg")
    if pg is not None:
        with contextlib.suppress(psutil.Error):
            pids["postgres (all backends)"] = [
                pg,
                *(c.pid for c in psutil.Process(pg).children(recursive=True)),
            ]
    out: dict[str, float] = {}
    for name, members in pids.items():
        total = 0
        for pid in members:
            try:
                total += psutil.Process(pid).memory_info().rss
            except psutil.Error:
                continue
        out[name] = round(total / (1 << 20), 1)
    return out


# --- seeding the finished history --------------------------------------------------------------


async def _columns(conn: Any, schema: str, table: str) -> list[tuple[str, str]]:
    rows = await conn.execute(
        text(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = :s AND table_name = :t ORDER BY ordinal_position"
        ),
        {"s": schema, "t": table},
    )
    return [(r.column_name, r.data_type) for r in rows]


async def _workload_tables(conn: Any) -> list[tuple[str, str, str]]:
    """(schema, table, key column) of every table holding rows per workload: a ``workload_id``
    column, or intake's and the agent's ``workloads`` keyed by ``id`` / ``workload_id``."""
    rows = await conn.execute(
        text(
            "SELECT table_schema, table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = ANY(:schemas) AND column_name IN ('workload_id', 'id') "
            "AND table_name NOT IN ('outbox', 'processed_events')"
        ),
        {"schemas": list(SCHEMAS)},
    )
    found: dict[tuple[str, str], str] = {}
    for r in rows:
        if r.column_name == "workload_id":
            found[(r.table_schema, r.table_name)] = "workload_id"
        elif r.table_name == "workloads":
            found.setdefault((r.table_schema, r.table_name), "id")
    return sorted((s, t, k) for (s, t), k in found.items())


def _expression(table: str, column: str, data_type: str, key: str) -> str:
    """The value of ``column`` in a copy of the template's row ``t`` for seeded workload g.i."""
    final = "(ARRAY['" + "','".join(FINAL) + "'])[g.i % 10 + 1]"
    if column == key:
        return SEED_ID
    if column == "id" and data_type == "bigint":
        return "DEFAULT"
    if column == "name":
        return "'history-' || g.i"
    if column in ("phase", "status") and table != "phase_history":
        # A history keeps the template's phases; the final one is added after.
        return final
    if column == "desired":
        return f"CASE WHEN {final} = 'Deleted' THEN 'Deleted' ELSE t.desired END"
    if column == "phase_message":
        return "''"
    if column == "running_pods":
        return "0"
    if data_type == "timestamp with time zone":
        # Each seeded workload at its own time; the template's intervals kept within a workload.
        return f't."{column}" - (now() - g.at)'
    if data_type in ("text", "jsonb"):
        # The template's id and name inside its other columns (refs, manifests, labels) become
        # the copy's.
        replaced = (
            f"replace(replace(t.\"{column}\"::text, :tid, {SEED_ID}), :tname, 'history-' || g.i)"
        )
        return replaced if data_type == "text" else f"({replaced})::jsonb"
    return f't."{column}"'


async def seed_history(
    engine: AsyncEngine,
    *,
    template_id: str,
    template_name: str,
    count: int,
    history_days: float,
    inbox_per_workload: dict[str, float],
    chunk: int = 10_000,
) -> dict[str, Any]:
    """Write ``count`` finished workloads as copies of ``template_id``'s rows (see the module
    docstring); returns what was written, per table."""
    written: dict[str, int] = {}
    started = time.monotonic()
    series = (
        "(SELECT i, now() - make_interval(secs => (i::float8 / CAST(:count AS float8)) "
        "* CAST(:span AS float8)) AS at "
        "FROM generate_series(CAST(:first AS int), CAST(:last AS int)) AS i) AS g"
    )
    async with engine.connect() as conn:
        tables = await _workload_tables(conn)
        plans = []
        for schema, table, key in tables:
            columns = await _columns(conn, schema, table)
            names = [c for c, t in columns if not (c == "id" and t == "bigint")]
            values = [
                _expression(table, c, t, key)
                for c, t in columns
                if not (c == "id" and t == "bigint")
            ]
            quoted = ", ".join(f'"{n}"' for n in names)
            insert = (
                f'INSERT INTO "{schema}"."{table}" ({quoted}) '
                f'SELECT {", ".join(values)} FROM "{schema}"."{table}" AS t, {series} '
                f'WHERE t."{key}" = :tid'
            )
            plans.append((f"{schema}.{table}", insert))
        await conn.commit()
        span = history_days * 86400
        for first in range(1, count + 1, chunk):
            last = min(count, first + chunk - 1)
            params = {
                "tid": template_id,
                "tname": template_name,
                "count": count,
                "span": span,
                "first": first,
                "last": last,
            }
            async with conn.begin():
                for name, insert in plans:
                    result = await conn.execute(text(insert), params)
                    written[name] = written.get(name, 0) + (result.rowcount or 0)
                # A terminal phase in intake's history, as its read model records one.
                result = await conn.execute(
                    text(
                        "INSERT INTO intake.phase_history (workload_id, phase, message, at) "
                        f"SELECT {SEED_ID}, w.phase, '', w.phase_at "
                        "FROM intake.workloads w "
                        "JOIN generate_series(CAST(:first AS int), CAST(:last AS int)) AS g(i) "
                        f"ON w.id = {SEED_ID}"
                    ),
                    params,
                )
                written["intake.phase_history (final)"] = written.get(
                    "intake.phase_history (final)", 0
                ) + (result.rowcount or 0)
                for schema, per in inbox_per_workload.items():
                    rows = round(per * (last - first + 1))
                    if rows <= 0:
                        continue
                    # Inbox rows as a handled event leaves them: its id, when, the digest.
                    result = await conn.execute(
                        text(
                            f'INSERT INTO "{schema}".processed_events '
                            "(event_id, processed_at, digest) "
                            "SELECT md5(CAST(:schema AS text) || '-' || j)::uuid, "
                            "now() - make_interval(secs => "
                            "((CAST(:first AS float8) + (j - CAST(:first AS int)) "
                            "/ CAST(:per AS float8))"
                            " / CAST(:count AS float8)) * CAST(:span AS float8)), "
                            "encode(sha256(j::text::bytea), 'hex') "
                            "FROM generate_series(CAST(:jfirst AS int), CAST(:jlast AS int)) AS j"
                        ),
                        {
                            "schema": schema,
                            "first": first,
                            "per": max(per, 1e-9),
                            "count": count,
                            "span": span,
                            "jfirst": round(per * (first - 1)) + 1,
                            "jlast": round(per * (first - 1)) + rows,
                        },
                    )
                    key = f"{schema}.processed_events"
                    written[key] = written.get(key, 0) + (result.rowcount or 0)
        await conn.execute(text("ANALYZE"))
        await conn.commit()
    return {"seconds": round(time.monotonic() - started, 2), "rows": written}


# --- the list query ----------------------------------------------------------------------------


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 2)

    return {
        "n": len(ordered),
        "p50": at(0.5),
        "p95": at(0.95),
        "p99": at(0.99),
        "max": round(ordered[-1], 2),
        "mean": round(statistics.fmean(ordered), 2),
    }


async def list_latency(suite: Suite, calls: int, full_listings: int) -> dict[str, Any]:
    """``berth list -p PROJECT`` as the CLI sends it (ui connection, bearer token), one page at
    a time: the first page, a page deep in the list (by offset), and every page (the whole
    listing, by cursor as the CLI reads it)."""
    nc = await suite.connect(UI, name="berth-bench-list")
    try:
        client = BerthClient(nc, TracerProvider(), ACTOR, suite.token(ACTOR.email))
        query = WorkloadQuery(project=PROJECT, actor=ACTOR)

        async def page(offset: int) -> WorkloadListReply:
            reply: WorkloadListReply = await client.request(
                RPC_WORKLOADS_LIST, query.model_copy(update={"offset": offset}), WorkloadListReply
            )
            if reply.error:
                raise BenchFailure(f"list refused: {reply.error}")
            return reply

        await page(0)  # connection and caches warm
        first: list[float] = []
        for _ in range(calls):
            t = time.perf_counter()
            reply = await page(0)
            first.append((time.perf_counter() - t) * 1000)
        page_size = len(reply.workloads)
        whole: list[float] = []
        total = 0
        for _ in range(full_listings):
            t = time.perf_counter()
            total = len(await client.workloads(query))
            whole.append((time.perf_counter() - t) * 1000)
        deep_offset = max(0, (total // 2) // max(page_size, 1) * max(page_size, 1))
        deep: list[float] = []
        for _ in range(calls):
            t = time.perf_counter()
            await page(deep_offset)
            deep.append((time.perf_counter() - t) * 1000)
        return {
            "workloads_in_project": total,
            "page_size": page_size,
            "first_page_ms": percentiles(first),
            "deep_page_offset": deep_offset,
            "deep_page_ms": percentiles(deep),
            "whole_listing_ms": percentiles(whole) if whole else None,
        }
    finally:
        await nc.close()


# --- the agent's restart -----------------------------------------------------------------------


async def _running_in_intake(engine: AsyncEngine, ids: list[str]) -> int:
    async with engine.connect() as conn:
        return int(
            await conn.scalar(
                text(
                    "SELECT count(*) FROM intake.workloads "
                    "WHERE id = ANY(:ids) AND phase = 'Running'"
                ),
                {"ids": ids},
            )
            or 0
        )


async def restart_agent(
    suite: Suite, engine: AsyncEngine, live_ids: list[str], timeout: float
) -> dict[str, Any]:
    """kill -9 the agent, start it again at once, and time its way back (see the docstring)."""
    async with engine.connect() as conn:
        unfinished = int(
            await conn.scalar(
                text(
                    "SELECT count(*) FROM scheduler_adapter.workloads WHERE desired = 'Running' "
                    "AND (phase IS NULL OR phase NOT IN ('Completed', 'Failed', 'Deleted'))"
                )
            )
            or 0
        )
    nc = await suite.connect(ADMIN, name="berth-bench-restart")
    try:
        SUPERVISION.acquire()
        proc = suite.procs[AGENT]
        suite.supervisor.forget(AGENT)
        log = suite.log_dir / f"{AGENT}.log"
        log_offset = log.stat().st_size if log.exists() else 0
        # The restarted agent logs at INFO: its lease, resync and take-over lines time the steps.
        level = suite.extra_env.get("BERTH_LOG_LEVEL")
        suite.extra_env["BERTH_LOG_LEVEL"] = "INFO"
        killed_at = time.time()
        killed = time.monotonic()
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        try:
            suite.start_service(AGENT)
        finally:
            SUPERVISION.release()
            if level is None:
                suite.extra_env.pop("BERTH_LOG_LEVEL", None)
            else:
                suite.extra_env["BERTH_LOG_LEVEL"] = level
        started = time.monotonic()
        deadline = killed + timeout
        while True:
            if suite.procs[AGENT].poll() is not None:
                raise BenchFailure(f"the restarted agent exited:\n{suite.log_tail(AGENT)}")
            try:
                await nc.request(rpc_health(AGENT), b"{}", timeout=0.5)
                break
            except Exception:
                if time.monotonic() > deadline:
                    raise BenchFailure(
                        f"the agent did not answer within {timeout:.0f}s of its kill"
                    ) from None
                await asyncio.sleep(0.1)
        healthy = time.monotonic()
        # Nothing the resync did may have changed what the workloads are doing.
        while (running := await _running_in_intake(engine, live_ids)) < len(live_ids):
            if time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        return {
            "steps_after_kill_s": _restart_steps(log, log_offset, killed_at),
            "unfinished_workloads_held": unfinished,
            "kill_to_healthy_s": round(healthy - killed, 2),
            "process_start_to_healthy_s": round(healthy - started, 2),
            "live_still_running": running,
            "live": len(live_ids),
        }
    finally:
        await nc.close()


# Log lines of the agent's start, in order: (step, what the message contains).
RESTART_STEPS = (
    ("started, standing by for the lease", "standing by for the lease"),
    ("lease taken", "holds the lease"),
    ("every unfinished workload resynced", "workloads resynced"),
    ("consuming again (leading)", ": leading as"),
)


def _restart_steps(log: Path, offset: int, killed_at: float) -> dict[str, Any]:
    """Seconds from the kill to each step of the agent's start, from its log's timestamps."""
    steps: dict[str, Any] = {}
    try:
        with log.open("rb") as f:
            f.seek(offset)
            lines = f.read().decode(errors="replace").splitlines()
    except OSError:
        return steps
    for line in lines:
        try:
            entry = json.loads(line)
            at = datetime.fromisoformat(entry["time"]).timestamp()
            message = str(entry.get("message", ""))
        except (ValueError, KeyError, TypeError):
            continue
        for step, marker in RESTART_STEPS:
            if marker in message and step not in steps:
                steps[step] = round(at - killed_at, 2)
                if marker == "workloads resynced":
                    steps["resync log line"] = message
    # The two waits the total is made of, apart: the killed agent's lease (fixed, whatever the
    # agent holds) and the resync (what grows with the workloads it holds).
    if "lease taken" in steps and "started, standing by for the lease" in steps:
        steps["waiting for the lease"] = round(
            steps["lease taken"] - steps["started, standing by for the lease"], 2
        )
    if "every unfinished workload resynced" in steps and "lease taken" in steps:
        steps["resync"] = round(
            steps["every unfinished workload resynced"] - steps["lease taken"], 2
        )
    return steps


# --- the whole run -----------------------------------------------------------------------------


async def _inbox_per_workload(
    engine: AsyncEngine, before: dict[str, Any], done: int
) -> dict[str, float]:
    after = await table_sizes(engine)
    out: dict[str, float] = {}
    for schema in SCHEMAS:
        key = f"{schema}.{INBOX}"
        if key in after:
            grown = after[key]["rows"] - before["tables"].get(key, {}).get("rows", 0)
            out[schema] = round(max(grown, 0) / max(done, 1), 3)
    return out


async def _ids(engine: AsyncEngine, prefix: str) -> list[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT id FROM intake.workloads WHERE name LIKE :p AND project = :project"),
            {"p": f"{prefix}-%", "project": PROJECT},
        )
        return [r.id for r in rows]


async def _count(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(text("SELECT count(*) FROM intake.workloads")) or 0)


def run_scale(suite: Suite, args: argparse.Namespace, result: dict[str, Any]) -> None:
    """Each stage's figures go into ``result`` as soon as they are known: a failed run keeps
    the stages before the failure."""
    options = options_from(args)
    engine_url = suite.database_url
    result.update({"sizes": {}, "rss_mib": {}})

    async def with_engine(fn: Any) -> Any:
        engine = create_async_engine(engine_url)
        try:
            return await fn(engine)
        finally:
            await engine.dispose()

    def stage(title: str) -> None:
        print(f"== scale: {title}", flush=True)

    # Supervised as `berth up` supervises: a process that ends (an agent that lost its lease
    # under load stops itself, for a supervisor to start again) is restarted, and counted.
    restarts: list[str] = result.setdefault("unplanned_restarts", [])
    say = suite.supervisor.progress

    def note(line: str) -> None:
        restarts.append(line.splitlines()[0] if line else line)
        say(line)

    suite.supervisor.progress = note
    threading.Thread(target=_supervise, args=(suite,), name="supervisor", daemon=True).start()
    result["sizes"]["start"] = asyncio.run(with_engine(lambda e: sizes(suite, e)))
    stage(f"empty database: {args.workloads} workloads")
    empty = asyncio.run(
        bench_suite(
            suite, args.workloads, options, runtime_seconds=args.runtime, name_prefix="empty"
        )
    )
    print(format_measurement("berth, empty database", empty), flush=True)
    result["empty"] = empty
    inbox_rate = asyncio.run(
        with_engine(lambda e: _inbox_per_workload(e, result["sizes"]["start"], args.workloads + 1))
    )
    result["inbox_rows_per_workload"] = inbox_rate
    result["list_empty"] = asyncio.run(list_latency(suite, args.list_calls, 1))

    stage(f"{args.live} live workloads through the whole chain")
    live = asyncio.run(
        bench_suite(suite, args.live, options, runtime_seconds=args.runtime, name_prefix="live")
    )
    result["live_seeding"] = {
        "workloads": live["workloads"],
        "seconds": live["seconds"],
        "workloads_per_s": live["workloads_per_s"],
    }
    live_ids = asyncio.run(with_engine(lambda e: _ids(e, "live")))
    template_name = "live-0"
    template_id = asyncio.run(with_engine(lambda e: _template(e, template_name)))
    stored = asyncio.run(with_engine(_count))
    history = max(0, args.stored - stored)
    stage(f"{history} finished workloads written into the services' tables")
    result["history_seeding"] = asyncio.run(
        with_engine(
            lambda e: seed_history(
                e,
                template_id=template_id,
                template_name=template_name,
                count=history,
                history_days=args.history_days,
                inbox_per_workload=inbox_rate,
            )
        )
    )
    print(f"  written in {result['history_seeding']['seconds']}s", flush=True)
    result["sizes"]["seeded"] = asyncio.run(with_engine(lambda e: sizes(suite, e)))
    result["stored_workloads"] = asyncio.run(with_engine(_count))
    result["live_workloads"] = len(live_ids)

    stage(f"berth list -p {PROJECT}: {args.list_calls} calls per page")
    result["list"] = asyncio.run(list_latency(suite, args.list_calls, args.full_listings))

    stage(f"seeded database: {args.workloads} workloads")
    seeded = asyncio.run(
        bench_suite(
            suite, args.workloads, options, runtime_seconds=args.runtime, name_prefix="seeded"
        )
    )
    print(format_measurement("berth, seeded database", seeded), flush=True)
    result["seeded"] = seeded
    result["throughput_ratio_seeded_over_empty"] = (
        round(seeded["workloads_per_s"] / empty["workloads_per_s"], 3)
        if empty["workloads_per_s"]
        else None
    )
    result["cpu_ms_per_workload_ratio"] = {
        k: round(v / empty["cpu_ms_per_workload"][k], 2)
        for k, v in seeded["cpu_ms_per_workload"].items()
        if empty["cpu_ms_per_workload"].get(k)
    }

    stage("kill -9 of the agent, and its restart")
    all_live = asyncio.run(with_engine(lambda e: _running_ids(e)))
    result["agent_restart"] = asyncio.run(
        with_engine(lambda e: restart_agent(suite, e, all_live, args.restart_timeout))
    )
    print(f"  {result['agent_restart']}", flush=True)
    # Long enough for the inbox prune to have run in every service.
    time.sleep(args.settle)
    result["sizes"]["end"] = asyncio.run(with_engine(lambda e: sizes(suite, e)))
    result["rss_mib"] = rss(suite)


def _supervise(suite: Suite) -> None:
    # In a thread that lives as long as the benchmark: a child is told to end when the thread
    # that started it ends.
    while True:
        time.sleep(0.5)
        with SUPERVISION:
            suite.supervisor.check()


async def _template(engine: AsyncEngine, name: str) -> str:
    async with engine.connect() as conn:
        wid = await conn.scalar(
            text(
                "SELECT id FROM intake.workloads WHERE name = :n AND project = :p "
                "AND phase = 'Running'"
            ),
            {"n": name, "p": PROJECT},
        )
    if wid is None:
        raise BenchFailure(f"no Running workload {name!r} to copy")
    return str(wid)


async def _running_ids(engine: AsyncEngine) -> list[str]:
    async with engine.connect() as conn:
        rows = await conn.execute(text("SELECT id FROM intake.workloads WHERE phase = 'Running'"))
        return [r.id for r in rows]


# --- reporting ---------------------------------------------------------------------------------


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB"


def summary(result: dict[str, Any]) -> str:
    lines = [
        "",
        f"=== scale: {result['stored_workloads']} workloads stored, {result['live_workloads']} "
        "live (plus the measured runs') ===",
    ]
    seeding = result["history_seeding"]
    lines.append(
        f"seeding: {result['live_seeding']['workloads']} live through the chain in "
        f"{result['live_seeding']['seconds']:.0f}s; finished history written in "
        f"{seeding['seconds']:.0f}s"
    )
    for key, label in (("list_empty", "empty"), ("list", "seeded")):
        lst = result[key]
        first, deep = lst["first_page_ms"], lst["deep_page_ms"]
        line = (
            f"berth list -p {PROJECT} ({label}, {lst['workloads_in_project']} in project): "
            f"first page p50 {first['p50']:.0f} ms p95 {first['p95']:.0f} ms; "
            f"page at {lst['deep_page_offset']}: p95 {deep['p95']:.0f} ms"
        )
        if lst.get("whole_listing_ms"):
            line += f"; every page (as the CLI): p50 {lst['whole_listing_ms']['p50']:.0f} ms"
        lines.append(line)
    empty, seeded = result["empty"], result["seeded"]
    lines.append(
        f"throughput: empty {empty['workloads_per_s']:.1f} workloads/s, seeded "
        f"{seeded['workloads_per_s']:.1f} -> ratio {result['throughput_ratio_seeded_over_empty']}"
    )
    cpu_e, cpu_s = empty["cpu_ms_per_workload"], seeded["cpu_ms_per_workload"]
    lines.append(
        "CPU ms per workload, empty -> seeded: "
        + ", ".join(
            f"{k} {cpu_e[k]:.2f}->{cpu_s[k]:.2f}"
            for k in sorted(cpu_e, key=lambda k: -cpu_e[k])
            if k in cpu_s and not k.startswith("(")
        )
    )
    restart = result["agent_restart"]
    lines.append(
        f"agent kill -9 + restart: healthy (every one of its {restart['unfinished_workloads_held']}"
        f" unfinished workloads resynced) {restart['kill_to_healthy_s']:.1f}s after the kill; "
        f"{restart['live_still_running']}/{restart['live']} live workloads still Running"
    )
    spans = ("waiting for the lease", "resync")
    steps = {
        k: v
        for k, v in restart.get("steps_after_kill_s", {}).items()
        if k != "resync log line" and k not in spans
    }
    if steps:
        lines.append(
            "  seconds after the kill: " + ", ".join(f"{k} {v:.1f}" for k, v in steps.items())
        )
    took = {
        k: restart["steps_after_kill_s"][k] for k in spans if k in restart["steps_after_kill_s"]
    }
    if took:
        lines.append("  of which: " + ", ".join(f"{k} {v:.1f}s" for k, v in took.items()))
    if "resync log line" in restart.get("steps_after_kill_s", {}):
        lines.append(f"  agent: {restart['steps_after_kill_s']['resync log line']}")
    if result.get("unplanned_restarts"):
        lines.append(
            f"unplanned restarts by the supervisor: {len(result['unplanned_restarts'])}: "
            + " | ".join(result["unplanned_restarts"])[:600]
        )
    lines.append("sizes (rows / bytes): start -> seeded -> end")
    tables = result["sizes"]
    for key in sorted(tables["end"]["tables"]):
        if not key.endswith((OUTBOX, INBOX)):
            continue
        cells = [
            tables[s]["tables"].get(key, {"rows": 0, "bytes": 0})
            for s in ("start", "seeded", "end")
        ]
        lines.append(
            f"  {key:36} " + " -> ".join(f"{c['rows']} / {_mib(c['bytes'])}" for c in cells)
        )
    for name in sorted(tables["end"]["streams"]):
        cells = [tables[s]["streams"][name] for s in ("start", "seeded", "end")]
        limit = cells[-1]
        lines.append(
            f"  stream {name:29} "
            + " -> ".join(f"{c['messages']} / {_mib(c['bytes'])}" for c in cells)
            + f"  (max age {limit['max_age_days']} d, max bytes "
            + ("none" if limit["max_bytes"] in (-1, None) else _mib(limit["max_bytes"]))
            + ")"
        )
    lines.append(
        "RSS (MiB): " + ", ".join(f"{k} {v:.0f}" for k, v in sorted(result["rss_mib"].items()))
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.scale",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
    )
    add_common_options(parser)
    parser.set_defaults(workloads=2000)
    parser.add_argument(
        "--stored", type=int, default=100_000, help="workloads stored in all (default 100000)"
    )
    parser.add_argument(
        "--live",
        type=int,
        default=5000,
        help="live workloads, Running on the simulated cluster (default 5000)",
    )
    parser.add_argument(
        "--history-days",
        type=float,
        default=60.0,
        help="the finished workloads' times spread over this many days back (default 60)",
    )
    parser.add_argument(
        "--list-calls",
        type=int,
        default=100,
        help="calls per measured page of the list query (default 100)",
    )
    parser.add_argument(
        "--full-listings",
        type=int,
        default=3,
        help="times the whole listing (every page) is read (default 3)",
    )
    parser.add_argument(
        "--restart-timeout",
        type=float,
        default=180.0,
        help="seconds for the agent to come back (default 180)",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=20.0,
        help="seconds to wait before the last sizes, for the inbox prune to run (default 20)",
    )
    parser.add_argument(
        "--sim-speed",
        type=float,
        default=1000.0,
        help="simulated seconds per real second (default 1000)",
    )
    parser.add_argument(
        "--runtime",
        type=float,
        default=1e7,
        help="simulated seconds each workload runs (default 1e7)",
    )
    parser.add_argument(
        "--env",
        action="append",
        metavar="KEY=VALUE",
        help="extra environment of the services (repeatable)",
    )
    parser.add_argument("--keep-state", action="store_true", help="keep the state directory")
    parser.add_argument(
        "--output",
        type=Path,
        default=RESULTS / "scale.json",
        help="JSON results (default bench/results/scale.json)",
    )
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    env = {**DEFAULT_SCALE_ENV, **parse_env(args.env)}
    state_dir = Path(tempfile.mkdtemp(prefix="berth-scale-"))
    results: dict[str, Any] = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": {
            "stored": args.stored,
            "live": args.live,
            "workloads": args.workloads,
            "history_days": args.history_days,
            "list_calls": args.list_calls,
            "service_env": env,
        },
    }
    suite: Suite | None = None
    ok = False
    try:
        capacity = args.live + 2 * args.workloads + 10
        suite = start_suite(state_dir, capacity, sim_speed=args.sim_speed, extra_env=env)
        run_scale(suite, args, results)
        ok = True
    except BenchFailure as exc:
        results["error"] = str(exc)
        print(f"scale run failed: {exc}", file=sys.stderr, flush=True)
    finally:
        # No restarts while the suite stops: the supervising thread waits on this for good.
        SUPERVISION.acquire()
        if suite is not None:
            suite.stop()
        if ok and not args.keep_state:
            shutil.rmtree(state_dir, ignore_errors=True)
        else:
            print(f"state and service logs kept in {state_dir}", file=sys.stderr)
    if ok:
        print(summary(results))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"\nresults written to {args.output}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
