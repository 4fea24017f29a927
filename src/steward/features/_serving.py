"""Online feature serving: latest values per entity, with their event times and statuses.

The read path is kept lean: what a request needs to know about its features
(views, join keys, output names, dtypes, TTLs) is planned once per feature list
and definitions version and cached; authorization is the in-memory check of
the store's authorizer (PII reads are also audited, by count, never values);
each view is one ``read_columns`` of the online store (one prepared statement,
or one Redis round trip, for every entity), which hands back one list per
feature: the answer's columns are those lists, with no object built per entity;
statuses are worked out, and times turned into datetimes, only when asked for.

Each value comes with a status:

- ``present``: the value is served;
- ``null``: the entity's row holds null for this feature;
- ``not_found``: the online store has no row for the entity;
- ``outside_ttl``: the row is older than the view's TTL at read time. Training
  would see null there (point-in-time retrieval drops values older than the TTL);
  the value is served unless ``enforce_ttl=True`` nulls it, and its event time
  shows how stale it is.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cached_property
from typing import Any, Literal

import pyarrow as pa

from steward.core import InvalidInputError
from steward.features._access import authorize_feature_read
from steward.features._definitions import Definitions, FeatureView, arrow_type
from steward.features._errors import EntityFrameError, UnknownFeatureError
from steward.features._online import OnlineColumns, OnlineStore, from_micros, to_micros
from steward.features._retrieval import output_names
from steward.store import Store

__all__ = ["FeatureStatus", "OnlineFeatures", "OnlineReader"]

FeatureStatus = Literal["present", "null", "not_found", "outside_ttl"]


@dataclass(frozen=True)
class _ViewPlan:
    name: str
    join_keys: tuple[str, ...]
    features: tuple[str, ...]
    outputs: tuple[str, ...]
    dtypes: tuple[str, ...]
    ttl: timedelta | None


@dataclass(frozen=True)
class _Plan:
    version: int | None
    views: tuple[_ViewPlan, ...]
    requested: tuple[tuple[FeatureView, tuple[str, ...]], ...]
    keys: tuple[str, ...]


class OnlineFeatures:
    """The answer of ``get_online_features``: values per feature, with event times and statuses.

    Columns are named by feature (``view__feature`` with ``full_feature_names``);
    rows follow the entity rows given, in order.

    Example:
        >>> online = features.get_online_features(  # doctest: +SKIP
        ...     ["customer_profile:age"], entity_rows=[{"customer_id": 42}]
        ... )
        >>> online.to_dict()  # doctest: +SKIP
        {'customer_id': [42], 'age': [41]}
        >>> online.statuses["age"], online.event_timestamps["age"]  # doctest: +SKIP
        (['present'], [datetime.datetime(2026, 3, 1, 12, 0, tzinfo=datetime.timezone.utc)])
    """

    def __init__(
        self,
        plan: _Plan,
        entity_rows: Sequence[Mapping[str, Any]],
        columns: list[OnlineColumns],
        now: datetime,
        enforce_ttl: bool,
    ) -> None:
        self._plan = plan
        self._rows = entity_rows
        self._columns = columns
        self._now = now
        self._enforce_ttl = enforce_ttl

    def __len__(self) -> int:
        return len(self._rows)

    def __repr__(self) -> str:
        return f"OnlineFeatures(rows={len(self)}, features={self.names})"

    @property
    def names(self) -> list[str]:
        """The feature columns, in request order."""
        return [name for view in self._plan.views for name in view.outputs]

    def _cutoff(self, view: _ViewPlan) -> int | None:
        # In microseconds since the epoch, as records keep their times.
        return None if view.ttl is None else to_micros(self._now - view.ttl)

    @cached_property
    def values(self) -> dict[str, list[Any]]:
        """Feature name → values per entity row (None where missing, or expired if enforced)."""
        out: dict[str, list[Any]] = {}
        for view, read in zip(self._plan.views, self._columns, strict=True):
            cutoff = self._cutoff(view) if self._enforce_ttl else None
            for feature, name in zip(view.features, view.outputs, strict=True):
                column = read.values[feature]
                if cutoff is not None:
                    column = [
                        None if event is None or event <= cutoff else value
                        for value, event in zip(column, read.event_us, strict=True)
                    ]
                out[name] = column
        return out

    @cached_property
    def event_timestamps(self) -> dict[str, list[datetime | None]]:
        """Feature name → event time of the served row per entity row (None: no row)."""
        out: dict[str, list[datetime | None]] = {}
        for view, read in zip(self._plan.views, self._columns, strict=True):
            times = [None if event is None else from_micros(event) for event in read.event_us]
            for name in view.outputs:
                out[name] = list(times)
        return out

    @cached_property
    def statuses(self) -> dict[str, list[FeatureStatus]]:
        """Feature name → status per entity row (see the module docstring)."""
        out: dict[str, list[FeatureStatus]] = {}
        for view, read in zip(self._plan.views, self._columns, strict=True):
            cutoff = self._cutoff(view)
            for feature, name in zip(view.features, view.outputs, strict=True):
                column: list[FeatureStatus] = []
                for value, event in zip(read.values[feature], read.event_us, strict=True):
                    if event is None:
                        column.append("not_found")
                    elif cutoff is not None and event <= cutoff:
                        column.append("outside_ttl")
                    elif value is None:
                        column.append("null")
                    else:
                        column.append("present")
                out[name] = column
        return out

    @cached_property
    def missing(self) -> dict[str, list[bool]]:
        """Feature name → whether no value is served per entity row."""
        return {name: [v is None for v in column] for name, column in self.values.items()}

    def to_dict(self) -> dict[str, list[Any]]:
        """Return the join-key columns, then one column per feature."""
        keys = {key: [row.get(key) for row in self._rows] for key in self._plan.keys}
        return {**keys, **self.values}

    def to_arrow(self, *, metadata: bool = False) -> pa.Table:
        """Return a table of the join keys and the features, typed by their dtypes.

        Args:
            metadata: add ``<feature>__event_timestamp`` and ``<feature>__status`` columns.
        """
        columns: dict[str, pa.Array] = {
            key: pa.array([row.get(key) for row in self._rows]) for key in self._plan.keys
        }
        values = self.values
        for view in self._plan.views:
            for name, dtype in zip(view.outputs, view.dtypes, strict=True):
                columns[name] = pa.array(values[name], arrow_type(dtype))
        if metadata:
            stamp = pa.timestamp("us", tz="UTC")
            for name in self.names:
                columns[f"{name}__event_timestamp"] = pa.array(self.event_timestamps[name], stamp)
                columns[f"{name}__status"] = pa.array(self.statuses[name], pa.string())
        return pa.table(columns)


def _entity_keys(rows: Sequence[Mapping[str, Any]], view: _ViewPlan) -> list[tuple[Any, ...]]:
    try:
        if len(view.join_keys) == 1:
            key = view.join_keys[0]
            return [(row[key],) for row in rows]
        return [tuple(row[key] for key in view.join_keys) for row in rows]
    except (KeyError, TypeError):
        pass
    for index, row in enumerate(rows):
        if not isinstance(row, Mapping):
            raise EntityFrameError(
                f"entity row {index} is a {type(row).__name__}; give a dict of join keys, "
                f"e.g. {{{view.join_keys[0]!r}: ...}}"
            )
        for key in view.join_keys:
            if key not in row:
                raise EntityFrameError(
                    f"entity row {index} lacks join key {key!r} of view {view.name!r}; "
                    f"it has {sorted(map(str, row))}"
                )
    raise EntityFrameError("entity rows could not be read")  # pragma: no cover - unreachable


class OnlineReader:
    """Plans and runs online reads; one per feature store (plans are cached here)."""

    def __init__(
        self,
        store: Store,
        online: Callable[[], OnlineStore],
        current: Callable[[], tuple[int | None, Definitions]],
    ) -> None:
        self._store = store
        self._online = online
        self._current = current
        self._plans: dict[tuple[Any, ...], _Plan] = {}
        self._lock = threading.Lock()

    def _plan(
        self,
        version: int | None,
        definitions: Definitions,
        features: Sequence[str] | None,
        service: str | None,
        full_feature_names: bool,
    ) -> _Plan:
        if (features is None) == (service is None):
            raise InvalidInputError(
                "pass either features=['view:feature', ...] or service='name', not both or neither"
            )
        if isinstance(features, str):
            raise InvalidInputError(f"features must be a list of 'view:feature', got {features!r}")
        if not definitions.views:
            raise UnknownFeatureError(
                "no feature views are registered; define them in features.py and run "
                "`steward features apply`"
            )
        refs = definitions.service(service).features if service is not None else features or ()
        grouped = definitions.resolve(refs)
        keys = tuple(dict.fromkeys(k for name in grouped for k in definitions.view(name).join_keys))
        names = output_names(grouped, full_feature_names, keys)
        views = []
        for name, chosen in grouped.items():
            view = definitions.view(name)
            views.append(
                _ViewPlan(
                    name,
                    view.join_keys,
                    chosen,
                    tuple(names[(name, f)] for f in chosen),
                    tuple(view.feature(f).dtype for f in chosen),
                    view.ttl,
                )
            )
        requested = tuple((definitions.view(name), chosen) for name, chosen in grouped.items())
        return _Plan(version, tuple(views), requested, keys)

    def read(
        self,
        features: Sequence[str] | None,
        entity_rows: Sequence[Mapping[str, Any]] | Any,
        *,
        service: str | None = None,
        full_feature_names: bool = False,
        enforce_ttl: bool = False,
    ) -> OnlineFeatures:
        """Read the latest values of ``features`` (or a service's) for each entity row.

        ``entity_rows`` is a list of dicts of join keys, or a pyarrow Table or pandas
        DataFrame of them (one row per entity).

        Raises:
            InvalidInputError: both or neither of features and service, or no entity rows.
            UnknownFeatureError: a view, feature or service is not registered.
            EntityFrameError: an entity row lacks a join key, or output names clash.
            PermissionDeniedError: the caller may not read a requested feature.
            BackendUnavailableError: the online store cannot be reached.
        """
        if isinstance(entity_rows, pa.Table):
            entity_rows = entity_rows.to_pylist()
        elif type(entity_rows).__name__ == "DataFrame" and hasattr(entity_rows, "to_dict"):
            entity_rows = entity_rows.to_dict("records")
        if entity_rows is None or isinstance(entity_rows, Mapping | str):
            raise InvalidInputError(
                "entity_rows must be a list of dicts of join keys, e.g. [{'customer_id': 42}]"
            )
        if features is not None and not isinstance(features, str):
            features = tuple(features)  # a generator is read once, here
        version, definitions = self._current()
        cache_key = (
            features,
            service,
            full_feature_names,
        )
        plan = self._plans.get(cache_key)
        if plan is None or plan.version != version:
            plan = self._plan(version, definitions, features, service, full_feature_names)
            with self._lock:
                if len(self._plans) > 1_000:  # callers building feature lists on the fly
                    self._plans.clear()
                self._plans[cache_key] = plan
        authorize_feature_read(self._store, plan.requested, rows=len(entity_rows), path="online")
        online = self._online()
        columns = [
            online.read_columns(view.name, _entity_keys(entity_rows, view), view.features)
            for view in plan.views
        ]
        return OnlineFeatures(plan, entity_rows, columns, self._store.clock.now(), enforce_ttl)
