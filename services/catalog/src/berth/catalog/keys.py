"""The catalog's keys: one to encrypt credential values at rest, one pair that clients seal
values to on their way in.

Encryption at rest goes through ``KeyProvider``, so a KMS can take the place of the key files:
it only has to name the key it used and decrypt with any key it ever named. The local provider
keeps its keys under ``BERTH_KEYS_DIR`` (``catalog-storage.<key id>.key``); rotation adds a key
that encrypts from then on while the older ones still decrypt.

Run ``python -m berth.catalog.keys rotate`` to add a storage key (``--sealing`` for the sealing
pair) and ``python -m berth.catalog.keys re-encrypt`` to move every stored value to the current
storage key.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Protocol

from nacl.exceptions import CryptoError
from nacl.secret import Aead

from berth.shared.keys import KeyFiles, SealingKeys

STORAGE = "catalog-storage"
SEALING = "catalog-sealing"


class UndecryptableError(Exception):
    """A value cannot be decrypted: unknown key id, or not encrypted with it (tampered)."""


class KeyProvider(Protocol):
    """Encrypts credential values at rest. ``context`` (the asset id) is bound to the
    ciphertext, so a value copied onto another credential's row does not decrypt."""

    async def encrypt(self, plaintext: bytes, *, context: bytes) -> tuple[str, bytes]:
        """(key id, ciphertext) under the current key."""
        ...

    async def decrypt(self, key_id: str, ciphertext: bytes, *, context: bytes) -> bytes: ...

    @property
    def current_key_id(self) -> str: ...


class LocalKeyProvider:
    """XChaCha20-Poly1305 (libsodium's AEAD, through PyNaCl) with keys from key files."""

    def __init__(self, keys: dict[str, bytes]) -> None:
        if not keys:
            raise ValueError("no storage key")
        self._boxes = {key_id: Aead(key) for key_id, key in keys.items()}
        self._current = max(self._boxes)

    @classmethod
    def from_dir(cls, directory: Path) -> LocalKeyProvider:
        return cls(KeyFiles(directory, STORAGE).load())

    @property
    def current_key_id(self) -> str:
        return self._current

    async def encrypt(self, plaintext: bytes, *, context: bytes) -> tuple[str, bytes]:
        # A random 24-byte nonce per value (XChaCha20), kept in front of the ciphertext.
        return self._current, bytes(self._boxes[self._current].encrypt(plaintext, context))

    async def decrypt(self, key_id: str, ciphertext: bytes, *, context: bytes) -> bytes:
        box = self._boxes.get(key_id)
        if box is None:
            raise UndecryptableError(f"no storage key {key_id}")
        try:
            return box.decrypt(ciphertext, context)
        except CryptoError:
            raise UndecryptableError(f"a value under key {key_id} does not decrypt") from None


def sealing_keys(directory: Path) -> SealingKeys:
    return SealingKeys.from_files(KeyFiles(directory, SEALING))


def main(argv: list[str] | None = None) -> int:
    from berth.catalog.config import CatalogSettings

    parser = argparse.ArgumentParser(prog="python -m berth.catalog.keys")
    commands = parser.add_subparsers(dest="command", required=True)
    rotate = commands.add_parser("rotate", help="add a key that is used from now on")
    rotate.add_argument("--sealing", action="store_true", help="the sealing pair instead")
    commands.add_parser("re-encrypt", help="encrypt every stored value with the current key")
    args = parser.parse_args(argv)
    settings = CatalogSettings()
    if args.command == "rotate":
        purpose = SEALING if args.sealing else STORAGE
        key_id = KeyFiles(settings.keys_dir, purpose).add()
        print(f"new {purpose} key {key_id}; restart the catalog to use it")  # noqa: T201
        return 0
    from berth.catalog.credentials import re_encrypt_all

    count = asyncio.run(re_encrypt_all(settings))
    print(f"{count} credential values re-encrypted")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
