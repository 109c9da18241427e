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
from sqlalchemy.ext.asyncio import create_async_engine

from berth.catalog.config import CatalogSettings
from berth.catalog.keys import KeyProvider, LocalKeyProvider, UndecryptableError
from berth.catalog.store import CatalogStore, Ciphertext, SqlCatalogStore
from berth.contracts.catalog import (
    AssetRef,
    CredentialDeliveryReply,
    CredentialDeliveryRequest,
    DeliveredCredential,
    MissingCredential,
    credential_of_secret,
    project_scopes,
    visible_to,
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
    db: CatalogStore, provider: KeyProvider, asset_id: str, values: dict[str, str]
) -> None:
    key_id, ciphertext = await provider.encrypt(
        json.dumps(values).encode(), context=asset_id.encode()
    )
    await db.save_values(asset_id, Ciphertext(key_id, ciphertext))


async def load(db: CatalogStore, provider: KeyProvider, asset_id: str) -> bytes | None:
    value = await db.values_of(asset_id)
    if value is None:
        return None
    return await provider.decrypt(value.key_id, value.ciphertext, context=asset_id.encode())


async def encrypt_legacy(db: CatalogStore, provider: KeyProvider) -> int:
    """Encrypt the values an older install kept in clear; returns how many."""
    legacy = await db.legacy_values()
    for asset_id, values in legacy.items():
        await store(db, provider, asset_id, values)
    return len(legacy)


async def re_encrypt(db: CatalogStore, provider: KeyProvider) -> int:
    """Move every value to the provider's current key (after a rotation); returns how many."""
    stale = await db.values_not_under(provider.current_key_id)
    for asset_id in stale:
        plaintext = await load(db, provider, asset_id)
        if plaintext is not None:
            await store(db, provider, asset_id, json.loads(plaintext))
    return len(stale)


async def re_encrypt_all(settings: CatalogSettings) -> int:
    """``python -m berth.catalog.keys re-encrypt``: one transaction over the catalog's database."""
    engine = create_async_engine(settings.database_url)
    try:
        async with engine.begin() as conn:
            provider = LocalKeyProvider.from_dir(settings.keys_dir)
            db = SqlCatalogStore(conn)
            return await encrypt_legacy(db, provider) + await re_encrypt(db, provider)
    finally:
        await engine.dispose()


async def deliver(
    db: CatalogStore, provider: KeyProvider, request: CredentialDeliveryRequest
) -> CredentialDeliveryReply:
    key = await db.cluster_key(request.clusterId)
    if key is None:
        return CredentialDeliveryReply(
            error=f'cluster "{request.clusterId}" has not reported a credential key yet'
        )
    project = await db.project_in(request.namespace)
    if project is None:
        return CredentialDeliveryReply(error=f'no project has namespace "{request.namespace}"')
    if project.clusterId != request.clusterId:
        return CredentialDeliveryReply(
            error=f'namespace "{request.namespace}" is not on cluster "{request.clusterId}"'
        )
    scopes = project_scopes(project.name, project.department, project.clusterId)
    delivered: list[DeliveredCredential] = []
    missing: list[MissingCredential] = []
    for secret_name in sorted(set(request.secretNames)):
        name = credential_of_secret(secret_name)
        if name is None:
            missing.append(
                MissingCredential(secretName=secret_name, reason="not a credential's Secret")
            )
            continue
        candidates = await db.find(AssetRef(kind="credential", name=name))
        visible = sorted(
            (c for c in candidates if visible_to(c, scopes)),
            key=lambda c: SCOPE_RANK[c.scope],
        )
        if not visible:
            reason = f'credential "{name}" does not exist in the scope of project "{project.name}"'
            missing.append(MissingCredential(secretName=secret_name, reason=reason))
            continue
        asset_id = visible[0].id
        try:
            plaintext = await load(db, provider, asset_id)
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
                sealedValues=seal(key.publicKey, plaintext),
            )
        )
    return CredentialDeliveryReply(keyId=key.keyId, credentials=delivered, missing=missing)
