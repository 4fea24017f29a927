"""Model signatures: what a model takes and gives, inferred at registration, enforced at predict.

A signature lists the input columns (name, dtype, nullability, and optionally the
range and categories seen in the training data), the outputs, the classes of a
classifier, and the container the model itself was fitted on (``dataframe`` or
``ndarray``: a model fitted on a plain array is fed one, in column order).

Checking names every bad column at once::

    Signature(inputs=(ColumnSpec("amount", "float64"), ColumnSpec("country", "string")))
    .check({"amount": ["12"], "city": ["Paris"]})
    → SignatureError: input does not match the signature (3 problems): column 'amount':
      expected float64, got string; missing column 'country'; unexpected column 'city'
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

from steward.core import InvalidInputError, canonical_json, sha256_hex
from steward.registry._inputs import Column, Kind, columns_of, is_dataframe, kind_of_dtype

__all__ = [
    "ColumnSpec",
    "InputFormat",
    "Signature",
    "SignatureError",
    "TensorSpec",
]

InputFormat = Literal["dataframe", "ndarray"]
Category = str | int | float | bool

_ACCEPTS: dict[Kind, frozenset[Kind]] = {
    "float": frozenset({"float", "integer"}),
    "integer": frozenset({"integer", "float"}),  # floats must hold whole numbers
    "boolean": frozenset({"boolean"}),
    "string": frozenset({"string"}),
    "datetime": frozenset({"datetime"}),
    "other": frozenset({"float", "integer", "boolean", "string", "datetime", "other"}),
}
_MAX_CATEGORIES = 1_000


class SignatureError(InvalidInputError):
    """Input does not match a model's signature; ``problems`` maps each bad column to why."""

    def __init__(self, problems: Sequence[tuple[str, str]], ref: str | None = None) -> None:
        self.problems = list(problems)
        self.ref = ref
        where = f" of {ref}" if ref else ""
        listing = "; ".join(message for _, message in self.problems)
        super().__init__(
            f"input does not match the signature{where} ({len(self.problems)} "
            f"problem{'s' if len(self.problems) != 1 else ''}): {listing}"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuild from the problems, so the error survives pickling (worker processes).
        return (type(self), (self.problems, self.ref))


@dataclass(frozen=True, slots=True)
class ColumnSpec:
    """One input column: name, dtype name, nullability, and what training data looked like."""

    name: str
    dtype: str
    nullable: bool = False
    min: float | None = None
    max: float | None = None
    categories: tuple[Category, ...] | None = None

    @property
    def kind(self) -> Kind:
        """The logical kind of the dtype (float, integer, boolean, string, datetime, other)."""
        return kind_of_dtype(self.dtype)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (optional fields only when set)."""
        view: dict[str, Any] = {"name": self.name, "dtype": self.dtype, "nullable": self.nullable}
        if self.min is not None:
            view["min"] = self.min
        if self.max is not None:
            view["max"] = self.max
        if self.categories is not None:
            view["categories"] = list(self.categories)
        return view

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ColumnSpec:
        """Rebuild from :meth:`to_dict` output.

        Raises:
            InvalidInputError: a required key is missing or of the wrong type.
        """
        try:
            categories = data.get("categories")
            return cls(
                name=str(data["name"]),
                dtype=str(data["dtype"]),
                nullable=bool(data.get("nullable", False)),
                min=None if data.get("min") is None else float(data["min"]),
                max=None if data.get("max") is None else float(data["max"]),
                categories=None if categories is None else tuple(categories),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInputError(f"not a column spec: {dict(data)!r} ({exc})") from None


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """One model output: name, dtype name, shape (``None`` for the row dimension)."""

    name: str
    dtype: str
    shape: tuple[int | None, ...] = (None,)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {"name": self.name, "dtype": self.dtype, "shape": list(self.shape)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TensorSpec:
        """Rebuild from :meth:`to_dict` output."""
        shape = tuple(None if d is None else int(d) for d in data.get("shape", [None]))
        return cls(name=str(data["name"]), dtype=str(data["dtype"]), shape=shape)


def _output_specs(output: Any) -> tuple[TensorSpec, ...]:
    if output is None:
        return ()
    if is_dataframe(output):
        return tuple(TensorSpec(c.name, c.dtype) for c in columns_of(output))
    values = np.asarray(output)
    dtype = "string" if values.dtype.kind in "OUS" else values.dtype.name
    return (TensorSpec("prediction", dtype, (None, *values.shape[1:])),)


def _plain(value: Any) -> Category:
    item = getattr(value, "item", None)
    plain = item() if callable(item) else value
    if not isinstance(plain, str | int | float | bool):
        return str(plain)
    return plain


@dataclass(frozen=True, slots=True)
class Signature:
    """What a model takes and gives.

    Example:
        >>> import numpy as np
        >>> sig = Signature.infer({"amount": np.array([1.5, 3.0]), "hour": np.array([3, 23])})
        >>> [(c.name, c.dtype) for c in sig.inputs]
        [('amount', 'float64'), ('hour', 'int64')]
    """

    inputs: tuple[ColumnSpec, ...]
    outputs: tuple[TensorSpec, ...] = ()
    input_format: InputFormat = "dataframe"
    classes: tuple[Category, ...] | None = None
    _by_name: dict[str, ColumnSpec] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        names = [c.name for c in self.inputs]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise InvalidInputError(f"signature lists columns more than once: {duplicates}")
        object.__setattr__(self, "_by_name", {c.name: c for c in self.inputs})

    @property
    def names(self) -> list[str]:
        """Input column names, in order."""
        return [c.name for c in self.inputs]

    @classmethod
    def infer(
        cls,
        sample: Any,
        output: Any = None,
        *,
        names: Sequence[str] | None = None,
        input_format: InputFormat | None = None,
        classes: Sequence[Any] | None = None,
        profile: Mapping[str, Any] | None = None,
    ) -> Signature:
        """Infer a signature from a sample input and (optionally) the model's output on it.

        Args:
            sample: model input (see :func:`columns_of` for the containers).
            output: what the model returned for ``sample``.
            names: column names for a plain array (default ``x0, x1, ...``).
            input_format: container the model expects (default: ``ndarray`` for an
                array sample, ``dataframe`` otherwise).
            classes: a classifier's classes.
            profile: a tracking dataset profile of the training data, for nullability,
                ranges and categories (see :meth:`with_profile`).

        Raises:
            InvalidInputError: the sample cannot be read as columns.
        """
        columns = columns_of(sample, names=names)
        if not columns:
            raise InvalidInputError("the sample input has no columns; pass at least one row")
        inputs = tuple(ColumnSpec(c.name, c.dtype, nullable=c.nulls > 0) for c in columns)
        fmt: InputFormat = input_format or (
            "ndarray" if isinstance(sample, np.ndarray) else "dataframe"
        )
        signature = cls(
            inputs=inputs,
            outputs=_output_specs(output),
            input_format=fmt,
            classes=tuple(_plain(c) for c in classes) if classes is not None else None,
        )
        return signature.with_profile(profile) if profile else signature

    def with_profile(self, profile: Mapping[str, Any]) -> Signature:
        """Return a copy with nullability, ranges and categories from a dataset profile.

        ``profile`` is what tracking records for a logged dataset. A column is
        nullable if the training data had nulls; numeric columns get the min and
        max seen; string columns get their categories when every distinct value
        is known exactly. Columns absent from the profile are left as they are.
        """
        by_name = {c.get("name"): c for c in profile.get("columns", []) if isinstance(c, Mapping)}
        specs = []
        for spec in self.inputs:
            seen = by_name.get(spec.name)
            if seen is None:
                specs.append(spec)
                continue
            nullable = spec.nullable or bool(seen.get("null_count"))
            low = high = None
            categories = None
            if seen.get("kind") == "numeric" and spec.kind in ("float", "integer"):
                low, high = seen.get("min"), seen.get("max")
            elif seen.get("kind") == "string" and spec.kind == "string":
                top = [t.get("value") for t in seen.get("top_values", [])]
                if seen.get("distinct_exact") and seen.get("distinct_count") == len(top):
                    categories = tuple(sorted(str(v) for v in top if v is not None))
            specs.append(
                replace(
                    spec,
                    nullable=nullable,
                    min=None if low is None else float(low),
                    max=None if high is None else float(high),
                    categories=categories,
                )
            )
        return replace(self, inputs=tuple(specs))

    # -- checking ----------------------------------------------------------

    def check(
        self, data: Any, *, ref: str | None = None, check_ranges: bool = False
    ) -> list[Column]:
        """Check input against the signature; return its columns in signature order.

        Args:
            data: model input (a plain array is read positionally, in signature order).
            ref: the model version, named in the error.
            check_ranges: also refuse values outside the training range or categories.

        Raises:
            SignatureError: one problem per missing, unexpected, mistyped or
                null-holding column (and, with ``check_ranges``, out-of-range values).
            InvalidInputError: the input cannot be read as columns at all.
        """
        names = self.names if isinstance(data, np.ndarray) else None
        if names is not None and data.ndim == 2 and data.shape[1] != len(names):
            raise SignatureError(
                [("*", f"expected {len(names)} columns ({', '.join(names)}), got {data.shape[1]}")],
                ref=ref,
            )
        columns = columns_of(data, names=names, fast=True)
        problems = self.problems(columns, check_ranges=check_ranges)
        if problems:
            raise SignatureError(problems, ref=ref)
        by_name = {c.name: c for c in columns}
        return [by_name[name] for name in self.names]

    def problems(
        self, columns: Sequence[Column], *, check_ranges: bool = False
    ) -> list[tuple[str, str]]:
        """Return ``(column, message)`` for every way ``columns`` break the signature."""
        found: list[tuple[str, str]] = []
        given = {c.name for c in columns}
        for spec in self.inputs:
            if spec.name not in given:
                found.append((spec.name, f"missing column {spec.name!r} ({spec.dtype})"))
        for column in columns:
            wanted = self._by_name.get(column.name)
            if wanted is None:
                found.append((column.name, f"unexpected column {column.name!r}"))
                continue
            message = _column_problem(wanted, column, check_ranges=check_ranges)
            if message:
                found.append((column.name, f"column {column.name!r}: {message}"))
        return found

    # -- storage -----------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict; :meth:`from_dict` reverses it."""
        return {
            "format": "steward.signature/1",
            "inputs": [c.to_dict() for c in self.inputs],
            "outputs": [o.to_dict() for o in self.outputs],
            "input_format": self.input_format,
            "classes": list(self.classes) if self.classes is not None else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Signature:
        """Rebuild a signature from :meth:`to_dict` output.

        Raises:
            InvalidInputError: the document is not a signature.
        """
        if not isinstance(data, Mapping) or not isinstance(data.get("inputs"), list):
            raise InvalidInputError("a signature is a mapping with a list of 'inputs'")
        fmt = data.get("input_format", "dataframe")
        if fmt not in ("dataframe", "ndarray"):
            raise InvalidInputError(
                f"signature input_format must be 'dataframe' or 'ndarray', got {fmt!r}"
            )
        classes = data.get("classes")
        return cls(
            inputs=tuple(ColumnSpec.from_dict(c) for c in data["inputs"]),
            outputs=tuple(TensorSpec.from_dict(o) for o in data.get("outputs", [])),
            input_format=fmt,
            classes=tuple(classes) if classes is not None else None,
        )

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the signature's canonical JSON."""
        return sha256_hex(canonical_json(self.to_dict()))


def _column_problem(spec: ColumnSpec, column: Column, *, check_ranges: bool) -> str | None:
    all_null = column.nulls == len(column.values)
    if not all_null and column.kind not in _ACCEPTS[spec.kind]:
        return f"expected {spec.dtype}, got {column.dtype}"
    if spec.kind == "integer" and column.kind == "float" and not all_null:
        finite = column.values[~np.isnan(column.values)]
        if not np.all(np.mod(finite, 1) == 0):
            return f"expected {spec.dtype}, got {column.dtype} with fractional values"
    if column.nulls and not spec.nullable:
        return f"{column.nulls} null value(s) but the column is not nullable"
    if check_ranges:
        return _range_problem(spec, column)
    return None


def _range_problem(spec: ColumnSpec, column: Column) -> str | None:
    if spec.min is not None and spec.max is not None and column.kind in ("float", "integer"):
        values = column.values.astype(float)
        outside = int(np.count_nonzero((values < spec.min) | (values > spec.max)))
        if outside:
            return f"{outside} value(s) outside the training range [{spec.min:g}, {spec.max:g}]"
    if spec.categories is not None and column.kind == "string":
        known = set(spec.categories)
        unknown = sorted({v for v in column.values.tolist() if v is not None and v not in known})
        if unknown:
            shown = ", ".join(repr(v) for v in unknown[:5])
            return f"unknown categories {shown} (known: {', '.join(map(repr, spec.categories))})"
    return None
