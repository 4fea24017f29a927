"""Turning a fitted model into a version: flavor, signature, stored bytes, database rows."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import sqlalchemy as sa

from steward.core import (
    ConflictError,
    InvalidInputError,
    PermissionDeniedError,
    canonical_json,
    new_id,
)
from steward.registry._loaded import model_input
from steward.registry._models import DecisionMode, ModelRef, Stage
from steward.registry._packaging import StoredModel, save_model, store_example
from steward.registry._signatures import InputFormat, Signature
from steward.registry._tables import model_versions, registered_models
from steward.registry.flavors import Flavor, detect_flavor
from steward.store import ArtifactStore, UnitOfWork
from steward.tracking import Run

__all__ = [
    "PreparedVersion",
    "ensure_model",
    "infer_signature",
    "insert_version",
    "lock_model",
    "prepare_version",
]


@dataclass(frozen=True, slots=True)
class PreparedVersion:
    """A model saved and described, ready to be recorded as a version."""

    flavor: Flavor
    stored: StoredModel
    signature: Signature | None
    example_digest: str | None


def _pick_flavor(model: object, name: str | None, flavors: Mapping[str, Flavor]) -> Flavor:
    if name is None:
        return detect_flavor(model, flavors)
    if name not in flavors:
        raise InvalidInputError(f"unknown flavor {name!r}; flavors: {', '.join(flavors)}")
    return flavors[name]


def _input_format(model: object, sample: Any) -> tuple[InputFormat, list[str] | None]:
    """The container the model was fitted on, and column names for an array sample."""
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        return "dataframe", [str(n) for n in names]
    if getattr(model, "n_features_in_", None) is not None:
        return "ndarray", None
    return ("ndarray" if isinstance(sample, np.ndarray) else "dataframe"), None


def infer_signature(
    model: object, flavor: Flavor, sample: Any, *, profile: Mapping[str, Any] | None
) -> Signature:
    """Infer a signature from a sample input and what the model returns on it.

    A model fitted on a plain array but described with a DataFrame sample keeps
    the DataFrame's column names and is fed arrays in that order.

    Raises:
        InvalidInputError: the sample cannot be read, or the model fails on it.
    """
    fmt, names = _input_format(model, sample)
    if not isinstance(sample, np.ndarray):
        names = None
    draft = Signature.infer(sample, names=names, input_format=fmt)
    native = model_input(draft, sample)
    try:
        output = flavor.predict(model, native)
    except (ValueError, TypeError, KeyError) as exc:
        raise InvalidInputError(
            f"the model failed to predict on the sample input ({type(exc).__name__}: {exc}); "
            "pass a sample shaped like its training data"
        ) from None
    return Signature.infer(
        sample,
        output,
        names=names,
        input_format=fmt,
        classes=getattr(model, "classes_", None),
        profile=profile,
    )


def prepare_version(
    model: object,
    *,
    artifacts: ArtifactStore,
    flavors: Mapping[str, Flavor],
    flavor: str | None,
    sample_input: Any,
    signature: Signature | Mapping[str, Any] | None,
    unsafe: bool,
    profile: Mapping[str, Any] | None,
    example_rows: int,
) -> PreparedVersion:
    """Pick the flavor, infer or check the signature, store the files and the input example.

    Raises:
        PermissionDeniedError: an unsafe flavor without ``unsafe=True``.
        InvalidInputError: no flavor fits, or the signature or sample is malformed.
    """
    chosen = _pick_flavor(model, flavor, flavors)
    if chosen.unsafe and not unsafe:
        raise PermissionDeniedError(
            f"flavor {chosen.name!r} stores code that runs when the model is loaded; pass "
            "unsafe=True to register it (and allow unsafe flavors where it is loaded)"
        )
    if isinstance(signature, Mapping):
        signature = Signature.from_dict(signature)
    elif signature is None and sample_input is not None:
        signature = infer_signature(model, chosen, sample_input, profile=profile)
    if signature is not None and not isinstance(signature, Signature):
        raise InvalidInputError(
            f"signature must be a Signature or its dict, got {type(signature).__name__}"
        )
    stored = save_model(artifacts, chosen, model)
    example = None
    if sample_input is not None:
        names = signature.names if signature is not None else None
        array_names = names if isinstance(sample_input, np.ndarray) else None
        example = store_example(artifacts, sample_input, names=array_names, rows=example_rows)
    return PreparedVersion(chosen, stored, signature, example)


def ensure_model(uow: UnitOfWork, name: str) -> tuple[Any, bool]:
    """Return the model's row, creating the model (owned by the actor) when missing.

    Returns:
        The row and whether this call created it.
    """
    query = sa.select(registered_models).where(registered_models.c.name == name)
    row = uow.conn.execute(query).first()
    if row is not None:
        return row, False
    now = uow.clock.now()
    values = {
        "id": new_id(),
        "name": name,
        "description": "",
        "owners": canonical_json([uow.actor]),
        "team": None,
        "tags": "{}",
        "risk_tier": None,
        "intended_use": "",
        "decision_mode": DecisionMode.DECISION_SUPPORT.value,
        "latest_version": 0,
        "created_by": uow.actor,
        "created_at": now,
        "updated_at": now,
    }
    try:
        with uow.conn.begin_nested():  # a savepoint: losing a race leaves the unit usable
            uow.conn.execute(registered_models.insert(), values)
    except sa.exc.IntegrityError:
        return uow.conn.execute(query).one(), False
    uow.audit("model.create", "model", name, {"owners": [uow.actor]})
    return uow.conn.execute(query).one(), True


def lock_model(uow: UnitOfWork, model_id: str, *, next_version: bool = False) -> int:
    """Take the model's row for this transaction (serializing changes to one model).

    With ``next_version`` the model's version counter is incremented and the new
    number returned; otherwise the current latest version number is returned.
    """
    values: dict[str, Any] = {"updated_at": uow.clock.now()}
    if next_version:
        values["latest_version"] = registered_models.c.latest_version + 1
    updated = uow.conn.execute(
        registered_models.update().where(registered_models.c.id == model_id).values(**values)
    )
    if updated.rowcount != 1:
        raise ConflictError(f"model {model_id} was removed while it was being changed")
    number: int = uow.conn.execute(
        sa.select(registered_models.c.latest_version).where(registered_models.c.id == model_id)
    ).scalar_one()
    return number


def insert_version(
    uow: UnitOfWork,
    *,
    ref: ModelRef,
    model_id: str,
    run: Run | None,
    source: Mapping[str, Any],
    prepared: PreparedVersion,
    description: str,
    tags: Mapping[str, str],
    unsafe: bool,
) -> str:
    """Insert a new version's row (the run's metrics as its snapshot), audit it, return its id."""
    signature = prepared.signature
    now = uow.clock.now()
    row = {
        "id": new_id(),
        "model_id": model_id,
        "version": ref.version,
        "run_id": run.id if run else None,
        "source": canonical_json(dict(source)),
        "flavor": prepared.flavor.name,
        "artifact_digest": prepared.stored.digest,
        "artifact_size": prepared.stored.size,
        "example_digest": prepared.example_digest,
        "signature": canonical_json(signature.to_dict()) if signature else None,
        "metrics": canonical_json(dict(run.metrics) if run else {}),
        "description": description,
        "tags": canonical_json(dict(tags)),
        "unsafe": unsafe,
        "stage": Stage.REGISTERED.value,
        "stage_reason": None,
        "successor_version": None,
        "created_by": uow.actor,
        "created_at": now,
        "stage_changed_at": now,
    }
    uow.conn.execute(model_versions.insert(), row)
    uow.audit(
        "model.version.register",
        "model_version",
        str(ref),
        {
            "flavor": prepared.flavor.name,
            "artifact_digest": prepared.stored.digest,
            "run_id": row["run_id"],
            "source": dict(source),
            "signature": signature.fingerprint if signature else None,
            "unsafe": unsafe,
        },
    )
    return str(row["id"])
