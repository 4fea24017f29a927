"""Persistence: metadata database, unit of work, audit chain and artifact store."""

from steward.store._artifact_uri import open_artifact_store
from steward.store._artifacts import (
    ArtifactInfo,
    ArtifactSource,
    ArtifactStore,
    ContentAddressedStore,
    download_artifact,
)
from steward.store._audit import AuditEvent, ChainAnchor, VerificationResult
from steward.store._auditlog import AuditLog
from steward.store._crypto import KeyProvider, KeyRing, key_id_of, open_key_provider
from steward.store._database import Database, SchemaStatus, open_database
from steward.store._home import Store
from steward.store._prepared import PreparedInsert, PreparedStatement
from steward.store._settings import StoreSettings
from steward.store._tables import metadata
from steward.store._types import UTCDateTime, big_id
from steward.store._uow import UnitOfWork, unit_of_work

__all__ = [
    "ArtifactInfo",
    "ArtifactSource",
    "ArtifactStore",
    "AuditEvent",
    "AuditLog",
    "ChainAnchor",
    "ContentAddressedStore",
    "Database",
    "KeyProvider",
    "KeyRing",
    "PreparedInsert",
    "PreparedStatement",
    "SchemaStatus",
    "Store",
    "StoreSettings",
    "UTCDateTime",
    "UnitOfWork",
    "VerificationResult",
    "big_id",
    "download_artifact",
    "key_id_of",
    "metadata",
    "open_artifact_store",
    "open_database",
    "open_key_provider",
    "unit_of_work",
]
