"""Compiling a version to ONNX and recording the outcome, verified or not."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from steward.core import InvalidInputError, canonical_json
from steward.registry._loaded import model_input
from steward.registry._models import ModelVersion
from steward.registry._onnx import OnnxCompilation, ParityReport, compile_to_onnx
from steward.registry._packaging import StoredModel, save_model
from steward.registry._signatures import Signature
from steward.registry._tables import model_compilations
from steward.registry.flavors import Flavor, json_safe
from steward.store import ArtifactStore, UnitOfWork

__all__ = [
    "DEFAULT_ATOL",
    "CompileReport",
    "CompiledArtifact",
    "compile_model",
    "store_compilation",
]

TARGET = "onnx"
DEFAULT_ATOL = 1e-5


@dataclass(frozen=True, slots=True)
class CompiledArtifact:
    """The outcome of a conversion, with the stored ONNX model when parity held."""

    compilation: OnnxCompilation
    stored: StoredModel | None


@dataclass(frozen=True, slots=True)
class CompileReport:
    """What compiling a version did: parity on the sample, and the artifact when verified."""

    ref: str
    target: str
    passed: bool
    parity: ParityReport
    converter: str
    opset: int | None
    artifact_digest: str | None

    def summary(self) -> str:
        """One line for people."""
        if self.passed:
            return (
                f"{self.ref} compiled to ONNX ({self.converter}, opset {self.opset}): "
                f"{self.parity.summary()}"
            )
        return f"{self.ref} NOT compiled: parity failed: {self.parity.summary()}"

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly view."""
        return {
            "ref": self.ref,
            "target": self.target,
            "passed": self.passed,
            "converter": self.converter,
            "opset": self.opset,
            "artifact_digest": self.artifact_digest,
            "parity": self.parity.to_dict(),
        }


def compile_model(
    model: object,
    *,
    ref: str,
    flavor: str,
    signature: Signature | None,
    sample: Any,
    atol: float,
    artifacts: ArtifactStore,
    onnx_flavor: Flavor,
) -> CompiledArtifact:
    """Convert a scikit-learn model to ONNX, check parity on ``sample``, store it if it holds.

    Raises:
        InvalidInputError: the version is not of the sklearn flavor, or the sample is
            malformed.
        UnsupportedModelError: no converter exists for the estimator (named).
    """
    if flavor != "sklearn":
        raise InvalidInputError(
            f"ONNX compilation converts scikit-learn models; {ref} is of flavor {flavor!r}"
        )
    native = model_input(signature, sample, ref=ref) if signature is not None else sample
    compilation = compile_to_onnx(model, native, atol=atol)
    stored = None
    if compilation.parity.passed and compilation.onnx_bytes is not None:
        stored = save_model(artifacts, onnx_flavor, compilation.onnx_bytes)
    return CompiledArtifact(compilation, stored)


def store_compilation(
    uow: UnitOfWork, version: ModelVersion, compiled: CompiledArtifact
) -> CompileReport:
    """Record the outcome for the version (replacing an earlier one) and audit it."""
    compilation = compiled.compilation
    digest = compiled.stored.digest if compiled.stored is not None else None
    report = CompileReport(
        ref=version.ref,
        target=TARGET,
        passed=digest is not None,
        parity=compilation.parity,
        converter=compilation.converter,
        opset=compilation.opset,
        artifact_digest=digest,
    )
    uow.conn.execute(
        model_compilations.delete().where(
            model_compilations.c.version_id == version.id, model_compilations.c.target == TARGET
        )
    )
    uow.conn.execute(
        model_compilations.insert(),
        {
            "version_id": version.id,
            "target": TARGET,
            "status": "verified" if report.passed else "failed",
            "artifact_digest": digest,
            "report": canonical_json(json_safe(compilation.parity.to_dict())),
            "converter": compilation.converter[:100],
            "opset": compilation.opset,
            "created_by": uow.actor,
            "created_at": uow.clock.now(),
        },
    )
    uow.audit(
        "model.version.compile",
        "model_version",
        version.ref,
        {
            "target": TARGET,
            "passed": report.passed,
            "artifact_digest": digest,
            "converter": compilation.converter,
            "rows_checked": compilation.parity.rows_checked,
            "max_abs_diff": json_safe(compilation.parity.max_abs_diff),
        },
    )
    return report
