"""Credential values at rest on real PostgreSQL: values an older install stored in clear are
encrypted when the catalog starts, and a rotation followed by a re-encryption moves every value
to the new key while the old key still reads what it protected."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import create_async_engine

from berth.catalog.bootstrap import build as build_catalog
from berth.catalog.config import CatalogSettings
from berth.catalog.credentials import load, re_encrypt
from berth.catalog.keys import STORAGE, LocalKeyProvider
from berth.catalog.store import SqlCatalogStore
from berth.catalog.tables import credential_values
from berth.shared.keys import KeyFiles
from berth.shared.migrations import upgrade

pytestmark = pytest.mark.integration

CLEAR = "hf_stored-in-clear"


async def test_clear_values_of_an_older_install_are_encrypted_then_rotated(
    nats_url: str, database_url: str, tmp_path: Path
) -> None:
    # An install from before encryption at rest: a credential and its value in clear.
    await upgrade("berth.catalog", database_url, "0002")
    engine = create_async_engine(database_url)
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "INSERT INTO catalog.assets (id, kind, name, scope, spec) VALUES "
                "('credential-old', 'credential', 'old', 'tenant', "
                """'{"type": "huggingface-token", "secretName": "custom"}')"""
            )
        )
        await conn.execute(
            text(
                "INSERT INTO catalog.credential_values (asset_id, secret_values) "
                "VALUES ('credential-old', :v)"
            ),
            {"v": json.dumps({"HF_TOKEN": CLEAR})},
        )

    catalog = build_catalog(
        CatalogSettings(
            nats_url=nats_url, database_url=database_url, keys_dir=tmp_path, seed_demo=False
        )
    )
    await catalog.app.start()
    await catalog.app.stop()

    async def stored() -> Any:
        async with engine.connect() as conn:
            return (await conn.execute(select(credential_values))).one()

    row = await stored()
    assert row.legacy_values is None
    assert CLEAR.encode() not in row.ciphertext
    async with engine.connect() as conn:
        everything = await conn.execute(text("SELECT c::text FROM catalog.credential_values c"))
        assert CLEAR not in everything.scalar_one()
        first = LocalKeyProvider.from_dir(tmp_path)
        assert row.key_id == first.current_key_id
        assert json.loads(await load(SqlCatalogStore(conn), first, "credential-old") or b"") == {
            "HF_TOKEN": CLEAR
        }

    # Rotation: a new key encrypts from now on; the old one still decrypts until re-encryption.
    KeyFiles(tmp_path, STORAGE).add()
    rotated = LocalKeyProvider.from_dir(tmp_path)
    assert rotated.current_key_id != row.key_id
    async with engine.begin() as conn:
        assert (
            json.loads(await load(SqlCatalogStore(conn), rotated, "credential-old") or b"")[
                "HF_TOKEN"
            ]
            == CLEAR
        )
        assert await re_encrypt(SqlCatalogStore(conn), rotated) == 1
        assert await re_encrypt(SqlCatalogStore(conn), rotated) == 0
    row = await stored()
    assert row.key_id == rotated.current_key_id
    async with engine.connect() as conn:
        assert (
            json.loads(await load(SqlCatalogStore(conn), rotated, "credential-old") or b"")[
                "HF_TOKEN"
            ]
            == CLEAR
        )
    await engine.dispose()
