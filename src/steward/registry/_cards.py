"""Model cards: generated from what steward recorded, plus sections people write.

A card has generated sections (overview, owners, risk tier, training data,
evaluation, signature, lineage), recomputed from the records at every revision,
and editable sections (intended use, out-of-scope use, limitations, ethical
considerations, caveats). Each edit stores a new revision. The completeness
score is the share of required sections that have content; ``missing`` names
the others.

Evaluation metrics are grouped by the dataset role they start with
(``holdout_auc`` → *holdout*: auc, when a dataset was logged with role
``holdout``) and by segment after a slash (``holdout_auc/gender:female``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from steward.core import InvalidInputError
from steward.registry._card_render import SECTION_TITLES, render_html, render_markdown
from steward.registry._lineage import LineageGraph, build_lineage
from steward.registry._models import ModelVersion, RegisteredModel
from steward.tracking import DatasetVersion, Run

__all__ = [
    "CARD_FORMAT",
    "EDITABLE_SECTIONS",
    "REQUIRED_SECTIONS",
    "SECTION_TITLES",
    "CardSources",
    "ModelCard",
    "check_edits",
    "generate_sections",
]

CARD_FORMAT = "steward.model-card/1"

EDITABLE_SECTIONS = (
    "intended_use",
    "out_of_scope_use",
    "limitations",
    "ethical_considerations",
    "caveats",
)
REQUIRED_SECTIONS = (
    "overview",
    "intended_use",
    "out_of_scope_use",
    "owners",
    "risk_tier",
    "training_data",
    "evaluation",
    "signature",
    "limitations",
    "ethical_considerations",
    "lineage",
)
MAX_SECTION = 100_000
_PROFILE_COLUMNS = 40


def check_edits(edits: Mapping[str, str]) -> dict[str, str]:
    """Return the edits if each names an editable section and holds text.

    Raises:
        InvalidInputError: an unknown or generated section, non-text, or text over 100,000
            characters; the message lists the editable sections.
    """
    checked = {}
    for key, text in edits.items():
        if key not in EDITABLE_SECTIONS:
            kind = "generated from the records" if key in SECTION_TITLES else "unknown"
            raise InvalidInputError(
                f"card section {key!r} is {kind}; editable sections: {', '.join(EDITABLE_SECTIONS)}"
            )
        if not isinstance(text, str):
            raise InvalidInputError(f"card section {key!r} takes text, got {type(text).__name__}")
        if len(text) > MAX_SECTION:
            raise InvalidInputError(
                f"card section {key!r} is {len(text)} characters; the limit is {MAX_SECTION}"
            )
        checked[key] = text.strip()
    return checked


def _profile_summary(profile: Mapping[str, Any]) -> list[dict[str, Any]]:
    summary = []
    for column in list(profile.get("columns", []))[:_PROFILE_COLUMNS]:
        entry: dict[str, Any] = {
            "name": column.get("name"),
            "kind": column.get("kind"),
            "null_fraction": column.get("null_fraction"),
        }
        if column.get("kind") == "numeric":
            entry.update({k: column.get(k) for k in ("min", "max", "mean")})
        else:
            top = column.get("top_values") or []
            entry["top_values"] = [t.get("value") for t in top[:5]]
            entry["distinct"] = column.get("distinct_count")
        summary.append(entry)
    return summary


def _evaluation(metrics: Mapping[str, float], roles: Sequence[str]) -> dict[str, Any]:
    groups: dict[str, dict[str, Any]] = {}
    for key, value in sorted(metrics.items()):
        name, _, segment = key.partition("/")
        dataset = "overall"
        for role in sorted(roles, key=len, reverse=True):
            if name.startswith((f"{role}_", f"{role}.")) and len(name) > len(role) + 1:
                dataset, name = role, name[len(role) + 1 :]
                break
        group = groups.setdefault(dataset, {"metrics": {}, "segments": {}})
        if segment:
            group["segments"].setdefault(segment, {})[name] = value
        else:
            group["metrics"][name] = value
    return groups


def _lineage_summary(version: ModelVersion, run: Run | None, graph: LineageGraph) -> dict[str, Any]:
    code = graph.find("code")
    environments = graph.find("environment")
    external = graph.find("external_run")
    return {
        "run": {"id": run.id, "name": run.name, "experiment": run.experiment_name} if run else None,
        "datasets": [n.attributes.get("digest") for n in graph.find("dataset")],
        "code": code[0].attributes if code else None,
        "environment": environments[0].id if environments else None,
        "parent_runs": [n.id for n in graph.find("run") if run is None or n.id != run.id],
        "imported_from": external[0].label if external else None,
        "artifact_digest": version.artifact_digest,
    }


@dataclass(frozen=True, slots=True)
class CardSources:
    """What a card is generated from besides the model and version records.

    Gathered before the unit of work that stores a revision, so the transaction
    holds its locks only for its own statements.
    """

    run: Run | None
    datasets: Sequence[DatasetVersion]
    run_graph: LineageGraph | None
    description: Mapping[str, Any]


def generate_sections(
    model: RegisteredModel, version: ModelVersion, sources: CardSources
) -> dict[str, Any]:
    """Compute the generated sections of a card from the records."""
    run, datasets, description = sources.run, sources.datasets, sources.description
    lineage = build_lineage(version, sources.run_graph)
    return {
        "overview": {
            "model": model.name,
            "version": version.version,
            "description": version.description or model.description,
            "flavor": version.flavor,
            "stage": version.stage.value,
            "decision_mode": model.decision_mode.value,
            "created_by": version.created_by,
            "created_at": version.created_at.isoformat(),
            "estimator": dict(description or {}),
            "compiled": [t for t, c in version.compilations.items() if c.verified],
        },
        "intended_use": model.intended_use,
        "owners": {"owners": list(model.owners), "team": model.team},
        "risk_tier": model.risk_tier.value if model.risk_tier else None,
        "training_data": [
            {
                "role": d.role,
                "name": d.name,
                "digest": d.digest,
                "source_uri": d.source_uri,
                "rows": d.num_rows,
                "columns": d.num_columns,
                "profile": _profile_summary(d.profile),
            }
            for d in datasets
        ],
        "evaluation": _evaluation(version.metrics, [d.role for d in datasets if d.role]),
        "signature": version.signature.to_dict() if version.signature else None,
        "lineage": _lineage_summary(version, run, lineage),
    }


def _has_content(value: Any) -> bool:
    if isinstance(value, Mapping):
        return any(_has_content(v) for v in value.values())
    if isinstance(value, list | tuple):
        return bool(value)
    return value not in (None, "")


@dataclass(frozen=True, slots=True)
class ModelCard:
    """One revision of a version's card."""

    ref: str
    revision: int
    generated: dict[str, Any]
    editable: dict[str, str]
    created_by: str
    created_at: datetime

    def section(self, key: str) -> Any:
        """Return one section's content (editable text, or generated data)."""
        if key in EDITABLE_SECTIONS:  # what people wrote, else what the model record says
            return self.editable.get(key) or self.generated.get(key) or ""
        return self.generated.get(key)

    @property
    def missing(self) -> list[str]:
        """Required sections without content, in card order."""
        return [k for k in REQUIRED_SECTIONS if not _has_content(self.section(k))]

    @property
    def completeness(self) -> float:
        """Share of required sections with content, 0.0 to 1.0."""
        return round(1 - len(self.missing) / len(REQUIRED_SECTIONS), 3)

    def content(self) -> dict[str, Any]:
        """The stored document (generated and editable parts)."""
        return {"format": CARD_FORMAT, "generated": self.generated, "editable": self.editable}

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly view with the score."""
        return {
            "ref": self.ref,
            "revision": self.revision,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "completeness": self.completeness,
            "missing": self.missing,
            "sections": {key: self.section(key) for key in SECTION_TITLES},
        }

    def to_markdown(self) -> str:
        """Render the card as Markdown."""
        return render_markdown(self.as_dict())

    def to_html(self) -> str:
        """Render the card as a standalone HTML page (every value escaped)."""
        return render_html(self.as_dict())
