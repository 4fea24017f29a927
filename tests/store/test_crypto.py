"""Master-key providers and the streaming AES-GCM envelope, without any store around them."""

from __future__ import annotations

import base64
import io
import os
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steward.core import ConfigurationError, EncryptionKeyError, IntegrityError
from steward.store import KeyRing, StoreSettings, key_id_of, open_key_provider
from steward.store._crypto import HEADER_SIZE, TAG_SIZE, Sealer, Unsealer, plaintext_size


@pytest.fixture(autouse=True)
def _isolated_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("STEWARD_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def seal(data: bytes, ring: KeyRing, segment_size: int, cuts: list[int] | None = None) -> bytes:
    sealer = Sealer(ring, segment_size=segment_size)
    out, start = [], 0
    for cut in sorted(cuts or []):
        out.append(sealer.update(data[start:cut]))
        start = max(start, cut)
    out.append(sealer.update(data[start:]))
    out.append(sealer.finalize())
    return b"".join(out)


def unseal(sealed: bytes, ring: KeyRing | None) -> bytes:
    return b"".join(Unsealer(io.BytesIO(sealed), ring, what="test object").segments())


RING = KeyRing([bytes(range(32))], source="test")


@settings(max_examples=200, deadline=None)
@given(
    data=st.binary(max_size=300),
    segment_size=st.integers(min_value=1, max_value=64),
    cuts=st.lists(st.integers(min_value=0, max_value=300), max_size=6),
)
def test_seal_unseal_round_trip_property(data: bytes, segment_size: int, cuts: list[int]) -> None:
    sealed = seal(data, RING, segment_size, cuts)

    assert unseal(sealed, RING) == data
    assert plaintext_size(len(sealed), segment_size) == len(data)
    segments = max(-(-len(data) // segment_size), 1)
    assert len(sealed) == HEADER_SIZE + len(data) + segments * TAG_SIZE


@settings(max_examples=100, deadline=None)
@given(data=st.binary(min_size=1, max_size=200), position=st.integers(min_value=0))
def test_any_flipped_bit_fails_authentication(data: bytes, position: int) -> None:
    sealed = bytearray(seal(data, RING, segment_size=16))
    sealed[position % len(sealed)] ^= 0x80

    with pytest.raises(IntegrityError):
        unseal(bytes(sealed), RING)


@settings(max_examples=100, deadline=None)
@given(data=st.binary(max_size=200), keep=st.integers(min_value=0))
def test_any_truncation_is_detected(data: bytes, keep: int) -> None:
    sealed = seal(data, RING, segment_size=16)
    cut = keep % len(sealed)

    with pytest.raises(IntegrityError):
        unseal(sealed[:cut], RING)


def test_same_plaintext_seals_differently_each_time() -> None:
    assert seal(b"same", RING, 16) != seal(b"same", RING, 16)


def test_appended_segment_is_detected() -> None:
    sealed = seal(b"a" * 32, RING, segment_size=16)
    block = 16 + TAG_SIZE

    with pytest.raises(IntegrityError, match="segment 1"):
        unseal(sealed + sealed[HEADER_SIZE : HEADER_SIZE + block], RING)


def test_unknown_format_version_is_refused() -> None:
    sealed = bytearray(seal(b"x", RING, 16))
    sealed[8] = 9

    with pytest.raises(IntegrityError, match="version 9"):
        unseal(bytes(sealed), RING)


def test_wrong_key_under_the_same_id_is_an_encryption_key_error() -> None:
    class Liar:
        def current(self) -> tuple[str, bytes]:
            return RING.current()

        def get(self, key_id: str) -> bytes:
            return os.urandom(32)

    with pytest.raises(EncryptionKeyError, match="does not unwrap"):
        Unsealer(io.BytesIO(seal(b"x", RING, 16)), Liar(), what="test object")


def test_key_ring_newest_first_and_deduplicated() -> None:
    new, old = os.urandom(32), os.urandom(32)
    ring = KeyRing([new, old, new], source="test")

    assert ring.current() == (key_id_of(new), new)
    assert ring.key_ids == (key_id_of(new), key_id_of(old))
    assert ring.get(key_id_of(old)) == old
    with pytest.raises(EncryptionKeyError, match=r"0000000000000000.*" + key_id_of(new)):
        ring.get("0000000000000000")


def test_key_id_is_public_and_short() -> None:
    key = os.urandom(32)

    assert len(key_id_of(key)) == 16
    assert key_id_of(key) not in key.hex()


def test_key_file_with_comments_and_blank_lines(tmp_path: Path) -> None:
    new, old = os.urandom(32), os.urandom(32)
    path = tmp_path / "keys"
    path.write_text(f"# rotated 2026-01\n\n{b64(new)}\n  {b64(old)}  \n")

    ring = open_key_provider(StoreSettings(master_key_file=path))

    assert ring is not None
    assert ring.key_ids == (key_id_of(new), key_id_of(old))


def test_env_key_comes_before_file_keys(tmp_path: Path) -> None:
    env, filed = os.urandom(32), os.urandom(32)
    path = tmp_path / "keys"
    path.write_text(b64(filed))

    ring = open_key_provider(StoreSettings(master_key=b64(env), master_key_file=path))

    assert ring is not None
    assert ring.key_ids == (key_id_of(env), key_id_of(filed))


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("", "holds no key"),
        ("# only a comment\n", "holds no key"),
        (f"{b64(os.urandom(32))}\n%%%\n", "line 2 is not valid base64"),
        (b64(os.urandom(31)), "line 1 decodes to 31 bytes"),
    ],
)
def test_bad_key_file_names_the_variable_and_line(
    tmp_path: Path, content: str, problem: str
) -> None:
    path = tmp_path / "keys"
    path.write_text(content)

    with pytest.raises(ConfigurationError, match=f"STEWARD_MASTER_KEY_FILE.*{problem}"):
        open_key_provider(StoreSettings(master_key_file=path))


def test_missing_key_file_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"STEWARD_MASTER_KEY_FILE.*cannot be read"):
        open_key_provider(StoreSettings(master_key_file=tmp_path / "absent"))


def test_header_records_the_key_id_not_the_key() -> None:
    sealed = seal(b"x", RING, 16)
    _, key = RING.current()

    assert sealed[13:21] == bytes.fromhex(key_id_of(key))
    assert key not in sealed
    assert struct.unpack(">I", sealed[9:13]) == (16,)
