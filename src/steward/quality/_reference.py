"""The dataset-level reference profile: every column's profile, built and stored."""

from __future__ import annotations

import io
import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, cast

import numpy as np
import pyarrow as pa
from rich.table import Table

from steward.core import InvalidInputError
from steward.quality._engine import DEFAULT_MEMORY_BUDGET, map_columns
from steward.quality._input import ColumnKind, arrow_kind, as_table
from steward.quality._profile import (
    CategoricalProfile,
    ColumnProfile,
    NumericProfile,
    ProfileSettings,
    column_from_dict,
    profile_column,
)
from steward.quality._render import fmt, pct

__all__ = ["PROFILE_FORMAT", "ReferenceProfile", "check_column_types"]

PROFILE_FORMAT = "steward.reference-profile/1"
_KINDS = ("numeric", "categorical")


@dataclass(frozen=True, eq=False)
class ReferenceProfile:
    """Compact, serializable summary of reference data that drift is measured against.

    Build one with :meth:`build` (or let ``DriftDetector.fit`` do it), store it
    with :meth:`save`, and later hand it to ``DriftDetector().fit(profile)`` to
    compare new data without the raw reference.

    Example:
        >>> profile = ReferenceProfile.build({"x": [1.0, 2.0, 3.0], "c": ["a", "b", "a"]})
        >>> sorted(profile.columns), profile.rows
        (['c', 'x'], 3)

    Attributes:
        columns: column name → numeric or categorical column profile, in table order.
        rows: rows in the reference data.
        settings: how much each column kept (bins, exact limit, sketch size, categories).
        skipped: columns left out because their type has no drift statistic → reason.
    """

    columns: Mapping[str, ColumnProfile]
    rows: int
    settings: ProfileSettings = field(default_factory=ProfileSettings)
    skipped: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        data: Any,
        *,
        columns: Sequence[str] | None = None,
        column_types: Mapping[str, ColumnKind] | None = None,
        settings: ProfileSettings | None = None,
        n_jobs: int | None = None,
        memory_budget: int = DEFAULT_MEMORY_BUDGET,
    ) -> ReferenceProfile:
        """Profile ``data`` column by column, a memory-bounded batch of columns at a time.

        Args:
            data: a table (pandas, pyarrow, dict of columns, Parquet/CSV path) or a 1-D array.
            columns: columns to profile (default: all).
            column_types: force a column to be treated as "numeric" or "categorical".
            settings: how much of each column to keep (default :class:`ProfileSettings`).
            n_jobs: threads (None: up to 8 cores).
            memory_budget: bytes of raw column data read at once.

        Raises:
            InvalidInputError: no rows, unknown columns or kinds, or unreadable values.
        """
        settings = settings or ProfileSettings()
        settings.check()
        source = as_table(data, role="reference")
        if source.num_rows == 0:
            raise InvalidInputError("reference data has no rows; a profile needs at least one")
        names = _select(source.names, columns, "reference")
        kinds = check_column_types(column_types, names)

        def work(name: str, array: pa.ChunkedArray) -> ColumnProfile | str:
            kind = kinds.get(name) or arrow_kind(array.type)
            if kind is None:
                return f"unsupported type {array.type}"
            return profile_column(name, array, kind, settings)

        results = map_columns(source, names, work, n_jobs=n_jobs, memory_budget=memory_budget)
        profiles = {n: r for n, r in results.items() if not isinstance(r, str)}
        skipped = {n: r for n, r in results.items() if isinstance(r, str)}
        if columns is not None and skipped:
            raise InvalidInputError(f"columns with unsupported types: {skipped}")
        return cls(profiles, source.num_rows, settings, skipped)

    @property
    def names(self) -> tuple[str, ...]:
        """Profiled column names, in table order."""
        return tuple(self.columns)

    def describe(self) -> list[dict[str, Any]]:
        """Summarize each column for people: counts, missing share, moments or top categories.

        Quantiles come from the kept sample, so they are exact for exact
        columns and within ``ks_error`` in rank for sketched ones.
        """
        return [_describe(profile) for profile in self.columns.values()]

    def __rich__(self) -> Table:
        table = Table(title=f"Profile of {self.rows:,} rows", title_justify="left")
        for header in ("column", "kind", "missing", "distinct", "mean", "std", "min", "median"):
            table.add_column(header, justify="left" if header in ("column", "kind") else "right")
        table.add_column("max / top categories")
        for row in self.describe():
            if row["kind"] == "numeric":
                stats = [fmt(row[k]) for k in ("mean", "std", "min", "p50", "max")]
            else:
                top = ", ".join(f"{value} ({count:,})" for value, count in row["top"])
                stats = ["", "", "", "", top]
            table.add_row(
                row["name"], row["kind"], pct(row["missing_rate"]), f"{row['n_distinct']:,}", *stats
            )
        return table

    def to_dict(self, *, with_samples: bool = True) -> dict[str, Any]:
        """Return a JSON-ready dict (format ``steward.reference-profile/1``).

        Args:
            with_samples: include the sorted samples (the bulk of a profile).
        """
        columns = [
            profile.to_dict(with_sample=with_samples)
            if isinstance(profile, NumericProfile)
            else profile.to_dict()
            for profile in self.columns.values()
        ]
        return {
            "format": PROFILE_FORMAT,
            "rows": self.rows,
            "settings": asdict(self.settings),
            "skipped": dict(self.skipped),
            "columns": columns,
        }

    def to_json(self) -> str:
        """Serialize to JSON text."""
        return json.dumps(self.to_dict(), allow_nan=False)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReferenceProfile:
        """Rebuild a profile from :meth:`to_dict` output.

        Raises:
            InvalidInputError: the dict is not a profile of a format this version reads.
        """
        if not isinstance(data, Mapping) or data.get("format") != PROFILE_FORMAT:
            found = data.get("format") if isinstance(data, Mapping) else type(data).__name__
            raise InvalidInputError(f"not a {PROFILE_FORMAT} profile (format: {found!r})")
        try:
            settings = ProfileSettings(**data["settings"])
            columns = [column_from_dict(column) for column in data["columns"]]
            return cls(
                {column.name: column for column in columns},
                int(data["rows"]),
                settings,
                dict(data.get("skipped", {})),
            )
        except (KeyError, TypeError) as exc:
            raise InvalidInputError(f"malformed {PROFILE_FORMAT} profile: {exc!r}") from exc

    def save(self, path: str | Path) -> None:
        """Write the profile: JSON text for a ``.json`` path, else a NumPy ``.npz`` archive.

        The ``.npz`` form stores sorted samples as binary arrays (8 bytes a value)
        and everything else as embedded JSON; it loads without pickle.
        """
        target = Path(path)
        if target.suffix.lower() == ".json":
            target.write_text(self.to_json(), encoding="utf-8")
            return
        document = self.to_dict(with_samples=False)
        arrays: dict[str, np.ndarray[Any, Any]] = {}
        for position, (column, profile) in enumerate(
            zip(document["columns"], self.columns.values(), strict=True)
        ):
            sample = profile.sample if isinstance(profile, NumericProfile) else None
            if sample is None:
                continue
            arrays[f"values_{position}"] = sample.values
            column["values"] = f"values_{position}"
            if sample.cum is not None:
                arrays[f"cum_{position}"] = sample.cum
                column["cum"] = f"cum_{position}"
        meta = json.dumps(document, allow_nan=False).encode("utf-8")
        arrays["meta"] = np.frombuffer(meta, dtype=np.uint8)
        buffer = io.BytesIO()
        cast(Any, np.savez)(buffer, **arrays)
        target.write_bytes(buffer.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> ReferenceProfile:
        """Read a profile written by :meth:`save`.

        Raises:
            InvalidInputError: the file is missing or not a profile.
        """
        source = Path(path)
        if not source.is_file():
            raise InvalidInputError(f"no profile file at {str(source)!r}")
        if source.suffix.lower() == ".json":
            try:
                return cls.from_dict(json.loads(source.read_text(encoding="utf-8")))
            except json.JSONDecodeError as exc:
                raise InvalidInputError(f"{str(source)!r} is not JSON: {exc}") from exc
        try:
            with np.load(source, allow_pickle=False) as archive:
                document = json.loads(archive["meta"].tobytes().decode("utf-8"))
                for column in document.get("columns", []):
                    for key in ("values", "cum"):
                        if isinstance(column.get(key), str):
                            column[key] = archive[column[key]]
        except (OSError, ValueError, KeyError) as exc:
            raise InvalidInputError(f"{str(source)!r} is not a saved profile: {exc}") from exc
        return cls.from_dict(document)


def _describe(profile: ColumnProfile) -> dict[str, Any]:
    row: dict[str, Any] = {
        "name": profile.name,
        "kind": profile.kind,
        "rows": profile.rows,
        "missing": profile.missing,
        "missing_rate": profile.missing / profile.rows if profile.rows else 0.0,
        "n_distinct": profile.n_distinct,
    }
    if isinstance(profile, CategoricalProfile):
        row["top"] = [
            [k, int(c)] for k, c in zip(profile.categories[:5], profile.counts[:5], strict=True)
        ]
        return row
    quantiles: dict[str, float | None] = {"p05": None, "p50": None, "p95": None}
    if profile.sample is not None and profile.count:
        cum = profile.sample.cum
        ranks = np.arange(1, profile.sample.values.size + 1) if cum is None else cum
        for key, share in (("p05", 0.05), ("p50", 0.5), ("p95", 0.95)):
            index = int(np.searchsorted(ranks, share * profile.count, side="left"))
            quantiles[key] = float(profile.sample.values[min(index, ranks.size - 1)])
    row.update(
        mean=profile.mean,
        std=profile.std,
        min=profile.minimum,
        max=profile.maximum,
        exact=profile.exact,
        **quantiles,
    )
    return row


def _select(available: Sequence[str], wanted: Sequence[str] | None, role: str) -> list[str]:
    if wanted is None:
        if not available:
            raise InvalidInputError(f"{role} data has no columns")
        return list(available)
    if isinstance(wanted, str):
        raise InvalidInputError(f"columns must be a list of names, got the string {wanted!r}")
    unknown = [name for name in wanted if name not in set(available)]
    if unknown:
        raise InvalidInputError(f"{role} data has no column(s) {unknown}; it has {list(available)}")
    return list(dict.fromkeys(wanted))


def check_column_types(
    column_types: Mapping[str, str] | None, names: Sequence[str]
) -> dict[str, ColumnKind]:
    """Validate a ``column_types`` mapping against the selected column names.

    Raises:
        InvalidInputError: an unknown column or a kind other than numeric/categorical.
    """
    kinds: dict[str, ColumnKind] = {}
    for name, kind in (column_types or {}).items():
        if name not in names:
            raise InvalidInputError(f"column_types names unknown column {name!r}")
        if kind not in _KINDS:
            raise InvalidInputError(f"column_types[{name!r}] must be one of {_KINDS}; got {kind!r}")
        kinds[name] = "numeric" if kind == "numeric" else "categorical"
    return kinds
