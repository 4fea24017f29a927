"""Blobs in an S3-compatible bucket (AWS S3, MinIO, Ceph, ...) through s3fs.

Needs the ``s3`` extra (``pip install 'steward[s3]'``); s3fs is imported only
when a backend is built. Credentials come from the usual AWS chain
(``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``, instance roles).

A blob is uploaded (multipart above the block size) under ``<prefix>/tmp/<id>``
and published by a server-side copy to its name, so a reader never sees a
partial object and the client never holds more than one block in memory.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from steward.core import BackendUnavailableError, ConfigurationError, NotFoundError, new_id

__all__ = ["S3BlobBackend"]

BLOCK_SIZE = 8 * 1024 * 1024


class _Translator:
    """Turns s3fs/botocore exceptions into steward's, naming the endpoint and bucket."""

    def __init__(self, location: str, endpoint: str, errors: Any) -> None:
        self._where = f"{location} (endpoint {endpoint})"
        self._errors = errors  # botocore.exceptions, imported with s3fs

    @contextmanager
    def __call__(self, action: str, name: str = "") -> Iterator[None]:
        errors = self._errors
        try:
            yield
        except FileNotFoundError:
            raise NotFoundError(f"no blob {name!r} in {self._where}") from None
        except errors.NoCredentialsError:
            raise ConfigurationError(
                f"no AWS credentials to {action} {self._where}; set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE"
            ) from None
        except PermissionError as exc:
            raise BackendUnavailableError(
                f"access denied to {action} {self._where}: {exc}; check the credentials' "
                "permissions on the bucket"
            ) from exc
        except (OSError, errors.BotoCoreError, errors.ClientError) as exc:
            raise BackendUnavailableError(
                f"cannot {action} {self._where}: {exc}; check STEWARD_S3_ENDPOINT_URL and "
                "that the server is up"
            ) from exc


class _S3Reader:
    def __init__(self, handle: Any, translate: _Translator, name: str) -> None:
        self._handle = handle
        self._translate = translate
        self._name = name

    def read(self, size: int = -1, /) -> bytes:
        with self._translate("read", self._name):
            data: bytes = self._handle.read(size)
        return data

    def close(self) -> None:
        self._handle.close()


class _S3StagedBlob:
    def __init__(self, backend: S3BlobBackend) -> None:
        self._backend = backend
        self._temp = backend.key(f"tmp/{new_id()}")
        with backend.translate("upload to"):
            self._file: Any = backend.fs.open(self._temp, "wb", block_size=BLOCK_SIZE)
        self._open = True

    def write(self, data: bytes, /) -> None:
        with self._backend.translate("upload to"):
            self._file.write(data)

    def publish(self, name: str) -> None:
        fs = self._backend.fs
        with self._backend.translate("publish to", name):
            self._file.close()
            self._open = False
            fs.copy(self._temp, self._backend.key(name))
            fs.rm_file(self._temp)

    def discard(self) -> None:
        with self._backend.translate("clean up"):
            if self._open:
                self._file.discard()  # aborts a multipart upload in progress
                self._file.closed = True  # so that closing it later uploads nothing
                self._open = False
            if self._backend.fs.exists(self._temp):
                self._backend.fs.rm_file(self._temp)


class S3BlobBackend:
    """Blobs stored as objects under ``s3://bucket/prefix/``.

    Args:
        bucket: the bucket name.
        prefix: a key prefix inside the bucket (no leading or trailing slash), may be empty.
        endpoint_url: an S3-compatible server, e.g. ``http://127.0.0.1:9000``; ``None`` for AWS.

    Raises:
        ConfigurationError: s3fs is not installed (the ``s3`` extra).
    """

    def __init__(self, bucket: str, prefix: str = "", *, endpoint_url: str | None = None) -> None:
        try:
            import s3fs

            # botocore ships no type hints; its exception classes are only caught here.
            boto_errors = importlib.import_module("botocore.exceptions")
        except ImportError:
            raise ConfigurationError(
                "an s3:// STEWARD_ARTIFACT_URI needs s3fs; install the extra: "
                "pip install 'steward[s3]'"
            ) from None
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint_url = endpoint_url
        self.fs = s3fs.S3FileSystem(
            endpoint_url=endpoint_url,
            default_block_size=BLOCK_SIZE,
            skip_instance_cache=True,  # this backend owns its connection pool
            use_listings_cache=False,  # other processes write the same bucket
            # Fail in seconds, not minutes, when the endpoint is down; transient errors still retry.
            config_kwargs={
                "connect_timeout": 5,
                "retries": {"mode": "standard", "max_attempts": 3},
            },
        )
        self.translate = _Translator(self.location, endpoint_url or "AWS default", boto_errors)

    @property
    def location(self) -> str:
        """The bucket and prefix, as ``s3://bucket/prefix``."""
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def key(self, name: str) -> str:
        """Return the s3fs path of the blob ``name``: ``bucket/prefix/name``."""
        return f"{self.bucket}/{self.prefix}/{name}" if self.prefix else f"{self.bucket}/{name}"

    def check(self) -> None:
        """Make sure the bucket exists and can be reached.

        Raises:
            NotFoundError: the bucket does not exist.
            BackendUnavailableError: the server cannot be reached or denies access.
        """
        with self.translate("reach bucket", self.bucket):
            self.fs.info(self.bucket)

    def open_read(self, name: str) -> _S3Reader:
        """Open the blob ``name`` for sequential reading, one block ahead.

        Raises:
            NotFoundError: no blob has this name.
        """
        with self.translate("read", name):
            handle = self.fs.open(self.key(name), "rb", cache_type="readahead")
        return _S3Reader(handle, self.translate, name)

    def read_head(self, name: str, size: int) -> bytes:
        """Return the first ``size`` bytes of the blob ``name`` (one ranged GET).

        Raises:
            NotFoundError: no blob has this name.
        """
        with self.translate("read", name):
            data: bytes = self.fs.cat_file(self.key(name), start=0, end=size)
        return data

    def size(self, name: str) -> int | None:
        """Return the size of the blob ``name`` in bytes, or ``None`` when there is none."""
        try:
            with self.translate("look up", name):
                info = self.fs.info(self.key(name))
        except NotFoundError:
            return None
        return int(info["size"])

    def stage(self) -> _S3StagedBlob:
        """Start a (multipart) upload under a temporary key."""
        return _S3StagedBlob(self)

    def delete(self, name: str) -> bool:
        """Delete the blob ``name``; return whether there was one."""
        if self.size(name) is None:
            return False
        with self.translate("delete", name):
            self.fs.rm_file(self.key(name))
        return True

    def list(self, prefix: str) -> Iterator[tuple[str, int]]:
        """Yield ``(name, size)`` of the blobs whose names start with ``prefix``, in name order."""
        root = self.key("")
        with self.translate("list"):
            found = self.fs.find(self.key(prefix), detail=True)
        for path in sorted(found):
            info = found[path]
            if info.get("type") == "file":
                yield path[len(root) :], int(info["size"])
