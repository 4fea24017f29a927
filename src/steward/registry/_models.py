"""What the registry hands back: plain, immutable records, and model references."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from steward.core import InvalidInputError
from steward.registry._signatures import Signature

__all__ = [
    "Compilation",
    "DecisionMode",
    "ModelRef",
    "ModelVersion",
    "RegisteredModel",
    "RiskTier",
    "Stage",
    "Transition",
    "check_alias",
    "check_model_name",
]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
_ALIAS = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,99}")


class Stage(StrEnum):
    """Where a model version is in its life: ``registered → staging → production → archived``."""

    REGISTERED = "registered"
    STAGING = "staging"
    PRODUCTION = "production"
    ARCHIVED = "archived"


class RiskTier(StrEnum):
    """How much harm a model's mistakes can do; governance sets its policies by tier."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class DecisionMode(StrEnum):
    """Whether the model decides on its own or informs a person who decides."""

    AUTOMATION = "automation"
    DECISION_SUPPORT = "decision_support"


def check_model_name(name: object) -> str:
    """Return ``name`` if it is a valid model name.

    A name is 1 to 200 letters, digits, ``.``, ``_`` and ``-``, starting with a
    letter or digit: ``:`` and ``@`` are kept for references (``fraud:3``, ``fraud@champion``).

    Raises:
        InvalidInputError: anything else; the message shows the value.
    """
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InvalidInputError(
            f"model name {name!r} is not valid; use 1 to 200 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


def check_alias(alias: object) -> str:
    """Return ``alias`` if it is a valid alias name (a letter, then letters, digits, ``_-``).

    Raises:
        InvalidInputError: anything else, including names that are all digits
            (they would read as version numbers).
    """
    if not isinstance(alias, str) or not _ALIAS.fullmatch(alias):
        raise InvalidInputError(
            f"alias {alias!r} is not valid; use a letter followed by up to 99 letters, digits, "
            "'_' or '-' (e.g. 'champion')"
        )
    return alias


@dataclass(frozen=True, slots=True)
class ModelRef:
    """A reference to a model version: ``NAME:VERSION``, ``NAME@ALIAS`` or ``NAME`` (latest).

    Example:
        >>> ModelRef.parse("fraud@champion")
        ModelRef(name='fraud', version=None, alias='champion')
        >>> str(ModelRef.parse("fraud:3"))
        'fraud:3'
    """

    name: str
    version: int | None = None
    alias: str | None = None

    @classmethod
    def parse(cls, text: str | ModelRef) -> ModelRef:
        """Parse a reference.

        Raises:
            InvalidInputError: the text is not one of the three forms.
        """
        if isinstance(text, ModelRef):
            return text
        if not isinstance(text, str):
            raise InvalidInputError(
                f"a model reference is text such as 'fraud:3', got {type(text).__name__}"
            )
        if "@" in text:
            name, _, alias = text.partition("@")
            return cls(check_model_name(name), alias=check_alias(alias))
        if ":" in text:
            name, _, number = text.partition(":")
            if not number.isdigit() or int(number) < 1:
                raise InvalidInputError(
                    f"model reference {text!r} has version {number!r}; versions are positive "
                    "integers, as in 'fraud:3' (or use an alias: 'fraud@champion')"
                )
            return cls(check_model_name(name), version=int(number))
        return cls(check_model_name(text))

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}:{self.version}"
        if self.alias is not None:
            return f"{self.name}@{self.alias}"
        return self.name


@dataclass(frozen=True, slots=True)
class RegisteredModel:
    """A named model: who owns it, what it is for, how risky it is, and its aliases."""

    id: str
    name: str
    description: str
    owners: tuple[str, ...]
    team: str | None
    tags: dict[str, str]
    risk_tier: RiskTier | None
    intended_use: str
    decision_mode: DecisionMode
    latest_version: int
    created_by: str
    created_at: datetime
    updated_at: datetime
    aliases: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly view."""
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "owners": list(self.owners),
            "team": self.team,
            "tags": self.tags,
            "risk_tier": self.risk_tier.value if self.risk_tier else None,
            "intended_use": self.intended_use,
            "decision_mode": self.decision_mode.value,
            "latest_version": self.latest_version,
            "aliases": self.aliases,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class Compilation:
    """A compiled form of a version (``onnx``): verified for parity, or failed with the report."""

    target: str
    status: str  # verified | failed
    artifact_digest: str | None
    converter: str
    opset: int | None
    report: dict[str, Any]
    created_by: str
    created_at: datetime

    @property
    def verified(self) -> bool:
        """True when the compiled artifact passed the parity check and may be served."""
        return self.status == "verified" and self.artifact_digest is not None

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly view."""
        return {
            "target": self.target,
            "status": self.status,
            "artifact_digest": self.artifact_digest,
            "converter": self.converter,
            "opset": self.opset,
            "report": self.report,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class ModelVersion:
    """One registered version of a model and everything known about where it came from.

    Attributes:
        artifact_digest: SHA-256 of the version's manifest, which names the digest
            of every file the flavor saved; loading verifies all of them.
        source: how the version arrived: ``{"kind": "run" | "direct" | "mlflow", ...}``
            with external ids (e.g. the MLflow run id) kept for lineage.
        metrics: the source run's latest metrics when the version was registered.
        purged_at: when retention deleted the version's artifact bytes (its record,
            card and lineage stay); ``None`` while the bytes are kept.
        purged_by_rule: the retention rule that deleted them.
    """

    id: str
    model: str
    version: int
    run_id: str | None
    source: dict[str, Any]
    flavor: str
    artifact_digest: str
    artifact_size: int
    example_digest: str | None
    signature: Signature | None
    metrics: dict[str, float]
    description: str
    tags: dict[str, str]
    unsafe: bool
    stage: Stage
    stage_reason: str | None
    successor_version: int | None
    created_by: str
    created_at: datetime
    stage_changed_at: datetime
    aliases: tuple[str, ...] = ()
    compilations: dict[str, Compilation] = field(default_factory=dict)
    purged_at: datetime | None = None
    purged_by_rule: str | None = None

    @property
    def ref(self) -> str:
        """The version's reference, ``NAME:VERSION``."""
        return f"{self.model}:{self.version}"

    @property
    def deployable(self) -> bool:
        """False for archived versions: they stay loadable for audit but are never served."""
        return self.stage is not Stage.ARCHIVED

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly view."""
        return {
            "id": self.id,
            "model": self.model,
            "version": self.version,
            "ref": self.ref,
            "run_id": self.run_id,
            "source": self.source,
            "flavor": self.flavor,
            "artifact_digest": self.artifact_digest,
            "artifact_size": self.artifact_size,
            "example_digest": self.example_digest,
            "signature": self.signature.to_dict() if self.signature else None,
            "metrics": self.metrics,
            "description": self.description,
            "tags": self.tags,
            "unsafe": self.unsafe,
            "stage": self.stage.value,
            "stage_reason": self.stage_reason,
            "successor_version": self.successor_version,
            "aliases": list(self.aliases),
            "compilations": {k: c.as_dict() for k, c in self.compilations.items()},
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "stage_changed_at": self.stage_changed_at.isoformat(),
            "purged_at": self.purged_at.isoformat() if self.purged_at else None,
            "purged_by_rule": self.purged_by_rule,
        }


@dataclass(frozen=True, slots=True)
class Transition:
    """One recorded stage change of a version."""

    ref: str
    from_stage: Stage
    to_stage: Stage
    reason: str
    actor: str
    at: datetime
    details: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly view."""
        return {
            "ref": self.ref,
            "from_stage": self.from_stage.value,
            "to_stage": self.to_stage.value,
            "reason": self.reason,
            "actor": self.actor,
            "at": self.at.isoformat(),
            "details": self.details,
        }
