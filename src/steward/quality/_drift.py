"""The drift detector: fit a reference, score current data, get a :class:`DriftReport`."""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from typing import Any, Self

import pyarrow as pa

from steward.core import InvalidInputError
from steward.quality._engine import DEFAULT_MEMORY_BUDGET, map_columns
from steward.quality._errors import NotFittedError
from steward.quality._input import ColumnKind, as_table
from steward.quality._methods import (
    MethodSpec,
    ScoreSettings,
    check_applicable,
    check_method,
    score_column,
)
from steward.quality._profile import ColumnProfile, ProfileSettings
from steward.quality._reference import ReferenceProfile
from steward.quality._results import ColumnDrift, DriftReport

__all__ = ["DriftDetector"]

MethodOverride = str | tuple[str, float]


class DriftDetector:
    """Detect distribution drift between reference and current data, column by column.

    Follows the scikit-learn contract: ``__init__`` only stores its arguments,
    ``fit(reference)`` learns a :class:`ReferenceProfile` (``profile_``), and
    ``score(current)`` returns a :class:`DriftReport`.  ``fit`` also accepts a
    stored :class:`ReferenceProfile`, so monitoring can score new data without
    the raw reference (the profile's bins and sketch settings then apply).

    Tables (pandas, pyarrow, dict of columns, Parquet/CSV path) are compared
    column by column; a 1-D input (array, list, Series, e.g. model outputs) is
    one column named ``"value"``.

    Example:
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> detector = DriftDetector(method="ks").fit(rng.normal(size=500))
        >>> detector.score(rng.normal(1.0, size=500))["value"].drifted
        True

    Args:
        method: "auto" (per column type and size, see ``steward.quality`` docs),
            one of "ks", "chi2", "psi", "kl", "js", "wasserstein",
            "wasserstein_norm", or a mapping ``{"numeric": ..., "categorical": ...}``.
        threshold: with a single explicit method, its threshold (p-value for
            "ks"/"chi2", distance otherwise); None for the method's default.
        columns: columns to compare (default: every column of the reference).
        column_methods: per-column overrides, ``{"age": "psi", "income": ("ks", 0.01)}``.
        column_types: force "numeric" or "categorical" for some columns.
        bins: quantile bins for PSI/KL/JS on numbers.
        epsilon: share given to empty bins by PSI and KL (default 1e-4).
        exact_limit: reference columns up to this many values are kept whole.
        sketch_size: order statistics kept for larger reference columns.
        max_categories: categories kept per reference column.
        small_sample: reference size up to which "auto" uses KS / chi-square.
        drift_share: share of drifted columns at which the dataset drifts.
        missing_rate_threshold: change in missing share flagged as a shift.
        n_jobs: threads (None: up to 8 cores; -1: all).
        memory_budget: bytes of raw column data read at once.
    """

    def __init__(
        self,
        *,
        method: str | Mapping[str, str] = "auto",
        threshold: float | None = None,
        columns: Sequence[str] | None = None,
        column_methods: Mapping[str, MethodOverride] | None = None,
        column_types: Mapping[str, ColumnKind] | None = None,
        bins: int = 10,
        epsilon: float = 1e-4,
        exact_limit: int = 100_000,
        sketch_size: int = 10_000,
        max_categories: int = 1_000,
        small_sample: int = 1_000,
        drift_share: float = 0.5,
        missing_rate_threshold: float = 0.05,
        n_jobs: int | None = None,
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
    ) -> None:
        self.method = method
        self.threshold = threshold
        self.columns = columns
        self.column_methods = column_methods
        self.column_types = column_types
        self.bins = bins
        self.epsilon = epsilon
        self.exact_limit = exact_limit
        self.sketch_size = sketch_size
        self.max_categories = max_categories
        self.small_sample = small_sample
        self.drift_share = drift_share
        self.missing_rate_threshold = missing_rate_threshold
        self.n_jobs = n_jobs
        self.memory_budget = memory_budget

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Return the constructor arguments (scikit-learn convention)."""
        del deep  # no nested estimators
        return {name: getattr(self, name) for name in inspect.signature(type(self)).parameters}

    def set_params(self, **params: Any) -> Self:
        """Set constructor arguments; the detector must be fitted again to use them.

        Raises:
            InvalidInputError: an unknown parameter name.
        """
        valid = inspect.signature(type(self)).parameters
        for name, value in params.items():
            if name not in valid:
                raise InvalidInputError(f"unknown parameter {name!r}; valid: {sorted(valid)}")
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        defaults = inspect.signature(type(self)).parameters
        changed = [
            f"{name}={value!r}"
            for name, value in self.get_params().items()
            if value is not defaults[name].default and value != defaults[name].default
        ]
        return f"{type(self).__name__}({', '.join(changed)})"

    def fit(self, reference: Any) -> Self:
        """Learn the reference profile.

        Args:
            reference: a table or 1-D array, or a stored :class:`ReferenceProfile`.

        Returns:
            The fitted detector.

        Raises:
            InvalidInputError: bad parameters, no rows, unknown columns, or a
                method that does not apply to a column's type.
        """
        self._check_settings()
        if isinstance(reference, ReferenceProfile):
            profile = _restrict(reference, self.columns)
        else:
            settings = ProfileSettings(
                bins=self.bins,
                exact_limit=self.exact_limit,
                sketch_size=self.sketch_size,
                max_categories=self.max_categories,
            )
            profile = ReferenceProfile.build(
                reference,
                columns=self.columns,
                column_types=self.column_types,
                settings=settings,
                n_jobs=self.n_jobs,
                memory_budget=self.memory_budget,
            )
        self.specs_ = self._column_specs(profile)
        self.profile_ = profile
        self.feature_names_in_ = profile.names
        self.n_features_in_ = len(profile.names)
        return self

    def score(self, current: Any) -> DriftReport:
        """Compare ``current`` with the fitted reference, column by column.

        Columns missing from ``current`` are listed in ``missing_columns``;
        columns only ``current`` has, in ``extra_columns`` (unless ``columns``
        restricted the comparison).

        Raises:
            NotFittedError: ``fit`` was not called.
            InvalidInputError: ``current`` has no rows or cannot be read.
        """
        if not hasattr(self, "profile_"):
            raise NotFittedError("this DriftDetector is not fitted; call fit(reference) first")
        profile: ReferenceProfile = self.profile_
        source = as_table(current, role="current")
        if source.num_rows == 0:
            raise InvalidInputError("current data has no rows; there is nothing to compare")
        present = set(source.names)
        compared = [name for name in profile.names if name in present]
        known = set(profile.names) | set(profile.skipped)
        extra = () if self.columns is not None else tuple(n for n in source.names if n not in known)
        settings = ScoreSettings(self.epsilon, self.small_sample, self.missing_rate_threshold)
        specs: dict[str, MethodSpec] = self.specs_

        def work(name: str, array: pa.ChunkedArray) -> ColumnDrift:
            return score_column(profile.columns[name], array, specs[name], settings)

        results = map_columns(
            source, compared, work, n_jobs=self.n_jobs, memory_budget=self.memory_budget
        )
        return DriftReport(
            columns=tuple(results[name] for name in compared),
            reference_rows=profile.rows,
            current_rows=source.num_rows,
            drift_share=float(self.drift_share),
            missing_columns=tuple(name for name in profile.names if name not in present),
            extra_columns=extra,
            skipped_columns=dict(profile.skipped),
        )

    def _check_settings(self) -> None:
        for name in ("epsilon", "drift_share", "missing_rate_threshold"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
                raise InvalidInputError(f"{name} must be a number in (0, 1]; got {value!r}")
        if isinstance(self.small_sample, bool) or not isinstance(self.small_sample, int):
            raise InvalidInputError(f"small_sample must be an int; got {self.small_sample!r}")
        if isinstance(self.method, Mapping):
            unknown = set(self.method) - {"numeric", "categorical"}
            if unknown:
                raise InvalidInputError(
                    f"method mapping keys must be 'numeric'/'categorical'; got {sorted(unknown)}"
                )
            if self.threshold is not None:
                raise InvalidInputError("threshold needs a single method, not a mapping by kind")
            for kind, name in self.method.items():
                check_method(name, None, f"method[{kind!r}]")
        else:
            check_method(self.method, self.threshold, "method")

    def _column_specs(self, profile: ReferenceProfile) -> dict[str, MethodSpec]:
        overrides = dict(self.column_methods or {})
        unknown = [name for name in overrides if name not in profile.columns]
        if unknown:
            raise InvalidInputError(
                f"column_methods names column(s) {unknown} that the reference does not have"
            )
        specs: dict[str, MethodSpec] = {}
        problems: list[str] = []
        for name, column in profile.columns.items():
            spec = self._spec_for(name, column, overrides.get(name))
            reason = check_applicable(spec, column)
            if reason:
                problems.append(f"{name!r} ({column.kind}): {reason}")
            specs[name] = spec
        if problems:
            raise InvalidInputError(
                "drift method does not fit column(s): "
                + "; ".join(problems)
                + ". Override them with column_methods={...} or method={'numeric': ..., "
                "'categorical': ...}"
            )
        return specs

    def _spec_for(
        self, name: str, column: ColumnProfile, override: MethodOverride | None
    ) -> MethodSpec:
        where = f"column_methods[{name!r}]"
        if isinstance(override, tuple):
            if len(override) != 2:
                raise InvalidInputError(f"{where} must be a method or (method, threshold)")
            return check_method(override[0], override[1], where)
        if override is not None:
            return check_method(override, None, where)
        if isinstance(self.method, Mapping):
            return MethodSpec(self.method.get(column.kind, "auto"))
        return MethodSpec(self.method, self.threshold)


def _restrict(profile: ReferenceProfile, columns: Sequence[str] | None) -> ReferenceProfile:
    if columns is None:
        return profile
    unknown = [name for name in columns if name not in profile.columns]
    if unknown:
        raise InvalidInputError(f"the profile has no column(s) {unknown}; it has {profile.names}")
    kept = {name: profile.columns[name] for name in dict.fromkeys(columns)}
    return ReferenceProfile(kept, profile.rows, profile.settings, {})
