"""The predict request on the wire: decoding with msgspec, checking against a signature.

A body is ``{"inputs": ...}`` in one of three shapes::

    {"inputs": {"amount": 12.5, "hour": 3}}                 one record
    {"inputs": [{"amount": 12.5, "hour": 3}, {...}]}        a batch of records
    {"inputs": {"amount": [12.5, 80.0], "hour": [3, 22]}}    a batch, by column

Checking returns every problem at once, each with the row and field it is
about, so a caller fixes a request in one round trip (HTTP 422).
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import math
import operator
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, overload

import msgspec
import numpy as np

from steward.core import InvalidInputError
from steward.registry import ColumnSpec, Signature

__all__ = [
    "FeedbackBody",
    "FieldProblem",
    "PredictBody",
    "PredictInputs",
    "RequestProblemError",
    "build_block",
    "check_records",
    "decode_feedback",
    "decode_inputs",
    "decode_predict",
    "prepare_block",
    "records_of",
    "warm_record",
]

_MAX_PROBLEMS = 50


class PredictBody(msgspec.Struct, forbid_unknown_fields=True):
    """The body of ``POST /v1/deployments/{name}/predict``."""

    inputs: dict[str, Any] | list[Any]


class FeedbackBody(msgspec.Struct, forbid_unknown_fields=True):
    """The body of ``POST /v1/feedback``: a label, a reward, or both."""

    request_id: str
    deployment: str | None = None
    label: bool | int | float | str | None = None
    reward: float | None = None


@dataclass(frozen=True)
class FieldProblem:
    """One thing wrong with a request: where (row, field) and what."""

    field: str
    message: str
    row: int | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON form the gateway sends."""
        return {"row": self.row, "field": self.field, "message": self.message}


class RequestProblemError(InvalidInputError):
    """The request does not match what the deployment takes; ``problems`` names each field."""

    def __init__(self, message: str, problems: list[FieldProblem]) -> None:
        super().__init__(message)
        self.problems = problems


_predict_decoder = msgspec.json.Decoder(PredictBody)
_feedback_decoder = msgspec.json.Decoder(FeedbackBody)


def decode_predict(body: bytes) -> PredictBody:
    """Decode a predict body.

    Raises:
        RequestProblemError: not JSON, or not ``{"inputs": ...}`` (the message says where).
    """
    try:
        return _predict_decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise RequestProblemError(
            f"the request body is not a predict request: {exc}; send JSON like "
            '{"inputs": {"amount": 12.5}} or {"inputs": [{...}, ...]}',
            [FieldProblem("inputs", str(exc))],
        ) from None


def decode_feedback(body: bytes) -> FeedbackBody:
    """Decode a feedback body.

    Raises:
        RequestProblemError: not JSON, missing ``request_id``, or neither label nor reward.
    """
    try:
        fb = _feedback_decoder.decode(body)
    except msgspec.DecodeError as exc:
        raise RequestProblemError(
            f"the request body is not feedback: {exc}; send JSON like "
            '{"request_id": "...", "label": 1} or {"request_id": "...", "reward": 1.0}',
            [FieldProblem("body", str(exc))],
        ) from None
    if fb.label is None and fb.reward is None:
        raise RequestProblemError(
            "feedback needs a label or a reward (or both)",
            [FieldProblem("label", "give a label or a reward")],
        )
    for name, value in (("label", fb.label), ("reward", fb.reward)):
        if isinstance(value, float) and not math.isfinite(value):
            raise RequestProblemError(
                f"feedback {name} is {value!r}; it must be a finite number",
                [FieldProblem(name, "must be finite")],
            )
    return fb


def records_of(inputs: dict[str, Any] | list[Any], *, max_rows: int) -> list[dict[str, Any]]:
    """Turn the three input shapes into a list of records.

    Raises:
        RequestProblemError: a batch element is not an object, columns of unequal
            length, a record mixing lists and values, no rows, or too many rows.
    """
    if isinstance(inputs, list):
        bad = [i for i, r in enumerate(inputs) if not isinstance(r, dict)]
        if bad:
            raise RequestProblemError(
                f"inputs[{bad[0]}] is not an object; a batch is a list of records like "
                '{"amount": 12.5}',
                [FieldProblem("inputs", "not an object", row=i) for i in bad[:_MAX_PROBLEMS]],
            )
        records: list[dict[str, Any]] = inputs
    else:
        lists = [k for k, v in inputs.items() if isinstance(v, list)]
        if not lists:
            records = [inputs]
        elif len(lists) != len(inputs):
            scalars = sorted(set(inputs) - set(lists))
            raise RequestProblemError(
                "inputs mix columns (lists) and single values; send every field as a list "
                f"(columnar) or none (one record); single values: {', '.join(scalars)}",
                [FieldProblem(k, "a single value among columns") for k in scalars],
            )
        else:
            lengths = {len(inputs[k]) for k in lists}
            if len(lengths) != 1:
                sizes = ", ".join(f"{k}={len(inputs[k])}" for k in lists)
                raise RequestProblemError(
                    f"columns have different lengths ({sizes}); every column needs one value "
                    "per row",
                    [FieldProblem(k, f"{len(inputs[k])} values") for k in lists],
                )
            n = lengths.pop()
            records = [{k: inputs[k][i] for k in lists} for i in range(n)]
    if not records:
        raise RequestProblemError(
            "inputs hold no rows; send at least one record", [FieldProblem("inputs", "empty")]
        )
    if len(records) > max_rows:
        raise RequestProblemError(
            f"inputs hold {len(records):,} rows; the limit is {max_rows:,} per request: split "
            "the batch (or raise STEWARD_GATEWAY_MAX_ROWS)",
            [FieldProblem("inputs", f"{len(records)} rows, limit {max_rows}")],
        )
    return records


@functools.lru_cache(maxsize=64)
def _integer_range(dtype: str) -> tuple[int, int]:
    try:
        info = np.iinfo(dtype)
    except (TypeError, ValueError):
        info = np.iinfo(np.int64)
    return int(info.min), int(info.max)


def _value_problem(spec: ColumnSpec, value: Any) -> str | None:
    if value is None:
        return None if spec.nullable else f"null, but {spec.name!r} is not nullable"
    kind = spec.kind
    if kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"expected a number ({spec.dtype}), got {type(value).__name__} {value!r:.40}"
        if isinstance(value, float) and not math.isfinite(value):
            return f"{value!r} is not a finite number"
        if isinstance(value, int) and not -sys.float_info.max <= value <= sys.float_info.max:
            return f"{value!r:.40} is out of range for {spec.dtype}"
    elif kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return f"expected an integer ({spec.dtype}), got {type(value).__name__} {value!r:.40}"
        if isinstance(value, float) and not value.is_integer():
            return f"expected an integer ({spec.dtype}), got {value!r}"
        low, high = _integer_range(spec.dtype)
        if not low <= value <= high:
            return f"{value!r:.40} is out of range for {spec.dtype} ({low} to {high})"
    elif kind == "boolean":
        if not isinstance(value, bool):
            return f"expected true or false, got {type(value).__name__} {value!r:.40}"
    elif kind == "string" and not isinstance(value, str):
        return f"expected a string, got {type(value).__name__} {value!r:.40}"
    return None


def check_records(signature: Signature, records: Sequence[Mapping[str, Any]]) -> None:
    """Check every record against ``signature``.

    Raises:
        RequestProblemError: with one problem per missing, unexpected, mistyped,
            null or non-finite value (at most 50 listed).
    """
    specs = signature.inputs
    names = {c.name for c in specs}
    problems: list[FieldProblem] = []
    for row, record in enumerate(records):
        for spec in specs:
            if spec.name not in record:
                problems.append(FieldProblem(spec.name, f"missing ({spec.dtype})", row))
            else:
                message = _value_problem(spec, record[spec.name])
                if message:
                    problems.append(FieldProblem(spec.name, message, row))
        if len(record) > len(names) or any(k not in names for k in record):
            for key in record:
                if key not in names:
                    problems.append(FieldProblem(str(key)[:200], "unexpected field", row))
        if len(problems) >= _MAX_PROBLEMS:
            break
    if problems:
        shown = "; ".join(
            f"{'' if p.row is None else f'row {p.row} '}{p.field}: {p.message}"
            for p in problems[:5]
        )
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise RequestProblemError(
            f"inputs do not match the model's signature: {shown}{more}; fields: "
            f"{', '.join(signature.names)}",
            problems[:_MAX_PROBLEMS],
        )


def build_block(signature: Signature | None, records: Sequence[Mapping[str, Any]]) -> Any:
    """Return the model input for checked records.

    An all-numeric signature gets a float64 matrix in signature order (nulls as
    NaN), which batches by stacking; anything else gets a dict of columns.
    """
    if signature is None:
        return records
    kinds = {c.kind for c in signature.inputs}
    names = signature.names
    if kinds <= {"float"}:
        rows = [[np.nan if (v := r[n]) is None else v for n in names] for r in records]
        return np.asarray(rows, dtype=np.float64).reshape(len(records), len(names))
    return {n: [r[n] for r in records] for n in names}


def prepare_block(signature: Signature | None, records: Sequence[Mapping[str, Any]]) -> Any:
    """Check records against ``signature`` and return the model input (see :func:`build_block`).

    All-float signatures take a fast path: one pass over the values, one NumPy
    conversion, one finiteness check; anything unusual falls back to the full
    check, which names every problem.

    Raises:
        RequestProblemError: see :func:`check_records`.
    """
    if signature is None:
        return list(records)
    if not isinstance(records, list):
        records = list(records)
    layout = _float_layout(signature)
    if layout is not None:
        # Exactly the signature's keys: as many keys as columns, and every column found.
        rows = None
        if set(map(len, records)) == {layout.width}:
            with contextlib.suppress(KeyError):
                rows = list(map(layout.row_of, records))
        # float and int only: NumPy would also take bools and numeric strings.
        if rows is not None and _NUMBER_TYPES.issuperset(
            map(type, itertools.chain.from_iterable(rows))
        ):
            try:
                matrix = np.array(rows, dtype=np.float64)
            except OverflowError:
                matrix = None
            if matrix is not None and np.isfinite(matrix).all():
                return matrix.reshape(len(records), layout.width)
    check_records(signature, records)
    return build_block(signature, records)


@dataclass(frozen=True, eq=False)
class PredictInputs:
    """A decoded predict request.

    Attributes:
        inputs: the inputs as the caller sent them, for the prediction log.
        records: one mapping per row.
        block: the rows already checked into a float matrix against ``signature``
            (the all-float fast path), or None.
        signature: what ``block`` was checked against.
    """

    inputs: Any
    records: Sequence[Mapping[str, Any]]
    block: np.ndarray | None = None
    signature: Signature | None = None

    def block_for(self, signature: Signature | None) -> Any:
        """The model input for ``signature``: the checked matrix when it fits, else built now.

        Raises:
            RequestProblemError: the records do not match ``signature``.
        """
        if self.block is not None and (self.signature is signature or self.signature == signature):
            return self.block
        return prepare_block(signature, self.records)


def decode_inputs(
    body: bytes, *, max_rows: int, signature: Signature | None = None
) -> PredictInputs:
    """Decode a predict body into its records (and, when it can, its model input).

    With an all-float ``signature``, a body of records or of columns is decoded
    straight into typed values and one matrix; a body that does not fit (a
    missing or extra field, a value of another type, columns of different
    lengths, too many rows) takes the general path, whose errors name every
    problem.

    Raises:
        RequestProblemError: see :func:`decode_predict`, :func:`records_of`,
            :func:`check_records`.
    """
    if signature is not None:
        layout = _float_layout(signature)
        if layout is not None:
            fast = layout.decode(body, max_rows)
            if fast is not None:
                return PredictInputs(fast[0], fast[1], fast[2], signature)
    decoded = decode_predict(body)
    return PredictInputs(decoded.inputs, records_of(decoded.inputs, max_rows=max_rows))


class _FloatRecords(Sequence[dict[str, Any]]):
    """Rows of floats seen as records: each becomes a dict only when it is asked for."""

    __slots__ = ("_names", "_rows")

    def __init__(self, rows: list[tuple[float, ...]], names: tuple[str, ...]) -> None:
        self._rows = rows
        self._names = names

    def __len__(self) -> int:
        return len(self._rows)

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...

    @overload
    def __getitem__(self, index: slice) -> list[dict[str, Any]]: ...

    def __getitem__(self, index: int | slice) -> dict[str, Any] | list[dict[str, Any]]:
        if isinstance(index, slice):
            return [self._record(row) for row in self._rows[index]]
        return self._record(self._rows[index])

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return map(self._record, self._rows)

    def _record(self, row: tuple[float, ...]) -> dict[str, Any]:
        return dict(zip(self._names, row, strict=True))


class _FloatLayout:
    """How records of one all-float signature become a matrix, from dicts or straight from JSON."""

    def __init__(self, names: Sequence[str]) -> None:
        self.names = tuple(names)
        self.width = len(self.names)
        if self.width == 1:  # itemgetter of one name returns the value, not a tuple
            name = self.names[0]

            def one(record: Mapping[str, Any]) -> tuple[Any, ...]:
                return (record[name],)

            self.row_of: Callable[[Mapping[str, Any]], tuple[Any, ...]] = one
        else:
            self.row_of = operator.itemgetter(*self.names)
        # Field names are positional (a column may be named anything); the JSON keys
        # are the column names. A float field takes JSON numbers only: ints become
        # floats, and bools, strings, nulls and numbers out of range are refused.
        fields = [f"f{i}" for i in range(self.width)]
        rename = dict(zip(fields, self.names, strict=True))
        row = msgspec.defstruct(
            "FloatRow",
            [(f, float) for f in fields],
            rename=rename,
            forbid_unknown_fields=True,
            gc=False,
        )
        columns = msgspec.defstruct(
            "FloatColumns",
            [(f, list[float]) for f in fields],
            rename=rename,
            forbid_unknown_fields=True,
        )
        one_or_many: Any = list[row] | row  # type: ignore[valid-type]
        self._rows: msgspec.json.Decoder[Any] = msgspec.json.Decoder(_body_type(one_or_many))
        self._columns: msgspec.json.Decoder[Any] = msgspec.json.Decoder(_body_type(columns))

    def decode(self, body: bytes, max_rows: int) -> tuple[Any, _FloatRecords, np.ndarray] | None:
        """The inputs, records and matrix of a body that fits, or None."""
        try:
            inputs = self._rows.decode(body).inputs
        except msgspec.DecodeError:
            inputs = None
        if inputs is None:
            return self._decode_columns(body, max_rows)
        structs = inputs if isinstance(inputs, list) else [inputs]
        if not structs or len(structs) > max_rows:
            return None
        rows = list(map(msgspec.structs.astuple, structs))
        count = len(rows) * self.width  # fromiter over the flat values: no shape discovery
        flat = np.fromiter(itertools.chain.from_iterable(rows), dtype=np.float64, count=count)
        matrix = flat.reshape(len(rows), self.width)
        if not np.isfinite(matrix).all():
            return None
        return inputs, _FloatRecords(rows, self.names), matrix

    def _decode_columns(
        self, body: bytes, max_rows: int
    ) -> tuple[Any, _FloatRecords, np.ndarray] | None:
        try:
            inputs = self._columns.decode(body).inputs
        except msgspec.DecodeError:
            return None
        columns = msgspec.structs.astuple(inputs)
        n = len(columns[0])
        if not n or n > max_rows or any(len(c) != n for c in columns):
            return None
        matrix = np.array(columns, dtype=np.float64).T.copy()
        if not np.isfinite(matrix).all():
            return None
        return inputs, _FloatRecords(list(zip(*columns, strict=True)), self.names), matrix


def _body_type(inputs: Any) -> Any:
    """A predict body whose ``inputs`` decode as ``inputs``."""
    return msgspec.defstruct("FloatPredictBody", [("inputs", inputs)], forbid_unknown_fields=True)


# id(signature) -> (signature, its float layout); the entry keeps the signature alive,
# so its id cannot be reused while it is cached. Bounded: models are few per worker.
_FLOAT_LAYOUTS: dict[int, tuple[Signature, _FloatLayout | None]] = {}
_NUMBER_TYPES = frozenset({float, int})


def _float_layout(signature: Signature) -> _FloatLayout | None:
    """The layout of an all-float, non-null signature; None for any other."""
    entry = _FLOAT_LAYOUTS.get(id(signature))
    if entry is not None and entry[0] is signature:
        return entry[1]
    layout: _FloatLayout | None = None
    if signature.inputs and all(c.kind == "float" and not c.nullable for c in signature.inputs):
        layout = _FloatLayout(signature.names)
    if len(_FLOAT_LAYOUTS) >= 256:
        _FLOAT_LAYOUTS.clear()
    _FLOAT_LAYOUTS[id(signature)] = (signature, layout)
    return layout


def warm_record(signature: Signature | None) -> dict[str, Any]:
    """Return a plausible record for warming a model up (middle of ranges, first category)."""
    if signature is None:
        return {}
    record: dict[str, Any] = {}
    for spec in signature.inputs:
        record[spec.name] = _warm_value(spec)
    return record


def _warm_value(spec: ColumnSpec) -> Any:
    kind = spec.kind
    middle = (spec.min + spec.max) / 2 if spec.min is not None and spec.max is not None else 0.0
    if kind == "float":
        return float(middle)
    if kind == "integer":
        return round(middle)
    if kind == "boolean":
        return False
    if kind == "string":
        return str(spec.categories[0]) if spec.categories else ""
    return None


def as_mapping(value: object) -> Mapping[str, Any] | None:
    """Return ``value`` if it is a mapping, else None (for the sticky key's record)."""
    return value if isinstance(value, Mapping) else None
