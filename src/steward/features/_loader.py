"""Load definitions from a ``features.py`` file or a package folder.

The module (or every module of the package) is imported under a private name
and every :class:`Entity`, source, :class:`FeatureView` and
:class:`FeatureService` bound at module level is collected.  Relative source
paths are resolved against the folder that holds the definitions, so the
registered paths do not depend on where ``steward features apply`` ran.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

from steward.core import new_id
from steward.features._definitions import (
    Definitions,
    Entity,
    FeatureService,
    FeatureView,
    FileSource,
    QuerySource,
)
from steward.features._errors import FeatureDefinitionError

__all__ = ["load_definitions", "resolve_paths"]


def load_definitions(path: str | Path) -> Definitions:
    """Import a ``features.py`` file or a package folder and collect its definitions.

    Example:
        >>> defs = load_definitions("features.py")  # doctest: +SKIP
        >>> sorted(defs.views)  # doctest: +SKIP
        ['customer_profile', 'transaction_windows']

    Raises:
        FeatureDefinitionError: the path does not exist, fails to import, defines
            nothing, or its definitions break a rule.
    """
    target = Path(path).expanduser().absolute()
    if not target.exists():
        raise FeatureDefinitionError(
            f"no feature definitions at {str(path)!r}: pass a features.py file or a package "
            "folder (or set STEWARD_FEATURE_REPO)"
        )
    objects: list[Any] = []
    for module in _import(target):
        objects.extend(vars(module).values())
    definitions = Definitions(
        entities=[o for o in objects if isinstance(o, Entity)],
        sources=[o for o in objects if isinstance(o, FileSource | QuerySource)],
        views=[o for o in objects if isinstance(o, FeatureView)],
        services=[o for o in objects if isinstance(o, FeatureService)],
    )
    if not (definitions.views or definitions.entities or definitions.services):
        raise FeatureDefinitionError(
            f"{str(path)!r} defines no Entity, FeatureView or FeatureService at module level"
        )
    base = target if target.is_dir() else target.parent
    return resolve_paths(definitions, base)


def resolve_paths(definitions: Definitions, base: Path) -> Definitions:
    """Return ``definitions`` with relative file-source paths made absolute against ``base``.

    URLs (``s3://...``) and absolute paths are kept as they are.
    """
    data = definitions.to_dict()
    for source in data["sources"]:
        if source["kind"] == "file" and "://" not in source["path"]:
            source["path"] = str((base / source["path"]).absolute())
    return Definitions.from_dict(data)


def _import(target: Path) -> Iterator[ModuleType]:
    if target.is_file():
        yield _load(f"_steward_features_{new_id()}", target)
        return
    files = sorted(p for p in target.rglob("*.py") if "__pycache__" not in p.parts)
    if not files:
        raise FeatureDefinitionError(f"folder {str(target)!r} holds no .py files to load")
    init = target / "__init__.py"
    if init.is_file():
        # A package: import it under a private name so relative imports work.
        package = f"_steward_features_{new_id()}"
        yield _load(package, init, search=[str(target)])
        for file in files:
            if file == init:
                continue
            parts = file.relative_to(target).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            name = ".".join((package, *parts))
            if name not in sys.modules:
                yield _load(name, file)
            else:
                yield sys.modules[name]
        return
    for file in files:
        yield _load(f"_steward_features_{new_id()}", file)


def _load(name: str, file: Path, search: list[str] | None = None) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, file, submodule_search_locations=search)
    if spec is None or spec.loader is None:
        raise FeatureDefinitionError(f"cannot import {str(file)!r} as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except FeatureDefinitionError as exc:
        sys.modules.pop(name, None)
        raise FeatureDefinitionError(f"{file.name}: {exc}") from exc
    except Exception as exc:  # the user's code: report any failure with its file
        sys.modules.pop(name, None)
        raise FeatureDefinitionError(
            f"importing {str(file)!r} failed: {type(exc).__name__}: {exc}"
        ) from exc
    return module
