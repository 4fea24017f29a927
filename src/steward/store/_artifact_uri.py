"""Build the artifact store that ``STEWARD_ARTIFACT_URI`` names, failing fast on bad settings.

Schemes, and the backend each gives::

    /srv/artifacts, ./artifacts, ~/a   -> LocalBlobBackend(<absolute path>)
    file:///srv/artifacts              -> LocalBlobBackend(/srv/artifacts)
    s3://bucket/some/prefix            -> S3BlobBackend("bucket", "some/prefix")
    anything else                      -> ConfigurationError naming the setting
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from steward.core import ConfigurationError, NotFoundError
from steward.store._artifacts import ArtifactStore, ContentAddressedStore
from steward.store._crypto import open_key_provider
from steward.store._settings import StoreSettings
from steward.store.backends import BlobBackend, LocalBlobBackend, S3BlobBackend

__all__ = ["open_artifact_store"]

_SCHEMES = "a folder path, file:///absolute/path or s3://bucket/prefix"


def _local_path(uri: str, setting: str) -> Path:
    parts = urlsplit(uri)
    if parts.scheme.lower() != "file":
        return Path(uri).expanduser().absolute()
    if parts.netloc not in ("", "localhost") or not parts.path:
        raise ConfigurationError(
            f"{setting}={uri!r} is not a local file URL; write file:///absolute/path "
            "(three slashes) or a plain folder path"
        )
    return Path(unquote(parts.path))


def _blob_backend(uri: str, endpoint_url: str | None, setting: str) -> BlobBackend:
    scheme = urlsplit(uri).scheme.lower()
    # A one-letter scheme is a Windows drive ("C:\\artifacts"), not a URL.
    if scheme in ("", "file") or len(scheme) == 1:
        return LocalBlobBackend(_local_path(uri, setting))
    if scheme == "s3":
        parts = urlsplit(uri)
        if not parts.netloc or parts.query or parts.fragment:
            raise ConfigurationError(
                f"{setting}={uri!r} is not a bucket URL; write s3://bucket or s3://bucket/prefix"
            )
        return S3BlobBackend(parts.netloc, parts.path.strip("/"), endpoint_url=endpoint_url)
    raise ConfigurationError(
        f"{setting}={uri!r} has unknown scheme {scheme + '://'!r}; use {_SCHEMES}"
    )


def _check(backend: BlobBackend, setting: str, value: str) -> None:
    try:
        backend.check()
    except OSError as exc:
        raise ConfigurationError(
            f"{setting}={value!r}: cannot write artifacts in {backend.location} "
            f"({exc.strerror or exc}); make that folder writable, or set {setting} to a "
            "writable folder" + (" or an s3:// bucket" if setting == "STEWARD_ARTIFACT_URI" else "")
        ) from None
    except NotFoundError:
        raise ConfigurationError(
            f"{setting}={value!r}: {backend.location} does not exist; create the bucket, or fix "
            "the bucket name (and STEWARD_S3_ENDPOINT_URL)"
        ) from None


def open_artifact_store(settings: StoreSettings) -> ArtifactStore:
    """Open the artifact store the settings describe, checking them first.

    The backend is chosen by the scheme of ``STEWARD_ARTIFACT_URI`` (default:
    the folder ``STEWARD_HOME/artifacts``): a folder path or ``file:///...``
    for a local folder (created when missing), ``s3://bucket/prefix`` for an
    S3-compatible bucket at ``STEWARD_S3_ENDPOINT_URL``. Master keys come from
    ``STEWARD_MASTER_KEY`` / ``STEWARD_MASTER_KEY_FILE``; they read sealed
    artifacts whether or not ``STEWARD_ENCRYPT_ARTIFACTS`` seals new ones.

    Example:
        >>> import tempfile
        >>> store = open_artifact_store(StoreSettings(home=tempfile.mkdtemp()))
        >>> store.get(store.put(b"hello").digest)
        b'hello'

    Raises:
        ConfigurationError: an unknown scheme, an unwritable folder, a missing bucket, a
            malformed master key, encryption on without a key, or s3fs missing; the
            message names the setting and the fix.
        BackendUnavailableError: the S3 server cannot be reached.
    """
    if settings.artifact_uri:
        setting, value = "STEWARD_ARTIFACT_URI", settings.artifact_uri
    else:
        setting, value = "STEWARD_HOME", str(settings.home)
    backend = _blob_backend(settings.resolved_artifact_uri(), settings.s3_endpoint_url, setting)
    store = ContentAddressedStore(
        backend, keys=open_key_provider(settings), encrypt=settings.encrypt_artifacts
    )
    _check(backend, setting, value)  # every setting is checked before the first I/O
    return store
