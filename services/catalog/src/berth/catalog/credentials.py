"""Credential values: how they come in (sealed to the catalog), how they are kept (encrypted
with the key provider) and how they go out (sealed to one cluster's agent, for its Secrets).

Why the cluster side asks, rather than the catalog pushing a sealed copy to every cluster: a
value then leaves the catalog only when a workload on that cluster needs it, for the namespace
of that workload's project, and a restarted agent gets it again by asking again (the catalog
holds no per-cluster delivery state that could drift). Values are sealed to the key the catalog
has on record for the cluster (relayed from the agent's report by cluster-sync), never to a key
a request names, so whoever asks gets boxes only that cluster's agent can open.

No function here puts a value, or anything derived from one, in a message or a log line.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping

from nacl.exceptions import CryptoError
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine

from berth.catalog.config import CatalogSettings
from berth.catalog.keys import KeyProvider, LocalKeyProvider, UndecryptableError
from berth.catalog.tables import assets, cluster_keys, credential_values, projects
from berth.contracts.catalog import (
    CredentialDeliveryReply,
    CredentialDeliveryRequest,
    DeliveredCredential,
    MissingCredential,
    credential_of_secret,
    project_scopes,
)
from berth.contracts.events import PublicKey
from berth.shared.keys import SealingKeys, seal

# The most specific scope wins when a project sees credentials of the same name in several,
# as intake picks them when it resolves a submission.
SCOPE_RANK = {"project": 0, "department": 1, "cluster": 2, "tenant": 3}


class ValuesRefused(Exception):
    """Values a put request brought cannot be used; the message names the field and why."""


class Keys:
    """What the catalog protects values with, read when the service starts (building a service,
    e.g. to describe it, touches no key file)."""

    def __init__(
        self,
        load_storage: Callable[[], KeyProvider],
        load_sealing: Callable[[], SealingKeys],
    ) -> None:
        self._load = (load_storage, load_sealing)
        self._storage: KeyProvider | None = None
        self._sealing: SealingKeys | None = None

    def load(self) -> None:
        self._storage, self._sealing = self._load[0](), self._load[1]()

    @property
    def storage(self) -> KeyProvider:
        if self._storage is None:
            self.load()
        assert self._storage is not None
        return self._storage

    @property
    def sealing(self) -> SealingKeys:
        if self._sealing is None:
            self.load()
        assert self._sealing is not None
        return self._sealing

    def public_key(self) -> PublicKey:
        return PublicKey(keyId=self.sealing.key_id, publicKey=self.sealing.public_key)


def open_values(
    sealing: SealingKeys,
    *,
    clear: Mapping[str, str],
    sealed: str | None,
    key_id: str | None,
) -> dict[str, str] | None:
    """The values of a put request, or None when it brings none."""
    if clear:
        raise ValuesRefused(
            "secretValues: credential values in clear are refused, as anyone on the bus "
            "could read them; seal them to the catalog's key (rpc.catalog.keys.get.v1) "
            "into sealedValues with its keyId"
        )
    if sealed is None:
        return None
    if not key_id:
        raise ValuesRefused("keyId: sealedValues needs the id of the key it is sealed to")
    try:
        plaintext = sealing.open(key_id, sealed)
    except KeyError:
        raise ValuesRefused(
            f"keyId: the catalog has no key {key_id}; fetch its current key and seal again"
        ) from None
    except (CryptoError, ValueError):
        raise ValuesRefused(f"sealedValues: not a box sealed to catalog key {key_id}") from None
    try:
        values = json.loads(plaintext)
    except ValueError:
        values = None
    if not isinstance(values, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in values.items()
    ):
        raise ValuesRefused("sealedValues: the sealed content must be a JSON object of strings")
    return values


async def store(
    conn: AsyncConnection, provider: KeyProvider, asset_id: str, values: dict[str, str]
) -> None:
    key_id, ciphertext = await provider.encrypt(
        json.dumps(values).encode(), context=asset_id.encode()
    )
    row = {"key_id": key_id, "ciphertext": ciphertext, "legacy_values": None}
    await conn.execute(
        insert(credential_values)
        .values(asset_id=asset_id, **row)
        .on_conflict_do_update(
            index_elements=[credential_values.c.asset_id], set_={**row, "updated_at": func.now()}
        )
    )


async def load(conn: AsyncConnection, provider: KeyProvider, asset_id: str) -> bytes | None:
    row = (
        await conn.execute(
            select(credential_values.c.key_id, credential_values.c.ciphertext).where(
                credential_values.c.asset_id == asset_id,
                credential_values.c.ciphertext.is_not(None),
            )
        )
    ).first()
    if row is None:
        return None
    return await provider.decrypt(row.key_id, row.ciphertext, context=asset_id.encode())


async def encrypt_legacy(conn: AsyncConnection, provider: KeyProvider) -> int:
    """Encrypt the values an older install kept in clear; returns how many."""
    rows = (
        await conn.execute(
            select(credential_values.c.asset_id, credential_values.c.legacy_values)
            .where(credential_values.c.legacy_values.is_not(None))
            .with_for_update()
        )
    ).all()
    for row in rows:
        await store(conn, provider, row.asset_id, dict(row.legacy_values))
    return len(rows)


async def re_encrypt(conn: AsyncConnection, provider: KeyProvider) -> int:
    """Move every value to the provider's current key (after a rotation); returns how many."""
    rows = (
        await conn.execute(
            select(credential_values.c.asset_id)
            .where(
                credential_values.c.ciphertext.is_not(None),
                credential_values.c.key_id != provider.current_key_id,
            )
            .with_for_update()
        )
    ).all()
    for row in rows:
        plaintext = await load(conn, provider, row.asset_id)
        if plaintext is not None:
            await store(conn, provider, row.asset_id, json.loads(plaintext))
    return len(rows)


async def re_encrypt_all(settings: CatalogSettings) -> int:
    """``python -m berth.catalog.keys re-encrypt``: one transaction over the catalog's database."""
    engine = create_async_engine(settings.database_url)
    try:
        async with engine.begin() as conn:
            provider = LocalKeyProvider.from_dir(settings.keys_dir)
            return await encrypt_legacy(conn, provider) + await re_encrypt(conn, provider)
    finally:
        await engine.dispose()


async def record_cluster_key(conn: AsyncConnection, cluster_id: str, key: PublicKey) -> None:
    stmt = insert(cluster_keys).values(
        cluster_id=cluster_id, key_id=key.keyId, public_key=key.publicKey
    )
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[cluster_keys.c.cluster_id],
            set_={
                "key_id": stmt.excluded.key_id,
                "public_key": stmt.excluded.public_key,
                "updated_at": func.now(),
            },
            # Key ids sort by creation time: a report replayed or redelivered late does not
            # bring back a key the agent has since replaced (an agent that lost its newest key
            # recovers by rotating to a newer one).
            where=cluster_keys.c.key_id <= stmt.excluded.key_id,
        )
    )


async def deliver(
    conn: AsyncConnection, provider: KeyProvider, request: CredentialDeliveryRequest
) -> CredentialDeliveryReply:
    key = (
        await conn.execute(
            select(cluster_keys).where(cluster_keys.c.cluster_id == request.clusterId)
        )
    ).first()
    if key is None:
        return CredentialDeliveryReply(
            error=f'cluster "{request.clusterId}" has not reported a credential key yet'
        )
    project = (
        await conn.execute(select(projects).where(projects.c.namespace == request.namespace))
    ).first()
    if project is None:
        return CredentialDeliveryReply(error=f'no project has namespace "{request.namespace}"')
    if project.cluster_id != request.clusterId:
        return CredentialDeliveryReply(
            error=f'namespace "{request.namespace}" is not on cluster "{request.clusterId}"'
        )
    scopes = project_scopes(project.name, project.department, project.cluster_id)
    delivered: list[DeliveredCredential] = []
    missing: list[MissingCredential] = []
    for secret_name in sorted(set(request.secretNames)):
        name = credential_of_secret(secret_name)
        if name is None:
            missing.append(
                MissingCredential(secretName=secret_name, reason="not a credential's Secret")
            )
            continue
        candidates = (
            await conn.execute(
                select(assets.c.id, assets.c.scope, assets.c.scope_id).where(
                    assets.c.kind == "credential", assets.c.name == name
                )
            )
        ).all()
        visible = sorted(
            (
                c
                for c in candidates
                if (c.scope, c.scope_id if c.scope != "tenant" else "") in scopes
            ),
            key=lambda c: SCOPE_RANK[c.scope],
        )
        if not visible:
            reason = f'credential "{name}" does not exist in the scope of project "{project.name}"'
            missing.append(MissingCredential(secretName=secret_name, reason=reason))
            continue
        asset_id = visible[0].id
        try:
            plaintext = await load(conn, provider, asset_id)
        except UndecryptableError as exc:
            missing.append(MissingCredential(secretName=secret_name, reason=str(exc)))
            continue
        if plaintext is None:
            reason = f'credential "{name}" has no value'
            missing.append(MissingCredential(secretName=secret_name, reason=reason))
            continue
        delivered.append(
            DeliveredCredential(
                secretName=secret_name,
                credentialId=asset_id,
                sealedValues=seal(key.public_key, plaintext),
            )
        )
    return CredentialDeliveryReply(keyId=key.key_id, credentials=delivered, missing=missing)
