"""A model version's bytes: flavor files stored content-addressed, tied together by a manifest.

The manifest is canonical JSON stored as an artifact itself; its digest is the
version's ``artifact_digest``::

    {"format": "steward.model/1", "flavor": "sklearn",
     "metadata": {...what the flavor needs to load...},
     "files": {"model.skops": {"digest": "ab12...", "size": 20480}}}

Loading fetches the manifest and every file through the artifact store, which
verifies each digest as it reads: a changed byte anywhere raises
:class:`IntegrityError` before any file reaches the flavor.
"""

from __future__ import annotations

import io
import json
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from steward.core import IntegrityError, canonical_json
from steward.registry._inputs import Column, columns_of
from steward.registry.flavors import Flavor, json_safe
from steward.store import ArtifactStore

__all__ = [
    "MANIFEST_FORMAT",
    "StoredModel",
    "load_example",
    "load_model",
    "read_manifest",
    "save_model",
    "store_example",
]

MANIFEST_FORMAT = "steward.model/1"


@dataclass(frozen=True, slots=True)
class StoredModel:
    """A model saved into the artifact store: manifest digest, total size, metadata, description."""

    digest: str
    size: int
    flavor: str
    metadata: dict[str, Any]
    described: dict[str, Any]


def save_model(artifacts: ArtifactStore, flavor: Flavor, model: object) -> StoredModel:
    """Save ``model`` with ``flavor`` and store its files and manifest.

    Raises:
        The flavor's errors (e.g. InvalidInputError for a model it cannot save).
    """
    with tempfile.TemporaryDirectory(prefix="steward-model-") as folder:
        root = Path(folder)
        metadata = flavor.save(model, root)
        described = json_safe(flavor.describe(model))
        files: dict[str, dict[str, Any]] = {}
        for path in sorted(p for p in root.rglob("*") if p.is_file()):
            info = artifacts.put(path)
            files[path.relative_to(root).as_posix()] = {"digest": info.digest, "size": info.size}
    manifest = {
        "format": MANIFEST_FORMAT,
        "flavor": flavor.name,
        "metadata": metadata,
        "model": described,
        "files": files,
    }
    stored = artifacts.put(canonical_json(manifest).encode("utf-8"))
    size = sum(int(f["size"]) for f in files.values())
    return StoredModel(stored.digest, size, flavor.name, metadata, described)


def _verified(artifacts: ArtifactStore, digest: str, *, what: str) -> bytes:
    """Return an artifact's bytes once they match ``digest``; name the version otherwise."""
    try:
        return artifacts.get(digest)
    except IntegrityError as exc:  # keeps the class (EncryptionKeyError stays one)
        raise type(exc)(f"{what}: {exc}; nothing was loaded") from exc


def read_manifest(artifacts: ArtifactStore, digest: str, *, what: str) -> dict[str, Any]:
    """Fetch and check a manifest (its bytes are verified against ``digest``).

    Raises:
        IntegrityError: the bytes do not match, or are not a manifest.
    """
    data = _verified(artifacts, digest, what=what)
    try:
        manifest = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IntegrityError(f"the manifest of {what} is not JSON: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
        raise IntegrityError(f"the artifact of {what} is not a {MANIFEST_FORMAT} manifest")
    files = manifest.get("files")
    if not isinstance(files, dict) or not isinstance(manifest.get("metadata"), dict):
        raise IntegrityError(f"the manifest of {what} lacks its files or metadata")
    for name in files:
        path = PurePosixPath(name)
        if path.is_absolute() or ".." in path.parts or not path.parts:
            raise IntegrityError(f"the manifest of {what} names an unsafe path {name!r}")
    return manifest


def load_model(
    artifacts: ArtifactStore, digest: str, flavor: Flavor, *, what: str
) -> tuple[object, dict[str, Any]]:
    """Fetch a stored model, verifying every byte, then hand it to its flavor.

    Returns:
        The loaded model and the manifest.

    Raises:
        IntegrityError: a digest does not match, or the manifest is not this flavor's.
        The flavor's own errors (PermissionDeniedError for untrusted content).
    """
    manifest = read_manifest(artifacts, digest, what=what)
    if manifest.get("flavor") != flavor.name:
        raise IntegrityError(
            f"the manifest of {what} is of flavor {manifest.get('flavor')!r}, "
            f"recorded as {flavor.name!r}"
        )
    with tempfile.TemporaryDirectory(prefix="steward-load-") as folder:
        root = Path(folder)
        for name, info in manifest["files"].items():
            target = root / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(_verified(artifacts, str(info["digest"]), what=what))
        return flavor.load(root, manifest["metadata"]), manifest


def _example_table(columns: Sequence[Column]) -> pa.Table:
    arrays = {}
    for column in columns:
        values = column.values
        if column.kind == "integer" and column.nulls:
            mask = np.isnan(values)
            arrays[column.name] = pa.array(np.where(mask, 0, values).astype("int64"), mask=mask)
        else:
            arrays[column.name] = pa.array(values, from_pandas=True)
    return pa.table(arrays)


def store_example(
    artifacts: ArtifactStore, sample: Any, *, names: Sequence[str] | None, rows: int
) -> str | None:
    """Keep the first ``rows`` rows of a sample input as Parquet; return its digest.

    Returns None when ``rows`` is 0 or the sample cannot be written as a table.
    """
    if rows <= 0:
        return None
    columns = columns_of(sample, names=names)
    head = [Column(c.name, c.dtype, c.kind, c.values[:rows], c.nulls) for c in columns]
    try:
        table = _example_table(head)
    except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError):
        return None  # e.g. mixed-type object columns: the example is a convenience
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return artifacts.put(buffer.getvalue()).digest


def load_example(artifacts: ArtifactStore, digest: str, *, as_array: bool) -> Any:
    """Read an input example back: a 2-D float array, or a pandas DataFrame.

    Raises:
        IntegrityError: the bytes do not match their digest or are not Parquet.
    """
    try:
        table = pq.read_table(io.BytesIO(artifacts.get(digest)))
    except pa.ArrowInvalid as exc:
        raise IntegrityError(f"input example {digest} is not Parquet: {exc}") from None
    if as_array:
        return np.column_stack(
            [table.column(i).to_numpy(zero_copy_only=False) for i in range(table.num_columns)]
        )
    return table.to_pandas()
