"""The baseline: berth's event chain with bare nats-py and nothing else.

A producer publishes N ~1 KB JSON envelopes to JetStream, and one process per berth hop passes
them on, so that the bus carries the same events per workload as berth's chain:

    bare.submission.requested -> [intake] -> bare.submission.received -> [policy]
    -> bare.policy.approved -> [scheduler-adapter] -> bare.workload.scheduled
       + bare.workload.phase-changed Creating, Pending, Initializing, Running

Each hop is a durable pull consumer fetched the way berth's ``PullLoop`` does (``fetch(1,
timeout=5)``, then ``fetch(batch - 1, timeout=<gather>)`` for whatever else is there), and per
batch: json-decodes each message, builds the next envelope(s), publishes them with
``js.publish_async`` and awaits the acks together, then acks its inputs. The producer and the sink
are ``bench.common``'s, exactly as in the berth benchmark, so the two are measured alike.

Two variants: ``plain`` (no database), and ``pg``, where each hop also writes one row per input
with one asyncpg ``executemany`` per batch, since berth records every hop in PostgreSQL. berth
does more per batch than that (inbox claim, state rows, outbox rows, then the relay's select and
delete), so ``pg`` is a lower bound of what berth's database work costs, not a model of it.

Run ``python -m bench.bare_pipeline --help`` for the options.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import shutil
import signal
import sys
import tempfile
import time
from datetime import UTC, datetime
from multiprocessing.synchronize import Event as MpEvent
from pathlib import Path
from typing import Any
from uuid import uuid4

import asyncpg  # type: ignore[import-untyped]
import nats
from nats.js.api import AckPolicy, ConsumerConfig, StorageType, StreamConfig
from nats.js.errors import NotFoundError

from bench.common import (
    BenchFailure,
    Build,
    CpuSampler,
    Options,
    Recorder,
    child_named,
    consumer_report,
    format_measurement,
    measure,
    postmaster_pid,
)
from berth.shared.bus import DUPLICATE_WINDOW_SECONDS
from berth.shared.settings import Settings

STREAM = "BARE"
PREFIX = "bare."
SCHEMA = "bare_bench"
VARIANTS = ("plain", "pg")
PHASES = ("Creating", "Pending", "Initializing", "Running")
# hop -> (event it consumes, events it publishes per input as (event, phase or None))
CHAIN: dict[str, tuple[str, tuple[tuple[str, str | None], ...]]] = {
    "intake": ("submission.requested.v1", (("submission.received.v1", None),)),
    "policy": ("submission.received.v1", (("policy.approved.v1", None),)),
    "scheduler-adapter": (
        "policy.approved.v1",
        (
            ("workload.scheduled.v1", None),
            *(("workload.phase-changed.v1", phase) for phase in PHASES),
        ),
    ),
}
# berth's own defaults, so that the baseline batches the way the services do.
DEFAULT_BATCH = int(Settings.model_fields["batch_size"].default)
DEFAULT_GATHER = float(Settings.model_fields["fetch_timeout"].default)
LONG_POLL_SECONDS = 5.0
PAYLOAD_BYTES = 1000


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _dumps(value: Any) -> bytes:
    # Compact, like pydantic's model_dump_json: the recorder finds "time" and "phase" in it.
    return json.dumps(value, separators=(",", ":")).encode()


def _table(role: str) -> str:
    return f'{SCHEMA}."{role}"'


# --- one hop (its own process) -----------------------------------------------------------------


async def _connect(nats_url: str, name: str, credentials: str | None) -> Any:
    # On berth's own NATS, which authenticates, the baselines use the operator's credential.
    options: dict[str, Any] = {"nkeys_seed": credentials} if credentials else {}
    return await nats.connect(nats_url, name=name, **options)


def hop_process(
    role: str,
    nats_url: str,
    dsn: str | None,
    batch: int,
    gather: float,
    ready: MpEvent,
    credentials: str | None = None,
) -> None:
    # The parent stops hops with SIGTERM; exit quietly rather than print a traceback.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        asyncio.run(_hop(role, nats_url, dsn, batch, gather, ready, credentials))


async def _hop(
    role: str,
    nats_url: str,
    dsn: str | None,
    batch: int,
    gather: float,
    ready: MpEvent,
    credentials: str | None,
) -> None:
    source, outputs = CHAIN[role]
    nc = await _connect(nats_url, f"bare-{role}", credentials)
    js = nc.jetstream()
    psub = await js.pull_subscribe(
        f"{PREFIX}{source}.*",
        durable=f"bare-{role}",
        stream=STREAM,
        config=ConsumerConfig(
            durable_name=f"bare-{role}",
            ack_policy=AckPolicy.EXPLICIT,
            ack_wait=30,
            max_ack_pending=batch * 8,  # as berth's PullLoop
            filter_subject=f"{PREFIX}{source}.*",
        ),
    )
    conn = await asyncpg.connect(dsn) if dsn else None
    insert = f"INSERT INTO {_table(role)} (event_id, subject, payload) VALUES ($1, $2, $3)"
    ready.set()
    while True:
        try:
            msgs = await psub.fetch(1, timeout=LONG_POLL_SECONDS)
        except TimeoutError:  # nats' TimeoutError and asyncio's alike
            continue
        if batch > 1:
            # The builtin TimeoutError, not only nats' subclass: with a gather time of a few ms,
            # nats-py raises a plain asyncio.TimeoutError when the server's "no messages" answer
            # comes after the deadline (nats/js/client.py, _fetch_n).
            with contextlib.suppress(TimeoutError):
                msgs += await psub.fetch(batch - 1, timeout=gather)
        rows: list[tuple[str, str, str]] = []
        out: list[tuple[str, bytes, dict[str, str]]] = []
        for msg in msgs:
            event = json.loads(msg.data)
            rows.append((event["id"], msg.subject, msg.data.decode()))
            for event_type, phase in outputs:
                data = dict(event["data"])
                data["hop"] = role  # the "small transformation"
                if phase is not None:
                    data["phase"] = phase
                new_id = str(uuid4())
                envelope = {
                    "specversion": "1.0",
                    "id": new_id,
                    "source": f"/bare/{role}",
                    "type": f"bare.{event_type}",
                    "version": 1,
                    "time": _now(),
                    "subject": event["subject"],
                    "actor": event["actor"],
                    "correlationid": event.get("correlationid") or event["id"],
                    "causationid": event["id"],
                    "data": data,
                }
                # Nats-Msg-Id as berth sets it: the server's duplicate check is part of the cost.
                out.append(
                    (
                        f"{PREFIX}{event_type}.{event['subject']}",
                        _dumps(envelope),
                        {"Nats-Msg-Id": new_id},
                    )
                )
        if conn is not None:
            await conn.executemany(insert, rows)
        futures = [await js.publish_async(s, p, headers=h) for s, p, h in out]
        await asyncio.gather(*futures)
        for msg in msgs:
            await msg.ack()


# --- the run -----------------------------------------------------------------------------------


def asyncpg_dsn(database_url: str) -> str:
    """berth's SQLAlchemy URL (postgresql+asyncpg://...) as asyncpg takes it."""
    return database_url.replace("postgresql+asyncpg://", "postgresql://", 1)


async def _prepare(nats_url: str, dsn: str | None, credentials: str | None) -> None:
    """A fresh stream (and fresh tables), so that every variant starts from nothing."""
    nc = await _connect(nats_url, "bare-setup", credentials)
    try:
        js = nc.jetstream()
        with contextlib.suppress(NotFoundError):
            await js.delete_stream(STREAM)
        await js.add_stream(
            StreamConfig(
                name=STREAM,
                subjects=[f"{PREFIX}>"],
                storage=StorageType.FILE,  # as berth's streams
                duplicate_window=DUPLICATE_WINDOW_SECONDS,
            )
        )
    finally:
        await nc.close()
    if dsn:
        conn = await asyncpg.connect(dsn)
        try:
            await conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
            for role in CHAIN:
                await conn.execute(f"DROP TABLE IF EXISTS {_table(role)}")
                await conn.execute(
                    f"CREATE TABLE {_table(role)} (event_id uuid PRIMARY KEY, "
                    "subject text NOT NULL, payload jsonb NOT NULL)"
                )
        finally:
            await conn.close()


def request_builder() -> Build:
    """~1 KB envelopes shaped like berth's submission requests."""
    probe = _request(0, "00000000-0000-0000-0000-000000000000", "")
    pad = "x" * max(0, PAYLOAD_BYTES - len(_dumps(probe)))

    def build(i: int, wid: str) -> tuple[str, bytes, dict[str, str]]:
        envelope = _request(i, wid, pad)
        return (
            f"{PREFIX}submission.requested.v1.{wid}",
            _dumps(envelope),
            {"Nats-Msg-Id": envelope["id"]},
        )

    return build


def _request(i: int, wid: str, pad: str) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": str(uuid4()),
        "source": "/bare/bench",
        "type": "bare.submission.requested",
        "version": 1,
        "time": _now(),
        "subject": wid,
        "actor": {"email": "bench@berth.dev", "groups": []},
        "correlationid": None,
        "causationid": None,
        "data": {
            "submission": {
                "kind": "training",
                "name": f"bench-{i}",
                "projectId": "team-a",
                "spec": {"image": "bench/train:1", "compute": {"gpuDevicesRequest": 1}},
            },
            "pad": pad,
        },
    }


async def _measure(
    nats_url: str, workloads: int, cpu: CpuSampler, options: Options, credentials: str | None
) -> dict[str, Any]:
    nc = await _connect(nats_url, "bare-bench", credentials)
    try:
        recorder = Recorder(PREFIX)
        await recorder.start(nc)
        ids = [str(uuid4()) for _ in range(workloads)]
        js = nc.jetstream()
        try:
            result = await measure(js, recorder, ids, request_builder(), cpu, options)
        except BenchFailure as exc:
            report = await consumer_report(js, [STREAM])
            raise BenchFailure(f"{exc}\nconsumers:\n{report}") from None
        return result.as_dict()
    finally:
        await nc.close()


def run_bare(
    nats_url: str,
    workloads: int,
    options: Options,
    *,
    dsn: str | None = None,
    batch: int = DEFAULT_BATCH,
    gather: float = DEFAULT_GATHER,
    pg_data_dir: Path | None = None,
    credentials: str | None = None,
) -> dict[str, Any]:
    """One variant: ``dsn`` None = plain, else each hop writes to that database.
    ``credentials``: an nkey seed file, for a NATS that authenticates (berth's ``admin``)."""
    asyncio.run(_prepare(nats_url, dsn, credentials))
    ctx = multiprocessing.get_context("spawn")  # no fork of a process that runs asyncio
    procs: dict[str, multiprocessing.process.BaseProcess] = {}
    try:
        events = {}
        for role in CHAIN:
            ready = ctx.Event()
            proc = ctx.Process(
                target=hop_process,
                args=(role, nats_url, dsn, batch, gather, ready, credentials),
                name=f"bare-{role}",
                daemon=True,
            )
            proc.start()
            procs[role], events[role] = proc, ready
        for role, ready in events.items():
            if not ready.wait(60):
                raise BenchFailure(f"bare hop {role} did not start within 60 s")
        pids = {role: proc.pid for role, proc in procs.items() if proc.pid is not None}
        nats_pid = child_named("nats-server")
        if nats_pid is not None:
            pids["nats-server"] = nats_pid
        pids["bench"] = os.getpid()
        trees = {}
        if dsn and pg_data_dir is not None and (pg := postmaster_pid(pg_data_dir)) is not None:
            trees["postgres"] = pg
        result = asyncio.run(
            _measure(nats_url, workloads, CpuSampler(pids, trees), options, credentials)
        )
        result["batch_size"], result["fetch_gather_seconds"] = batch, gather
        return result
    finally:
        for hop in procs.values():
            if hop.is_alive():
                hop.terminate()
        for hop in procs.values():
            hop.join(10)


def main(argv: list[str] | None = None) -> int:
    from bench.suite_bench import add_common_options, options_from

    parser = argparse.ArgumentParser(
        prog="python -m bench.bare_pipeline",
        description="Baseline for the berth benchmark: the same chain of events (request -> "
        "intake -> policy -> scheduler-adapter emitting scheduled + 4 phases) with bare nats-py "
        "processes, one per hop, and nothing else; variant 'pg' adds one asyncpg executemany "
        "per batch per hop. Starts embedded NATS / PostgreSQL unless URLs are given.",
    )
    add_common_options(parser)
    parser.add_argument("--nats-url", help="NATS with JetStream to use (default: embedded)")
    parser.add_argument(
        "--database-url",
        help="PostgreSQL for the 'pg' variant, as postgresql://... or berth's "
        "postgresql+asyncpg://... (default: embedded)",
    )
    parser.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help="comma-separated: plain (no database), pg (a write per batch per hop); default both",
    )
    parser.add_argument(
        "--batch",
        type=int,
        default=DEFAULT_BATCH,
        help=f"messages per fetch, as BERTH_BATCH_SIZE (default: berth's, {DEFAULT_BATCH})",
    )
    parser.add_argument(
        "--fetch-timeout",
        type=float,
        default=DEFAULT_GATHER,
        help="seconds the second fetch gathers a batch, as BERTH_FETCH_TIMEOUT "
        f"(default: berth's, {DEFAULT_GATHER})",
    )
    args = parser.parse_args(argv)
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        parser.error(f"unknown variant(s): {', '.join(unknown)}")
    signal.signal(signal.SIGTERM, signal.default_int_handler)

    from berth.cli.embedded import EmbeddedNats, EmbeddedPostgres

    state = Path(tempfile.mkdtemp(prefix="berth-bare-"))
    servers: list[Any] = []
    ok = True
    try:
        nats_url = args.nats_url
        if not nats_url:
            server = EmbeddedNats(state / "nats").start()
            servers.append(server)
            nats_url = server.url
        database_url, pg_dir = args.database_url, None
        if "pg" in variants and not database_url:
            pg = EmbeddedPostgres(state / "pg").start()
            servers.append(pg)
            database_url, pg_dir = pg.url, state / "pg"
        for variant in variants:
            dsn = asyncpg_dsn(database_url) if variant == "pg" else None
            print(f"bare nats-py pipeline, variant {variant}…", flush=True)
            try:
                result = run_bare(
                    nats_url,
                    args.workloads,
                    options_from(args),
                    dsn=dsn,
                    batch=args.batch,
                    gather=args.fetch_timeout,
                    pg_data_dir=pg_dir,
                )
            except BenchFailure as exc:
                print(f"variant {variant} failed: {exc}", file=sys.stderr)
                ok = False
                continue
            print(format_measurement(f"bare {variant}", result), flush=True)
            time.sleep(1)  # let the server settle between variants
    finally:
        for server in reversed(servers):
            server.stop()
        shutil.rmtree(state, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
