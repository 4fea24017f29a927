"""Content-addressed artifact store: bytes named by their SHA-256, verified on every read.

Objects are laid out under the backend's root as::

    sha256/ab/ab12...ef          plaintext, exactly the artifact's bytes
    sha256/ab/ab12...ef.sealed   the same bytes sealed at rest (see ``_crypto``)
    tmp/...                      uploads in progress, published by an atomic rename/copy

The name is the SHA-256 of the *plaintext*, so the same bytes stored twice take
space once, sealed or not, and whichever master key sealed them.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, Protocol

from steward.core import ConfigurationError, IntegrityError, InvalidInputError, NotFoundError
from steward.store._crypto import (
    HEADER_SIZE,
    KeyProvider,
    SealedHeader,
    Sealer,
    Unsealer,
    plaintext_size,
)
from steward.store.backends import BlobBackend, BlobReader, StagedBlob

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = [
    "CHUNK_SIZE",
    "ArtifactInfo",
    "ArtifactSource",
    "ArtifactStore",
    "ContentAddressedStore",
    "check_digest",
    "download_artifact",
]

CHUNK_SIZE = 1024 * 1024

_DIGEST = re.compile(r"[0-9a-f]{64}")
_NAME = re.compile(r"sha256/([0-9a-f]{2})/([0-9a-f]{64})(\.sealed)?")
_SEALED = ".sealed"

ArtifactSource = bytes | bytearray | memoryview | BinaryIO | os.PathLike[str]
"""What :meth:`ArtifactStore.put` accepts: bytes, a binary file object or a path."""


@dataclass(frozen=True, slots=True)
class ArtifactInfo:
    """What the store knows of one artifact.

    Attributes:
        digest: SHA-256 of the artifact's bytes, 64 lowercase hex characters.
        size: size of the artifact's bytes (not of what is stored when sealed).
        encrypted: whether the stored copy is sealed at rest.
        key_id: id of the master key that sealed it, ``None`` when not encrypted.
    """

    digest: str
    size: int
    encrypted: bool
    key_id: str | None = None


class ArtifactStore(Protocol):
    """Immutable artifacts addressed by the SHA-256 of their bytes."""

    def put(self, source: ArtifactSource) -> ArtifactInfo:
        """Store the bytes of ``source`` (streamed); storing bytes already present is free."""
        ...

    def get(self, digest: str) -> bytes:
        """Return the artifact's bytes, verified against ``digest``."""
        ...

    def open(self, digest: str) -> BinaryIO:
        """Open the artifact for streaming; verification completes at end of stream."""
        ...

    def exists(self, digest: str) -> bool:
        """Say whether the artifact is stored."""
        ...

    def delete(self, digest: str) -> None:
        """Remove the artifact."""
        ...

    def list(self) -> Iterator[ArtifactInfo]:
        """Yield every stored artifact, in digest order."""
        ...


def check_digest(digest: object) -> str:
    """Return ``digest`` if it is 64 lowercase hex characters.

    Raises:
        InvalidInputError: anything else; the message shows the value.
    """
    if not isinstance(digest, str) or not _DIGEST.fullmatch(digest):
        raise InvalidInputError(
            f"artifact digest must be 64 lowercase hex characters (a SHA-256), got {digest!r}"
        )
    return digest


def _object_name(digest: str, *, sealed: bool) -> str:
    return f"sha256/{digest[:2]}/{digest}{_SEALED if sealed else ''}"


def _read_chunks(reader: BlobReader | BinaryIO) -> Iterator[bytes]:
    while chunk := reader.read(CHUNK_SIZE):
        if not isinstance(chunk, bytes | bytearray):
            raise InvalidInputError(
                f"artifact source must yield bytes, got {type(chunk).__name__}; open files in "
                "binary mode ('rb')"
            )
        yield bytes(chunk)


def _bytes_chunks(data: bytes | bytearray | memoryview) -> Iterator[bytes]:
    view = memoryview(data).cast("B")
    for start in range(0, len(view), CHUNK_SIZE):
        yield bytes(view[start : start + CHUNK_SIZE])


def _path_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        yield from _read_chunks(handle)


def _source_chunks(source: object) -> Iterator[bytes]:
    # Checks the type now, before anything is staged; reads lazily.
    if isinstance(source, bytes | bytearray | memoryview):
        return _bytes_chunks(source)
    if isinstance(source, os.PathLike):
        return _path_chunks(Path(source))
    if isinstance(source, str):
        raise InvalidInputError(
            f"put() takes bytes, a binary file or a path, not a str ({source[:40]!r}); "
            "pass pathlib.Path(...) for a file, or .encode() the text"
        )
    if callable(getattr(source, "read", None)):
        return _read_chunks(source)  # type: ignore[arg-type]
    raise InvalidInputError(
        f"put() takes bytes, a binary file or a path, got {type(source).__name__}"
    )


class _VerifiedChunks:
    """Plaintext chunks of one artifact, hashed as they pass; the last step checks the digest.

    Invariant: the end of the stream is reported only after the digest matched;
    on a mismatch every further read raises, so a short read can never pass
    for a clean end of file.
    """

    def __init__(self, digest: str, chunks: Iterator[bytes], reader: BlobReader) -> None:
        self.digest = digest
        self._chunks = chunks
        self._reader = reader
        self._hash = hashlib.sha256()
        self._mismatch: str | None = None

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._mismatch is not None:
            raise IntegrityError(self._mismatch)
        try:
            chunk = next(self._chunks)
        except IntegrityError as exc:  # a sealed segment failed: the stream stays failed
            self._mismatch = str(exc)
            raise
        except StopIteration:
            actual = self._hash.hexdigest()
            if actual != self.digest:
                self._mismatch = (
                    f"artifact {self.digest} is corrupt: its bytes hash to {actual}; "
                    "discard what was read"
                )
                raise IntegrityError(self._mismatch) from None
            raise
        self._hash.update(chunk)
        return chunk

    def close(self) -> None:
        self._reader.close()


class _VerifiedStream(io.RawIOBase):
    """A readable binary stream over :class:`_VerifiedChunks`; raises at EOF on a bad digest."""

    def __init__(self, chunks: _VerifiedChunks) -> None:
        self._chunks = chunks
        self._pending = memoryview(b"")
        self._eof = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer, /) -> int:
        while not self._pending:
            if self._eof:
                return 0
            try:
                self._pending = memoryview(next(self._chunks))
            except StopIteration:
                self._eof = True
        target = memoryview(buffer).cast("B")
        size = min(len(target), len(self._pending))
        target[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size

    def close(self) -> None:
        if not self.closed:
            self._chunks.close()
        super().close()


class ContentAddressedStore:
    """An :class:`ArtifactStore` over any blob backend, optionally sealing at rest.

    Reads need no setting: a sealed object is unsealed with whichever configured
    key sealed it, a plaintext one is read as is. Deleting an artifact removes it
    for every record that points at its digest; reference counting belongs to the
    metadata that holds those records.

    Args:
        backend: where the bytes live (:class:`~steward.store.backends.LocalBlobBackend`, ...).
        keys: master keys to seal and unseal; needed to read sealed artifacts.
        encrypt: seal new artifacts with the current key of ``keys``.

    Raises:
        ConfigurationError: ``encrypt`` is set but ``keys`` is ``None``.

    Example:
        >>> import tempfile
        >>> from steward.store.backends import LocalBlobBackend
        >>> store = ContentAddressedStore(LocalBlobBackend(Path(tempfile.mkdtemp())))
        >>> info = store.put(b"weights")
        >>> store.get(info.digest)
        b'weights'
    """

    def __init__(
        self, backend: BlobBackend, *, keys: KeyProvider | None = None, encrypt: bool = False
    ) -> None:
        if encrypt and keys is None:
            raise ConfigurationError(
                "STEWARD_ENCRYPT_ARTIFACTS is on but no master key is configured; set "
                "STEWARD_MASTER_KEY or STEWARD_MASTER_KEY_FILE, or turn encryption off"
            )
        self.backend = backend
        self.keys = keys
        self.encrypt = encrypt

    def __repr__(self) -> str:
        return f"ContentAddressedStore({self.backend.location!r}, encrypt={self.encrypt})"

    def put(self, source: ArtifactSource) -> ArtifactInfo:
        """Store the bytes of ``source``, streaming in 1 MiB chunks; return their info.

        The bytes are hashed (and sealed, when encrypting) while they are
        written under a temporary name, then published under their digest. If
        the digest is already stored the new copy is dropped and the stored
        one's info is returned. When encrypting, a plaintext copy of the same
        bytes is replaced by the sealed one.

        Args:
            source: ``bytes``-like content, a binary file object (read to its end),
                or a path (``os.PathLike``; a plain ``str`` is refused as ambiguous).

        Raises:
            InvalidInputError: ``source`` is of another type, or a file opened in text mode.
            BackendUnavailableError: the backend cannot be reached.
        """
        chunks = _source_chunks(source)
        staged = self.backend.stage()
        try:
            digest, size, key_id = self._write(chunks, staged)
            existing = self._find(digest)
            if existing is not None and (existing.encrypted or not self.encrypt):
                staged.discard()
                return existing
            staged.publish(_object_name(digest, sealed=self.encrypt))
        except BaseException:
            staged.discard()
            raise
        if existing is not None:  # a plaintext copy, now superseded by the sealed one
            self.backend.delete(_object_name(digest, sealed=False))
        return ArtifactInfo(digest, size, self.encrypt, key_id)

    def _write(self, chunks: Iterable[bytes], staged: StagedBlob) -> tuple[str, int, str | None]:
        write = staged.write
        digest = hashlib.sha256()
        size = 0
        sealer = Sealer(self.keys) if self.encrypt and self.keys is not None else None
        for chunk in chunks:
            digest.update(chunk)
            size += len(chunk)
            write(sealer.update(chunk) if sealer else chunk)
        if sealer is not None:
            write(sealer.finalize())
        return digest.hexdigest(), size, sealer.key_id if sealer else None

    def _find(self, digest: str) -> ArtifactInfo | None:
        # Look first for the form this store writes: one request when it is there.
        for sealed in (self.encrypt, not self.encrypt):
            name = _object_name(digest, sealed=sealed)
            stored = self.backend.size(name)
            if stored is not None:
                return self._describe(name, digest, stored, sealed=sealed)
        return None

    def _describe(self, name: str, digest: str, stored: int, *, sealed: bool) -> ArtifactInfo:
        if not sealed:
            return ArtifactInfo(digest, stored, encrypted=False)
        what = f"artifact {digest}"
        header = SealedHeader.parse(self.backend.read_head(name, HEADER_SIZE), what=what)
        size = plaintext_size(stored, header.segment_size)
        return ArtifactInfo(digest, size, encrypted=True, key_id=header.key_id)

    def info(self, digest: str) -> ArtifactInfo:
        """Return what is known of the artifact ``digest`` without reading its bytes.

        Raises:
            InvalidInputError: ``digest`` is not 64 lowercase hex characters.
            NotFoundError: no artifact has this digest.
        """
        found = self._find(check_digest(digest))
        if found is None:
            raise NotFoundError(f"artifact {digest} not found in {self.backend.location}")
        return found

    def _open_chunks(self, digest: str) -> _VerifiedChunks:
        found = self.info(digest)
        name = _object_name(digest, sealed=found.encrypted)
        reader = self.backend.open_read(name)
        try:
            if found.encrypted:
                unsealer = Unsealer(reader, self.keys, what=f"artifact {digest}")
                return _VerifiedChunks(digest, unsealer.segments(), reader)
            return _VerifiedChunks(digest, _read_chunks(reader), reader)
        except BaseException:
            reader.close()
            raise

    def open(self, digest: str) -> BinaryIO:
        """Open the artifact for reading as a binary stream, verified as it is read.

        Sealed segments are authenticated before their bytes are returned; the
        digest of the whole can only be checked at the end, so **read to EOF
        before trusting the bytes**: the read that reaches EOF raises
        :class:`IntegrityError` on a mismatch. Use :meth:`get` or
        :func:`download_artifact` when the bytes must be verified first.

        Raises:
            InvalidInputError: ``digest`` is malformed.
            NotFoundError: no artifact has this digest.
            EncryptionKeyError: the artifact is sealed with a key that is not configured.
            IntegrityError: (while reading) the stored bytes do not match the digest.
        """
        stream = _VerifiedStream(self._open_chunks(digest))
        return io.BufferedReader(stream, buffer_size=CHUNK_SIZE)

    def get(self, digest: str) -> bytes:
        """Return the artifact's bytes after verifying them against ``digest``.

        Raises:
            InvalidInputError: ``digest`` is malformed.
            NotFoundError: no artifact has this digest.
            EncryptionKeyError: the artifact is sealed with a key that is not configured.
            IntegrityError: the stored bytes do not match the digest (or fail authentication).
        """
        chunks = self._open_chunks(digest)
        try:
            return b"".join(chunks)
        finally:
            chunks.close()

    def iter_chunks(self, digest: str) -> Iterator[bytes]:
        """Yield the artifact's bytes in chunks; the last step raises if the digest fails.

        Raises:
            The errors of :meth:`open`.
        """
        chunks = self._open_chunks(digest)
        try:
            yield from chunks
        finally:
            chunks.close()

    def exists(self, digest: str) -> bool:
        """Say whether an artifact with this digest is stored.

        Raises:
            InvalidInputError: ``digest`` is malformed.
        """
        return self._find(check_digest(digest)) is not None

    def delete(self, digest: str) -> None:
        """Remove the artifact, sealed and plaintext copies alike.

        Raises:
            InvalidInputError: ``digest`` is malformed.
            NotFoundError: no artifact has this digest.
        """
        check_digest(digest)
        removed = [self.backend.delete(_object_name(digest, sealed=s)) for s in (True, False)]
        if not any(removed):
            raise NotFoundError(f"artifact {digest} not found in {self.backend.location}")

    def list(self) -> Iterator[ArtifactInfo]:
        """Yield the info of every stored artifact, in digest order.

        A sealed artifact costs one small read (its header) to learn its key id.

        Raises:
            IntegrityError: a sealed object's header is corrupt (the message names its digest).
        """
        for name, stored in self.backend.list("sha256/"):
            match = _NAME.fullmatch(name)
            if match is None or match[1] != match[2][:2]:
                continue  # not ours: leave it alone
            yield self._describe(name, match[2], stored, sealed=match[3] is not None)


def download_artifact(store: ArtifactStore, digest: str, path: str | os.PathLike[str]) -> Path:
    """Write the artifact to ``path`` only once its bytes are verified.

    The bytes go to a temporary file beside ``path``, which is fsynced and renamed
    over ``path`` after the digest matched; on any failure it is removed, so
    nothing unverified ever sits at ``path`` (an earlier file there is left as it was).

    Example:
        >>> import tempfile
        >>> from steward.store.backends import LocalBlobBackend
        >>> folder = Path(tempfile.mkdtemp())
        >>> store = ContentAddressedStore(LocalBlobBackend(folder / "store"))
        >>> info = store.put(b"weights")
        >>> download_artifact(store, info.digest, folder / "model.bin").read_bytes()
        b'weights'

    Raises:
        The errors of :meth:`ArtifactStore.open`; ``OSError`` when ``path`` cannot be written.
    """
    target = Path(path)
    fd, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    temp = Path(temp_name)
    try:
        with os.fdopen(fd, "wb") as out, store.open(digest) as stream:
            while chunk := stream.read(CHUNK_SIZE):
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return target
