"""Drift methods: their names, default thresholds, which columns they fit, and scoring one column.

Verdicts: for the tests ("ks", "chi2") a column drifts when the p-value is
*below* the threshold; for the distances ("psi", "kl", "js", "wasserstein",
"wasserstein_norm") when the statistic is *at or above* it.

"auto" picks, per column, what Evidently picks, so verdicts agree with it:
with at most ``small_sample`` reference values, KS for numbers and chi-square
for categories; above that, the normalized Wasserstein distance for numbers
and the Jensen-Shannon distance for categories.  Numeric columns with at most
5 distinct values (reference and current together) count as categories.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from steward.core import InvalidInputError
from steward.quality._categorical import Aligned, align, chi_square
from steward.quality._input import category_counts, numeric_values
from steward.quality._numeric import (
    SortedSample,
    bin_counts,
    jensen_shannon,
    kl_divergence,
    ks_test,
    psi,
    wasserstein,
)
from steward.quality._profile import CategoricalProfile, ColumnProfile, NumericProfile
from steward.quality._render import fmt
from steward.quality._results import ColumnDrift, ColumnStatus, Histogram

__all__ = [
    "DEFAULT_THRESHOLDS",
    "METHODS",
    "MethodSpec",
    "ScoreSettings",
    "check_applicable",
    "check_method",
    "score_column",
]

DriftMethod = Literal["auto", "ks", "chi2", "psi", "kl", "js", "wasserstein", "wasserstein_norm"]
METHODS: tuple[str, ...] = (
    "auto",
    "ks",
    "chi2",
    "psi",
    "kl",
    "js",
    "wasserstein",
    "wasserstein_norm",
)
DEFAULT_THRESHOLDS: Mapping[str, float] = {
    "ks": 0.05,
    "chi2": 0.05,
    "psi": 0.1,
    "kl": 0.1,
    "js": 0.1,
    "wasserstein_norm": 0.1,
}
_P_VALUE = frozenset({"ks", "chi2"})
_NUMERIC_ONLY = frozenset({"ks", "wasserstein", "wasserstein_norm"})
_DISCRETE_LIMIT = 5
_STD_FLOOR = 0.001  # as Evidently: a (near-)constant reference is scaled by 0.001
_UNSEEN_EXAMPLES = 10
_CHART_CATEGORIES = 8


@dataclass(frozen=True)
class MethodSpec:
    """A method name and its threshold (None: the method's default)."""

    method: str
    threshold: float | None = None


@dataclass(frozen=True)
class ScoreSettings:
    """Settings that shape every column's score."""

    epsilon: float = 1e-4
    small_sample: int = 1_000
    missing_rate_threshold: float = 0.05


def check_method(method: Any, threshold: Any, where: str) -> MethodSpec:
    """Validate a method name and threshold.

    Raises:
        InvalidInputError: unknown method, a threshold out of range, or a raw
            Wasserstein distance without a threshold (it has no scale-free default).
    """
    if method not in METHODS:
        raise InvalidInputError(
            f"{where}: unknown drift method {method!r}; choose one of {METHODS}"
        )
    if threshold is None:
        if method == "wasserstein":
            raise InvalidInputError(
                f"{where}: 'wasserstein' is in data units and needs an explicit threshold; "
                "use 'wasserstein_norm' for a scale-free default"
            )
        return MethodSpec(method, None)
    if method == "auto":
        raise InvalidInputError(
            f"{where}: a threshold needs an explicit method; 'auto' mixes p-values and distances"
        )
    if isinstance(threshold, bool) or not isinstance(threshold, int | float):
        raise InvalidInputError(f"{where}: threshold must be a number; got {threshold!r}")
    value = float(threshold)
    if method in _P_VALUE and not 0.0 < value < 1.0:
        raise InvalidInputError(f"{where}: {method} threshold is a p-value in (0, 1); got {value}")
    if not 0.0 < value < float("inf"):
        raise InvalidInputError(f"{where}: {method} threshold must be positive; got {value}")
    return MethodSpec(method, value)


def check_applicable(spec: MethodSpec, profile: ColumnProfile) -> str | None:
    """Return why ``spec`` cannot score ``profile``'s column, or None if it can."""
    if isinstance(profile, CategoricalProfile) and spec.method in _NUMERIC_ONLY:
        return f"{spec.method} needs numbers"
    if (
        isinstance(profile, NumericProfile)
        and spec.method == "chi2"
        and profile.count
        and profile.categories is None
    ):
        return f"chi2 needs categories and the column has {profile.n_distinct} distinct values"
    return None


def score_column(
    profile: ColumnProfile, array: pa.ChunkedArray, spec: MethodSpec, settings: ScoreSettings
) -> ColumnDrift:
    """Compare one current column with its reference profile."""
    if isinstance(profile, NumericProfile):
        return _score_numeric(profile, array, spec, settings)
    return _score_categorical(profile, array, spec, settings)


def _threshold(spec: MethodSpec, method: str) -> float:
    return spec.threshold if spec.threshold is not None else DEFAULT_THRESHOLDS[method]


def _base(
    profile: ColumnProfile, rows: int, missing: int, settings: ScoreSettings
) -> dict[str, Any]:
    ref_rate = profile.missing / profile.rows if profile.rows else 0.0
    cur_rate = missing / rows if rows else 0.0
    return {
        "column": profile.name,
        "kind": profile.kind,
        "reference_count": profile.count,
        "current_count": rows - missing,
        "reference_missing_rate": ref_rate,
        "current_missing_rate": cur_rate,
        "missing_shift": abs(cur_rate - ref_rate) >= settings.missing_rate_threshold,
    }


def _not_compared(
    base: dict[str, Any], spec: MethodSpec, status: ColumnStatus, drifted: bool
) -> ColumnDrift:
    threshold = spec.threshold if spec.threshold is not None else 0.0
    return ColumnDrift(
        method="none",
        statistic=None,
        p_value=None,
        threshold=threshold,
        drifted=drifted,
        status=status,
        **base,
    )


def _empty_status(reference: int, current: int) -> ColumnStatus | None:
    if reference == 0:
        return "empty_reference"
    if current == 0:
        return "empty_current"
    return None


def _score_numeric(
    profile: NumericProfile, array: pa.ChunkedArray, spec: MethodSpec, settings: ScoreSettings
) -> ColumnDrift:
    try:
        values, missing = numeric_values(array)
    except InvalidInputError:
        base = _base(profile, len(array), array.null_count, settings)
        return _not_compared(base, spec, "type_mismatch", drifted=True)
    base = _base(profile, len(array), missing, settings)
    status = _empty_status(profile.count, values.size)
    if status is not None or profile.sample is None:
        return _not_compared(base, spec, status or "empty_reference", drifted=False)
    current = np.sort(values)
    method = spec.method
    if method == "auto" or (method == "chi2" and profile.categories is not None):
        discrete = _discrete_counts(profile, current, force=method == "chi2")
        if discrete is not None:
            method = method if method != "auto" else _categorical_auto(profile, settings)
            return _finish_categorical(base, discrete, method, _threshold(spec, method), settings)
        method = "ks" if profile.count <= settings.small_sample else "wasserstein_norm"
    if method == "chi2":
        raise InvalidInputError(f"column {profile.name!r}: {check_applicable(spec, profile)}")
    threshold = _threshold(spec, method)
    cur_bins = bin_counts(current, profile.edges, float(profile.maximum or 0.0))
    statistic, p_value = _numeric_statistic(
        method, profile, profile.sample, current, cur_bins, settings
    )
    drifted = p_value < threshold if p_value is not None else statistic >= threshold
    return ColumnDrift(
        method=method,
        statistic=statistic,
        p_value=p_value,
        threshold=threshold,
        drifted=bool(drifted),
        unseen_share=float(cur_bins[0] + cur_bins[-1]) / current.size,
        approximate=method in _NUMERIC_ONLY and not profile.exact,
        histogram=_numeric_histogram(profile, cur_bins),
        **base,
    )


def _numeric_statistic(
    method: str,
    profile: NumericProfile,
    sample: SortedSample,
    current: npt.NDArray[np.float64],
    cur_bins: npt.NDArray[np.int64],
    settings: ScoreSettings,
) -> tuple[float, float | None]:
    if method == "ks":
        return ks_test(sample, current)
    if method in ("wasserstein", "wasserstein_norm"):
        distance = wasserstein(sample, current)
        if method == "wasserstein_norm":
            distance /= max(float(profile.std or 0.0), _STD_FLOOR)
        return distance, None
    if method == "psi":
        return psi(profile.bin_counts, cur_bins, settings.epsilon), None
    if method == "kl":
        return kl_divergence(profile.bin_counts, cur_bins, settings.epsilon), None
    return jensen_shannon(profile.bin_counts, cur_bins), None


def _discrete_counts(
    profile: NumericProfile, current: npt.NDArray[np.float64], *, force: bool
) -> Aligned | None:
    """Value counts aligned with the reference's, if the pooled column is discrete enough."""
    reference_counts = profile.category_counts
    if profile.categories is None or reference_counts is None:
        return None
    if not force and profile.n_distinct > _DISCRETE_LIMIT:
        return None
    starts = np.concatenate(([0], np.flatnonzero(np.diff(current)) + 1))
    if not force and starts.size > _DISCRETE_LIMIT:
        return None
    keys = current[starts].tolist()
    if not force and len(set(keys) | set(profile.categories)) > _DISCRETE_LIMIT:
        return None
    counts = np.diff(starts, append=current.size).astype(np.int64)
    return align(list(profile.categories), reference_counts, 0, keys, counts)


def _categorical_auto(profile: ColumnProfile, settings: ScoreSettings) -> str:
    return "chi2" if profile.count <= settings.small_sample else "js"


def _numeric_histogram(profile: NumericProfile, cur_bins: npt.NDArray[np.int64]) -> Histogram:
    edges = [fmt(float(edge), 3) for edge in profile.edges]
    top = fmt(profile.maximum, 3)
    labels = [f"< {edges[0]}"]
    labels += [f"[{low}, {high})" for low, high in pairwise(edges)]
    labels += [f"[{edges[-1]}, {top}]", f"> {top}"]
    return Histogram(
        tuple(labels),
        tuple((profile.bin_counts / max(profile.count, 1)).tolist()),
        tuple((cur_bins / max(int(cur_bins.sum()), 1)).tolist()),
    )


def _score_categorical(
    profile: CategoricalProfile, array: pa.ChunkedArray, spec: MethodSpec, settings: ScoreSettings
) -> ColumnDrift:
    try:
        keys, counts, missing = category_counts(array)
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid, pa.ArrowTypeError):
        base = _base(profile, len(array), array.null_count, settings)
        return _not_compared(base, spec, "type_mismatch", drifted=True)
    base = _base(profile, len(array), missing, settings)
    status = _empty_status(profile.count, len(array) - missing)
    if status is not None:
        return _not_compared(base, spec, status, drifted=False)
    aligned = align(list(profile.categories), profile.counts, profile.other, keys, counts)
    method = spec.method if spec.method != "auto" else _categorical_auto(profile, settings)
    return _finish_categorical(base, aligned, method, _threshold(spec, method), settings)


def _finish_categorical(
    base: dict[str, Any], aligned: Aligned, method: str, threshold: float, settings: ScoreSettings
) -> ColumnDrift:
    p_value: float | None = None
    if method == "chi2":
        statistic, p_value = chi_square(aligned)
    elif method == "psi":
        statistic = psi(aligned.reference, aligned.current, settings.epsilon)
    elif method == "kl":
        statistic = kl_divergence(aligned.reference, aligned.current, settings.epsilon)
    else:
        statistic = jensen_shannon(aligned.reference, aligned.current)
    drifted = p_value < threshold if p_value is not None else statistic >= threshold
    current_total = int(aligned.current.sum())
    return ColumnDrift(
        method=method,
        statistic=statistic,
        p_value=p_value,
        threshold=threshold,
        drifted=bool(drifted),
        unseen_share=aligned.unseen_count / current_total,
        unseen_examples=tuple(key for key, _ in aligned.unseen[:_UNSEEN_EXAMPLES]),
        histogram=_categorical_histogram(aligned),
        **base,
    )


def _categorical_histogram(aligned: Aligned) -> Histogram:
    reference = aligned.reference / max(int(aligned.reference.sum()), 1)
    current = aligned.current / max(int(aligned.current.sum()), 1)
    order = np.argsort(-np.maximum(reference, current), kind="stable")
    shown, rest = order[:_CHART_CATEGORIES], order[_CHART_CATEGORIES:]
    labels = [str(aligned.keys[i]) for i in shown]
    ref_shares = reference[shown].tolist()
    cur_shares = current[shown].tolist()
    if rest.size:
        labels.append(f"{rest.size} more")
        ref_shares.append(float(reference[rest].sum()))
        cur_shares.append(float(current[rest].sum()))
    return Histogram(tuple(labels), tuple(ref_shares), tuple(cur_shares))
