"""Declarative feature definitions: entities, sources, feature views and feature services.

Users write these objects at module level in a ``features.py`` (or a package)
and register them with ``steward features apply``::

    from datetime import timedelta
    from steward.features import Aggregation, Entity, Feature, FeatureView, FileSource

    customer = Entity("customer", join_keys=["customer_id"])
    profiles = FileSource("profiles", path="data/profiles/*.parquet", timestamp_field="ts")
    customer_profile = FeatureView(
        "customer_profile",
        entities=customer,
        source=profiles,
        features=[Feature("age", "int64"), Feature("email", "string", pii=True)],
        ttl=timedelta(days=30),
    )

Objects validate their own fields when built (names are ``snake_case``, dtypes
are known, windows are positive); :class:`Definitions` checks the whole set
(unique names, services that reference existing features).  Every object has a
canonical dict form (``to_dict``/``from_dict``) that the registry stores and
hashes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from difflib import get_close_matches
from functools import cached_property
from typing import Any, Literal, TypeAlias, cast, get_args

import pyarrow as pa

from steward.core import canonical_json, sha256_hex
from steward.features._errors import FeatureDefinitionError, UnknownFeatureError

__all__ = [
    "AGGREGATION_FUNCTIONS",
    "DTYPES",
    "Aggregation",
    "AggregationFunction",
    "Definitions",
    "Dtype",
    "Entity",
    "Feature",
    "FeatureRef",
    "FeatureService",
    "FeatureView",
    "FileSource",
    "QuerySource",
    "Source",
    "arrow_type",
    "window_label",
]

Dtype: TypeAlias = Literal["float64", "float32", "int64", "int32", "bool", "string", "timestamp"]
AggregationFunction: TypeAlias = Literal["count", "sum", "mean", "min", "max", "count_distinct"]
DTYPES: tuple[str, ...] = get_args(Dtype)
AGGREGATION_FUNCTIONS: tuple[str, ...] = get_args(AggregationFunction)

# Names a feature may not take: they are the columns retrieval adds or keys on.
RESERVED_NAMES = frozenset({"event_timestamp", "created_timestamp"})

_SNAKE = re.compile(r"^[a-z][a-z0-9_]*$")
_ARROW_TYPES: dict[str, pa.DataType] = {
    "float64": pa.float64(),
    "float32": pa.float32(),
    "int64": pa.int64(),
    "int32": pa.int32(),
    "bool": pa.bool_(),
    "string": pa.string(),
    "timestamp": pa.timestamp("us", tz="UTC"),
}


def arrow_type(dtype: str) -> pa.DataType:
    """Return the Arrow type that features of ``dtype`` are served as (timestamps in UTC).

    Example:
        >>> arrow_type("int64")
        DataType(int64)
    """
    try:
        return _ARROW_TYPES[dtype]
    except KeyError:
        raise FeatureDefinitionError(
            f"unknown dtype {dtype!r}; use one of {', '.join(DTYPES)}"
        ) from None


def check_name(kind: str, name: object) -> str:
    """Return ``name`` if it is ``snake_case``, else raise naming the object ``kind``."""
    if not isinstance(name, str) or not _SNAKE.fullmatch(name):
        raise FeatureDefinitionError(
            f"{kind} name {name!r} is not snake_case: use lowercase letters, digits and "
            "underscores, starting with a letter (e.g. 'customer_profile')"
        )
    return name


def _check_column(kind: str, column: object) -> str:
    # Source columns are the user's data: any non-empty string is allowed.
    if not isinstance(column, str) or not column:
        raise FeatureDefinitionError(f"{kind} must be a non-empty column name, got {column!r}")
    return column


def _seconds(value: timedelta | None) -> float | int | None:
    if value is None:
        return None
    total = value.total_seconds()
    return int(total) if total.is_integer() else total


def _delta(value: Any) -> timedelta | None:
    return None if value is None else timedelta(seconds=value)


def _positive(kind: str, value: timedelta | None) -> timedelta | None:
    if value is None:
        return None
    if not isinstance(value, timedelta) or value <= timedelta(0):
        raise FeatureDefinitionError(f"{kind} must be a positive timedelta, got {value!r}")
    return value


def _tags(kind: str, tags: Mapping[str, str] | None) -> dict[str, str]:
    tags = dict(tags or {})
    for key, value in tags.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise FeatureDefinitionError(
                f"{kind} tags must map strings to strings; got {key!r}: {value!r}"
            )
    return tags


def window_label(window: timedelta) -> str:
    """Return the short label of a window: ``1h``, ``24h``, ``7d``, ``30d``, ``15m``, ``30s``.

    Whole days above one day are written in days; a single day is ``24h``.

    Example:
        >>> window_label(timedelta(days=7)), window_label(timedelta(hours=24))
        ('7d', '24h')
    """
    seconds = window.total_seconds()
    if seconds.is_integer():
        whole = int(seconds)
        if whole % 86_400 == 0 and whole > 86_400:
            return f"{whole // 86_400}d"
        if whole % 3_600 == 0:
            return f"{whole // 3_600}h"
        if whole % 60 == 0:
            return f"{whole // 60}m"
        return f"{whole}s"
    return f"{round(seconds * 1000)}ms"


@dataclass(frozen=True, init=False)
class Entity:
    """A thing features describe, identified by one or more join-key columns.

    Example:
        >>> Entity("customer", join_keys=["customer_id"]).join_keys
        ('customer_id',)
    """

    name: str
    join_keys: tuple[str, ...]
    description: str

    def __init__(self, name: str, join_keys: Sequence[str], description: str = "") -> None:
        if isinstance(join_keys, str):
            join_keys = [join_keys]
        keys = tuple(check_name("join key", key) for key in join_keys)
        if not keys:
            raise FeatureDefinitionError(f"entity {name!r} needs at least one join key")
        if len(set(keys)) != len(keys):
            raise FeatureDefinitionError(f"entity {name!r} repeats a join key: {list(keys)}")
        object.__setattr__(self, "name", check_name("entity", name))
        object.__setattr__(self, "join_keys", keys)
        object.__setattr__(self, "description", description)

    def to_dict(self) -> dict[str, Any]:
        """Return the canonical dict form."""
        return {
            "name": self.name,
            "join_keys": list(self.join_keys),
            "description": self.description,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Entity:
        """Rebuild from :meth:`to_dict` output."""
        return cls(data["name"], data["join_keys"], data.get("description", ""))


@dataclass(frozen=True)
class FileSource:
    """Parquet data: one file, a folder of files, or a glob; each row stamped with its event time.

    ``created_timestamp_field`` (optional) breaks ties between rows of the same
    entity and event time: the row created last wins.  A relative ``path`` is
    resolved against the folder of the definitions file when loaded with
    :func:`~steward.features.load_definitions`, else against the working directory.
    """

    name: str
    path: str
    timestamp_field: str
    created_timestamp_field: str | None = None

    def __post_init__(self) -> None:
        check_name("source", self.name)
        if not isinstance(self.path, str) or not self.path:
            raise FeatureDefinitionError(f"source {self.name!r} needs a path, got {self.path!r}")
        _check_column(f"source {self.name!r} timestamp_field", self.timestamp_field)
        if self.created_timestamp_field is not None:
            _check_column(
                f"source {self.name!r} created_timestamp_field", self.created_timestamp_field
            )

    def to_dict(self) -> dict[str, Any]:
        """Return the canonical dict form."""
        return {
            "kind": "file",
            "name": self.name,
            "path": self.path,
            "timestamp_field": self.timestamp_field,
            "created_timestamp_field": self.created_timestamp_field,
        }


@dataclass(frozen=True)
class QuerySource:
    """A DuckDB SQL query over Parquet files (``read_parquet('...')``), stamped like a file source.

    Relative paths inside the query are resolved by DuckDB against the working
    directory of the process that reads it; prefer absolute paths.
    """

    name: str
    query: str
    timestamp_field: str
    created_timestamp_field: str | None = None

    def __post_init__(self) -> None:
        check_name("source", self.name)
        if not isinstance(self.query, str) or not self.query.strip():
            raise FeatureDefinitionError(f"source {self.name!r} needs a non-empty SQL query")
        _check_column(f"source {self.name!r} timestamp_field", self.timestamp_field)
        if self.created_timestamp_field is not None:
            _check_column(
                f"source {self.name!r} created_timestamp_field", self.created_timestamp_field
            )

    def to_dict(self) -> dict[str, Any]:
        """Return the canonical dict form."""
        return {
            "kind": "query",
            "name": self.name,
            "query": self.query,
            "timestamp_field": self.timestamp_field,
            "created_timestamp_field": self.created_timestamp_field,
        }


Source: TypeAlias = FileSource | QuerySource


def source_from_dict(data: Mapping[str, Any]) -> Source:
    """Rebuild a source from its canonical dict form."""
    fields = {key: data[key] for key in ("name", "timestamp_field", "created_timestamp_field")}
    if data["kind"] == "file":
        return FileSource(path=data["path"], **fields)
    if data["kind"] == "query":
        return QuerySource(query=data["query"], **fields)
    raise FeatureDefinitionError(f"unknown source kind {data['kind']!r}; use 'file' or 'query'")


@dataclass(frozen=True, init=False)
class Feature:
    """One named, typed column of a feature view; ``pii=True`` guards reads behind a scope.

    Example:
        >>> Feature("age", "int64").arrow_type
        DataType(int64)
    """

    name: str
    dtype: Dtype
    description: str
    pii: bool
    tags: dict[str, str]

    def __init__(
        self,
        name: str,
        dtype: Dtype,
        description: str = "",
        pii: bool = False,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        check_name("feature", name)
        if name in RESERVED_NAMES:
            raise FeatureDefinitionError(
                f"feature name {name!r} is reserved for retrieval; choose another name"
            )
        if dtype not in DTYPES:
            raise FeatureDefinitionError(
                f"feature {name!r} has unknown dtype {dtype!r}; use one of {', '.join(DTYPES)}"
            )
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "dtype", dtype)
        object.__setattr__(self, "description", description)
        object.__setattr__(self, "pii", bool(pii))
        object.__setattr__(self, "tags", _tags(f"feature {name!r}", tags))

    @property
    def arrow_type(self) -> pa.DataType:
        """The Arrow type this feature is served as."""
        return arrow_type(self.dtype)

    def to_dict(self) -> dict[str, Any]:
        """Return the canonical dict form."""
        return {
            "name": self.name,
            "dtype": self.dtype,
            "description": self.description,
            "pii": self.pii,
            "tags": dict(self.tags),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Feature:
        """Rebuild from :meth:`to_dict` output."""
        return cls(
            data["name"],
            data["dtype"],
            data.get("description", ""),
            data.get("pii", False),
            data.get("tags"),
        )


@dataclass(frozen=True, init=False)
class Aggregation:
    """A time-window aggregate of one source column per entity: ``amount`` summed over 24 h.

    For an entity row stamped ``t`` the value aggregates the source events with
    event time in ``(t - window, t]``; ``count`` counts non-null values and
    ``count_distinct`` distinct non-null values.  The name defaults to
    ``{column}_{function}_{window label}``, e.g. ``amount_sum_24h``.

    Example:
        >>> Aggregation("amount", "sum", timedelta(hours=24)).name
        'amount_sum_24h'
    """

    column: str
    function: AggregationFunction
    window: timedelta
    name: str

    def __init__(
        self,
        column: str,
        function: AggregationFunction,
        window: timedelta,
        name: str | None = None,
    ) -> None:
        _check_column("aggregation column", column)
        if function not in AGGREGATION_FUNCTIONS:
            raise FeatureDefinitionError(
                f"aggregation of {column!r} has unknown function {function!r}; "
                f"use one of {', '.join(AGGREGATION_FUNCTIONS)}"
            )
        window = cast(timedelta, _positive(f"window of aggregation {column!r}", window))
        if name is None:
            name = f"{column}_{function}_{window_label(window)}".lower()
        check_name("aggregation", name)
        if name in RESERVED_NAMES:
            raise FeatureDefinitionError(f"aggregation name {name!r} is reserved; pass name=")
        object.__setattr__(self, "column", column)
        object.__setattr__(self, "function", function)
        object.__setattr__(self, "window", window)
        object.__setattr__(self, "name", name)

    @property
    def dtype(self) -> Dtype:
        """The dtype of the aggregate: ``int64`` for counts, ``float64`` otherwise."""
        return "int64" if self.function in ("count", "count_distinct") else "float64"

    def as_feature(self) -> Feature:
        """Return the feature this aggregation serves."""
        label = window_label(self.window)
        return Feature(self.name, self.dtype, f"{self.function} of {self.column} over {label}")

    def to_dict(self) -> dict[str, Any]:
        """Return the canonical dict form."""
        return {
            "column": self.column,
            "function": self.function,
            "window_seconds": _seconds(self.window),
            "name": self.name,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Aggregation:
        """Rebuild from :meth:`to_dict` output."""
        window = cast(timedelta, _delta(data["window_seconds"]))
        return cls(data["column"], data["function"], window, data["name"])


@dataclass(frozen=True, init=False)
class FeatureView:
    """Features of one or more entities read from one source, valid for ``ttl`` after their time.

    A view has either plain ``features`` (columns of the source, latest value
    per entity as of each event) or ``aggregations`` (a *window view*: aggregates
    of raw source events; it takes no ``ttl``, each window bounds its events).
    ``freshness_sla`` is how stale the online values may get before ``status``
    flags the view.

    Example:
        >>> view = FeatureView(
        ...     "customer_profile",
        ...     entities=Entity("customer", ["customer_id"]),
        ...     source=FileSource("profiles", "profiles.parquet", "ts"),
        ...     features=[Feature("age", "int64")],
        ...     ttl=timedelta(days=30),
        ... )
        >>> view.join_keys, view.feature_names
        (('customer_id',), ('age',))
    """

    name: str
    entities: tuple[Entity, ...]
    source: Source
    features: tuple[Feature, ...]
    aggregations: tuple[Aggregation, ...]
    ttl: timedelta | None
    freshness_sla: timedelta | None
    owner: str
    description: str
    tags: dict[str, str]

    def __init__(
        self,
        name: str,
        entities: Sequence[Entity] | Entity,
        source: Source,
        features: Sequence[Feature] = (),
        aggregations: Sequence[Aggregation] = (),
        ttl: timedelta | None = None,
        freshness_sla: timedelta | None = None,
        owner: str = "",
        description: str = "",
        tags: Mapping[str, str] | None = None,
    ) -> None:
        check_name("feature view", name)
        ents = (entities,) if isinstance(entities, Entity) else tuple(entities)
        if not ents or not all(isinstance(e, Entity) for e in ents):
            raise FeatureDefinitionError(f"feature view {name!r} needs Entity objects as entities")
        if not isinstance(source, FileSource | QuerySource):
            raise FeatureDefinitionError(
                f"feature view {name!r} needs a FileSource or QuerySource, got {source!r}"
            )
        feats, aggs = tuple(features), tuple(aggregations)
        if bool(feats) == bool(aggs):
            raise FeatureDefinitionError(
                f"feature view {name!r} needs either features or aggregations (exactly one kind)"
            )
        if aggs and ttl is not None:
            raise FeatureDefinitionError(
                f"window view {name!r} takes no ttl: each aggregation's window bounds its events"
            )
        values = {
            "name": name,
            "entities": ents,
            "source": source,
            "features": feats,
            "aggregations": aggs,
            "ttl": _positive(f"ttl of view {name!r}", ttl),
            "freshness_sla": _positive(f"freshness_sla of view {name!r}", freshness_sla),
            "owner": owner,
            "description": description,
            "tags": _tags(f"view {name!r}", tags),
        }
        for key, value in values.items():
            object.__setattr__(self, key, value)
        self._check_columns()

    def _check_columns(self) -> None:
        keys = self.join_keys
        if len(set(keys)) != len(keys):
            raise FeatureDefinitionError(
                f"feature view {self.name!r}: its entities share a join key ({list(keys)})"
            )
        names = [f.name for f in self.output_features]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise FeatureDefinitionError(
                f"feature view {self.name!r} repeats feature names {duplicates}"
            )
        clashes = sorted(set(names) & set(keys))
        if clashes:
            raise FeatureDefinitionError(
                f"feature view {self.name!r}: features {clashes} clash with its join keys"
            )

    @property
    def is_window(self) -> bool:
        """True for a window view (aggregations over raw events)."""
        return bool(self.aggregations)

    @property
    def join_keys(self) -> tuple[str, ...]:
        """The join-key columns of all the view's entities, in order."""
        return tuple(key for entity in self.entities for key in entity.join_keys)

    @cached_property
    def output_features(self) -> tuple[Feature, ...]:
        """The features the view serves: its features, or one per aggregation."""
        if self.aggregations:
            return tuple(agg.as_feature() for agg in self.aggregations)
        return self.features

    @cached_property
    def _served(self) -> dict[str, Feature]:
        # The online read path looks features up by name on every request.
        return {feature.name: feature for feature in self.output_features}

    @property
    def feature_names(self) -> tuple[str, ...]:
        """Names of :attr:`output_features`, in declaration order."""
        return tuple(f.name for f in self.output_features)

    def feature(self, name: str) -> Feature:
        """Return the served feature ``name``.

        Raises:
            UnknownFeatureError: the view has no such feature; the message lists close matches.
        """
        found = self._served.get(name)
        if found is not None:
            return found
        raise UnknownFeatureError(
            f"feature view {self.name!r} has no feature {name!r}"
            + _suggest(name, self.feature_names)
        )

    def source_columns(self) -> tuple[str, ...]:
        """The source columns the view reads: keys, timestamps, features or aggregated columns."""
        columns = [*self.join_keys, self.source.timestamp_field]
        if self.source.created_timestamp_field:
            columns.append(self.source.created_timestamp_field)
        if self.aggregations:
            columns.extend(agg.column for agg in self.aggregations)
        else:
            columns.extend(f.name for f in self.features)
        return tuple(dict.fromkeys(columns))

    def to_dict(self) -> dict[str, Any]:
        """Return the canonical dict form (entities and source by name)."""
        return {
            "name": self.name,
            "entities": [e.name for e in self.entities],
            "source": self.source.name,
            "features": [f.to_dict() for f in self.features],
            "aggregations": [a.to_dict() for a in self.aggregations],
            "ttl_seconds": _seconds(self.ttl),
            "freshness_sla_seconds": _seconds(self.freshness_sla),
            "owner": self.owner,
            "description": self.description,
            "tags": dict(self.tags),
        }


@dataclass(frozen=True, init=False)
class FeatureService:
    """A named set of features one model consumes: ``view:feature`` or ``view:*`` references.

    Example:
        >>> FeatureService("fraud_model", ["customer_profile:age", "txn_windows:*"]).refs[0]
        FeatureRef(view='customer_profile', feature='age')
    """

    name: str
    features: tuple[str, ...]
    description: str
    owner: str

    def __init__(
        self, name: str, features: Sequence[str], description: str = "", owner: str = ""
    ) -> None:
        check_name("feature service", name)
        if isinstance(features, str) or not features:
            raise FeatureDefinitionError(
                f"feature service {name!r} needs a list of 'view:feature' references"
            )
        refs = tuple(str(FeatureRef.parse(ref, allow_wildcard=True)) for ref in features)
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "features", refs)
        object.__setattr__(self, "description", description)
        object.__setattr__(self, "owner", owner)

    @property
    def refs(self) -> tuple[FeatureRef, ...]:
        """The parsed references."""
        return tuple(FeatureRef.parse(ref, allow_wildcard=True) for ref in self.features)

    def to_dict(self) -> dict[str, Any]:
        """Return the canonical dict form."""
        return {
            "name": self.name,
            "features": list(self.features),
            "description": self.description,
            "owner": self.owner,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureService:
        """Rebuild from :meth:`to_dict` output."""
        return cls(
            data["name"], data["features"], data.get("description", ""), data.get("owner", "")
        )


@dataclass(frozen=True)
class FeatureRef:
    """A ``view:feature`` reference (``feature`` may be ``*`` where wildcards are allowed).

    Example:
        >>> FeatureRef.parse("customer_profile:age")
        FeatureRef(view='customer_profile', feature='age')
    """

    view: str
    feature: str

    @classmethod
    def parse(cls, text: str, *, allow_wildcard: bool = False) -> FeatureRef:
        """Parse ``view:feature``.

        Raises:
            FeatureDefinitionError: the text is not ``view:feature`` with snake_case names.
        """
        if not isinstance(text, str) or text.count(":") != 1:
            raise FeatureDefinitionError(
                f"feature reference {text!r} must be 'view:feature' (e.g. 'customer_profile:age')"
            )
        view, feature = text.split(":")
        check_name("feature view", view)
        if not (allow_wildcard and feature == "*"):
            check_name("feature", feature)
        return cls(view, feature)

    def __str__(self) -> str:
        return f"{self.view}:{self.feature}"


def _suggest(name: str, options: Iterable[str]) -> str:
    options = sorted(options)
    close = get_close_matches(name, options, n=3, cutoff=0.5)
    if close:
        return f"; did you mean {', '.join(repr(c) for c in close)}?"
    if options:
        shown = ", ".join(options[:10]) + (", ..." if len(options) > 10 else "")
        return f"; known: {shown}"
    return "; none are registered (run `steward features apply`)"


def _index(kind: str, items: Iterable[Any]) -> dict[str, Any]:
    # Unique names; the same object (or an equal one) listed twice is fine.
    found: dict[str, Any] = {}
    for item in items:
        previous = found.get(item.name)
        if previous is not None and previous != item:
            raise FeatureDefinitionError(
                f"two different {kind}s are named {item.name!r}; names must be unique"
            )
        found[item.name] = item
    return found


class Definitions:
    """The full set of registered definitions, validated as a whole.

    Entities and sources used by a view are collected even when not listed.
    Feature views and feature services share one namespace of names.

    Raises:
        FeatureDefinitionError: names repeat, or a service references a missing feature.
    """

    def __init__(
        self,
        entities: Iterable[Entity] = (),
        sources: Iterable[Source] = (),
        views: Iterable[FeatureView] = (),
        services: Iterable[FeatureService] = (),
    ) -> None:
        views = list(views)
        self.views: dict[str, FeatureView] = _index("feature view", views)
        self.entities: dict[str, Entity] = _index(
            "entity", [*entities, *(e for v in views for e in v.entities)]
        )
        self.sources: dict[str, Source] = _index("source", [*sources, *(v.source for v in views)])
        self.services: dict[str, FeatureService] = _index("feature service", services)
        clash = sorted(set(self.views) & set(self.services))
        if clash:
            raise FeatureDefinitionError(
                f"names {clash} are used by both a feature view and a feature service"
            )
        for service in self.services.values():
            self.resolve(service.features, context=f"feature service {service.name!r}")

    def view(self, name: str) -> FeatureView:
        """Return the view ``name``.

        Raises:
            UnknownFeatureError: no such view; the message lists close matches.
        """
        try:
            return self.views[name]
        except KeyError:
            raise UnknownFeatureError(
                f"no feature view {name!r}" + _suggest(name, self.views)
            ) from None

    def service(self, name: str) -> FeatureService:
        """Return the feature service ``name``.

        Raises:
            UnknownFeatureError: no such service; the message lists close matches.
        """
        try:
            return self.services[name]
        except KeyError:
            raise UnknownFeatureError(
                f"no feature service {name!r}" + _suggest(name, self.services)
            ) from None

    def resolve(self, refs: Iterable[str], *, context: str = "") -> dict[str, tuple[str, ...]]:
        """Group ``view:feature`` references by view, expanding ``view:*``; order is kept.

        Example:
            ``resolve(["a:x", "b:*", "a:y"])`` → ``{"a": ("x", "y"), "b": ("p", "q")}``

        Raises:
            FeatureDefinitionError: a reference is not ``view:feature``.
            UnknownFeatureError: a view or feature is not registered (close matches listed).
        """
        grouped: dict[str, list[str]] = {}
        where = f" (in {context})" if context else ""
        for text in refs:
            ref = FeatureRef.parse(text, allow_wildcard=True)
            if ref.view not in self.views:
                raise UnknownFeatureError(
                    f"unknown feature view {ref.view!r} in {text!r}{where}"
                    + _suggest(ref.view, self.views)
                )
            view = self.views[ref.view]
            names = view.feature_names if ref.feature == "*" else (ref.feature,)
            if ref.feature != "*" and ref.feature not in view.feature_names:
                all_refs = [f"{v.name}:{f}" for v in self.views.values() for f in v.feature_names]
                raise UnknownFeatureError(
                    f"unknown feature {text!r}{where}" + _suggest(text, all_refs)
                )
            chosen = grouped.setdefault(ref.view, [])
            chosen.extend(n for n in names if n not in chosen)
        if not grouped:
            raise UnknownFeatureError(f"no features requested{where}; pass 'view:feature' refs")
        return {view: tuple(names) for view, names in grouped.items()}

    def to_dict(self) -> dict[str, Any]:
        """Return the canonical dict form, every list sorted by name."""
        return {
            "entities": [self.entities[k].to_dict() for k in sorted(self.entities)],
            "sources": [self.sources[k].to_dict() for k in sorted(self.sources)],
            "views": [self.views[k].to_dict() for k in sorted(self.views)],
            "services": [self.services[k].to_dict() for k in sorted(self.services)],
        }

    def canonical_json(self) -> str:
        """Return the canonical JSON text of :meth:`to_dict` (what the registry stores)."""
        return canonical_json(self.to_dict())

    @property
    def digest(self) -> str:
        """SHA-256 of :meth:`canonical_json`: equal definitions have equal digests."""
        return sha256_hex(self.canonical_json().encode("utf-8"))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Definitions:
        """Rebuild from :meth:`to_dict` output.

        Raises:
            FeatureDefinitionError: the dict references an entity or source it does not hold.
        """
        entities = {e["name"]: Entity.from_dict(e) for e in data.get("entities", [])}
        sources = {s["name"]: source_from_dict(s) for s in data.get("sources", [])}
        views = []
        for raw in data.get("views", []):
            try:
                ents = [entities[name] for name in raw["entities"]]
                source = sources[raw["source"]]
            except KeyError as exc:
                raise FeatureDefinitionError(
                    f"view {raw.get('name')!r} references missing entity or source {exc}"
                ) from None
            views.append(
                FeatureView(
                    raw["name"],
                    ents,
                    source,
                    features=[Feature.from_dict(f) for f in raw.get("features", [])],
                    aggregations=[Aggregation.from_dict(a) for a in raw.get("aggregations", [])],
                    ttl=_delta(raw.get("ttl_seconds")),
                    freshness_sla=_delta(raw.get("freshness_sla_seconds")),
                    owner=raw.get("owner", ""),
                    description=raw.get("description", ""),
                    tags=raw.get("tags"),
                )
            )
        services = [FeatureService.from_dict(s) for s in data.get("services", [])]
        return cls(entities.values(), sources.values(), views, services)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Definitions) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return (
            f"Definitions(entities={len(self.entities)}, sources={len(self.sources)}, "
            f"views={len(self.views)}, services={len(self.services)})"
        )
