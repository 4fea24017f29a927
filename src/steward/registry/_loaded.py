"""A model loaded from the registry: predictions with the signature enforced on every call."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from steward.core import InvalidInputError
from steward.registry._inputs import is_dataframe
from steward.registry._models import ModelVersion
from steward.registry._signatures import Signature, SignatureError
from steward.registry.flavors import Flavor

__all__ = ["LoadedModel", "model_input"]

ArtifactKind = Literal["native", "onnx"]


def model_input(
    signature: Signature, data: Any, *, ref: str | None = None, check_ranges: bool = False
) -> Any:
    """Check ``data`` against ``signature``; return it in the container the model was fitted on.

    A model fitted on a plain array gets a 2-D array with the columns in signature
    order (its dtype the signature's common numeric type); one fitted on a
    DataFrame gets a DataFrame with the signature's columns, in order.

    Raises:
        SignatureError: the input does not match (every bad column named).
    """
    columns = signature.check(data, ref=ref, check_ranges=check_ranges)
    if signature.input_format == "ndarray":
        matrix = np.column_stack([c.values for c in columns])
        kinds = {c.kind for c in signature.inputs}
        if kinds <= {"float", "integer", "boolean"}:
            wanted = np.result_type(*(np.dtype(c.dtype) for c in signature.inputs))
            if wanted.kind in "iub" and np.isnan(matrix.astype(float)).any():
                wanted = np.dtype("float64")  # nulls in integer columns: NaN needs floats
            return matrix.astype(wanted, copy=False)
        return matrix
    if is_dataframe(data):
        return data if list(data.columns) == signature.names else data[signature.names]
    import pandas as pd

    return pd.DataFrame({c.name: c.values for c in columns})


class LoadedModel:
    """A verified, deserialized model version; inputs are checked against its signature.

    Input may be a pandas DataFrame, a pyarrow Table, a dict of columns, a list
    of records or a 2-D NumPy array (read positionally, in signature order). It
    reaches the model in the container the model was fitted on.

    Example:
        >>> model = registry.load("fraud@champion")  # doctest: +SKIP
        >>> model.predict_proba(frame)[:, 1]  # doctest: +SKIP
    """

    def __init__(
        self,
        model: object,
        *,
        flavor: Flavor,
        version: ModelVersion,
        artifact: ArtifactKind = "native",
        check_ranges: bool = False,
    ) -> None:
        self.model = model
        self._flavor = flavor
        self.version = version
        self.signature: Signature | None = version.signature
        self.artifact: ArtifactKind = artifact
        self.check_ranges = check_ranges
        self._array_dtype: np.dtype[Any] | None = None
        self._strict = np.zeros(0, dtype=bool)
        sig = self.signature
        if sig is not None and sig.input_format == "ndarray":
            if {c.kind for c in sig.inputs} <= {"float"}:  # the fast path: an all-float matrix
                self._array_dtype = np.result_type(*(np.dtype(c.dtype) for c in sig.inputs))
            self._strict = np.array([not c.nullable for c in sig.inputs])

    def __repr__(self) -> str:
        return (
            f"LoadedModel({self.version.ref}, flavor={self.flavor!r}, artifact={self.artifact!r})"
        )

    @property
    def flavor(self) -> str:
        """The flavor the model was loaded with (``onnx`` for a compiled artifact)."""
        return self._flavor.name

    def prepare(self, data: Any) -> Any:
        """Check ``data`` against the signature and convert it to the model's input.

        Raises:
            SignatureError: columns are missing, unexpected, mistyped or hold
                forbidden nulls; the message names each.
            InvalidInputError: ``data`` is not a container steward can read.
        """
        sig = self.signature
        if sig is None:
            return data
        ref = self.version.ref
        if (
            self._array_dtype is not None
            and isinstance(data, np.ndarray)
            and data.ndim == 2
            and data.shape[1] == len(sig.inputs)
            and data.dtype.kind in "fiu"
            and not self.check_ranges
        ):
            return self._prepare_matrix(data, sig, ref)
        return model_input(sig, data, ref=ref, check_ranges=self.check_ranges)

    def _prepare_matrix(self, data: np.ndarray, sig: Signature, ref: str) -> np.ndarray:
        if data.dtype.kind == "f":
            holes = np.isnan(data).any(axis=0) & self._strict
            if holes.any():
                problems = [
                    (c.name, f"column {c.name!r}: null value(s) but the column is not nullable")
                    for c, bad in zip(sig.inputs, holes, strict=True)
                    if bad
                ]
                raise SignatureError(problems, ref)
        return data.astype(self._array_dtype, copy=False)

    def predict(self, data: Any) -> np.ndarray:
        """Return predictions for ``data`` (labels for a classifier).

        Raises:
            SignatureError: the input does not match the signature.
        """
        return self._flavor.predict(self.model, self.prepare(data))

    def predict_proba(self, data: Any) -> np.ndarray:
        """Return class probabilities for ``data``, one column per class.

        Raises:
            InvalidInputError: the model has no probabilities (e.g. a regressor).
            SignatureError: the input does not match the signature.
        """
        method = getattr(self.model, "predict_proba", None)
        if not callable(method):
            raise InvalidInputError(
                f"{self.version.ref} ({type(self.model).__name__}) has no predict_proba; "
                "use predict()"
            )
        return np.asarray(method(self.prepare(data)))

    def describe(self) -> dict[str, Any]:
        """Facts about the model from its flavor, with the version and artifact kind."""
        return {
            "ref": self.version.ref,
            "flavor": self.flavor,
            "artifact": self.artifact,
            **self._flavor.describe(self.model),
        }
