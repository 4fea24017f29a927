"""Hostile model files: a pickle smuggled into a skops archive, stranger types, fake archives.

Each payload, if it ever ran, would create the folder ``marker``; tests assert it never does.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import skops.io
from sklearn.preprocessing import StandardScaler


class MakeDir:
    """Unpickling this calls ``os.mkdir(path)``."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.mkdir, (self.path,))


def clip_negative(values: np.ndarray) -> np.ndarray:
    """A user function a pipeline may hold (a type skops leaves to the caller to trust)."""
    return np.clip(values, 0, None)


def pickle_payload(marker: Path) -> bytes:
    """A plain pickle that creates ``marker`` when loaded."""
    return pickle.dumps(MakeDir(marker))


def _rewrite(archive: bytes, replace: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(archive)) as src, zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            dst.writestr(name, replace.get(name, src.read(name)))
    return out.getvalue()


def skops_with_pickled_array(marker: Path) -> bytes:
    """A genuine skops file whose ``mean_`` array file holds an object array (a pickle)."""
    archive = skops.io.dumps(StandardScaler().fit(np.random.default_rng(0).random((10, 2))))
    schema = json.loads(zipfile.ZipFile(io.BytesIO(archive)).read("schema.json"))
    target = schema["content"]["content"]["mean_"]["file"]
    payload = io.BytesIO()
    np.save(payload, np.array([MakeDir(marker)], dtype=object), allow_pickle=True)
    return _rewrite(archive, {target: payload.getvalue()})


def skops_with_type(module: str, name: str) -> bytes:
    """A skops file whose root object claims to be ``module.name``."""
    archive = skops.io.dumps(StandardScaler().fit(np.random.default_rng(0).random((10, 2))))
    schema = json.loads(zipfile.ZipFile(io.BytesIO(archive)).read("schema.json"))
    schema["__module__"], schema["__class__"] = module, name
    return _rewrite(archive, {"schema.json": json.dumps(schema).encode()})
