"""Credential values leave the CLI only sealed to the catalog's public key.

The key comes from the catalog itself (``rpc.catalog.keys.get.v1``, which only the catalog may
answer); the values are sealed into a libsodium sealed box that only the catalog's private key
opens, so a subscriber on the bus sees ciphertext.
"""

from __future__ import annotations

import json

from berth.cli.client import BerthClient
from berth.contracts.catalog import CatalogKeyReply, CatalogKeyRequest
from berth.contracts.subjects import RPC_CATALOG_KEYS_GET
from berth.shared.keys import seal


async def seal_values(client: BerthClient, values: dict[str, str]) -> tuple[str, str]:
    """(key id, sealed values) for an ``AssetPutRequest``."""
    reply: CatalogKeyReply = await client.request(
        RPC_CATALOG_KEYS_GET, CatalogKeyRequest(), CatalogKeyReply
    )
    return reply.key.keyId, seal(reply.key.publicKey, json.dumps(values).encode())
