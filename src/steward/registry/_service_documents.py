"""Lineage, model cards, ONNX compilation and MLflow import of the registry service."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from steward.core import InvalidInputError, NotFoundError
from steward.registry._cards import ModelCard, check_edits, generate_sections
from steward.registry._compile import DEFAULT_ATOL, CompileReport, compile_model, store_compilation
from steward.registry._lineage import LineageGraph
from steward.registry._mlflow import MlflowModel, read_mlflow_model
from steward.registry._models import ModelRef, ModelVersion, check_model_name
from steward.registry._packaging import load_example
from steward.registry._queries import load_versions, model_row
from steward.registry._registration import lock_model
from steward.registry._service_base import ServiceBase
from steward.registry._signatures import ColumnSpec, Signature
from steward.registry._tables import model_versions, registered_models

__all__ = ["DocumentsMixin", "mlflow_signature"]

_MLFLOW_TYPES = {
    "double": "float64",
    "float": "float32",
    "long": "int64",
    "integer": "int32",
    "boolean": "bool",
    "string": "string",
    "datetime": "datetime64[ns]",
}


def mlflow_signature(inputs: list[dict[str, Any]] | None) -> Signature | None:
    """Translate an MLflow input schema (column or tensor specs) into a signature.

    Returns None when there is no schema or it uses types steward cannot check.
    """
    if not inputs:
        return None
    if len(inputs) == 1 and inputs[0].get("type") == "tensor":
        spec = inputs[0].get("tensor-spec", {})
        shape = spec.get("shape", [])
        if len(shape) != 2 or not isinstance(shape[1], int) or shape[1] < 1:
            return None
        dtype = str(spec.get("dtype", "float64"))
        columns = tuple(ColumnSpec(f"x{i}", dtype) for i in range(shape[1]))
        return Signature(columns, input_format="ndarray")
    columns_list = []
    for index, column in enumerate(inputs):
        mapped = _MLFLOW_TYPES.get(str(column.get("type")))
        if mapped is None:
            return None
        name = str(column.get("name", f"x{index}"))
        columns_list.append(ColumnSpec(name, mapped, nullable=not column.get("required", True)))
    return Signature(tuple(columns_list))


class DocumentsMixin(ServiceBase):
    """Lineage, cards, compilation and import."""

    # -- lineage -----------------------------------------------------------

    def lineage(self, ref: str | ModelRef) -> LineageGraph:
        """Return the lineage graph of a version: run, datasets, code, environment, parents.

        Raises:
            NotFoundError: the reference points nowhere.
        """
        return self._lineage(self.get_version(ref))

    def used_by_dataset(self, digest: str) -> list[ModelVersion]:
        """Return the versions trained by runs that logged a dataset with this digest."""
        self.store.authorize("models:read", resource="model:*")
        run_ids = self.tracking.runs_using_dataset(digest)
        if not run_ids:
            return []
        with self.store.database.read() as conn:
            rows = conn.execute(
                sa.select(model_versions)
                .where(model_versions.c.run_id.in_(run_ids))
                .order_by(model_versions.c.created_at)
            ).all()
            names = dict(
                conn.execute(sa.select(registered_models.c.id, registered_models.c.name)).all()
            )
            return load_versions(conn, rows, names)

    # -- cards -------------------------------------------------------------

    def card(self, ref: str | ModelRef, *, revision: int | None = None) -> ModelCard:
        """Return a version's card: the latest revision, or the one asked for.

        Raises:
            NotFoundError: the version or the revision does not exist (revisions listed).
        """
        version = self.get_version(ref)
        with self.store.database.read() as conn:
            rows = self._card_rows(conn, version)
        if not rows:
            raise NotFoundError(f"{version.ref} has no card yet; write one with update_card")
        if revision is None:
            return self._to_card(version, rows[-1])
        for row in rows:
            if row.revision == revision:
                return self._to_card(version, row)
        raise NotFoundError(
            f"{version.ref} has no card revision {revision}; revisions 1 to {rows[-1].revision}"
        )

    def card_history(self, ref: str | ModelRef) -> list[ModelCard]:
        """Return every revision of a version's card, oldest first."""
        version = self.get_version(ref)
        with self.store.database.read() as conn:
            return [self._to_card(version, row) for row in self._card_rows(conn, version)]

    def update_card(
        self, ref: str | ModelRef, sections: Mapping[str, str] | None = None
    ) -> ModelCard:
        """Edit a version's card (a new revision); generated sections are recomputed.

        Args:
            ref: the version.
            sections: editable sections to set (``intended_use``, ``out_of_scope_use``,
                ``limitations``, ``ethical_considerations``, ``caveats``); empty
                text clears one. None only refreshes the generated sections.

        Raises:
            InvalidInputError: a section is unknown or generated; the message lists
                the editable ones.
        """
        edits = check_edits(sections or {})
        parsed = ModelRef.parse(ref)
        self._authorize("models:write", parsed.name)
        before = self.get_version(parsed)
        kept: dict[str, Any] | None = None
        if before.purged_at is not None:  # the manifest is gone; its estimator is on the card
            kept = dict(self.card(before.ref).generated.get("overview", {}).get("estimator", {}))
        sources = self._card_sources(before.run_id, description=kept, digest=before.artifact_digest)
        with self.store.unit_of_work() as uow:
            model, version = self._resolve(uow.conn, ModelRef(before.model, version=before.version))
            lock_model(uow, model.id)
            rows = self._card_rows(uow.conn, version)
            editable = dict(self._to_card(version, rows[-1]).editable) if rows else {}
            editable.update(edits)
            editable = {k: v for k, v in editable.items() if v}
            record = self._model(uow.conn, model)
            revision = (rows[-1].revision if rows else 0) + 1
            sections = generate_sections(record, version, sources)
            card = self._insert_card(uow, version, sections, editable, revision=revision)
            uow.audit(
                "model.card.update",
                "model_version",
                version.ref,
                {"revision": revision, "sections": sorted(edits)},
            )
        return card

    # -- compilation -------------------------------------------------------

    def compile(
        self, ref: str | ModelRef, *, sample: Any = None, atol: float = DEFAULT_ATOL
    ) -> CompileReport:
        """Compile a scikit-learn version to ONNX and verify parity on held-out rows.

        Labels must be identical and probabilities (or regression outputs) within
        ``atol``. A version that fails parity is not marked compiled; the report
        says which rows are off and by how much. Serving prefers a verified ONNX artifact.

        Args:
            ref: the version.
            sample: rows to check on (default: the version's stored input example).
            atol: largest absolute difference allowed.

        Raises:
            UnsupportedModelError: no converter for the estimator (named).
            InvalidInputError: not a scikit-learn version, or no sample and no example.
            ConflictError: the version is archived.
        """
        if not isinstance(atol, int | float) or atol < 0:
            raise InvalidInputError(f"atol must be a number >= 0, got {atol!r}")
        parsed = ModelRef.parse(ref)
        self._authorize("models:write", parsed.name)
        version = self.get_version(parsed)
        self._require_deployable(version, "compiled")
        native = self._load_native(version)
        if sample is None:
            if version.example_digest is None:
                raise InvalidInputError(
                    f"{version.ref} has no stored input example; pass sample rows to check "
                    "parity on (--sample FILE)"
                )
            as_array = version.signature is not None and version.signature.input_format == "ndarray"
            sample = load_example(self.store.artifacts, version.example_digest, as_array=as_array)
        compiled = compile_model(
            native,
            ref=version.ref,
            flavor=version.flavor,
            signature=version.signature,
            sample=sample,
            atol=float(atol),
            artifacts=self.store.artifacts,
            onnx_flavor=self.flavors["onnx"],
        )
        with self.store.unit_of_work() as uow:
            model = model_row(uow.conn, version.model)
            lock_model(uow, model.id)
            return store_compilation(uow, version, compiled)

    # -- import --------------------------------------------------------------

    def import_mlflow(
        self, path: str | os.PathLike[str], *, name: str, unsafe: bool = False
    ) -> ModelVersion:
        """Register an MLflow model directory (``MLmodel`` file) as a new version.

        The sklearn flavor (skops, or pickle with ``unsafe=True``) and the onnx
        flavor are read without importing mlflow; the model is stored with
        steward's own flavor (a pickled estimator is re-saved with skops), and the
        MLflow run id and model uuid are kept in the version's lineage.

        Raises:
            NotFoundError: no MLmodel file or model file.
            InvalidInputError: malformed YAML or an unsupported flavor (the message lists
                the flavors found).
            PermissionDeniedError: a pickled model without ``unsafe=True``.
        """
        check_model_name(name)
        self._authorize("models:write", name)
        imported: MlflowModel = read_mlflow_model(
            path, unsafe=unsafe, trusted_types=self.settings.trusted_types
        )
        created = imported.utc_time_created
        source = {
            "kind": "mlflow",
            "run_id": imported.run_id,
            "model_uuid": imported.model_uuid,
            "mlflow_version": imported.mlflow_version,
            "utc_time_created": created.isoformat() if created else None,
            "path": os.fspath(path),
            "source_files": imported.source_files,
        }
        signature = None
        if imported.input_example is None:
            signature = mlflow_signature(imported.signature_inputs)
        return self._register(
            imported.model,
            name=name,
            run=None,
            source=source,
            sample_input=imported.input_example,
            signature=signature,
            flavor=imported.flavor,
            description=f"imported from MLflow model {imported.model_uuid or os.fspath(path)}",
            tags={},
            compile=None,
            unsafe=False,
        )
