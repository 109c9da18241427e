"""Key files, sealing, encryption at rest with rotation, and the refusal of values in clear."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from nacl.exceptions import CryptoError

from berth.catalog.credentials import ValuesRefused, open_values
from berth.catalog.keys import (
    SEALING,
    STORAGE,
    LocalKeyProvider,
    UndecryptableError,
    main,
    sealing_keys,
)
from berth.shared.keys import KeyFiles, SealingKeys, seal

pytestmark = pytest.mark.unit


def test_the_first_key_is_created_owner_only_and_then_reused(tmp_path: Path) -> None:
    directory = tmp_path / "keys"
    files = KeyFiles(directory, "catalog-storage")
    first = files.load()
    assert len(first) == 1
    [path] = directory.iterdir()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert files.load() == first
    # Another purpose has keys of its own in the same directory.
    assert KeyFiles(directory, "catalog-sealing").load().keys() != first.keys()


def test_rotation_adds_a_newer_key_and_keeps_the_old(tmp_path: Path) -> None:
    files = KeyFiles(tmp_path, "catalog-storage")
    [old] = files.load()
    new = files.add()
    assert new > old
    assert list(files.load()) == [old, new]


def test_a_sealed_box_opens_only_with_the_key_it_was_sealed_to(tmp_path: Path) -> None:
    keys = SealingKeys.from_files(KeyFiles(tmp_path, "agent-local"))
    other = SealingKeys.from_files(KeyFiles(tmp_path, "agent-other"))
    box = seal(keys.public_key, b"hf_secret")
    assert b"hf_secret" not in box.encode()
    assert keys.open(keys.key_id, box) == b"hf_secret"
    with pytest.raises(CryptoError):
        other.open(other.key_id, box)
    with pytest.raises(KeyError):
        keys.open("no-such-key", box)


async def test_values_at_rest_are_bound_to_their_key_and_asset(tmp_path: Path) -> None:
    provider = LocalKeyProvider.from_dir(tmp_path)
    key_id, ciphertext = await provider.encrypt(b'{"HF_TOKEN": "hf_x"}', context=b"credential-1")
    assert key_id == provider.current_key_id
    assert b"hf_x" not in ciphertext
    plain = await provider.decrypt(key_id, ciphertext, context=b"credential-1")
    assert plain == b'{"HF_TOKEN": "hf_x"}'
    # Copied onto another credential's row, the value does not decrypt.
    with pytest.raises(UndecryptableError):
        await provider.decrypt(key_id, ciphertext, context=b"credential-2")
    with pytest.raises(UndecryptableError):
        await provider.decrypt(
            key_id, ciphertext[:-1] + bytes([ciphertext[-1] ^ 1]), context=b"credential-1"
        )
    with pytest.raises(UndecryptableError):
        await provider.decrypt("no-such-key", ciphertext, context=b"credential-1")


async def test_after_a_rotation_old_key_ids_still_decrypt(tmp_path: Path) -> None:
    before = LocalKeyProvider.from_dir(tmp_path)
    old_id, old_ciphertext = await before.encrypt(b"old", context=b"c")
    KeyFiles(tmp_path, STORAGE).add()
    after = LocalKeyProvider.from_dir(tmp_path)
    assert after.current_key_id != old_id
    new_id, _ = await after.encrypt(b"new", context=b"c")
    assert new_id == after.current_key_id
    assert await after.decrypt(old_id, old_ciphertext, context=b"c") == b"old"


def test_the_rotate_command_adds_a_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BERTH_KEYS_DIR", str(tmp_path))
    LocalKeyProvider.from_dir(tmp_path)
    assert main(["rotate"]) == 0
    assert len(KeyFiles(tmp_path, STORAGE).load()) == 2
    assert main(["rotate", "--sealing"]) == 0
    assert len(KeyFiles(tmp_path, SEALING).load()) == 1


def test_values_in_clear_are_refused_with_the_reason(tmp_path: Path) -> None:
    keys = sealing_keys(tmp_path)
    with pytest.raises(ValuesRefused) as refused:
        open_values(keys, clear={"HF_TOKEN": "hf_clear"}, sealed=None, key_id=None)
    message = str(refused.value)
    assert message.startswith("secretValues: credential values in clear are refused")
    assert "hf_clear" not in message
    assert open_values(keys, clear={}, sealed=None, key_id=None) is None


def test_sealed_values_open_to_the_values(tmp_path: Path) -> None:
    keys = sealing_keys(tmp_path)
    box = seal(keys.public_key, json.dumps({"HF_TOKEN": "hf_x"}).encode())
    assert open_values(keys, clear={}, sealed=box, key_id=keys.key_id) == {"HF_TOKEN": "hf_x"}


@pytest.mark.parametrize(
    ("content", "key_id", "reason"),
    [
        (b'{"HF_TOKEN": "hf_x"}', None, "keyId: sealedValues needs the id of the key"),
        (b'{"HF_TOKEN": "hf_x"}', "old-key", "keyId: the catalog has no key old-key"),
        (b'["hf_x"]', "", "sealedValues: the sealed content must be a JSON object of strings"),
        (b'{"HF_TOKEN": 1}', "", "sealedValues: the sealed content must be a JSON object"),
        (b"hf_x", "", "sealedValues: the sealed content must be a JSON object"),
    ],
)
def test_unusable_sealed_values_are_refused_by_name(
    tmp_path: Path, content: bytes, key_id: str | None, reason: str
) -> None:
    keys = sealing_keys(tmp_path)
    box = seal(keys.public_key, content)
    with pytest.raises(ValuesRefused) as refused:
        open_values(keys, clear={}, sealed=box, key_id=keys.key_id if key_id == "" else key_id)
    assert str(refused.value).startswith(reason)
    assert "hf_x" not in str(refused.value)


def test_a_box_sealed_to_another_key_is_refused(tmp_path: Path) -> None:
    keys = sealing_keys(tmp_path / "catalog")
    stranger = sealing_keys(tmp_path / "stranger")
    box = seal(stranger.public_key, b"{}")
    with pytest.raises(ValuesRefused) as refused:
        open_values(keys, clear={}, sealed=box, key_id=keys.key_id)
    assert str(refused.value) == f"sealedValues: not a box sealed to catalog key {keys.key_id}"
