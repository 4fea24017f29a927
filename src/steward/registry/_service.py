"""The registry service: models, versions, loading; lifecycle and documents come from mixins."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

import sqlalchemy as sa

from steward.core import (
    ConflictError,
    InvalidInputError,
    PermissionDeniedError,
    canonical_json,
)
from steward.registry._loaded import LoadedModel
from steward.registry._models import (
    DecisionMode,
    ModelRef,
    ModelVersion,
    RegisteredModel,
    RiskTier,
    check_model_name,
)
from steward.registry._packaging import load_model
from steward.registry._queries import load_versions, model_row
from steward.registry._registration import ensure_model, lock_model
from steward.registry._service_base import require_artifacts
from steward.registry._service_documents import DocumentsMixin
from steward.registry._service_lifecycle import LifecycleMixin
from steward.registry._tables import model_versions, registered_models
from steward.tracking import Run, RunStatus

__all__ = ["RegistryService"]

Prefer = Literal["native", "onnx"]


def _check_tags(tags: Mapping[str, str] | None) -> dict[str, str]:
    checked = {}
    for key, value in (tags or {}).items():
        if not isinstance(key, str) or not key or len(key) > 250:
            raise InvalidInputError(f"tag keys are 1 to 250 characters of text, got {key!r}")
        if not isinstance(value, str):
            raise InvalidInputError(f"tag {key!r} must be a string, got {type(value).__name__}")
        checked[key] = value
    return checked


def _enum(kind: type[RiskTier] | type[DecisionMode], value: str) -> Any:
    try:
        return kind(value)
    except ValueError:
        options = ", ".join(m.value for m in kind)
        raise InvalidInputError(f"unknown {kind.__name__} {value!r}; options: {options}") from None


def _model_fields(
    *,
    description: str | None = None,
    owners: Iterable[str] | None = None,
    team: str | None = None,
    tags: Mapping[str, str] | None = None,
    risk_tier: RiskTier | str | None = None,
    intended_use: str | None = None,
    decision_mode: DecisionMode | str | None = None,
) -> dict[str, Any]:
    """Return the ``registered_models`` columns for the fields given (None: not given)."""
    values: dict[str, Any] = {}
    for key, text in (("description", description), ("intended_use", intended_use)):
        if text is not None:
            if not isinstance(text, str):
                raise InvalidInputError(f"{key} must be text, got {type(text).__name__}")
            values[key] = text
    if owners is not None:
        listed = [owners] if isinstance(owners, str) else list(owners)
        if not all(isinstance(o, str) and o.strip() for o in listed):
            raise InvalidInputError(f"owners must be non-empty names, got {listed!r}")
        values["owners"] = canonical_json(listed)
    if team is not None:
        values["team"] = team or None
    if tags is not None:
        values["tags"] = canonical_json(_check_tags(tags))
    if risk_tier is not None:
        values["risk_tier"] = _enum(RiskTier, risk_tier).value
    if decision_mode is not None:
        values["decision_mode"] = _enum(DecisionMode, decision_mode).value
    return values


class RegistryService(LifecycleMixin, DocumentsMixin):
    """Registered models and their versions, in one steward home. Every change is audited.

    Reads need the scope ``models:read``, registration and edits ``models:write``,
    stage transitions ``models:promote``, each on the resource ``model:NAME``.

    Example:
        >>> registry = RegistryService(Store.open())  # doctest: +SKIP
        >>> version = registry.register(estimator, name="fraud", run_id=run.id,
        ...                             sample_input=x_holdout[:100])  # doctest: +SKIP
        >>> registry.load("fraud:1").predict(x_new)  # doctest: +SKIP
    """

    # -- models ------------------------------------------------------------

    def create_model(self, name: str, **fields: Any) -> RegisteredModel:
        """Create a model with its metadata (see :meth:`update_model` for the fields).

        Raises:
            ConflictError: a model with that name exists.
            InvalidInputError: the name or a field is malformed.
        """
        check_model_name(name)
        self._authorize("models:write", name)
        values = _model_fields(**fields)
        with self.store.unit_of_work() as uow:
            if uow.conn.execute(
                sa.select(registered_models.c.id).where(registered_models.c.name == name)
            ).first():
                raise ConflictError(f"model {name!r} already exists; change it with update_model")
            row, _ = ensure_model(uow, name)
            if values:
                uow.conn.execute(
                    registered_models.update()
                    .where(registered_models.c.id == row.id)
                    .values(**values)
                )
                uow.audit("model.update", "model", name, _audit_fields(values))
            return self._model(uow.conn, model_row(uow.conn, name))

    def update_model(
        self,
        name: str,
        *,
        description: str | None = None,
        owners: Iterable[str] | None = None,
        team: str | None = None,
        tags: Mapping[str, str] | None = None,
        risk_tier: RiskTier | str | None = None,
        intended_use: str | None = None,
        decision_mode: DecisionMode | str | None = None,
    ) -> RegisteredModel:
        """Change a model's metadata; fields left as None keep their value.

        Args:
            name: the model.
            description: what the model does.
            owners: the people accountable for it.
            team: the owning team.
            tags: replaces the model's tags.
            risk_tier: ``low``, ``medium``, ``high`` or ``critical``.
            intended_use: what it is for (also the card's default intended use).
            decision_mode: ``automation`` (it decides) or ``decision_support`` (a person does).

        Raises:
            NotFoundError: no such model.
            InvalidInputError: a field is malformed; the message lists valid options.
        """
        values = _model_fields(
            description=description,
            owners=owners,
            team=team,
            tags=tags,
            risk_tier=risk_tier,
            intended_use=intended_use,
            decision_mode=decision_mode,
        )
        check_model_name(name)
        self._authorize("models:write", name)
        with self.store.unit_of_work() as uow:
            row = model_row(uow.conn, name)
            if values:
                lock_model(uow, row.id)
                uow.conn.execute(
                    registered_models.update()
                    .where(registered_models.c.id == row.id)
                    .values(**values)
                )
                uow.audit("model.update", "model", name, _audit_fields(values))
            return self._model(uow.conn, model_row(uow.conn, name))

    def get_model(self, name: str) -> RegisteredModel:
        """Return a model with its aliases.

        Raises:
            NotFoundError: no such model; the message lists models, closest first.
        """
        check_model_name(name)
        self._authorize("models:read", name)
        with self.store.database.read() as conn:
            return self._model(conn, model_row(conn, name))

    def list_models(self) -> list[RegisteredModel]:
        """Return every model, by name."""
        self.store.authorize("models:read", resource="model:*")
        with self.store.database.read() as conn:
            rows = conn.execute(sa.select(registered_models).order_by(registered_models.c.name))
            return [self._model(conn, r) for r in rows.all()]

    # -- versions ----------------------------------------------------------

    def register(
        self,
        model: object,
        *,
        name: str,
        run_id: str | None = None,
        sample_input: Any = None,
        signature: Any = None,
        flavor: str | None = None,
        description: str | None = None,
        tags: Mapping[str, str] | None = None,
        compile: Literal["onnx"] | None = None,
        unsafe: bool = False,
        force: bool = False,
    ) -> ModelVersion:
        """Register a fitted model as the model's next version.

        The model is saved through its flavor into the artifact store; the
        signature is inferred from ``sample_input`` and the model's output on it
        (nullability, ranges and categories completed from the run's ``train``
        dataset profile); the run's latest metrics are kept with the version;
        a first card revision is written. The model is created if it is new.

        Args:
            model: the fitted model.
            name: the model's name (``fraud``).
            run_id: the tracked run that trained it (recommended: lineage, metrics).
            sample_input: a few rows of input, to infer the signature and keep as
                the input example (the first ``STEWARD_EXAMPLE_ROWS`` rows).
            signature: an explicit :class:`Signature` (or its dict) instead of inferring.
            flavor: ``sklearn``, ``onnx``, ``xgboost``, ``lightgbm`` or ``python``
                (default: detected).
            description: what this version changes.
            tags: free-form labels.
            compile: ``"onnx"`` to compile and verify parity on ``sample_input`` now.
            unsafe: required for the ``python`` flavor (pickled code).
            force: register even though the run failed.

        Raises:
            ConflictError: the run failed or was killed, and ``force`` is not set.
            PermissionDeniedError: an unsafe flavor without ``unsafe=True``, or a missing scope.
            InvalidInputError: a malformed argument, or no flavor recognises the model.
            UnsupportedModelError: ``compile="onnx"`` for an estimator without a converter.
            NotFoundError: the run does not exist.
        """
        check_model_name(name)
        self._authorize("models:write", name)
        if compile not in (None, "onnx"):
            raise InvalidInputError(f"compile takes None or 'onnx', got {compile!r}")
        if compile == "onnx" and sample_input is None:
            raise InvalidInputError(
                "compile='onnx' verifies parity on held-out rows: pass sample_input"
            )
        run = self.tracking.get_run(run_id) if run_id is not None else None
        source: dict[str, Any] = {"kind": "direct"}
        if run is not None:
            source = _run_source(run, force=force)
        return self._register(
            model,
            name=name,
            run=run,
            source=source,
            sample_input=sample_input,
            signature=signature,
            flavor=flavor,
            description=description,
            tags=_check_tags(tags),
            compile=compile,
            unsafe=unsafe,
        )

    def list_versions(self, name: str, *, include_archived: bool = True) -> list[ModelVersion]:
        """Return a model's versions, newest first.

        Raises:
            NotFoundError: no such model.
        """
        check_model_name(name)
        self._authorize("models:read", name)
        with self.store.database.read() as conn:
            model = model_row(conn, name)
            query = (
                sa.select(model_versions)
                .where(model_versions.c.model_id == model.id)
                .order_by(model_versions.c.version.desc())
            )
            if not include_archived:
                query = query.where(model_versions.c.stage != "archived")
            rows = conn.execute(query).all()
            return load_versions(conn, rows, {model.id: model.name})

    def load(
        self, ref: str | ModelRef, *, prefer: Prefer = "native", check_ranges: bool = False
    ) -> LoadedModel:
        """Load a version, verifying every artifact byte against its digest first.

        Args:
            ref: ``fraud:3``, ``fraud@champion`` or ``fraud`` (latest version).
            prefer: ``onnx`` loads the verified ONNX compilation when there is one
                (else the native model); ``native`` loads what was registered.
            check_ranges: also refuse inputs outside the training ranges and categories.

        Raises:
            NotFoundError: the reference points nowhere, or retention deleted the
                version's artifacts (the message names the rule and date).
            IntegrityError: stored bytes do not match their digest (nothing is deserialized).
            PermissionDeniedError: untrusted types in a skops file, an unsafe flavor
                while unsafe flavors are not allowed, or a missing scope.
        """
        if prefer not in ("native", "onnx"):
            raise InvalidInputError(f"prefer takes 'native' or 'onnx', got {prefer!r}")
        parsed = ModelRef.parse(ref)
        self._authorize("models:read", parsed.name)
        with self.store.database.read() as conn:
            version = self._resolve(conn, parsed)[1]
        require_artifacts(version)
        compiled = version.compilations.get("onnx")
        if prefer == "onnx" and compiled is not None and compiled.verified:
            flavor, digest, artifact = self.flavors["onnx"], compiled.artifact_digest, "onnx"
        else:
            flavor, digest, artifact = self._flavor_of(version), version.artifact_digest, "native"
        if flavor.unsafe and not self.settings.allow_unsafe_flavors:
            raise PermissionDeniedError(
                f"{version.ref} uses the unsafe {flavor.name!r} flavor: loading it runs code from "
                "the artifact; set STEWARD_ALLOW_UNSAFE_FLAVORS=1 only if you trust its source"
            )
        obj, _ = load_model(self.store.artifacts, str(digest), flavor, what=version.ref)
        return LoadedModel(
            obj,
            flavor=flavor,
            version=version,
            artifact="onnx" if artifact == "onnx" else "native",
            check_ranges=check_ranges,
        )


def _run_source(run: Run, *, force: bool) -> dict[str, Any]:
    if run.status in (RunStatus.FAILED, RunStatus.KILLED) and not force:
        raise ConflictError(
            f"run {run.id} ({run.name}) {run.status.value}; register a model from a finished "
            "run, or pass force=True to register it anyway"
        )
    source: dict[str, Any] = {
        "kind": "run",
        "experiment": run.experiment_name,
        "run_name": run.name,
        "run_status": run.status.value,
    }
    if run.status in (RunStatus.FAILED, RunStatus.KILLED):
        source["forced"] = True
    return source


def _audit_fields(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if k != "updated_at"}
