"""What every part of the registry service shares: the store, tracking, settings and lookups."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from steward.core import ConfigurationError, ConflictError, NotFoundError, canonical_json
from steward.registry._cards import CardSources, ModelCard, generate_sections
from steward.registry._compile import DEFAULT_ATOL, compile_model, store_compilation
from steward.registry._lifecycle import AllowAllGate, TransitionGate
from steward.registry._lineage import LineageGraph, build_lineage, run_lineage
from steward.registry._models import ModelRef, ModelVersion, RegisteredModel
from steward.registry._packaging import load_model, read_manifest
from steward.registry._queries import (
    aliases_of,
    load_versions,
    model_row,
    resolve_version_row,
    to_model,
)
from steward.registry._registration import ensure_model, insert_version, lock_model, prepare_version
from steward.registry._settings import RegistrySettings
from steward.registry._tables import model_cards, model_versions
from steward.registry.flavors import Flavor, builtin_flavors
from steward.store import Store, UnitOfWork
from steward.tracking import Run, TrackingService

__all__ = ["ServiceBase"]


class ServiceBase:
    """State and helpers shared by the parts of :class:`RegistryService`."""

    def __init__(
        self,
        store: Store,
        tracking: TrackingService | None = None,
        settings: RegistrySettings | None = None,
        *,
        gate: TransitionGate | None = None,
    ) -> None:
        self.store = store
        self.tracking = tracking or TrackingService(store, capture_environment=False)
        self.settings = settings or RegistrySettings()
        self.gate: TransitionGate = gate or AllowAllGate()
        self.flavors: dict[str, Flavor] = builtin_flavors(
            trusted_types=self.settings.trusted_types,
            allow_unsafe=self.settings.allow_unsafe_flavors,
        )

    def _authorize(self, scope: str, name: str) -> None:
        self.store.authorize(scope, resource=f"model:{name}")

    def _model(self, conn: Connection, row: Any) -> RegisteredModel:
        return to_model(row, aliases_of(conn, row.id))

    def _resolve(self, conn: Connection, ref: ModelRef) -> tuple[Any, ModelVersion]:
        model, row = resolve_version_row(conn, ref)
        return model, load_versions(conn, [row], {model.id: model.name})[0]

    def get_version(self, ref: str | ModelRef) -> ModelVersion:
        """Return the version ``ref`` points at (``fraud:3``, ``fraud@champion``, ``fraud``).

        Raises:
            NotFoundError: the model, version or alias does not exist; the message lists
                what does.
            InvalidInputError: ``ref`` is malformed.
        """
        parsed = ModelRef.parse(ref)
        self._authorize("models:read", parsed.name)
        with self.store.database.read() as conn:
            return self._resolve(conn, parsed)[1]

    def _register(
        self,
        model: object,
        *,
        name: str,
        run: Run | None,
        source: dict[str, Any],
        sample_input: Any,
        signature: Any,
        flavor: str | None,
        description: str | None,
        tags: dict[str, str],
        compile: str | None,
        unsafe: bool,
    ) -> ModelVersion:
        profile = self._train_profile(run)
        prepared = prepare_version(
            model,
            artifacts=self.store.artifacts,
            flavors=self.flavors,
            flavor=flavor,
            sample_input=sample_input,
            signature=signature,
            unsafe=unsafe,
            profile=profile,
            example_rows=self.settings.example_rows,
        )
        sources = self._card_sources(run.id if run else None, description=prepared.stored.described)
        compiled = None
        if compile == "onnx":
            compiled = compile_model(
                model,
                ref=name,
                flavor=prepared.flavor.name,
                signature=prepared.signature,
                sample=sample_input,
                atol=DEFAULT_ATOL,
                artifacts=self.store.artifacts,
                onnx_flavor=self.flavors["onnx"],
            )
        with self.store.unit_of_work() as uow:
            row, _ = ensure_model(uow, name)
            number = lock_model(uow, row.id, next_version=True)
            version_id = insert_version(
                uow,
                ref=ModelRef(name, version=number),
                model_id=row.id,
                run=run,
                source=source,
                prepared=prepared,
                description=description or "",
                tags=tags,
                unsafe=unsafe and prepared.flavor.unsafe,
            )
            version = self._version_by_id(uow.conn, version_id, name)
            if compiled is not None:
                store_compilation(uow, version, compiled)
                version = self._version_by_id(uow.conn, version_id, name)
            model_record = self._model(uow.conn, model_row(uow.conn, name))
            sections = generate_sections(model_record, version, sources)
            self._insert_card(uow, version, sections, {}, revision=1)
        return version

    def _train_profile(self, run: Run | None) -> dict[str, Any] | None:
        if run is None:
            return None
        for dataset in self.tracking.run_datasets(run.id):
            if dataset.role == "train":
                return dataset.profile
        return None

    def _version_by_id(self, conn: Any, version_id: str, name: str) -> ModelVersion:
        row = conn.execute(sa.select(model_versions).where(model_versions.c.id == version_id)).one()
        return load_versions(conn, [row], {row.model_id: name})[0]

    def _load_native(self, version: ModelVersion) -> object:
        """Load what was registered (every byte verified), for the service's own use."""
        require_artifacts(version)
        flavor = self._flavor_of(version)
        model, _ = load_model(
            self.store.artifacts, version.artifact_digest, flavor, what=version.ref
        )
        return model

    def _flavor_of(self, version: ModelVersion) -> Flavor:
        flavor = self.flavors.get(version.flavor)
        if flavor is None:
            raise ConfigurationError(
                f"{version.ref} was saved with flavor {version.flavor!r}, which this installation "
                f"does not have; flavors: {', '.join(self.flavors)}"
            )
        return flavor

    def _require_deployable(self, version: ModelVersion, action: str) -> None:
        require_artifacts(version)
        if not version.deployable:
            raise ConflictError(
                f"{version.ref} is archived ({version.stage_reason}); archived versions stay "
                f"loadable for audit but cannot be {action}"
            )

    def _card_sources(
        self, run_id: str | None, *, description: dict[str, Any] | None = None, digest: str = ""
    ) -> CardSources:
        """Read what a card needs from tracking and the manifest (outside any transaction)."""
        if description is None:
            manifest = read_manifest(self.store.artifacts, digest, what=f"manifest {digest}")
            description = dict(manifest.get("model") or {})
        if run_id is None:
            return CardSources(None, [], None, description)
        return CardSources(
            self.tracking.get_run(run_id),
            self.tracking.run_datasets(run_id),
            run_lineage(self.tracking, run_id),
            description,
        )

    def _lineage(self, version: ModelVersion) -> LineageGraph:
        run_graph = run_lineage(self.tracking, version.run_id) if version.run_id else None
        return build_lineage(version, run_graph)

    def _insert_card(
        self,
        uow: UnitOfWork,
        version: ModelVersion,
        generated: dict[str, Any],
        editable: dict[str, str],
        *,
        revision: int,
    ) -> ModelCard:
        card = ModelCard(
            ref=version.ref,
            revision=revision,
            generated=generated,
            editable=editable,
            created_by=uow.actor,
            created_at=uow.clock.now(),
        )
        uow.conn.execute(
            model_cards.insert(),
            {
                "version_id": version.id,
                "revision": revision,
                "content": canonical_json(card.content()),
                "created_by": card.created_by,
                "created_at": card.created_at,
            },
        )
        return card

    @staticmethod
    def _card_rows(conn: Connection, version: ModelVersion) -> list[Any]:
        return list(
            conn.execute(
                sa.select(model_cards)
                .where(model_cards.c.version_id == version.id)
                .order_by(model_cards.c.revision)
            )
        )

    @staticmethod
    def _to_card(version: ModelVersion, row: Any) -> ModelCard:
        content = json.loads(row.content)
        return ModelCard(
            ref=version.ref,
            revision=row.revision,
            generated=content.get("generated", {}),
            editable=content.get("editable", {}),
            created_by=row.created_by,
            created_at=row.created_at,
        )


def require_artifacts(version: ModelVersion) -> None:
    """Refuse a version whose artifact bytes retention deleted, naming the rule and date.

    Raises:
        NotFoundError: the version's artifacts were deleted; its record is kept.
    """
    if version.purged_at is not None:
        raise NotFoundError(
            f"{version.ref}'s artifacts were deleted by retention rule "
            f"'{version.purged_by_rule}' on {version.purged_at.date().isoformat()}; "
            "its record (card, lineage, transitions, audit) is kept"
        )
