"""Encryption at rest: master-key providers and a streaming AES-256-GCM envelope.

``cryptography``'s AES-GCM is one-shot (the whole message in memory), so large
artifacts are sealed in segments, following the STREAM construction (Hoang,
Reyhanitabar, Rogaway, Vizár 2015) that Tink's streaming AEAD also uses: each
artifact gets a random data key; the plaintext is cut into segments, each sealed
with AES-256-GCM under a nonce made of a random prefix, the segment index and a
final-segment flag. Reordering, dropping or truncating segments therefore fails
authentication. The data key is wrapped (AES-256-GCM) by a master key whose id
is recorded, so master keys can rotate: old ids still unwrap while they are
configured.

Sealed layout (integers big-endian)::

    offset size  field
         0    8  magic b"STWDSEAL"
         8    1  format version (1)
         9    4  plaintext bytes per segment
        13    8  master key id (first 8 bytes of SHA-256 of the key; 16 hex when shown)
        21    7  segment nonce prefix
        28   12  wrap nonce
        40   48  data key sealed under the master key, bytes 0..40 as associated data
        88  ...  segments: ciphertext + 16-byte tag; every one but the last is full

A sealed empty plaintext is one final segment holding only its tag.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from steward.core import ConfigurationError, EncryptionKeyError, IntegrityError
from steward.store._settings import StoreSettings

if TYPE_CHECKING:
    from _typeshed import SupportsRead

__all__ = [
    "HEADER_SIZE",
    "KEY_SIZE",
    "SEGMENT_SIZE",
    "KeyProvider",
    "KeyRing",
    "SealedHeader",
    "Sealer",
    "Unsealer",
    "key_id_of",
    "open_key_provider",
    "plaintext_size",
]

KEY_SIZE = 32
SEGMENT_SIZE = 1024 * 1024
TAG_SIZE = 16

_MAGIC = b"STWDSEAL"
_VERSION = 1
_PREFIX = struct.Struct(
    ">8sBI8s7s12s"
)  # magic, version, segment size, key id, nonce prefix, wrap nonce
_WRAPPED_SIZE = KEY_SIZE + TAG_SIZE
HEADER_SIZE = _PREFIX.size + _WRAPPED_SIZE
_MAX_SEGMENTS = 2**32


def key_id_of(key: bytes) -> str:
    """Return the public id of a master key: the first 16 hex characters of its SHA-256.

    Example:
        >>> key_id_of(bytes(32))
        '66687aadf862bd77'
    """
    return hashlib.sha256(key).hexdigest()[:16]


class KeyProvider(Protocol):
    """Where master keys come from: an env variable or key file now, a KMS later."""

    def current(self) -> tuple[str, bytes]:
        """Return the id and bytes of the key that seals new artifacts."""
        ...

    def get(self, key_id: str) -> bytes:
        """Return the key with id ``key_id``.

        Raises:
            EncryptionKeyError: no configured key has this id; the message lists the ids that are.
        """
        ...


class KeyRing:
    """Master keys held in memory, newest first: the first seals, all of them unseal.

    Args:
        keys: 32-byte keys, newest first; duplicates are dropped.
        source: where the keys came from, named in error messages.

    Example:
        >>> ring = KeyRing([bytes(32)], source="example")
        >>> ring.current()[0]
        '66687aadf862bd77'
    """

    def __init__(self, keys: Sequence[bytes], *, source: str) -> None:
        if not keys:
            raise ConfigurationError(f"{source} holds no master key")
        self._source = source
        self._keys: dict[str, bytes] = {}
        for key in keys:
            if len(key) != KEY_SIZE:
                raise ConfigurationError(
                    f"{source}: a master key must be {KEY_SIZE} bytes, got {len(key)}"
                )
            self._keys.setdefault(key_id_of(key), key)

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Ids of the configured keys, newest first."""
        return tuple(self._keys)

    def current(self) -> tuple[str, bytes]:
        """Return the id and bytes of the newest key."""
        key_id = next(iter(self._keys))
        return key_id, self._keys[key_id]

    def get(self, key_id: str) -> bytes:
        """Return the key with id ``key_id``.

        Raises:
            EncryptionKeyError: no key with this id is configured.
        """
        try:
            return self._keys[key_id]
        except KeyError:
            raise EncryptionKeyError(
                f"master key id {key_id} is not configured; {self._source} has key ids "
                f"{', '.join(self._keys)}; add the key with id {key_id} (older keys go after "
                "the newest one in STEWARD_MASTER_KEY_FILE)"
            ) from None


def _decode_key(text: str, where: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigurationError(
            f"{where} is not valid base64; generate a key with "
            '`python -c "import os, base64; print(base64.b64encode(os.urandom(32)).decode())"`'
        ) from None
    if len(key) != KEY_SIZE:
        raise ConfigurationError(
            f"{where} decodes to {len(key)} bytes; a master key is base64 of exactly "
            f"{KEY_SIZE} bytes"
        )
    return key


def _read_key_file(path: Path) -> list[bytes]:
    where = f"STEWARD_MASTER_KEY_FILE={str(path)!r}"
    try:
        lines = path.read_text(encoding="ascii").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(
            f"{where} cannot be read ({exc}); point it at a readable file of base64 keys"
        ) from None
    keys = [
        _decode_key(line, f"{where}, line {number}")
        for number, line in enumerate(lines, start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not keys:
        raise ConfigurationError(
            f"{where} holds no key; write one base64 key per line, newest first"
        )
    return keys


def open_key_provider(settings: StoreSettings) -> KeyRing | None:
    """Build the key provider the settings describe, or ``None`` when no key is configured.

    ``STEWARD_MASTER_KEY``, when set, is the current key; the keys in
    ``STEWARD_MASTER_KEY_FILE`` (one base64 key per line, newest first, ``#``
    comments allowed) follow it and still unseal what they sealed.

    Raises:
        ConfigurationError: a key is not base64 of 32 bytes, or the key file is unreadable;
            the message names the variable (and the line).
    """
    keys: list[bytes] = []
    if settings.master_key is not None:
        keys.append(_decode_key(settings.master_key.get_secret_value(), "STEWARD_MASTER_KEY"))
    if settings.master_key_file is not None:
        keys.extend(_read_key_file(settings.master_key_file))
    if not keys:
        return None
    sources = [
        name
        for name, value in (
            ("STEWARD_MASTER_KEY", settings.master_key),
            ("STEWARD_MASTER_KEY_FILE", settings.master_key_file),
        )
        if value is not None
    ]
    return KeyRing(keys, source=" + ".join(sources))


def _segment_nonce(prefix: bytes, index: int, final: bool) -> bytes:
    if index >= _MAX_SEGMENTS:
        raise IntegrityError(f"a sealed artifact holds at most {_MAX_SEGMENTS} segments")
    return prefix + struct.pack(">IB", index, 1 if final else 0)


class Sealer:
    """Seal a plaintext stream incrementally, in memory bounded by two segments.

    Feed plaintext to :meth:`update`, write out what it returns, then write
    what :meth:`finalize` returns. A new random data key is drawn per instance.

    Example:
        >>> ring = KeyRing([bytes(32)], source="example")
        >>> sealer = Sealer(ring)
        >>> sealed = sealer.update(b"hello") + sealer.finalize()
        >>> len(sealed) == HEADER_SIZE + 5 + 16
        True
    """

    def __init__(self, keys: KeyProvider, *, segment_size: int = SEGMENT_SIZE) -> None:
        if not 0 < segment_size < 2**32:
            raise ValueError(f"segment_size must be in 1..2**32-1, got {segment_size}")
        key_id, master = keys.current()
        data_key = AESGCM.generate_key(bit_length=256)
        self._aead = AESGCM(data_key)
        self._prefix = os.urandom(7)
        self._segment_size = segment_size
        self._index = 0
        self._buffer = bytearray()
        self._finished = False
        head = _PREFIX.pack(
            _MAGIC, _VERSION, segment_size, bytes.fromhex(key_id), self._prefix, os.urandom(12)
        )
        self._pending_header: bytes | None = head + AESGCM(master).encrypt(
            head[-12:], data_key, head
        )
        self.key_id = key_id

    def _seal(self, data: bytes | bytearray | memoryview, final: bool) -> bytes:
        nonce = _segment_nonce(self._prefix, self._index, final)
        self._index += 1
        return self._aead.encrypt(nonce, bytes(data), None)

    def update(self, data: bytes | bytearray | memoryview) -> bytes:
        """Take more plaintext; return the sealed bytes ready to be written (maybe none)."""
        if self._finished:
            raise ValueError("Sealer.update called after finalize")
        out = [self._pending_header] if self._pending_header is not None else []
        self._pending_header = None
        self._buffer += data
        size = self._segment_size
        # Keep at least one byte back: only finalize knows which segment is the last.
        start = 0
        while len(self._buffer) - start > size:
            out.append(self._seal(memoryview(self._buffer)[start : start + size], final=False))
            start += size
        del self._buffer[:start]
        return b"".join(out)

    def finalize(self) -> bytes:
        """Seal the last segment and return the remaining bytes."""
        if self._finished:
            raise ValueError("Sealer.finalize called twice")
        self._finished = True
        head = self._pending_header or b""
        self._pending_header = None
        tail = self._seal(self._buffer, final=True)
        self._buffer = bytearray()
        return head + tail


@dataclass(frozen=True, slots=True)
class SealedHeader:
    """The readable part of a sealed object's header."""

    key_id: str
    segment_size: int
    nonce_prefix: bytes
    wrap_nonce: bytes
    wrapped_key: bytes
    associated: bytes

    @classmethod
    def parse(cls, data: bytes, *, what: str) -> SealedHeader:
        """Parse the first :data:`HEADER_SIZE` bytes of a sealed object.

        Raises:
            IntegrityError: the bytes are too short or not a sealed object of a known version.
        """
        if len(data) < HEADER_SIZE:
            raise IntegrityError(
                f"{what}: sealed object is {len(data)} bytes, shorter than its "
                f"{HEADER_SIZE}-byte header; it is truncated"
            )
        magic, version, segment_size, key_id, prefix, wrap_nonce = _PREFIX.unpack_from(data)
        if magic != _MAGIC:
            raise IntegrityError(f"{what}: not a sealed object (magic {magic!r})")
        if version != _VERSION:
            raise IntegrityError(
                f"{what}: sealed format version {version} is not supported; this steward reads "
                f"version {_VERSION}"
            )
        if segment_size == 0:
            raise IntegrityError(f"{what}: sealed header has segment size 0; it was altered")
        return cls(
            key_id=key_id.hex(),
            segment_size=segment_size,
            nonce_prefix=prefix,
            wrap_nonce=wrap_nonce,
            wrapped_key=data[_PREFIX.size : HEADER_SIZE],
            associated=data[: _PREFIX.size],
        )


def plaintext_size(stored_size: int, segment_size: int) -> int:
    """Return the plaintext size of a sealed object from its stored size.

    Example:
        >>> plaintext_size(HEADER_SIZE + 16, SEGMENT_SIZE)  # the empty artifact
        0
    """
    body = max(stored_size - HEADER_SIZE, 0)
    segments = max(-(-body // (segment_size + TAG_SIZE)), 1)
    return max(body - segments * TAG_SIZE, 0)


def _read_exact(stream: SupportsRead[bytes], size: int) -> bytes:
    parts: list[bytes] = []
    remaining = size
    while remaining:
        part = stream.read(remaining)
        if not part:
            break
        parts.append(part)
        remaining -= len(part)
    return b"".join(parts)


class Unsealer:
    """Open a sealed stream: read the header and unwrap its data key now, segments on demand.

    Args:
        stream: the sealed object, positioned at its start.
        keys: the configured master keys, or ``None`` when none is configured.
        what: names the object in error messages (e.g. ``artifact sha256:ab12...``).

    Raises:
        EncryptionKeyError: the master key the object names is not configured, or it is
            configured but does not unwrap the data key (a wrong key under that id).
        IntegrityError: the header is truncated or malformed.
    """

    def __init__(self, stream: SupportsRead[bytes], keys: KeyProvider | None, *, what: str) -> None:
        self._stream = stream
        self._what = what
        self.header = SealedHeader.parse(_read_exact(stream, HEADER_SIZE), what=what)
        if keys is None:
            raise EncryptionKeyError(
                f"{what} is encrypted with master key id {self.header.key_id}, but no master "
                "key is configured; set STEWARD_MASTER_KEY or STEWARD_MASTER_KEY_FILE"
            )
        try:
            master = keys.get(self.header.key_id)
        except EncryptionKeyError as exc:
            raise EncryptionKeyError(f"{what} cannot be decrypted: {exc}") from None
        try:
            data_key = AESGCM(master).decrypt(
                self.header.wrap_nonce, self.header.wrapped_key, self.header.associated
            )
        except InvalidTag:
            raise EncryptionKeyError(
                f"{what}: the configured key with id {self.header.key_id} does not unwrap the "
                "data key; the header was altered or the key is not the one it was sealed with"
            ) from None
        self._aead = AESGCM(data_key)

    def segments(self) -> Iterator[bytes]:
        """Yield the plaintext segment by segment, each authenticated before it is yielded.

        Raises:
            IntegrityError: a segment fails authentication (flipped, reordered or truncated).
        """
        block = self.header.segment_size + TAG_SIZE
        current = _read_exact(self._stream, block)
        index = 0
        while True:
            # One block of look-ahead tells whether the current block is the last one.
            following = _read_exact(self._stream, block) if len(current) == block else b""
            final = not following
            if len(current) < TAG_SIZE:
                raise IntegrityError(f"{self._what}: sealed object is truncated at segment {index}")
            nonce = _segment_nonce(self.header.nonce_prefix, index, final)
            try:
                plain = self._aead.decrypt(nonce, current, None)
            except InvalidTag:
                raise IntegrityError(
                    f"{self._what}: segment {index} fails authentication; the stored bytes were "
                    "altered or truncated"
                ) from None
            yield plain
            if final:
                return
            current, index = following, index + 1
