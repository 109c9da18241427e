"""Credentials to Secrets: the cluster side is the only place a credential value is opened.

The agent has its own key pair (a key file under ``BERTH_KEYS_DIR``) and reports its public key
in the cluster's config; cluster-sync relays it to the catalog. Before workload objects are
applied, the Secrets they reference (``berth-cred-<credential>``) are asked of the catalog, which
seals their values to the key it has on record for this cluster; they are opened here and
applied as core/v1 Secrets in the workload's namespace, then the workload's objects follow.

Why the agent asks at apply time rather than the catalog pushing values: every path that
applies objects (a new workload, an admitted one, the re-apply of unfinished workloads at start)
goes through ``apply``, so the Secrets are there whenever the objects are, including after a
restart of the agent or of a simulated cluster that lost them; the values stay in the catalog
until a workload of this cluster needs them, and nothing about them is kept here. Applying a
Secret is idempotent. When the catalog cannot deliver (down, or it has not seen this cluster's
key yet), the objects are applied anyway, pods wait for the Secret as they would on Kubernetes
(``CreateContainerConfigError``), and a background task keeps asking until the Secrets are in.

No value, nor anything derived from one, goes into a log line, span, event or error here.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from nacl.exceptions import CryptoError

from berth.contracts.catalog import (
    CredentialDeliveryReply,
    CredentialDeliveryRequest,
    credential_of_secret,
)
from berth.contracts.events import PublicKey
from berth.contracts.subjects import RPC_CATALOG_CREDENTIALS_DELIVER
from berth.scheduler_adapter.backend import (
    ClusterBackend,
    Listing,
    WorkloadSnapshot,
    referenced_secrets,
)
from berth.shared.bus import ask
from berth.shared.errors import TransientError
from berth.shared.keys import KeyFiles, SealingKeys

log = logging.getLogger(__name__)

MANAGED_BY = "app.kubernetes.io/managed-by"
CREDENTIAL_ID_LABEL = "berth.dev/credential-id"
RETRY_FIRST, RETRY_CAP = 1.0, 30.0


def agent_purpose(cluster_id: str) -> str:
    return "agent-" + "".join(c if c.isalnum() or c == "-" else "-" for c in cluster_id)


def agent_keys(keys_dir: Path, cluster_id: str) -> SealingKeys:
    return SealingKeys.from_files(KeyFiles(keys_dir, agent_purpose(cluster_id)))


def secret_object(
    namespace: str, name: str, credential_id: str, values: dict[str, str]
) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {MANAGED_BY: "berth", CREDENTIAL_ID_LABEL: credential_id},
        },
        "type": "Opaque",
        "data": {key: base64.b64encode(value.encode()).decode() for key, value in values.items()},
    }


def wanted_secrets(objects: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Credentials' Secrets the objects reference, by namespace."""
    wanted: dict[str, set[str]] = {}
    for obj in objects:
        namespace = str((obj.get("metadata") or {}).get("namespace") or "")
        names = {n for n in referenced_secrets([obj]) if credential_of_secret(n)}
        if namespace and names:
            wanted.setdefault(namespace, set()).update(names)
    return wanted


class CredentialDelivery:
    """Delivers Secrets for what is applied: a ``ClusterBackend`` around the real one."""

    def __init__(
        self,
        backend: ClusterBackend,
        *,
        nc: Callable[[], Any],
        cluster_id: str,
        keys: SealingKeys | Callable[[], SealingKeys],
        timeout: float = 2.0,
    ) -> None:
        self.inner = backend
        self.name = backend.name
        self._nc = nc  # a getter: the connection exists only once the service has started
        self._cluster_id = cluster_id
        # A loader is called at start, so building the service touches no key file.
        self._keys_or_loader = keys
        self._timeout = timeout
        self._pending: dict[str, set[str]] = {}
        # Where each Secret was delivered since start, to bring it up to date when its
        # credential changes (after a restart, re-applying unfinished workloads refreshes all).
        self._delivered: dict[str, set[str]] = {}
        self._reasons: dict[tuple[str, str], str] = {}  # last logged, to log each change once
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @property
    def _keys(self) -> SealingKeys:
        if not isinstance(self._keys_or_loader, SealingKeys):
            self._keys_or_loader = self._keys_or_loader()
        return self._keys_or_loader

    @property
    def public_key(self) -> PublicKey:
        return PublicKey(keyId=self._keys.key_id, publicKey=self._keys.public_key)

    # --- delivering ---------------------------------------------------------------------------

    async def ensure(self, objects: list[dict[str, Any]]) -> None:
        """Apply the Secrets the objects need; what cannot be had now is retried later."""
        for namespace, names in wanted_secrets(objects).items():
            missing = await self._deliver(namespace, names)
            if missing:
                self._pending.setdefault(namespace, set()).update(missing)
                self._wake.set()

    async def _deliver(self, namespace: str, names: set[str]) -> set[str]:
        """Returns the names still missing."""
        request = CredentialDeliveryRequest(
            clusterId=self._cluster_id, namespace=namespace, secretNames=sorted(names)
        )
        try:
            reply = await ask(
                self._nc(),
                RPC_CATALOG_CREDENTIALS_DELIVER,
                request,
                CredentialDeliveryReply,
                timeout=self._timeout,
            )
        except TransientError as exc:
            self._note(namespace, "*", str(exc))
            return names
        if reply.error:
            self._note(namespace, "*", reply.error)
            return names
        secrets: list[dict[str, Any]] = []
        missing = {m.secretName for m in reply.missing}
        for m in reply.missing:
            self._note(namespace, m.secretName, m.reason)
        for delivered in reply.credentials:
            try:
                opened = json.loads(self._keys.open(reply.keyId or "", delivered.sealedValues))
            except (KeyError, CryptoError, ValueError):
                # Sealed to a key this agent does not hold (rotated away?): report and retry.
                self._note(namespace, delivered.secretName, f"sealed to unknown key {reply.keyId}")
                missing.add(delivered.secretName)
                continue
            secrets.append(
                secret_object(namespace, delivered.secretName, delivered.credentialId, opened)
            )
        if secrets:
            try:
                await self.inner.apply_secrets(secrets)
            except Exception as exc:
                # The message of an API error names the object, never its data.
                self._note(namespace, "*", f"cannot apply Secrets: {exc}")
                return names
        if secrets:
            applied = ", ".join(sorted(secret["metadata"]["name"] for secret in secrets))
            log.info("applied Secrets %s in %s", applied, namespace)
        for secret in secrets:
            name = secret["metadata"]["name"]
            self._delivered.setdefault(name, set()).add(namespace)
            if self._reasons.pop((namespace, name), None) is not None:
                log.info("Secret %s/%s delivered", namespace, name)
        self._reasons.pop((namespace, "*"), None)
        return missing

    def refresh(self, secret_names: set[str]) -> None:
        """Deliver these Secrets again wherever they were delivered (their values changed)."""
        for name in secret_names:
            for namespace in self._delivered.get(name, ()):
                self._pending.setdefault(namespace, set()).add(name)
        if self._pending:
            self._wake.set()

    def _note(self, namespace: str, name: str, reason: str) -> None:
        if self._reasons.get((namespace, name)) != reason:
            self._reasons[(namespace, name)] = reason
            log.warning("credential Secret %s/%s not delivered yet: %s", namespace, name, reason)

    async def _retry(self) -> None:
        delay = RETRY_FIRST
        while True:
            if not self._pending:
                self._wake.clear()
                await self._wake.wait()
                delay = RETRY_FIRST
            await asyncio.sleep(delay)
            pending, self._pending = self._pending, {}
            for namespace, names in pending.items():
                missing = await self._deliver(namespace, names)
                if missing:
                    self._pending.setdefault(namespace, set()).update(missing)
            delay = min(delay * 2, RETRY_CAP)

    # --- the port -------------------------------------------------------------------------------

    async def start(self) -> None:
        # The keys now (a missing pair is created), before the config report needs them.
        _ = self._keys
        await self.inner.start()
        if self._task is None:
            self._task = asyncio.create_task(self._retry(), name="credential-delivery")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.inner.close()

    async def apply(self, objects: list[dict[str, Any]]) -> None:
        # Secrets first, so that pods find them when they start.
        await self.ensure(objects)
        await self.inner.apply(objects)

    async def apply_secrets(self, secrets: list[dict[str, Any]]) -> None:
        await self.inner.apply_secrets(secrets)

    async def listed(self) -> Listing:
        return await self.inner.listed()

    async def adopt(self, objects: list[dict[str, Any]]) -> None:
        # Objects already in the cluster still get their Secrets: one missing when the agent
        # stopped (the catalog was away), or whose value changed meanwhile, is delivered now,
        # and ``refresh`` learns where they are. One request per namespace, not per workload.
        await self.ensure(objects)
        await self.inner.adopt(objects)

    async def delete(self, namespace: str, workload_id: str) -> None:
        await self.inner.delete(namespace, workload_id)

    async def suspend(self, namespace: str, workload_id: str) -> None:
        await self.inner.suspend(namespace, workload_id)

    async def resume(self, namespace: str, workload_id: str) -> None:
        await self.inner.resume(namespace, workload_id)

    def snapshots(self) -> AsyncIterator[list[WorkloadSnapshot]]:
        return self.inner.snapshots()

    async def read_config(self) -> dict[str, Any]:
        # The agent's public key is part of what it reports, so cluster-sync relays it.
        return {
            **await self.inner.read_config(),
            "credentialKey": self.public_key.model_dump(),
        }

    async def set_config(self, settings: dict[str, Any]) -> None:
        await self.inner.set_config(settings)


def main(argv: list[str] | None = None) -> int:
    """``python -m berth.scheduler_adapter.credentials rotate``: a new key pair for the agent,
    reported (and used by the catalog) from its next start; the old one still opens."""
    import argparse

    from berth.scheduler_adapter.config import SchedulerAdapterSettings

    parser = argparse.ArgumentParser(prog="python -m berth.scheduler_adapter.credentials")
    parser.add_argument("command", choices=["rotate"])
    parser.parse_args(argv)
    settings = SchedulerAdapterSettings()
    key_id = KeyFiles(settings.keys_dir, agent_purpose(settings.cluster_id)).add()
    print(f"new agent key {key_id}; restart the scheduler-adapter to report it")  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
