"""Schema drift: what changed between two schemas, and whether consumers break.

=====================  ==============================================  ==========
change                 meaning                                         breaking?
=====================  ==============================================  ==========
removed                a column is gone                                yes
added                  a new column                                    no
widened                type can hold more (int32 → int64, int → float)  no
narrowed               type holds less (int64 → int32, float → int)    yes
retyped                a different type family (string → int)         yes
nullable               a column may now hold nulls                     yes
not_nullable           a column no longer holds nulls                  no
categories_added       new allowed values (encoders meet unseen ones)  yes
categories_removed     fewer allowed values                            no
range_widened          the numeric range grew                          no
range_narrowed         the numeric range shrank                        no
range_shifted          the range moved (grew on one side, shrank on    no
                       the other)
unique_lost            a unique column may now repeat                  yes
unique_gained          a column became unique                          no
key_changed            the key columns differ                          yes
=====================  ==============================================  ==========
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.table import Table
from rich.text import Text

from steward.quality._schema_types import ColumnSchema, type_change

__all__ = ["SchemaChange", "SchemaDiff", "diff_columns"]

_BREAKING = frozenset(
    {"removed", "narrowed", "retyped", "nullable", "categories_added", "unique_lost", "key_changed"}
)


@dataclass(frozen=True)
class SchemaChange:
    """One difference between two schemas.

    Attributes:
        column: the column (None for a key change).
        change: what changed (see the module docstring).
        before / after: the old and new values of what changed.
        breaking: whether consumers of the old schema may fail on the new data.
    """

    column: str | None
    change: str
    before: Any = None
    after: Any = None

    @property
    def breaking(self) -> bool:
        """Whether consumers of the old schema may fail on data of the new one."""
        return self.change in _BREAKING

    @property
    def message(self) -> str:
        """A one-line description."""
        where = f"column {self.column!r}" if self.column else "key"
        if self.before is None and self.after is None:
            return f"{where}: {self.change}"
        return f"{where}: {self.change} ({self.before} → {self.after})"

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "column": self.column,
            "change": self.change,
            "before": _plain(self.before),
            "after": _plain(self.after),
            "breaking": self.breaking,
            "message": self.message,
        }


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple | set | frozenset) else value


@dataclass(frozen=True)
class SchemaDiff:
    """All changes from one schema to another; ``breaking`` if any change is."""

    changes: tuple[SchemaChange, ...]

    @property
    def breaking(self) -> bool:
        """Whether any change may break consumers of the old schema."""
        return any(change.breaking for change in self.changes)

    @property
    def compatible(self) -> bool:
        """Whether no change breaks consumers of the old schema."""
        return not self.breaking

    def __bool__(self) -> bool:
        return bool(self.changes)

    def summary(self) -> str:
        """One line: number of changes and the verdict."""
        if not self.changes:
            return "schemas are identical"
        verdict = "breaking" if self.breaking else "compatible"
        return f"{len(self.changes)} change(s), {verdict}"

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "breaking": self.breaking,
            "changes": [change.to_dict() for change in self.changes],
        }

    def to_json(self, indent: int | None = None) -> str:
        """Serialize to JSON text."""
        return json.dumps(self.to_dict(), indent=indent, allow_nan=False)

    def __rich__(self) -> Table:
        table = Table(title="Schema changes", caption=self.summary(), caption_justify="left")
        for header in ("column", "change", "before", "after", "breaking"):
            table.add_column(header)
        for change in self.changes:
            flag = (
                Text("breaking", style="bold red") if change.breaking else Text("ok", style="green")
            )
            table.add_row(
                change.column or "(key)",
                change.change,
                "" if change.before is None else str(_plain(change.before)),
                "" if change.after is None else str(_plain(change.after)),
                flag,
            )
        return table


def diff_columns(
    old: Sequence[ColumnSchema],
    new: Sequence[ColumnSchema],
    old_key: Sequence[str],
    new_key: Sequence[str],
) -> SchemaDiff:
    """List the changes from ``old`` to ``new`` columns (and keys), in column order."""
    old_by_name = {column.name: column for column in old}
    new_by_name = {column.name: column for column in new}
    changes: list[SchemaChange] = []
    for column in old:
        if column.name not in new_by_name:
            changes.append(SchemaChange(column.name, "removed", column.type, None))
        else:
            changes += _column_changes(column, new_by_name[column.name])
    changes += [
        SchemaChange(c.name, "added", None, c.type) for c in new if c.name not in old_by_name
    ]
    if tuple(old_key) != tuple(new_key):
        changes.append(SchemaChange(None, "key_changed", list(old_key), list(new_key)))
    return SchemaDiff(tuple(changes))


def _column_changes(old: ColumnSchema, new: ColumnSchema) -> list[SchemaChange]:
    name = old.name
    changes: list[SchemaChange] = []
    kind = type_change(old.type, new.type)
    if kind != "same":
        label = {"widened": "widened", "narrowed": "narrowed"}.get(kind, "retyped")
        changes.append(SchemaChange(name, label, old.type, new.type))
    if old.nullable != new.nullable:
        changes.append(SchemaChange(name, "nullable" if new.nullable else "not_nullable"))
    if old.categories is not None and new.categories is not None:
        added = sorted(set(new.categories) - set(old.categories), key=str)
        removed = sorted(set(old.categories) - set(new.categories), key=str)
        if added:
            changes.append(SchemaChange(name, "categories_added", None, tuple(added)))
        if removed:
            changes.append(SchemaChange(name, "categories_removed", tuple(removed), None))
    elif old.categories is not None:
        changes.append(SchemaChange(name, "categories_added", len(old.categories), "any"))
    changes += _range_changes(old, new)
    if old.unique != new.unique:
        changes.append(SchemaChange(name, "unique_gained" if new.unique else "unique_lost"))
    return changes


def _range_changes(old: ColumnSchema, new: ColumnSchema) -> list[SchemaChange]:
    old_low = float("-inf") if old.minimum is None else old.minimum
    old_high = float("inf") if old.maximum is None else old.maximum
    new_low = float("-inf") if new.minimum is None else new.minimum
    new_high = float("inf") if new.maximum is None else new.maximum
    if (old_low, old_high) == (new_low, new_high):
        return []
    before, after = [old.minimum, old.maximum], [new.minimum, new.maximum]
    if new_low <= old_low and new_high >= old_high:
        return [SchemaChange(old.name, "range_widened", before, after)]
    if new_low >= old_low and new_high <= old_high:
        return [SchemaChange(old.name, "range_narrowed", before, after)]
    return [SchemaChange(old.name, "range_shifted", before, after)]
