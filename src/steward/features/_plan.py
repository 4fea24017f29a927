"""The plan of an ``apply``: what changes between the registered definitions and new ones.

A change is *breaking* when something that consumers read stops meaning what it
meant: a removed view, feature, aggregation or service; a feature whose dtype
changed; an aggregation whose column, function or window changed; an entity
whose join keys changed (and every view keyed on it); a service that lost
features.  Additions, new descriptions, owners, tags, TTLs, SLAs and source
locations are not breaking.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from steward.features._definitions import Definitions, FeatureView

__all__ = ["ApplyPlan", "Change", "diff_definitions"]

Action = Literal["add", "change", "remove"]


@dataclass(frozen=True)
class Change:
    """One added, changed or removed object, with what changed in it."""

    kind: Literal["entity", "source", "view", "service"]
    name: str
    action: Action
    breaking: bool = False
    details: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly view."""
        return {
            "kind": self.kind,
            "name": self.name,
            "action": self.action,
            "breaking": self.breaking,
            "details": list(self.details),
        }

    def __str__(self) -> str:
        sign = {"add": "+", "change": "~", "remove": "-"}[self.action]
        flag = " (breaking)" if self.breaking else ""
        lines = [f"{sign} {self.kind} {self.name}{flag}"]
        lines.extend(f"    {detail}" for detail in self.details)
        return "\n".join(lines)


@dataclass(frozen=True)
class ApplyPlan:
    """What an ``apply`` changes; ``version`` is the definitions version after it.

    ``version`` is None for a dry run that would change something, and the
    current version when nothing changes (then no new version is recorded).
    """

    changes: tuple[Change, ...]
    digest: str
    version: int | None
    previous_version: int | None
    dry_run: bool = False
    docs: tuple[str, ...] = field(default=())

    @property
    def changed(self) -> bool:
        """True when the new definitions differ from the registered ones."""
        return bool(self.changes)

    @property
    def breaking(self) -> bool:
        """True when any change is breaking."""
        return any(change.breaking for change in self.changes)

    def count(self, action: Action) -> int:
        """How many objects the plan adds, changes or removes."""
        return sum(1 for change in self.changes if change.action == action)

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly view."""
        return {
            "changed": self.changed,
            "breaking": self.breaking,
            "dry_run": self.dry_run,
            "version": self.version,
            "previous_version": self.previous_version,
            "digest": self.digest,
            "added": self.count("add"),
            "modified": self.count("change"),
            "removed": self.count("remove"),
            "changes": [change.as_dict() for change in self.changes],
            "docs": list(self.docs),
        }

    def __str__(self) -> str:
        if not self.changes:
            return "no changes"
        summary = (
            f"{self.count('add')} to add, {self.count('change')} to change, "
            f"{self.count('remove')} to remove"
        )
        if self.breaking:
            summary += f", {sum(c.breaking for c in self.changes)} breaking"
        return "\n".join([*(str(change) for change in self.changes), summary])


def _field_changes(old: dict[str, Any], new: dict[str, Any], keys: tuple[str, ...]) -> list[str]:
    return [
        f"{key}: {old.get(key)!r} -> {new.get(key)!r}"
        for key in keys
        if old.get(key) != new.get(key)
    ]


def _feature_changes(old: FeatureView, new: FeatureView) -> tuple[list[str], bool]:
    details: list[str] = []
    breaking = False
    before = {f.name: f for f in old.features}
    after = {f.name: f for f in new.features}
    for name in before.keys() - after.keys():
        details.append(f"feature {name!r} removed (breaking)")
        breaking = True
    for name in after.keys() - before.keys():
        details.append(f"feature {name!r} added ({after[name].dtype})")
    for name in before.keys() & after.keys():
        was, now = before[name], after[name]
        if was.dtype != now.dtype:
            details.append(f"feature {name!r} dtype {was.dtype} -> {now.dtype} (breaking)")
            breaking = True
        if was.pii != now.pii:
            details.append(f"feature {name!r} pii {was.pii} -> {now.pii}")
        if (was.description, was.tags) != (now.description, now.tags):
            details.append(f"feature {name!r} description or tags changed")
    aggs_before = {a.name: a for a in old.aggregations}
    aggs_after = {a.name: a for a in new.aggregations}
    for name in aggs_before.keys() - aggs_after.keys():
        details.append(f"aggregation {name!r} removed (breaking)")
        breaking = True
    for name in aggs_after.keys() - aggs_before.keys():
        details.append(f"aggregation {name!r} added")
    for name in aggs_before.keys() & aggs_after.keys():
        if aggs_before[name] != aggs_after[name]:
            details.append(f"aggregation {name!r} redefined (breaking)")
            breaking = True
    return sorted(details), breaking


def _view_change(old: FeatureView, new: FeatureView) -> Change | None:
    details, breaking = _feature_changes(old, new)
    if old.join_keys != new.join_keys:
        details.append(f"join keys {list(old.join_keys)} -> {list(new.join_keys)} (breaking)")
        breaking = True
    details.extend(
        _field_changes(
            old.to_dict(),
            new.to_dict(),
            ("entities", "source", "ttl_seconds", "freshness_sla_seconds", "owner", "description"),
        )
    )
    if old.tags != new.tags:
        details.append("tags changed")
    if not details:
        return None
    return Change("view", new.name, "change", breaking, tuple(details))


def diff_definitions(old: Definitions, new: Definitions) -> tuple[Change, ...]:
    """List what changes from ``old`` to ``new``, by kind then name."""
    changes: list[Change] = []
    for kind, before, after in (
        ("entity", old.entities, new.entities),
        ("source", old.sources, new.sources),
        ("view", old.views, new.views),
        ("service", old.services, new.services),
    ):
        for name in sorted(before.keys() | after.keys()):
            if name not in after:
                breaking = kind in ("view", "service")
                changes.append(Change(kind, name, "remove", breaking))  # type: ignore[arg-type]
            elif name not in before:
                changes.append(Change(kind, name, "add"))  # type: ignore[arg-type]
            elif before[name] != after[name]:
                change = _changed(kind, before[name], after[name])
                if change is not None:
                    changes.append(change)
    return tuple(changes)


def _changed(kind: str, old: Any, new: Any) -> Change | None:
    if kind == "view":
        return _view_change(old, new)
    was, now = old.to_dict(), new.to_dict()
    keys = tuple(sorted(k for k in was.keys() | now.keys() if was.get(k) != now.get(k)))
    details = tuple(_field_changes(was, now, keys))
    breaking = False
    if kind == "entity" and was["join_keys"] != now["join_keys"]:
        breaking = True
    if kind == "service":
        lost = set(was["features"]) - set(now["features"])
        breaking = bool(lost)
    return Change(kind, new.name, "change", breaking, details)  # type: ignore[arg-type]
