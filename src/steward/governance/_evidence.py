"""Evidence for gate checks, gathered from the registry, tracking and steward.quality."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from steward.core import NotFoundError
from steward.governance._checks import DriftEvidence, FairnessEvidence
from steward.quality import DriftDetector, detect_proxies, evaluate_fairness
from steward.registry import ModelVersion, RegisteredModel, RegistryService, check_compatibility
from steward.tracking import DatasetVersion

__all__ = ["RegistryEvidence"]

LABEL_KEYS = ("label_column", "target", "label")


class RegistryEvidence:
    """What the checks read about one candidate version, computed on first use.

    Metrics come from the version's snapshot of its run's metrics: for a dataset
    role ``holdout`` and metric ``auc`` the keys ``holdout.auc``, ``holdout_auc``
    and ``holdout/auc`` are tried in that order. Data-based checks (fairness,
    proxies, drift) read the datasets the run logged under the named roles, or
    the files given with the request (``data={"recent": path}``).
    """

    def __init__(
        self,
        registry: RegistryService,
        model: RegisteredModel,
        version: ModelVersion,
        *,
        target_stage: str,
        data: Mapping[str, str | Path] | None = None,
    ) -> None:
        self.registry = registry
        self.model = model
        self.version = version
        self.target_stage = target_stage
        self.data = {role: str(path) for role, path in (data or {}).items()}
        self._frames: dict[str, Any] = {}

    # -- metrics -------------------------------------------------------------

    @staticmethod
    def _lookup(metrics: Mapping[str, float], name: str, dataset: str | None) -> float | None:
        keys = (
            [name]
            if dataset is None
            else [f"{dataset}.{name}", f"{dataset}_{name}", f"{dataset}/{name}"]
        )
        for key in keys:
            if key in metrics:
                return float(metrics[key])
        return None

    def metric(self, name: str, dataset: str | None) -> float | None:
        return self._lookup(self.version.metrics, name, dataset)

    def _alias_version(self, alias: str) -> ModelVersion | None:
        number = self.model.aliases.get(alias)
        if number is None or number == self.version.version:
            return None
        return self.registry.get_version(f"{self.model.name}:{number}")

    def has_champion(self, alias: str) -> bool:
        return self._alias_version(alias) is not None

    def champion_metric(self, name: str, dataset: str | None, alias: str) -> float | None:
        other = self._alias_version(alias)
        return None if other is None else self._lookup(other.metrics, name, dataset)

    # -- card and signature ---------------------------------------------------

    def card_completeness(self) -> tuple[float, Sequence[str]] | None:
        try:
            card = self.registry.card(self.version.ref)
        except NotFoundError:
            return None
        return card.completeness, card.missing

    @cached_property
    def _incumbent(self) -> ModelVersion | None:
        found = [
            v
            for v in self.registry.list_versions(self.model.name, include_archived=False)
            if v.stage.value == self.target_stage and v.version != self.version.version
        ]
        return max(found, key=lambda v: v.version) if found else None

    def signature_change(self) -> tuple[str, Sequence[str]] | None:
        incumbent = self._incumbent
        if incumbent is None:
            return None
        change = check_compatibility(incumbent.signature, self.version.signature)
        return change.level, change.reasons

    def input_columns(self) -> Sequence[str] | None:
        signature = self.version.signature
        return None if signature is None else signature.names

    # -- data ----------------------------------------------------------------

    @cached_property
    def _datasets(self) -> dict[str, DatasetVersion]:
        if self.version.run_id is None:
            return {}
        datasets = self.registry.tracking.run_datasets(self.version.run_id)
        return {d.role: d for d in datasets if d.role is not None}

    def _source(self, role: str) -> str | None:
        if role in self.data:
            return self.data[role]
        found = self._datasets.get(role)
        # A dataset logged from an in-memory frame (``memory://...``) has nothing to read back.
        if found is None or not found.source_uri or found.source_uri.startswith("memory://"):
            return None
        uri = found.source_uri.removeprefix("file://")
        return uri if "://" in uri or Path(uri).exists() else None

    def _frame(self, role: str) -> Any:
        """The role's data as a DataFrame, read once per evaluation."""
        if role in self._frames:
            return self._frames[role]
        source = self._source(role)
        frame = None
        if source is not None:
            table = pa_csv.read_csv(source) if source.endswith(".csv") else pq.read_table(source)
            frame = table.to_pandas()
        self._frames[role] = frame
        return frame

    def _label_column(self) -> str | None:
        if self.version.run_id is None:
            return None
        run = self.registry.tracking.get_run(self.version.run_id)
        for key in LABEL_KEYS:
            value = run.params.get(key) or run.tags.get(key)
            if isinstance(value, str) and value:
                return value
        return None

    def fairness(self, attribute: str, dataset: str) -> FairnessEvidence | None:
        frame = self._frame(dataset)
        label = self._label_column()
        columns = self.input_columns()
        if frame is None or label is None or columns is None:
            return None
        if attribute not in frame.columns or label not in frame.columns:
            return None
        model = self.registry.load(self.version.ref, prefer="onnx")
        predicted = model.predict(frame[list(columns)])
        report = evaluate_fairness(frame[label], predicted, sensitive_features=frame[attribute])
        metrics = {
            "disparate_impact_ratio": report.disparate_impact_ratio,
            "demographic_parity_difference": report.demographic_parity_difference,
            "equal_opportunity_difference": report.equal_opportunity_difference,
            "equalized_odds_difference": report.equalized_odds_difference,
        }
        return FairnessEvidence(
            metrics, rows=len(frame), detail={"label": label, "dataset": dataset}
        )

    def proxy_scores(self, attributes: Sequence[str], dataset: str) -> Mapping[str, float] | None:
        frame = self._frame(dataset)
        columns = self.input_columns()
        if frame is None or columns is None:
            return None
        present = [a for a in attributes if a in frame.columns]
        if not present:
            return None
        candidates = [c for c in columns if c in frame.columns and c not in present]
        scores: dict[str, float] = {}
        for attribute in present:
            report = detect_proxies(frame[[attribute, *candidates]], protected=attribute)
            for association in report.associations:
                strength = max(association.association, association.uncertainty_coefficient)
                scores[association.column] = max(scores.get(association.column, 0.0), strength)
        return scores

    def drift(self, reference: str, current: str) -> DriftEvidence | None:
        before, after = self._source(reference), self._source(current)
        if before is None or after is None:
            return None
        columns = self.input_columns()
        report = DriftDetector(columns=list(columns) if columns else None).fit(before).score(after)
        total = len(report.columns)
        return DriftEvidence(
            drifted=list(report.drifted_columns),
            columns=total,
            detail={"reference": reference, "current": current},
        )
