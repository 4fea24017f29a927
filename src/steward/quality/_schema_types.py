"""Column schemas and the rules for how one Arrow type relates to another.

Types are stored as Arrow type strings (``"int64"``, ``"double"``,
``"timestamp[us, tz=UTC]"``).  :func:`type_change` classifies a change:

============================================  =========
change                                        result
============================================  =========
string ↔ large_string ↔ dictionary<string>     same
intN → wider int, uintN → wider (u)int        widened
any int → float, float → double               widened
null (an all-null column) → any type          widened
timestamp unit change, same time zone         widened
a narrower int/float, float → int, int→uint   narrowed
anything else                                 changed
============================================  =========
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from steward.core import InvalidInputError
from steward.quality._input import Category

__all__ = ["ColumnSchema", "TypeChange", "type_change", "type_kind"]

TypeChange = Literal["same", "widened", "narrowed", "changed"]
TypeKind = Literal[
    "integer", "float", "boolean", "string", "temporal", "decimal", "binary", "null", "other"
]

_INT_WIDTH = {"int8": 8, "int16": 16, "int32": 32, "int64": 64}
_UINT_WIDTH = {"uint8": 8, "uint16": 16, "uint32": 32, "uint64": 64}
_FLOAT_WIDTH = {"halffloat": 16, "float": 32, "double": 64}
_STRINGS = {"string", "large_string", "string_view", "utf8", "large_utf8"}
_BINARIES = {"binary", "large_binary", "binary_view"}
_TIMESTAMP = re.compile(r"timestamp\[(\w+)(?:, tz=(.+))?\]")


def type_kind(type_name: str) -> TypeKind:
    """Return the family of an Arrow type string.

    Example:
        >>> type_kind("int32"), type_kind("dictionary<values=string, indices=int32, ordered=0>")
        ('integer', 'string')
    """
    if type_name in _INT_WIDTH or type_name in _UINT_WIDTH:
        return "integer"
    if type_name in _FLOAT_WIDTH:
        return "float"
    if type_name == "bool":
        return "boolean"
    if type_name in _STRINGS or type_name.startswith("dictionary<values=string"):
        return "string"
    if type_name in _BINARIES:
        return "binary"
    if type_name == "null":
        return "null"
    if type_name.startswith("decimal"):
        return "decimal"
    if type_name.startswith(("timestamp", "date", "time", "duration")):
        return "temporal"
    return "other"


def type_change(before: str, after: str) -> TypeChange:
    """Classify a change of Arrow type (see the module docstring's table).

    Example:
        >>> type_change("int32", "int64"), type_change("double", "int64")
        ('widened', 'narrowed')
        >>> type_change("string", "bool")
        'changed'
    """
    if before == after:
        return "same"
    old, new = type_kind(before), type_kind(after)
    if old == new and old in ("string", "binary"):
        return "same"
    if old == "null":
        return "widened"
    if old == "integer" and new == "integer":
        return _int_change(before, after)
    if old == "float" and new == "float":
        return "widened" if _FLOAT_WIDTH[after] > _FLOAT_WIDTH[before] else "narrowed"
    if old == "integer" and new == "float":
        return "widened"
    if old == "float" and new == "integer":
        return "narrowed"
    old_ts, new_ts = _TIMESTAMP.fullmatch(before), _TIMESTAMP.fullmatch(after)
    if old_ts and new_ts and old_ts.group(2) == new_ts.group(2):
        return "widened"
    return "changed"


def _int_change(before: str, after: str) -> TypeChange:
    old_signed, new_signed = before in _INT_WIDTH, after in _INT_WIDTH
    old_width = _INT_WIDTH.get(before) or _UINT_WIDTH[before]
    new_width = _INT_WIDTH.get(after) or _UINT_WIDTH[after]
    if old_signed and not new_signed:
        return "narrowed"  # negative values no longer fit
    if not old_signed and new_signed:
        return "widened" if new_width > old_width else "narrowed"
    return "widened" if new_width > old_width else "narrowed"


@dataclass(frozen=True)
class ColumnSchema:
    """What one column is expected to hold.

    Attributes:
        name: column name.
        type: Arrow type string, e.g. ``"int64"``, ``"double"``, ``"string"``.
        nullable: whether nulls are allowed at all.
        max_null_rate: highest acceptable share of nulls (NaN counts as null).
        minimum / maximum: accepted numeric range (None: unbounded).
        categories: accepted values of a string/boolean column (None: any).
        unique: values must not repeat (inferred for integer and string columns).
    """

    name: str
    type: str
    nullable: bool = True
    max_null_rate: float = 1.0
    minimum: float | None = None
    maximum: float | None = None
    categories: tuple[Category, ...] | None = None
    unique: bool = False

    @property
    def kind(self) -> TypeKind:
        """The type's family ("integer", "float", "string", ...)."""
        return type_kind(self.type)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "name": self.name,
            "type": self.type,
            "nullable": self.nullable,
            "max_null_rate": self.max_null_rate,
            "min": self.minimum,
            "max": self.maximum,
            "categories": None if self.categories is None else list(self.categories),
            "unique": self.unique,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ColumnSchema:
        """Rebuild from :meth:`to_dict` output.

        Raises:
            InvalidInputError: a field is missing or malformed.
        """
        try:
            categories = data.get("categories")
            return cls(
                name=str(data["name"]),
                type=str(data["type"]),
                nullable=bool(data.get("nullable", True)),
                max_null_rate=float(data.get("max_null_rate", 1.0)),
                minimum=None if data.get("min") is None else float(data["min"]),
                maximum=None if data.get("max") is None else float(data["max"]),
                categories=None if categories is None else tuple(categories),
                unique=bool(data.get("unique", False)),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInputError(f"malformed column schema {data!r}: {exc!r}") from exc
