"""One steward home's persistence, wired together: database, artifacts, audit log."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from steward.core import (
    Authorizer,
    Clock,
    ConfigurationError,
    PermissionDeniedError,
    Principal,
    RetentionGuard,
    ScopeAuthorizer,
    SystemClock,
)
from steward.store._artifact_uri import open_artifact_store
from steward.store._artifacts import ArtifactStore
from steward.store._auditlog import AuditLog
from steward.store._database import Database, open_database
from steward.store._settings import StoreSettings
from steward.store._uow import UnitOfWork, unit_of_work

__all__ = ["Store"]


class Store:
    """The persistence of one steward deployment, as services use it.

    Example:
        >>> store = Store.open(StoreSettings(home=tmp_path))  # doctest: +SKIP
        >>> with store.unit_of_work() as uow:  # doctest: +SKIP
        ...     uow.audit("model.create", "model", "fraud")
    """

    def __init__(
        self,
        database: Database,
        artifacts: ArtifactStore,
        *,
        actor: str | Principal,
        clock: Clock | None = None,
        settings: StoreSettings | None = None,
        authorizer: Authorizer | None = None,
    ) -> None:
        self.database = database
        self.artifacts = artifacts
        self.principal = actor if isinstance(actor, Principal) else Principal.local(actor)
        self.actor = self.principal.name
        self.authorizer: Authorizer = authorizer or ScopeAuthorizer()
        # What deletions must leave alone (legal holds, blobs still in use); governance
        # installs it with the authorizer. None: destructive collection refuses to run.
        self.retention_guard: RetentionGuard | None = None
        self.clock: Clock = clock or SystemClock()
        self.audit = AuditLog(database)
        self.settings = settings
        self.artifact_uri = settings.resolved_artifact_uri() if settings else repr(artifacts)

    @classmethod
    def open(cls, settings: StoreSettings | None = None, *, clock: Clock | None = None) -> Store:
        """Open the database and artifact store named by the settings.

        Raises:
            ConfigurationError: a URL is malformed or a location is not writable.
            BackendUnavailableError: a server cannot be reached.
        """
        settings = settings or StoreSettings()
        if settings.database_url is None or settings.artifact_uri is None:
            try:
                settings.home.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ConfigurationError(
                    f"STEWARD_HOME={str(settings.home)!r} cannot be created ({exc.strerror}); "
                    "set STEWARD_HOME to a writable folder"
                ) from exc
        return cls(
            open_database(settings),
            open_artifact_store(settings),
            actor=settings.user,
            clock=clock,
            settings=settings,
        )

    @contextmanager
    def unit_of_work(self, *, actor: str | None = None) -> Iterator[UnitOfWork]:
        """Open one audited write transaction (see :func:`unit_of_work`)."""
        with unit_of_work(self.database, actor=actor or self.actor, clock=self.clock) as uow:
            yield uow

    def as_principal(self, principal: Principal) -> Store:
        """Return a view of this store acting as ``principal`` (same database and artifacts).

        Adapters that serve many callers (the HTTP API, the gateway) bind each
        request's identity this way; services read it from the store they were given.
        """
        bound = copy.copy(self)
        bound.principal = principal
        bound.actor = principal.name
        return bound

    def with_authorizer(self, authorizer: Authorizer) -> Store:
        """Return a view of this store whose access decisions ``authorizer`` makes."""
        bound = copy.copy(self)
        bound.authorizer = authorizer
        return bound

    def with_retention_guard(self, guard: RetentionGuard) -> Store:
        """Return a view of this store whose deletions ``guard`` vets (holds, blobs in use)."""
        bound = copy.copy(self)
        bound.retention_guard = guard
        return bound

    def authorize(self, scope: str, *, resource: str | None = None) -> None:
        """Check that the current principal may use ``scope``; audit and raise if not.

        Services call this before opening their unit of work. A denial is recorded in
        the audit chain (``access.denied``, with the scope and resource) in its own
        transaction, then :class:`PermissionDeniedError` propagates.
        """
        try:
            self.authorizer.check(self.principal, scope, resource=resource)
        except PermissionDeniedError:
            with self.unit_of_work() as uow:
                uow.audit(
                    "access.denied",
                    "principal",
                    self.principal.name,
                    {"scope": scope, "resource": resource, "kind": self.principal.kind},
                )
            raise

    def initialize(self) -> dict[str, Any]:
        """Create or upgrade the schema; record the first initialization in the audit chain.

        Returns:
            What was done: database, artifact location, schema revision, and whether
            this call initialized the home.
        """
        status = self.database.upgrade()
        first = self.audit.head() is None
        if first:
            with self.unit_of_work() as uow:
                uow.audit(
                    "home.initialize",
                    "home",
                    "steward",
                    {"database": self.database.display_url, "artifacts": self.artifact_uri},
                )
        return {
            "database": self.database.display_url,
            "artifacts": self.artifact_uri,
            "schema_revision": status.current,
            "initialized": first,
        }

    def close(self) -> None:
        """Release pooled connections."""
        self.database.dispose()
