"""Blob backends under the artifact store: a local folder, an S3-compatible bucket."""

from steward.store.backends._blob import BlobBackend, BlobReader, StagedBlob
from steward.store.backends.local import LocalBlobBackend
from steward.store.backends.s3 import S3BlobBackend

__all__ = [
    "BlobBackend",
    "BlobReader",
    "LocalBlobBackend",
    "S3BlobBackend",
    "StagedBlob",
]
