"""Reference profiles: what ``fit`` keeps of the reference data, and how it is stored.

A profile holds, per column, enough to compare new data against the reference
without the raw data: for numbers the sorted values (or a quantile sketch of
them), quantile bin edges with counts, mean/std/min/max and, for columns with
few distinct values, their counts; for categories their counts.  Profiles are
serializable to JSON (``to_dict``) or a compact ``.npz`` file (``save``).

Sketch vs exact: up to ``exact_limit`` finite values a column keeps every value
and KS/Wasserstein are exact.  Above it, the column keeps ``sketch_size``
evenly spaced order statistics with their exact ranks.  The sketch's CDF is
exact at the kept values, so the KS statistic is off by at most
``ks_error`` (about 1/sketch_size) and the Wasserstein distance by at most
``wasserstein_error``; both bounds are computed at fit time and stored.  Bin
counts (PSI/KL/JS), moments and category counts are always exact.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from steward.core import InvalidInputError
from steward.quality._input import Category, ColumnKind, arrow_kind, category_counts, numeric_values
from steward.quality._numeric import SortedSample, bin_counts, bin_edges, sketch

__all__ = [
    "CategoricalProfile",
    "ColumnProfile",
    "NumericProfile",
    "ProfileSettings",
    "column_from_dict",
    "profile_column",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class ProfileSettings:
    """How much of each reference column a profile keeps.

    Attributes:
        bins: quantile bins for PSI/KL/JS on numbers (plus one bin below the
            reference minimum and one above its maximum).
        exact_limit: columns with at most this many finite values keep them all.
        sketch_size: order statistics kept for larger columns.
        max_categories: categories kept per column (most frequent first); the
            rest are pooled as "other".  Numeric columns with at most this many
            distinct values also keep their value counts.
    """

    bins: int = 10
    exact_limit: int = 100_000
    sketch_size: int = 10_000
    max_categories: int = 1_000

    def check(self) -> None:
        """Raise :class:`InvalidInputError` naming the first out-of-range setting."""
        for name, low in (
            ("bins", 1),
            ("exact_limit", 1),
            ("sketch_size", 2),
            ("max_categories", 1),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise InvalidInputError(f"{name} must be an int >= {low}; got {value!r}")


@dataclass(frozen=True, eq=False)
class NumericProfile:
    """What a profile keeps of one numeric column (see the module docstring)."""

    kind: ClassVar[ColumnKind] = "numeric"

    name: str
    rows: int
    missing: int
    mean: float | None = None
    std: float | None = None
    minimum: float | None = None
    maximum: float | None = None
    sample: SortedSample | None = None
    edges: FloatArray = field(default_factory=lambda: np.empty(0))
    bin_counts: IntArray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    n_distinct: int = 0
    categories: tuple[float, ...] | None = None
    category_counts: IntArray | None = None
    ks_error: float = 0.0
    wasserstein_error: float = 0.0

    @property
    def count(self) -> int:
        """Finite values seen."""
        return self.rows - self.missing

    @property
    def exact(self) -> bool:
        """Whether every finite value is kept (no sketch)."""
        return self.sample is None or self.sample.exact

    def to_dict(self, *, with_sample: bool = True) -> dict[str, Any]:
        """Return a JSON-ready dict; :func:`column_from_dict` reverses it.

        Args:
            with_sample: include the sorted sample (None in its place otherwise).
        """
        sample = self.sample if with_sample else None
        return {
            "kind": self.kind,
            "name": self.name,
            "rows": self.rows,
            "missing": self.missing,
            "mean": self.mean,
            "std": self.std,
            "min": self.minimum,
            "max": self.maximum,
            "values": None if sample is None else sample.values.tolist(),
            "cum": None if sample is None or sample.cum is None else sample.cum.tolist(),
            "edges": self.edges.tolist(),
            "bin_counts": self.bin_counts.tolist(),
            "n_distinct": self.n_distinct,
            "categories": None if self.categories is None else list(self.categories),
            "category_counts": None
            if self.category_counts is None
            else self.category_counts.tolist(),
            "ks_error": self.ks_error,
            "wasserstein_error": self.wasserstein_error,
        }


@dataclass(frozen=True, eq=False)
class CategoricalProfile:
    """What a profile keeps of one categorical column: counts of its top categories."""

    kind: ClassVar[ColumnKind] = "categorical"

    name: str
    rows: int
    missing: int
    categories: tuple[Category, ...] = ()
    counts: IntArray = field(default_factory=lambda: np.empty(0, dtype=np.int64))
    other: int = 0
    n_distinct: int = 0

    @property
    def count(self) -> int:
        """Non-missing values seen."""
        return self.rows - self.missing

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict; :func:`column_from_dict` reverses it."""
        return {
            "kind": self.kind,
            "name": self.name,
            "rows": self.rows,
            "missing": self.missing,
            "categories": list(self.categories),
            "counts": self.counts.tolist(),
            "other": self.other,
            "n_distinct": self.n_distinct,
        }


ColumnProfile = NumericProfile | CategoricalProfile


def profile_column(
    name: str, array: pa.ChunkedArray, kind: ColumnKind | None, settings: ProfileSettings
) -> ColumnProfile:
    """Profile one column as ``kind`` (None: decide from its Arrow type).

    Raises:
        InvalidInputError: the column's type is unsupported or cannot be read as ``kind``.
    """
    resolved = kind or arrow_kind(array.type)
    if resolved is None:
        raise InvalidInputError(
            f"column {name!r} has unsupported type {array.type}; "
            "give it a kind in column_types or leave it out with columns=[...]"
        )
    if resolved == "numeric":
        try:
            return _profile_numeric(name, array, settings)
        except InvalidInputError as exc:
            raise InvalidInputError(f"column {name!r}: {exc}") from exc
    return _profile_categorical(name, array, settings)


def _profile_numeric(
    name: str, array: pa.ChunkedArray, settings: ProfileSettings
) -> NumericProfile:
    values, missing = numeric_values(array)
    if values.size == 0:
        return NumericProfile(name=name, rows=len(array), missing=missing)
    mean, std = float(np.mean(values)), float(np.std(values))
    ordered = np.sort(values)
    starts = np.concatenate(([0], np.flatnonzero(np.diff(ordered)) + 1))
    n_distinct = int(starts.size)
    categories: tuple[float, ...] | None = None
    counts: IntArray | None = None
    if n_distinct <= settings.max_categories:
        categories = tuple(ordered[starts].tolist())
        counts = np.diff(starts, append=ordered.size).astype(np.int64)
    ks_error = w_error = 0.0
    if ordered.size <= settings.exact_limit:
        sample = SortedSample(ordered, None, ordered.size)
    else:
        sample, ks_error, w_error = sketch(ordered, settings.sketch_size)
    edges = bin_edges(ordered, settings.bins)
    return NumericProfile(
        name=name,
        rows=len(array),
        missing=missing,
        mean=mean,
        std=std,
        minimum=float(ordered[0]),
        maximum=float(ordered[-1]),
        sample=sample,
        edges=edges,
        bin_counts=bin_counts(ordered, edges, float(ordered[-1])),
        n_distinct=n_distinct,
        categories=categories,
        category_counts=counts,
        ks_error=ks_error,
        wasserstein_error=w_error,
    )


def _profile_categorical(
    name: str, array: pa.ChunkedArray, settings: ProfileSettings
) -> CategoricalProfile:
    keys, counts, missing = category_counts(array)
    # Most frequent first; ties broken by the key's text so the order is stable.
    order = sorted(range(len(keys)), key=lambda i: (-int(counts[i]), str(keys[i])))
    kept = order[: settings.max_categories]
    other = int(counts[order[settings.max_categories :]].sum()) if len(order) > len(kept) else 0
    return CategoricalProfile(
        name=name,
        rows=len(array),
        missing=missing,
        categories=tuple(keys[i] for i in kept),
        counts=counts[kept].astype(np.int64) if kept else np.empty(0, dtype=np.int64),
        other=other,
        n_distinct=len(keys),
    )


def column_from_dict(data: Mapping[str, Any]) -> ColumnProfile:
    """Rebuild a column profile from :meth:`NumericProfile.to_dict` / ``CategoricalProfile``.

    Raises:
        InvalidInputError: the dict is not a column profile.
    """
    try:
        if data["kind"] == "categorical":
            return CategoricalProfile(
                name=str(data["name"]),
                rows=int(data["rows"]),
                missing=int(data["missing"]),
                categories=tuple(data["categories"]),
                counts=np.asarray(data["counts"], dtype=np.int64),
                other=int(data["other"]),
                n_distinct=int(data["n_distinct"]),
            )
        if data["kind"] != "numeric":
            raise InvalidInputError(f"unknown column kind {data['kind']!r}")
        return _numeric_from_dict(data)
    except (KeyError, TypeError, ValueError) as exc:
        raise InvalidInputError(f"not a column profile: {exc!r}") from exc


def _numeric_from_dict(data: Mapping[str, Any]) -> NumericProfile:
    sample = None
    if data["values"] is not None:
        values = np.asarray(data["values"], dtype=np.float64)
        cum = None if data["cum"] is None else np.asarray(data["cum"], dtype=np.int64)
        sample = SortedSample(values, cum, int(data["rows"]) - int(data["missing"]))
    categories: Sequence[float] | None = data["categories"]
    return NumericProfile(
        name=str(data["name"]),
        rows=int(data["rows"]),
        missing=int(data["missing"]),
        mean=data["mean"],
        std=data["std"],
        minimum=data["min"],
        maximum=data["max"],
        sample=sample,
        edges=np.asarray(data["edges"], dtype=np.float64),
        bin_counts=np.asarray(data["bin_counts"], dtype=np.int64),
        n_distinct=int(data["n_distinct"]),
        categories=None if categories is None else tuple(float(v) for v in categories),
        category_counts=None
        if data["category_counts"] is None
        else np.asarray(data["category_counts"], dtype=np.int64),
        ks_error=float(data["ks_error"]),
        wasserstein_error=float(data["wasserstein_error"]),
    )
