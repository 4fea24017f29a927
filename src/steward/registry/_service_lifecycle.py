"""Aliases and stage transitions of the registry service."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from steward.core import (
    ConflictError,
    InvalidInputError,
    PermissionDeniedError,
    canonical_json,
)
from steward.registry._compatibility import check_compatibility
from steward.registry._lifecycle import TransitionRequest, check_transition, parse_stage
from steward.registry._models import (
    ModelRef,
    ModelVersion,
    Stage,
    Transition,
    check_alias,
    check_model_name,
)
from steward.registry._queries import load_versions, resolve_version_row
from steward.registry._registration import lock_model
from steward.registry._service_base import ServiceBase
from steward.registry._tables import model_aliases, model_transitions, model_versions
from steward.store import UnitOfWork

__all__ = ["LifecycleMixin"]


def _point_alias(uow: UnitOfWork, model_id: str, alias: str, version_id: str) -> str | None:
    """Point ``alias`` at a version; return the version id it pointed at before, if any."""
    before = uow.conn.execute(
        sa.select(model_aliases.c.version_id).where(
            model_aliases.c.model_id == model_id, model_aliases.c.alias == alias
        )
    ).scalar()
    uow.conn.execute(
        model_aliases.delete().where(
            model_aliases.c.model_id == model_id, model_aliases.c.alias == alias
        )
    )
    uow.conn.execute(
        model_aliases.insert(),
        {
            "model_id": model_id,
            "alias": alias,
            "version_id": version_id,
            "updated_by": uow.actor,
            "updated_at": uow.clock.now(),
        },
    )
    return before


def _number_of(conn: Connection, version_id: str | None) -> int | None:
    if version_id is None:
        return None
    number: int | None = conn.execute(
        sa.select(model_versions.c.version).where(model_versions.c.id == version_id)
    ).scalar()
    return number


class LifecycleMixin(ServiceBase):
    """Aliases and stage transitions."""

    # -- aliases -----------------------------------------------------------

    def set_alias(self, ref: str | ModelRef, alias: str) -> ModelVersion:
        """Point an alias (``champion``, ``challenger``, any name) at a version, atomically.

        Raises:
            ConflictError: the version is archived (archived versions cannot be deployed).
            NotFoundError: the reference points nowhere.
            InvalidInputError: the alias is malformed.
        """
        parsed = ModelRef.parse(ref)
        check_alias(alias)
        self._authorize("models:write", parsed.name)
        with self.store.unit_of_work() as uow:
            model, version = self._resolve(uow.conn, parsed)
            self._require_deployable(version, f"given the alias {alias!r}")
            lock_model(uow, model.id)
            before = _point_alias(uow, model.id, alias, version.id)
            uow.audit(
                "model.alias.set",
                "model",
                model.name,
                {
                    "alias": alias,
                    "version": version.version,
                    "previous": _number_of(uow.conn, before),
                },
            )
            return self._resolve(uow.conn, ModelRef(model.name, version=version.version))[1]

    def delete_alias(self, name: str, alias: str) -> None:
        """Remove an alias.

        Raises:
            NotFoundError: the model or the alias does not exist (aliases listed).
        """
        check_model_name(name)
        check_alias(alias)
        self._authorize("models:write", name)
        with self.store.unit_of_work() as uow:
            model, row = resolve_version_row(uow.conn, ModelRef(name, alias=alias))
            lock_model(uow, model.id)
            uow.conn.execute(
                model_aliases.delete().where(
                    model_aliases.c.model_id == model.id, model_aliases.c.alias == alias
                )
            )
            uow.audit("model.alias.delete", "model", name, {"alias": alias, "version": row.version})

    # -- transitions -------------------------------------------------------

    def transition(
        self,
        ref: str | ModelRef,
        to_stage: Stage | str,
        *,
        reason: str | None = None,
        aliases: Sequence[str] = (),
        successor: int | None = None,
    ) -> ModelVersion:
        """Move a version to another stage, with its aliases, in one unit of work.

        The stage rules are checked first (archived is final), then the
        :class:`TransitionGate` in force (governance's approvals and policies).
        Archiving moves the version's aliases to ``successor`` when one is named,
        and removes them otherwise.

        Args:
            ref: the version (``fraud:3``, ``fraud@challenger``).
            to_stage: ``registered``, ``staging``, ``production`` or ``archived``.
            reason: why; required to archive.
            aliases: aliases to point at this version in the same transaction.
            successor: for archiving: the version that replaces this one.

        Raises:
            ConflictError: the stage rules forbid the move, or the gate refused it.
            PermissionDeniedError: a missing scope (``models:promote``) or the gate refused.
            InvalidInputError: an unknown stage, a missing reason, or a bad successor.
            NotFoundError: the reference or the successor points nowhere.
        """
        parsed = ModelRef.parse(ref)
        target = parse_stage(to_stage)
        alias_names = tuple(check_alias(a) for a in aliases)
        text = (reason or "").strip()
        if target is Stage.ARCHIVED and not text:
            raise InvalidInputError(
                "archiving needs a reason (it stays in the record); pass reason='...'"
            )
        if target is Stage.ARCHIVED and alias_names:
            raise InvalidInputError("an archived version cannot take aliases; name a successor")
        if successor is not None and target is not Stage.ARCHIVED:
            raise InvalidInputError("a successor is named only when archiving a version")
        self._authorize("models:promote", parsed.name)
        refused: TransitionRequest | None = None
        try:
            with self.store.unit_of_work() as uow:
                model_row_, version = self._resolve(uow.conn, parsed)
                lock_model(uow, model_row_.id)
                check_transition(version.ref, version.stage, target)
                request = self._request(uow, model_row_, version, target, text, alias_names)
                found = self._successor(uow, version, successor)
                if found is not None:
                    request = replace(request, successor=found.version)
                try:
                    self.gate.check(request, uow)
                except (PermissionDeniedError, ConflictError):
                    refused = request
                    raise
                return self._apply(uow, model_row_, request)
        except (PermissionDeniedError, ConflictError) as exc:
            if refused is not None:  # the gate said no: the refusal stays in the record
                with self.store.unit_of_work() as uow:
                    uow.audit(
                        "model.version.transition.denied",
                        "model_version",
                        refused.version.ref,
                        {**refused.as_dict(), "error": str(exc)[:1000]},
                    )
            raise

    def archive(
        self, ref: str | ModelRef, *, reason: str, successor: int | None = None
    ) -> ModelVersion:
        """Archive a version (see :meth:`transition`); it stays loadable for audit.

        A retention rule on archived versions may later delete its artifact bytes
        (its record stays); loading it then raises ``NotFoundError`` naming the rule.
        """
        return self.transition(ref, Stage.ARCHIVED, reason=reason, successor=successor)

    def _request(
        self,
        uow: UnitOfWork,
        model_row_: Any,
        version: ModelVersion,
        target: Stage,
        reason: str,
        aliases: tuple[str, ...],
    ) -> TransitionRequest:
        incumbent = None
        if target in (Stage.STAGING, Stage.PRODUCTION):
            row = uow.conn.execute(
                sa.select(model_versions)
                .where(
                    model_versions.c.model_id == model_row_.id,
                    model_versions.c.stage == target.value,
                    model_versions.c.id != version.id,
                )
                .order_by(model_versions.c.version.desc())
                .limit(1)
            ).first()
            if row is not None:
                incumbent = load_versions(uow.conn, [row], {model_row_.id: model_row_.name})[0]
        return TransitionRequest(
            model=self._model(uow.conn, model_row_),
            version=version,
            from_stage=version.stage,
            to_stage=target,
            reason=reason,
            principal=self.store.principal,
            aliases=aliases,
            incumbent=incumbent,
            compatibility=(
                check_compatibility(incumbent.signature, version.signature) if incumbent else None
            ),
        )

    def _successor(
        self, uow: UnitOfWork, version: ModelVersion, successor: int | None
    ) -> ModelVersion | None:
        if successor is None:
            return None
        if successor == version.version:
            raise InvalidInputError(f"{version.ref} cannot succeed itself")
        found = self._resolve(uow.conn, ModelRef(version.model, version=successor))[1]
        self._require_deployable(found, "a successor")
        return found

    def _apply(self, uow: UnitOfWork, model_row_: Any, request: TransitionRequest) -> ModelVersion:
        version, target = request.version, request.to_stage
        now = uow.clock.now()
        successor = request.successor
        uow.conn.execute(
            model_versions.update()
            .where(model_versions.c.id == version.id)
            .values(
                stage=target.value,
                stage_reason=request.reason or None,
                successor_version=successor,
                stage_changed_at=now,
            )
        )
        moved: dict[str, int | None] = {}
        for alias in request.aliases:
            moved[alias] = _number_of(uow.conn, _point_alias(uow, model_row_.id, alias, version.id))
        handed: dict[str, Any] = {}
        if target is Stage.ARCHIVED:
            handed = self._release_aliases(uow, model_row_.id, version, successor)
        details = {**request.as_dict(), "aliases_moved": moved, "aliases_released": handed}
        uow.conn.execute(
            model_transitions.insert(),
            {
                "version_id": version.id,
                "from_stage": request.from_stage.value,
                "to_stage": target.value,
                "reason": request.reason,
                "actor": uow.actor,
                "at": now,
                "details": canonical_json(details),
            },
        )
        uow.audit("model.version.transition", "model_version", version.ref, details)
        return self._resolve(uow.conn, ModelRef(version.model, version=version.version))[1]

    def _release_aliases(
        self, uow: UnitOfWork, model_id: str, version: ModelVersion, successor: int | None
    ) -> dict[str, Any]:
        """Hand an archived version's aliases to its successor, or drop them."""
        held = list(
            uow.conn.execute(
                sa.select(model_aliases.c.alias).where(model_aliases.c.version_id == version.id)
            ).scalars()
        )
        if not held:
            return {}
        if successor is None:
            uow.conn.execute(model_aliases.delete().where(model_aliases.c.version_id == version.id))
            return dict.fromkeys(held)
        successor_id = uow.conn.execute(
            sa.select(model_versions.c.id).where(
                model_versions.c.model_id == model_id, model_versions.c.version == successor
            )
        ).scalar_one()
        uow.conn.execute(
            model_aliases.update()
            .where(model_aliases.c.version_id == version.id)
            .values(version_id=successor_id, updated_by=uow.actor, updated_at=uow.clock.now())
        )
        return dict.fromkeys(held, successor)

    def transitions(self, ref: str | ModelRef) -> list[Transition]:
        """Return a version's recorded stage changes, oldest first."""
        parsed = ModelRef.parse(ref)
        self._authorize("models:read", parsed.name)
        with self.store.database.read() as conn:
            version = self._resolve(conn, parsed)[1]
            rows = conn.execute(
                sa.select(model_transitions)
                .where(model_transitions.c.version_id == version.id)
                .order_by(model_transitions.c.id)
            ).all()
        return [
            Transition(
                ref=version.ref,
                from_stage=Stage(r.from_stage),
                to_stage=Stage(r.to_stage),
                reason=r.reason,
                actor=r.actor,
                at=r.at,
                details=json.loads(r.details),
            )
            for r in rows
        ]

    def check_deployable(self, ref: str | ModelRef) -> ModelVersion:
        """Return the version if it may be deployed (serving calls this).

        Raises:
            ConflictError: the version is archived.
        """
        version = self.get_version(ref)
        self._require_deployable(version, "deployed")
        return version
