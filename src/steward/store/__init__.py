"""Persistence: metadata database, unit of work, audit chain and artifact store."""

from steward.store._audit import AuditEvent, ChainAnchor, VerificationResult
from steward.store._auditlog import AuditLog
from steward.store._database import Database, SchemaStatus, open_database
from steward.store._settings import StoreSettings
from steward.store._tables import metadata
from steward.store._types import UTCDateTime, big_id
from steward.store._uow import UnitOfWork, unit_of_work

__all__ = [
    "AuditEvent",
    "AuditLog",
    "ChainAnchor",
    "Database",
    "SchemaStatus",
    "StoreSettings",
    "UTCDateTime",
    "UnitOfWork",
    "VerificationResult",
    "big_id",
    "metadata",
    "open_database",
    "unit_of_work",
]
