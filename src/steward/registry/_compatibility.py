"""Signature compatibility: does a new version still serve the old version's callers?

``check_compatibility(old, new)`` classifies the change and says why::

    amount: int64 → float64            additive  (a wider type: old requests still pass)
    new required input 'age'           breaking  (old requests lack it)
    training range 0..900 → 0..1200    a note    (statistics, never a level)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from steward.registry._inputs import kind_of_dtype
from steward.registry._signatures import Signature

__all__ = ["Compatibility", "CompatibilityLevel", "check_compatibility"]

CompatibilityLevel = Literal["compatible", "additive", "breaking"]

_WIDENING = {
    ("int8", "int16"),
    ("int8", "int32"),
    ("int8", "int64"),
    ("int16", "int32"),
    ("int16", "int64"),
    ("int32", "int64"),
    ("float16", "float32"),
    ("float16", "float64"),
    ("float32", "float64"),
}


@dataclass(frozen=True, slots=True)
class Compatibility:
    """How a new signature relates to an old one, from the side of the old one's callers.

    ``compatible``: every request the old version accepted is accepted the same way
    and the outputs are the same. ``additive``: old requests still work and old
    outputs are still there, but the new version accepts or returns more (a wider
    type, a nullable column, a new output). ``breaking``: some old request or some
    consumer of the old outputs would fail. ``reasons`` explain the level;
    ``notes`` list differences that do not change it (training ranges, categories).
    """

    level: CompatibilityLevel
    reasons: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def breaking(self) -> bool:
        """True when the change is breaking."""
        return self.level == "breaking"

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly view."""
        return {"level": self.level, "reasons": list(self.reasons), "notes": list(self.notes)}


def _widens(old: str, new: str) -> bool:
    if (old, new) in _WIDENING:
        return True
    return (kind_of_dtype(old), kind_of_dtype(new)) == ("integer", "float")


def _compare_inputs(old: Signature, new: Signature, out: dict[str, list[str]]) -> None:
    old_by, new_by = {c.name: c for c in old.inputs}, {c.name: c for c in new.inputs}
    for name in new_by.keys() - old_by.keys():
        out["breaking"].append(f"new input {name!r} is required; old requests lack it")
    for name in old_by.keys() - new_by.keys():
        out["breaking"].append(f"input {name!r} was removed; old requests that send it are refused")
    for name in [n for n in old.names if n in new_by]:
        before, after = old_by[name], new_by[name]
        if before.dtype != after.dtype:
            if _widens(before.dtype, after.dtype):
                out["additive"].append(
                    f"input {name!r} widened from {before.dtype} to {after.dtype}"
                )
            else:
                out["breaking"].append(
                    f"input {name!r} changed type from {before.dtype} to {after.dtype}"
                )
        if before.nullable != after.nullable:
            bucket = "additive" if after.nullable else "breaking"
            verb = "now accepts nulls" if after.nullable else "no longer accepts nulls"
            out[bucket].append(f"input {name!r} {verb}")
        if (before.min, before.max) != (after.min, after.max) and after.min is not None:
            out["notes"].append(
                f"input {name!r} training range {before.min}..{before.max} "
                f"→ {after.min}..{after.max}"
            )
        if before.categories != after.categories and after.categories is not None:
            out["notes"].append(f"input {name!r} training categories changed")
    shared_old = [n for n in old.names if n in new_by]
    shared_new = [n for n in new.names if n in old_by]
    if shared_old != shared_new:
        out["breaking"].append("input column order changed; positional (array) requests break")


def _compare_outputs(old: Signature, new: Signature, out: dict[str, list[str]]) -> None:
    old_by, new_by = {o.name: o for o in old.outputs}, {o.name: o for o in new.outputs}
    for name in old_by.keys() - new_by.keys():
        out["breaking"].append(f"output {name!r} was removed")
    for name in new_by.keys() - old_by.keys():
        out["additive"].append(f"new output {name!r}")
    for name in old_by.keys() & new_by.keys():
        before, after = old_by[name], new_by[name]
        if before.dtype != after.dtype:
            bucket = "additive" if _widens(before.dtype, after.dtype) else "breaking"
            out[bucket].append(f"output {name!r} changed type from {before.dtype} to {after.dtype}")
        if before.shape != after.shape:
            out["breaking"].append(
                f"output {name!r} changed shape from {before.shape} to {after.shape}"
            )
    if old.classes != new.classes:
        out["breaking"].append(f"classes changed from {old.classes} to {new.classes}")


def check_compatibility(old: Signature | None, new: Signature | None) -> Compatibility:
    """Classify the change from ``old`` to ``new`` as compatible, additive or breaking.

    Example:
        >>> old = Signature((ColumnSpec("amount", "int64"),))
        >>> check_compatibility(old, Signature((ColumnSpec("amount", "float64"),))).level
        'additive'
    """
    if old is None and new is None:
        return Compatibility("compatible", notes=("neither version declares a signature",))
    if old is None or new is None:
        which = "the old" if old is None else "the new"
        return Compatibility(
            "breaking", (f"{which} version has no signature; compatibility is unknown",)
        )
    found: dict[str, list[str]] = {"breaking": [], "additive": [], "notes": []}
    _compare_inputs(old, new, found)
    _compare_outputs(old, new, found)
    level: CompatibilityLevel = "compatible"
    candidate: CompatibilityLevel
    for candidate in ("additive", "breaking"):
        if found[candidate]:
            level = candidate
    reasons = tuple(found["breaking"] + found["additive"])
    return Compatibility(level, reasons, tuple(found["notes"]))
