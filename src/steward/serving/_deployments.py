"""The control plane of serving: create, update, roll back and read deployments.

Every change appends a revision (revisions are never edited) and an audit
event in the same unit of work, and needs the ``deployments:write`` scope on
``deployment:NAME``. Model references are resolved to concrete versions when
the revision is made, through the registry, which refuses archived versions;
a production deployment may only reference versions in the production stage.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from steward.core import ConflictError, InvalidInputError, NotFoundError, canonical_json
from steward.registry import RegistryService, Stage
from steward.serving._deployment_models import (
    Deployment,
    DeploymentRevision,
    DeploymentSettings,
    check_deployment_name,
    with_salt,
)
from steward.serving._deployment_tables import deployment_revisions, deployments
from steward.serving._routing_spec import RoutingSpec, Variant
from steward.store import Store, UnitOfWork

__all__ = ["WRITE_SCOPE", "DeploymentService", "append_revision"]

WRITE_SCOPE = "deployments:write"


class DeploymentService:
    """Deployments and their revisions, in one steward home. Every change is audited.

    Example:
        >>> service = DeploymentService(store, registry)  # doctest: +SKIP
        >>> service.create("fraud-api", [Variant("champion", "fraud@champion")])  # doctest: +SKIP
        >>> service.rollback("fraud-api", 1, reason="bad canary")  # doctest: +SKIP

    Args:
        store: the store (acting as the caller).
        registry: resolves model references and checks they may be deployed.
    """

    def __init__(self, store: Store, registry: RegistryService) -> None:
        self.store = store
        self.registry = registry

    # -- changes -----------------------------------------------------------

    def create(
        self,
        name: str,
        spec: RoutingSpec | Mapping[str, Any] | Sequence[Variant],
        *,
        settings: DeploymentSettings | Mapping[str, Any] | None = None,
        production: bool = False,
        reason: str | None = None,
    ) -> Deployment:
        """Create a deployment with its first revision.

        Args:
            name: the deployment's name.
            spec: the routing spec, its dict form, or a list of variants (weighted).
            settings: how the gateway serves it (defaults apply to what is missing).
            production: only production-stage versions may be referenced.
            reason: why, for the audit trail.

        Raises:
            PermissionDeniedError: the caller lacks ``deployments:write`` on it.
            ConflictError: the name is taken; a version is archived, or not in
                production for a production deployment.
            NotFoundError: a model reference points nowhere.
            InvalidInputError: a malformed name, spec or setting.
        """
        check_deployment_name(name)
        self.store.authorize(WRITE_SCOPE, resource=f"deployment:{name}")
        routing = with_salt(_spec(spec), name)
        options = _settings(settings)
        options.check_variants(routing.names)
        resolved, requested = self.resolve(name, routing, production=production)
        with self.store.unit_of_work() as uow:
            if _row(uow.conn, name) is not None:
                raise ConflictError(
                    f"deployment {name!r} already exists; change it with update "
                    f"(steward deployments update {name} ...)"
                )
            now = uow.clock.now()
            uow.conn.execute(
                deployments.insert().values(
                    name=name,
                    production=production,
                    latest_revision=1,
                    created_by=uow.actor,
                    created_at=now,
                    updated_at=now,
                )
            )
            _insert_revision(
                uow.conn,
                name,
                1,
                resolved,
                requested,
                options,
                production,
                reason,
                None,
                uow.actor,
                now,
            )
            uow.audit(
                "deployment.create",
                "deployment",
                name,
                {
                    "revision": 1,
                    "spec": resolved.to_dict(),
                    "requested": requested,
                    "settings": options.to_dict(),
                    "production": production,
                    "reason": reason,
                },
            )
        return self.get(name)

    def update(
        self,
        name: str,
        spec: RoutingSpec | Mapping[str, Any] | Sequence[Variant] | None = None,
        *,
        settings: DeploymentSettings | Mapping[str, Any] | None = None,
        production: bool | None = None,
        reason: str | None = None,
    ) -> Deployment:
        """Append a revision: a new spec, new settings, or both (the rest is copied).

        A mapping of settings changes only the keys it names. Aliases in the
        spec are resolved again now; an unchanged spec keeps its versions.

        Raises:
            The same errors as :meth:`create`; NotFoundError for an unknown deployment.
        """
        check_deployment_name(name)
        self.store.authorize(WRITE_SCOPE, resource=f"deployment:{name}")
        current = self.get(name)
        prod = current.production if production is None else production
        # Without a new spec the versions stay as they are (aliases are not re-resolved).
        routing_in = current.latest.spec if spec is None else with_salt(_spec(spec), name)
        if isinstance(settings, DeploymentSettings):
            options = settings
        elif settings is None:
            options = current.latest.settings
        else:
            options = current.latest.settings.merged(settings)
        options.check_variants(routing_in.names)
        resolved, requested = self.resolve(name, routing_in, production=prod)
        if spec is None:
            requested = dict(current.latest.requested)
        return self._append(name, resolved, requested, options, prod, reason, None, "update")

    def rollback(self, name: str, revision: int, *, reason: str | None = None) -> Deployment:
        """Append a revision that copies revision ``revision`` (the same versions and settings).

        The gateway's workers pick it up on their next poll (within about a second).

        Raises:
            NotFoundError: no such deployment or revision (the message lists the revisions).
            ConflictError: a version of that revision has since been archived, or is
                no longer in production for a production deployment.
            PermissionDeniedError: the caller lacks ``deployments:write``.
        """
        check_deployment_name(name)
        self.store.authorize(WRITE_SCOPE, resource=f"deployment:{name}")
        target = self.get_revision(name, revision)
        current = self.get(name)
        self.resolve(name, target.spec, production=current.production)
        return self._append(
            name,
            target.spec,
            dict(target.requested),
            target.settings,
            current.production,
            reason,
            target.revision,
            "rollback",
        )

    # -- reads -------------------------------------------------------------

    def get(self, name: str) -> Deployment:
        """Return a deployment with its latest revision.

        Raises:
            NotFoundError: no such deployment; the message lists the existing ones.
        """
        with self.store.database.read() as conn:
            row = _row(conn, name)
            if row is None:
                raise NotFoundError(_missing(conn, name))
            latest = _revision(conn, name, row.latest_revision)
        return _deployment(row, latest)

    def find(self, name: str) -> Deployment | None:
        """Return the deployment, or None when there is none by that name."""
        try:
            return self.get(name)
        except NotFoundError:
            return None

    def list_deployments(self) -> list[Deployment]:
        """Return every deployment with its latest revision, by name."""
        with self.store.database.read() as conn:
            rows = conn.execute(sa.select(deployments).order_by(deployments.c.name)).all()
            return [_deployment(r, _revision(conn, r.name, r.latest_revision)) for r in rows]

    def history(self, name: str) -> list[DeploymentRevision]:
        """Return every revision of a deployment, oldest first.

        Raises:
            NotFoundError: no such deployment.
        """
        with self.store.database.read() as conn:
            if _row(conn, name) is None:
                raise NotFoundError(_missing(conn, name))
            rows = conn.execute(
                sa.select(deployment_revisions)
                .where(deployment_revisions.c.deployment == name)
                .order_by(deployment_revisions.c.revision)
            ).all()
        return [_revision_of(r) for r in rows]

    def get_revision(self, name: str, revision: int) -> DeploymentRevision:
        """Return one revision of a deployment.

        Raises:
            NotFoundError: no such deployment or revision.
        """
        if isinstance(revision, bool) or not isinstance(revision, int):
            raise InvalidInputError(f"a revision is a positive integer, got {revision!r}")
        with self.store.database.read() as conn:
            row = _row(conn, name)
            if row is None:
                raise NotFoundError(_missing(conn, name))
            if not 1 <= revision <= row.latest_revision:
                raise NotFoundError(
                    f"deployment {name!r} has no revision {revision}; its revisions are 1 to "
                    f"{row.latest_revision}"
                )
            return _revision(conn, name, revision)

    def latest_revisions(self) -> dict[str, int]:
        """Return deployment name -> latest revision number (what gateway workers poll)."""
        with self.store.database.read() as conn:
            rows = conn.execute(sa.select(deployments.c.name, deployments.c.latest_revision))
            return {r.name: r.latest_revision for r in rows}

    # -- helpers -----------------------------------------------------------

    def resolve(
        self, name: str, spec: RoutingSpec, *, production: bool
    ) -> tuple[RoutingSpec, dict[str, str]]:
        """Resolve every variant's reference to a concrete version that may be deployed.

        Returns:
            The spec with concrete versions, and variant -> the reference as given.

        Raises:
            NotFoundError: a reference points nowhere.
            ConflictError: a version is archived, or not in production for a
                production deployment.
        """
        variants = []
        requested: dict[str, str] = {}
        for variant in spec.variants:
            version = self.registry.check_deployable(variant.model)
            if production and version.stage is not Stage.PRODUCTION:
                raise ConflictError(
                    f"deployment {name!r} is a production deployment, but variant "
                    f"{variant.name!r} references {version.ref}, which is in stage "
                    f"{version.stage.value}; promote it to production first (steward promote) "
                    "or reference a production version"
                )
            requested[variant.name] = variant.model
            variants.append(Variant(variant.name, version.ref, variant.role, variant.weight))
        resolved = RoutingSpec(
            variants=tuple(variants),
            strategy=spec.strategy,
            sticky_key=spec.sticky_key,
            canary=spec.canary,
            salt=spec.salt,
        )
        return resolved, requested

    def _append(
        self,
        name: str,
        spec: RoutingSpec,
        requested: dict[str, str],
        options: DeploymentSettings,
        production: bool,
        reason: str | None,
        rollback_of: int | None,
        action: str,
    ) -> Deployment:
        with self.store.unit_of_work() as uow:
            append_revision(
                uow, name, spec, requested, options, production, reason, rollback_of, action
            )
        return self.get(name)


def append_revision(
    uow: UnitOfWork,
    name: str,
    spec: RoutingSpec,
    requested: dict[str, str],
    options: DeploymentSettings,
    production: bool,
    reason: str | None,
    rollback_of: int | None,
    action: str,
    *,
    expected_revision: int | None = None,
) -> int:
    """Append a revision in ``uow`` and audit it as ``deployment.<action>``; return its number.

    The caller has authorized the change and resolved ``spec``; the deployment's row
    is locked, so concurrent appends get consecutive numbers.

    Args:
        uow: the unit of work the revision and its audit event join.
        name: the deployment.
        spec: the resolved routing spec.
        requested: variant -> the reference as given.
        options: the settings.
        production: the deployment's production flag.
        reason: why, for the audit trail.
        rollback_of: the revision this one copies, for a rollback.
        action: the audit action's suffix (``update``, ``rollback``, ``canary``).
        expected_revision: when given, append only if this is still the latest
            revision (the spec was derived from it).

    Raises:
        NotFoundError: no such deployment.
        ConflictError: the latest revision is not ``expected_revision``.
    """
    row = _row(uow.conn, name, lock=True)
    if row is None:
        raise NotFoundError(_missing(uow.conn, name))
    if expected_revision is not None and row.latest_revision != expected_revision:
        raise ConflictError(
            f"deployment {name!r} moved to revision {row.latest_revision} while a change based "
            f"on revision {expected_revision} was being made; try again"
        )
    revision: int = row.latest_revision + 1
    now = uow.clock.now()
    _insert_revision(
        uow.conn,
        name,
        revision,
        spec,
        requested,
        options,
        production,
        reason,
        rollback_of,
        uow.actor,
        now,
    )
    uow.conn.execute(
        deployments.update()
        .where(deployments.c.name == name)
        .values(latest_revision=revision, production=production, updated_at=now)
    )
    uow.audit(
        f"deployment.{action}",
        "deployment",
        name,
        {
            "revision": revision,
            "previous": row.latest_revision,
            "rollback_of": rollback_of,
            "spec": spec.to_dict(),
            "requested": requested,
            "settings": options.to_dict(),
            "production": production,
            "reason": reason,
        },
    )
    return revision


def _spec(spec: RoutingSpec | Mapping[str, Any] | Sequence[Variant]) -> RoutingSpec:
    if isinstance(spec, RoutingSpec):
        return spec
    if isinstance(spec, Mapping):
        return RoutingSpec.from_dict(spec)
    if isinstance(spec, Sequence) and not isinstance(spec, str):
        return RoutingSpec(variants=tuple(spec))
    raise InvalidInputError(
        f"a deployment spec is a RoutingSpec, its dict form or a list of variants; got {spec!r}"
    )


def _settings(settings: DeploymentSettings | Mapping[str, Any] | None) -> DeploymentSettings:
    if settings is None:
        return DeploymentSettings()
    if isinstance(settings, DeploymentSettings):
        return settings
    return DeploymentSettings.from_dict(settings)


def _row(conn: Connection, name: str, *, lock: bool = False) -> Any:
    query = sa.select(deployments).where(deployments.c.name == name)
    if lock:
        query = query.with_for_update()
    return conn.execute(query).first()


def _missing(conn: Connection, name: str) -> str:
    names = conn.execute(sa.select(deployments.c.name).order_by(deployments.c.name)).scalars()
    known = ", ".join(names) or "none yet (steward deployments create NAME --model REF)"
    return f"no deployment named {name!r}; deployments: {known}"


def _revision(conn: Connection, name: str, revision: int) -> DeploymentRevision:
    row = conn.execute(
        sa.select(deployment_revisions).where(
            deployment_revisions.c.deployment == name,
            deployment_revisions.c.revision == revision,
        )
    ).one()
    return _revision_of(row)


def _revision_of(row: Any) -> DeploymentRevision:
    return DeploymentRevision(
        deployment=row.deployment,
        revision=row.revision,
        spec=RoutingSpec.from_dict(json.loads(row.spec)),
        requested=json.loads(row.requested),
        settings=DeploymentSettings.from_dict(json.loads(row.settings)),
        production=bool(row.production),
        reason=row.reason,
        rollback_of=row.rollback_of,
        created_by=row.created_by,
        created_at=row.created_at,
    )


def _deployment(row: Any, latest: DeploymentRevision) -> Deployment:
    return Deployment(
        name=row.name,
        production=bool(row.production),
        latest=latest,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def _insert_revision(
    conn: Connection,
    name: str,
    revision: int,
    spec: RoutingSpec,
    requested: dict[str, str],
    options: DeploymentSettings,
    production: bool,
    reason: str | None,
    rollback_of: int | None,
    actor: str,
    now: Any,
) -> None:
    conn.execute(
        deployment_revisions.insert().values(
            deployment=name,
            revision=revision,
            spec=canonical_json(spec.to_dict()),
            requested=canonical_json(requested),
            settings=canonical_json(options.to_dict()),
            production=production,
            reason=reason,
            rollback_of=rollback_of,
            created_by=actor,
            created_at=now,
        )
    )
