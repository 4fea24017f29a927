"""Read an MLflow model directory (its ``MLmodel`` file) without importing MLflow.

``mlflow.<flavor>.save_model`` (or ``log_model``) writes a directory like::

    model/
    ├── MLmodel                   YAML: flavors, signature, run_id, model_uuid, ...
    ├── model.skops | model.pkl   the sklearn flavor's ``pickled_model``
    ├── model.onnx (+ *.data)     the onnx flavor's ``data`` (weights may sit beside it)
    ├── input_example.json        ``saved_input_example_info``
    └── conda.yaml, python_env.yaml, requirements.txt, ...

:func:`read_mlflow_model` reads the ``sklearn`` and ``onnx`` flavors:

- ``sklearn`` with ``serialization_format: skops`` is loaded through the sklearn
  flavor's trusted-types check (nothing is built before every type is trusted);
  ``pickle`` and ``cloudpickle`` run arbitrary code when loaded, so they are read
  only with ``unsafe=True`` (``steward import mlflow --unsafe``).
- ``onnx`` returns the graph's bytes, with weights MLflow stored as external data
  folded back in, so the bytes stand alone.

Everything in the directory is hostile until proven otherwise: YAML aliases (which
MLflow never writes) are refused, paths must stay inside the directory (symlinks
included), and the MLmodel file and input example have size limits.
"""

from __future__ import annotations

import json
import os
import pickle
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml

from steward.core import InvalidInputError, NotFoundError, PermissionDeniedError, sha256_file
from steward.registry.flavors import SklearnFlavor, require

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["MlflowModel", "read_mlflow_model"]

MLMODEL = "MLmodel"
FLAVORS = ("sklearn", "onnx")  # in the order one is picked when a model has both
MAX_MLMODEL_BYTES = 1024 * 1024
MAX_EXAMPLE_BYTES = 16 * 1024 * 1024
MAX_FILES = 10_000
_PICKLE_FORMATS = ("pickle", "cloudpickle")


@dataclass(frozen=True)
class MlflowModel:
    """An MLflow model read from its directory.

    Attributes:
        flavor: ``"sklearn"`` or ``"onnx"``.
        model: the estimator (sklearn) or the standalone ONNX bytes (onnx).
        run_id: the MLflow run that logged the model, when recorded.
        model_uuid: MLflow's id of the model.
        mlflow_version: the MLflow version that wrote it.
        utc_time_created: when it was written (UTC), when recorded.
        signature_inputs: MLflow's input column or tensor specs, parsed from JSON.
        signature_outputs: MLflow's output specs, parsed from JSON.
        input_example: the saved input example, when one is present: a DataFrame
            for MLflow's ``dataframe`` examples, a 2-D numeric array for ``ndarray``
            ones (they have no column names), else ``None``.
        source_files: every file of the directory, relative path -> SHA-256.
        raw: the MLmodel document as parsed.
        model_file: the model's file, relative to the directory.
        serialization_format: ``skops``, ``pickle`` or ``cloudpickle`` (sklearn), else ``None``.
        path: the directory read.
    """

    flavor: str
    model: object
    run_id: str | None
    model_uuid: str | None
    mlflow_version: str | None
    utc_time_created: datetime | None
    signature_inputs: list[dict[str, Any]] | None
    signature_outputs: list[dict[str, Any]] | None
    input_example: pd.DataFrame | np.ndarray | None
    source_files: dict[str, str]
    raw: dict[str, Any]
    model_file: str = ""
    serialization_format: str | None = None
    path: Path | None = None


def read_mlflow_model(
    path: str | os.PathLike[str],
    *,
    unsafe: bool = False,
    flavor: str | None = None,
    trusted_types: Iterable[str] = (),
) -> MlflowModel:
    """Read the MLflow model in directory ``path`` (or ``path`` naming its MLmodel file).

    Args:
        path: the directory ``mlflow.*.save_model`` wrote, the one holding ``MLmodel``.
        unsafe: load sklearn models MLflow pickled (``pickle``/``cloudpickle``); this
            runs whatever code the file holds, so only for files from a trusted source.
        flavor: ``"sklearn"`` or ``"onnx"`` to pick one when the model has both.
        trusted_types: type names trusted in skops files on top of the defaults.

    Returns:
        The model, its MLflow metadata and the digests of its files.

    Raises:
        NotFoundError: no such directory, no MLmodel in it, or the model file is missing.
        InvalidInputError: the MLmodel file is malformed (with its line), too large,
            has no flavor steward reads (the message lists those it has), or a path
            in it leaves the directory.
        PermissionDeniedError: the model is pickled and ``unsafe`` is not set, or a
            skops file names types that are not trusted.
        ConfigurationError: the ``ml`` or ``onnx`` extra needed to load it is missing.

    Example:
        >>> found = read_mlflow_model("mlruns/0/models/m-1a2b/artifacts")  # doctest: +SKIP
        >>> found.flavor, found.run_id  # doctest: +SKIP
        ('sklearn', '55db457f7d0a47f090b485616d958814')
    """
    root = _model_directory(Path(path))
    raw = _read_mlmodel(root / MLMODEL)
    chosen = _pick_flavor(root, raw, flavor)
    config = raw["flavors"][chosen]
    source_files = _digests(root)
    if chosen == "sklearn":
        model_file, fmt = _sklearn_file(config)
        model = _load_sklearn(root, model_file, fmt, unsafe=unsafe, trusted=trusted_types)
    else:
        model_file, fmt = _text(config.get("data", "model.onnx"), "flavors.onnx.data"), None
        model = _load_onnx(root, model_file)
    signature = raw.get("signature")
    if not isinstance(signature, Mapping):
        signature = {}
    return MlflowModel(
        flavor=chosen,
        model=model,
        run_id=_optional_text(raw.get("run_id"), "run_id"),
        model_uuid=_optional_text(raw.get("model_uuid"), "model_uuid"),
        mlflow_version=_optional_text(raw.get("mlflow_version"), "mlflow_version"),
        utc_time_created=_created(raw),
        signature_inputs=_specs(signature.get("inputs"), "signature.inputs"),
        signature_outputs=_specs(signature.get("outputs"), "signature.outputs"),
        input_example=_input_example(root, raw.get("saved_input_example_info")),
        source_files=source_files,
        raw=raw,
        model_file=model_file,
        serialization_format=fmt,
        path=root,
    )


# -- the directory and its MLmodel --------------------------------------------------------


def _model_directory(path: Path) -> Path:
    if path.name == MLMODEL and path.is_file():
        path = path.parent
    if not path.exists():
        raise NotFoundError(f"no MLflow model at {path}: the path does not exist")
    if not path.is_dir():
        raise InvalidInputError(
            f"{path} is a file; pass the MLflow model directory (the one holding {MLMODEL})"
        )
    if not (path / MLMODEL).is_file():
        hint = ""
        if (path / "artifacts" / MLMODEL).is_file():
            hint = f"; the model is in {path / 'artifacts'}"
        raise NotFoundError(
            f"{path} has no {MLMODEL} file, so it is not an MLflow model directory; pass the "
            f"directory mlflow.<flavor>.save_model wrote{hint}"
        )
    return path.resolve()


class _NoAliasLoader(yaml.SafeLoader):
    """Safe YAML that refuses anchors and aliases (an alias bomb expands to gigabytes)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
            raise yaml.composer.ComposerError(
                None, None, "YAML aliases are not allowed in MLmodel", mark
            )
        return super().compose_node(parent, index)


def _read_mlmodel(path: Path) -> dict[str, Any]:
    size = path.stat().st_size
    if size > MAX_MLMODEL_BYTES:
        raise InvalidInputError(
            f"{path} is {size:,} bytes; an MLmodel file is at most {MAX_MLMODEL_BYTES:,} "
            "(MLflow writes a few kilobytes)"
        )
    try:
        document = yaml.load(path.read_text(encoding="utf-8"), Loader=_NoAliasLoader)
    except UnicodeDecodeError as exc:
        raise InvalidInputError(f"{path} is not UTF-8 text ({exc.reason})") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise InvalidInputError(f"{path} is not valid YAML{where}: {problem}") from None
    if not isinstance(document, dict):
        raise InvalidInputError(
            f"{path} must be a YAML mapping (flavors, run_id, ...), got {type(document).__name__}"
        )
    if not isinstance(document.get("flavors"), dict) or not document["flavors"]:
        raise InvalidInputError(f"{path} has no 'flavors' mapping; MLflow writes one per model")
    return document


def _pick_flavor(root: Path, raw: Mapping[str, Any], wanted: str | None) -> str:
    found = list(raw["flavors"])
    if wanted is not None and wanted not in FLAVORS:
        raise InvalidInputError(f"flavor must be one of {', '.join(FLAVORS)}, got {wanted!r}")
    candidates = [wanted] if wanted else [f for f in FLAVORS if f in found]
    for name in candidates:
        if name in found:
            if not isinstance(raw["flavors"][name], dict):
                raise InvalidInputError(f"{root / MLMODEL}: flavors.{name} must be a mapping")
            return name
    raise InvalidInputError(
        f"the MLflow model at {root} has flavors {', '.join(map(str, found))}; steward "
        f"imports {' or '.join(FLAVORS)}"
        + (f", and {wanted!r} is not among them" if wanted else "")
    )


def _inside(root: Path, relative: str, what: str) -> Path:
    """Return ``root / relative`` if it stays inside ``root`` (symlinks resolved)."""
    candidate = Path(relative)
    try:
        resolved = (root / candidate).resolve()
    except (OSError, RuntimeError) as exc:  # a symlink loop
        raise InvalidInputError(f"{what} {relative!r} cannot be resolved: {exc}") from None
    if candidate.is_absolute() or not resolved.is_relative_to(root):
        raise InvalidInputError(
            f"{what} {relative!r} points outside the model directory {root}; refusing to read it"
        )
    return resolved


def _walk_files(root: Path) -> Iterator[Path]:
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            yield Path(folder) / name
        for name in dirs:
            if (Path(folder) / name).is_symlink():  # os.walk does not follow it: check it
                yield Path(folder) / name


def _digests(root: Path) -> dict[str, str]:
    digests: dict[str, str] = {}
    for path in _walk_files(root):
        relative = path.relative_to(root).as_posix()
        target = _inside(root, relative, "file")
        if target.is_dir():
            continue  # a symlink to a folder inside the directory: its files are listed there
        if not target.is_file():  # a FIFO or device would block or never end
            raise InvalidInputError(f"{relative!r} in {root} is not a regular file")
        if len(digests) >= MAX_FILES:
            raise InvalidInputError(
                f"the MLflow model at {root} holds more than {MAX_FILES:,} files; an MLflow "
                "model directory holds a handful"
            )
        digests[relative], _ = sha256_file(str(target))
    return digests


# -- fields -------------------------------------------------------------------------------


def _text(value: object, field: str) -> str:
    if not isinstance(value, str) or not value:
        raise InvalidInputError(f"MLmodel field {field} must be a file name, got {value!r}")
    return value


def _optional_text(value: object, field: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool | dict | list):
        raise InvalidInputError(f"MLmodel field {field} must be text, got {value!r}")
    return str(value)


def _created(raw: Mapping[str, Any]) -> datetime | None:
    value = raw.get("utc_time_created", raw.get("time_created"))
    if value is None:
        return None
    if isinstance(value, datetime):
        stamp = value
    else:
        try:
            stamp = datetime.fromisoformat(str(value))
        except ValueError:
            raise InvalidInputError(
                f"MLmodel field utc_time_created must be a date and time like "
                f"'2024-05-01 12:30:00.123456', got {value!r}"
            ) from None
    return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)


def _specs(value: object, field: str) -> list[dict[str, Any]] | None:
    """Parse a signature part: MLflow stores a JSON list of column or tensor specs as text."""
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise InvalidInputError(
                f"MLmodel field {field} is not valid JSON ({exc.msg} at character {exc.pos})"
            ) from None
    if not isinstance(value, list) or not all(isinstance(spec, dict) for spec in value):
        raise InvalidInputError(
            f"MLmodel field {field} must be a list of column or tensor specs, got {value!r:.80}"
        )
    return value


# -- the model ----------------------------------------------------------------------------


def _sklearn_file(config: Mapping[str, Any]) -> tuple[str, str]:
    model_file = _text(config.get("pickled_model"), "flavors.sklearn.pickled_model")
    # MLflow's own default when the field is absent (models written before it existed).
    fmt = config.get("serialization_format") or "pickle"
    if fmt not in ("skops", *_PICKLE_FORMATS):
        raise InvalidInputError(
            f"flavors.sklearn.serialization_format {fmt!r} is not one steward reads: "
            "skops, or pickle/cloudpickle with --unsafe"
        )
    return model_file, str(fmt)


def _model_path(root: Path, relative: str, flavor: str) -> Path:
    path = _inside(root, relative, f"the {flavor} model file")
    if not path.is_file():
        raise NotFoundError(
            f"the MLflow model at {root} names {relative!r} as its {flavor} model, but there "
            "is no such file; copy the whole directory MLflow wrote"
        )
    return path


def _load_sklearn(
    root: Path, relative: str, fmt: str, *, unsafe: bool, trusted: Iterable[str]
) -> object:
    path = _model_path(root, relative, "sklearn")
    if fmt == "skops":
        flavor = SklearnFlavor(trusted)
        return flavor.load_bytes(path.read_bytes(), what=f"MLflow sklearn model {relative!r}")
    if not unsafe:
        raise PermissionDeniedError(
            f"the MLflow model at {root} stores its sklearn model as {fmt} ({relative}), and "
            "loading a pickle runs whatever code it holds. Import it with --unsafe "
            "(unsafe=True) only if you trust where it came from, or re-save it in MLflow with "
            "serialization_format='skops'"
        )
    require("sklearn", flavor="sklearn", extra="ml")
    try:
        with path.open("rb") as handle:
            return pickle.load(handle)  # the caller opted in: unsafe=True
    except ImportError as exc:
        raise InvalidInputError(
            f"the pickled model {relative!r} needs the module {exc.name!r}, which is not "
            "installed here"
        ) from None
    except (pickle.UnpicklingError, EOFError, AttributeError, IndexError, TypeError) as exc:
        raise InvalidInputError(
            f"the pickled model {relative!r} could not be loaded ({type(exc).__name__}: {exc})"
        ) from None


def _tensors(graph: Any) -> Iterator[Any]:
    yield from graph.initializer
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.HasField("t"):
                yield attribute.t
            yield from attribute.tensors
            if attribute.HasField("g"):
                yield from _tensors(attribute.g)
            for subgraph in attribute.graphs:
                yield from _tensors(subgraph)


def _load_onnx(root: Path, relative: str) -> bytes:
    onnx = require("onnx", flavor="onnx", extra="onnx")
    path = _model_path(root, relative, "onnx")
    content = path.read_bytes()
    try:
        proto = onnx.load_model_from_string(content)
    except Exception as exc:  # protobuf's DecodeError, and whatever onnx wraps it in
        raise InvalidInputError(f"{relative!r} is not an ONNX model ({exc})") from None
    external = [t for t in _tensors(proto.graph) if t.data_location == onnx.TensorProto.EXTERNAL]
    if not external:
        return content
    for tensor in external:
        entries = {entry.key: entry.value for entry in tensor.external_data}
        location = entries.get("location", "")
        _model_path(path.parent, location, "onnx external data")
        _inside(root, (path.parent / location).relative_to(root).as_posix(), "external data")
    onnx.external_data_helper.load_external_data_for_model(proto, str(path.parent))
    try:
        return bytes(proto.SerializeToString())
    except ValueError as exc:  # protobuf refuses messages over 2 GB
        raise InvalidInputError(
            f"{relative!r} with its external data is too large for one ONNX file: {exc}"
        ) from None


# -- the input example --------------------------------------------------------------------


def _input_example(root: Path, info: object) -> pd.DataFrame | np.ndarray | None:
    if not isinstance(info, Mapping) or not info.get("artifact_path"):
        return None
    relative = _text(info["artifact_path"], "saved_input_example_info.artifact_path")
    path = _inside(root, relative, "the input example")
    if not path.is_file():
        raise NotFoundError(
            f"MLmodel names the input example {relative!r}, but there is no such file in {root}"
        )
    size = path.stat().st_size
    if size > MAX_EXAMPLE_BYTES:
        raise InvalidInputError(
            f"the input example {relative!r} is {size:,} bytes; at most {MAX_EXAMPLE_BYTES:,}"
        )
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInputError(
            f"the input example {relative!r} is not valid JSON: {exc}"
        ) from None
    try:
        return _example_frame(content, info.get("type"), info.get("pandas_orient", "split"))
    except (ValueError, TypeError, KeyError) as exc:
        raise InvalidInputError(
            f"the input example {relative!r} does not match its type {info.get('type')!r}: {exc}"
        ) from None


def _example_frame(content: Any, kind: object, orient: object) -> pd.DataFrame | np.ndarray | None:
    import pandas as pd

    if kind == "dataframe":
        if orient == "records":
            return pd.DataFrame.from_records(content)
        if isinstance(content, dict) and "data" in content:
            return pd.DataFrame(content["data"], columns=content.get("columns"))
        raise ValueError("a 'split' example needs 'columns' and 'data'")
    if kind == "ndarray":
        values = content.get("inputs", content) if isinstance(content, dict) else content
        if isinstance(values, dict) and len(values) == 1:  # one named tensor
            (values,) = values.values()
        array = np.asarray(values)
        return array if array.ndim == 2 and array.dtype.kind in "iufb" else None
    return None  # json_object, sparse, multi-tensor examples: kept in the files only
