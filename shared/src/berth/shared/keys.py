"""Key files and sealed boxes: what keeps credential values unreadable on the bus and at rest.

A key is 32 random bytes in a file of its own, ``<purpose>.<key id>.key`` (base64), created
with mode 0600 in a directory of mode 0700. Key ids sort by creation time, so the newest key of
a purpose is the current one; older keys stay, to read what they protected (rotation adds a
key, it never replaces one). The same 32 bytes serve as a libsodium secret key (AEAD at rest)
or as an X25519 private key (sealed boxes on the wire); the cryptography is PyNaCl's.

Nothing here logs or formats key material or plaintext.
"""

from __future__ import annotations

import base64
import logging
import os
import secrets
from datetime import UTC, datetime
from pathlib import Path

from nacl.public import PrivateKey, PublicKey, SealedBox

log = logging.getLogger(__name__)

KEY_BYTES = 32
SUFFIX = ".key"


def new_key_id() -> str:
    """Sortable by creation time; the random tail keeps two keys made at once apart."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%S%fZ}-{secrets.token_hex(3)}"


class KeyFiles:
    """The keys of one purpose in one directory."""

    def __init__(self, directory: Path, purpose: str) -> None:
        if not purpose or "." in purpose or "/" in purpose:
            raise ValueError(f"bad key purpose {purpose!r}")
        self.directory = directory
        self.purpose = purpose

    def _files(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return sorted(self.directory.glob(f"{self.purpose}.*{SUFFIX}"))

    def load(self, *, create: bool = True) -> dict[str, bytes]:
        """Every key by id, oldest first; the first key is created when there is none."""
        keys: dict[str, bytes] = {}
        for path in self._files():
            key_id = path.name[len(self.purpose) + 1 : -len(SUFFIX)]
            if path.stat().st_mode & 0o077:
                log.warning("key file %s is readable by others than its owner", path)
            key = base64.b64decode(path.read_bytes().strip(), validate=True)
            if len(key) != KEY_BYTES:
                raise ValueError(f"key file {path} does not hold a {KEY_BYTES}-byte key")
            keys[key_id] = key
        if not keys and create:
            key_id = self.add()
            keys[key_id] = self.load(create=False)[key_id]
        return dict(sorted(keys.items()))

    def add(self) -> str:
        """A new key, current from now on (rotation); returns its id."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        key_id = new_key_id()
        path = self.directory / f"{self.purpose}.{key_id}{SUFFIX}"
        # O_EXCL: never overwrite a key; 0600 from the start, never widened afterwards.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as file:
            file.write(base64.b64encode(os.urandom(KEY_BYTES)) + b"\n")
        log.info("created key %s of %s in %s", key_id, self.purpose, self.directory)
        return key_id


class SealingKeys:
    """Private keys that sealed boxes are opened with; the newest one is the one published."""

    def __init__(self, keys: dict[str, bytes]) -> None:
        if not keys:
            raise ValueError("no sealing key")
        self._keys = {key_id: PrivateKey(raw) for key_id, raw in keys.items()}
        self.key_id = max(self._keys)

    @classmethod
    def from_files(cls, files: KeyFiles) -> SealingKeys:
        return cls(files.load())

    @property
    def public_key(self) -> str:
        """The current public key, base64."""
        return encode(bytes(self._keys[self.key_id].public_key))

    def open(self, key_id: str, sealed: str) -> bytes:
        """The plaintext of a box sealed to key ``key_id``; KeyError for an unknown key id,
        nacl's CryptoError (or ValueError for bad base64) when it was not sealed to it."""
        return SealedBox(self._keys[key_id]).decrypt(base64.b64decode(sealed, validate=True))


def seal(public_key: str, plaintext: bytes) -> str:
    """``plaintext`` sealed to ``public_key`` (base64 in and out): only its holder opens it."""
    box = SealedBox(PublicKey(base64.b64decode(public_key, validate=True)))
    return encode(box.encrypt(plaintext))


def encode(raw: bytes) -> str:
    return base64.b64encode(raw).decode()
