"""Online features of a deployment: fetched by entity key, merged into the model input, logged.

A revision whose settings name a ``feature_service`` is bound to it when it
loads (:func:`bind_features`): the service must exist, every feature it serves
must be an input of every variant's model, and ``entity_keys`` must name a
request field for each join key. A revision that does not bind never takes
traffic, like one whose model fails to load.

Per request (:class:`FeatureFetcher`)::

    records  {"customer_id": 42, "amount": 12.5}
      -> entity rows  {"customer_id": 42}            (422 if a key field is missing)
      -> one online read for the rows of every request in the micro-batch
      -> model input  {"amount": 12.5, "score": 0.7}  (key fields the model does not
                                                       take are left out)
      -> log entry    {"service", "definitions_version", "read_at",
                       "rows": [{"score": {"value", "status", "age_s"}}]}

Decisions: a request that sends a field the service serves is refused (422);
the online value is the governed one and a caller may not override it. A value
the store does not have (status ``not_found`` or ``null``) reaches the model as
null when its signature column is nullable and is refused (422, naming the
entity and feature) when it is not. A value older than its view's TTL
(``outside_ttl``) is served and flagged in the log with its age. Values of PII
features reach the model but not the prediction log (status and age do).
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from steward.core import BackendUnavailableError, ConfigurationError, StewardError
from steward.features import Definitions, FeatureStore, OnlineFeatures
from steward.registry import Signature
from steward.serving._batching import MicroBatcher
from steward.serving._deployment_models import DeploymentSettings
from steward.serving._wire import FieldProblem, RequestProblemError

__all__ = ["FeatureBinding", "FeatureFetcher", "FetchedFeatures", "bind_features"]

_MAX_PROBLEMS = 50
EntityRows = list[dict[str, Any]]


@dataclass(frozen=True)
class FeatureBinding:
    """What a revision fetches and how it reaches each variant's model.

    Attributes:
        service: the feature service's name.
        keys: ``(join key, request field)`` pairs.
        outputs: the feature columns the service serves, in order.
        pii: the outputs classified PII (kept out of the prediction log).
        drop: variant -> request key fields its model does not take.
        required: variant -> outputs its model's signature does not accept null for.
    """

    service: str
    keys: tuple[tuple[str, str], ...]
    outputs: tuple[str, ...]
    pii: frozenset[str]
    drop: Mapping[str, frozenset[str]]
    required: Mapping[str, frozenset[str]]


def _service_features(
    definitions: Definitions, service: str
) -> tuple[tuple[str, ...], tuple[str, ...], frozenset[str]]:
    """Return the service's join keys, output names and PII outputs (raises if unknown)."""
    grouped = definitions.resolve(
        definitions.service(service).features, context=f"feature service {service!r}"
    )
    keys: list[str] = []
    outputs: list[str] = []
    pii: set[str] = set()
    for name, features in grouped.items():
        view = definitions.view(name)
        keys.extend(k for k in view.join_keys if k not in keys)
        for feature in features:
            if feature in outputs:
                raise ConfigurationError(
                    f"feature service {service!r} serves two features named {feature!r}; a "
                    "deployment needs one column per name: rename one of them"
                )
            outputs.append(feature)
            if view.feature(feature).pii:
                pii.add(feature)
    return tuple(keys), tuple(outputs), frozenset(pii)


def bind_features(
    settings: DeploymentSettings,
    signatures: Mapping[str, Signature | None],
    definitions: Definitions,
) -> FeatureBinding:
    """Check a revision's feature settings against the service and its variants' models.

    Args:
        settings: the revision's settings (``feature_service`` must be set).
        signatures: variant name -> its model's signature.
        definitions: the registered feature definitions.

    Raises:
        UnknownFeatureError: the service (or a feature of it) is not registered.
        ConfigurationError: ``entity_keys`` misses or invents a join key, or a served
            feature is not an input of a variant's model.
    """
    service = settings.feature_service
    if service is None:
        raise ConfigurationError("bind_features needs settings with a feature_service")
    join_keys, outputs, pii = _service_features(definitions, service)
    fields = settings.entity_keys or {k: k for k in join_keys}
    unknown = sorted(set(fields) - set(join_keys))
    missing = [k for k in join_keys if k not in fields]
    if unknown or missing:
        raise ConfigurationError(
            f"entity_keys {fields!r} do not match the join keys of feature service "
            f"{service!r} ({', '.join(join_keys)}): map each join key to a request field"
        )
    drop: dict[str, frozenset[str]] = {}
    required: dict[str, frozenset[str]] = {}
    for variant, signature in signatures.items():
        if signature is None:  # the model takes the records as they are
            drop[variant], required[variant] = frozenset(), frozenset()
            continue
        specs = {c.name: c for c in signature.inputs}
        absent = [f for f in outputs if f not in specs]
        if absent:
            raise ConfigurationError(
                f"feature service {service!r} serves {', '.join(map(repr, absent))}, which the "
                f"model of variant {variant!r} does not take; its inputs: "
                f"{', '.join(signature.names)}"
            )
        drop[variant] = frozenset(f for f in fields.values() if f not in specs)
        required[variant] = frozenset(f for f in outputs if not specs[f].nullable)
    keys = tuple((k, fields[k]) for k in join_keys)
    return FeatureBinding(service, keys, outputs, pii, drop, required)


@dataclass(frozen=True)
class FetchedFeatures:
    """The online features of one request's rows, with their statuses and ages."""

    binding: FeatureBinding
    values: list[dict[str, Any]]
    statuses: list[dict[str, str]]
    ages: list[dict[str, float | None]]
    read_at: datetime
    definitions_version: int | None

    def model_records(
        self, variant: str, records: Sequence[Mapping[str, Any]]
    ) -> list[dict[str, Any]]:
        """Return the records ``variant``'s model takes: request fields plus features.

        Raises:
            RequestProblemError: a feature the model needs has no online value.
        """
        binding = self.binding
        required = binding.required.get(variant, frozenset())
        problems = [
            FieldProblem(
                name,
                f"no online value for {self._entity(row, records)} "
                f"(status {self.statuses[row][name]}) and the model does not accept null",
                row,
            )
            for row, values in enumerate(self.values)
            for name in required
            if values[name] is None
        ]
        if problems:
            first = problems[0]
            raise RequestProblemError(
                f"feature service {binding.service!r} has no value of {first.field!r} for "
                f"{self._entity(first.row or 0, records)} (row {first.row}); materialize or "
                "push it, or send another entity",
                problems[:_MAX_PROBLEMS],
            )
        drop = binding.drop.get(variant, frozenset())
        if not drop:
            return [{**r, **v} for r, v in zip(records, self.values, strict=True)]
        return [
            {**{k: x for k, x in r.items() if k not in drop}, **v}
            for r, v in zip(records, self.values, strict=True)
        ]

    def _entity(self, row: int, records: Sequence[Mapping[str, Any]]) -> str:
        return ", ".join(f"{f}={records[row].get(f)!r}" for _, f in self.binding.keys)

    def log_entry(self) -> dict[str, Any]:
        """Return what the prediction log keeps: values (not PII), statuses, ages per row."""
        pii = self.binding.pii
        rows = []
        for values, statuses, ages in zip(self.values, self.statuses, self.ages, strict=True):
            row: dict[str, Any] = {}
            for name, value in values.items():
                entry: dict[str, Any] = {"status": statuses[name], "age_s": ages[name]}
                if name in pii:
                    entry["pii"] = True
                else:
                    entry["value"] = value.isoformat() if isinstance(value, datetime) else value
                row[name] = entry
            rows.append(row)
        return {
            "service": self.binding.service,
            "definitions_version": self.definitions_version,
            "read_at": self.read_at.isoformat(),
            "rows": rows,
        }


Reader = Callable[[EntityRows], OnlineFeatures]


class FeatureFetcher:
    """Fetches a revision's online features for requests, one read per micro-batch.

    Args:
        binding: what to fetch (see :func:`bind_features`).
        read: entity rows -> the service's online features (one online read).
        now: the clock the ages are measured with (the feature store's).
        version: the registered definitions version, for the log.
        max_batch_size: the most requests one read serves.
        max_wait_ms: how long a partial batch of reads waits to fill.
        name: for messages (the deployment).
    """

    def __init__(
        self,
        binding: FeatureBinding,
        read: Reader,
        *,
        now: Callable[[], datetime],
        version: Callable[[], int | None],
        max_batch_size: int = 32,
        max_wait_ms: float = 1.0,
        name: str = "deployment",
    ) -> None:
        self.binding = binding
        self._read = read
        self._now = now
        self._version = version
        self._lock = threading.Lock()
        self.statuses: Counter[str] = Counter()
        self.reads = 0
        self.rows = 0
        self._batcher: MicroBatcher[EntityRows, FetchedFeatures] = MicroBatcher(
            self._read_batch,
            max_batch_size=max_batch_size,
            max_wait_ms=max_wait_ms,
            name=f"{name}/features",
        )

    @classmethod
    def open(
        cls,
        settings: DeploymentSettings,
        signatures: Mapping[str, Signature | None],
        features: FeatureStore,
        *,
        name: str,
    ) -> FeatureFetcher:
        """Bind a revision to its feature service and warm the read path (blocking).

        Raises:
            UnknownFeatureError: the service is not registered.
            ConfigurationError: see :func:`bind_features`.
            BackendUnavailableError: the online store cannot be read.
        """
        binding = bind_features(settings, signatures, features.definitions())
        service = binding.service

        def read(rows: EntityRows) -> OnlineFeatures:
            return features.get_online_features(service=service, entity_rows=rows)

        read([])  # opens the online store and plans the read before traffic comes
        return cls(
            binding,
            read,
            now=lambda: features.store.clock.now(),
            version=features.definitions_version,
            max_batch_size=settings.max_batch_size,
            max_wait_ms=settings.max_wait_ms,
            name=name,
        )

    def entity_rows(self, records: Sequence[Mapping[str, Any]]) -> EntityRows:
        """Return the join keys of each record.

        Raises:
            RequestProblemError: a key field is missing, null or not a string or
                integer, or a record sends a field the service serves.
        """
        problems: list[FieldProblem] = []
        rows: EntityRows = []
        for index, record in enumerate(records):
            rows.append(self._entity_row(index, record, problems))
            if len(problems) >= _MAX_PROBLEMS:
                break
        if problems:
            first = problems[0]
            raise RequestProblemError(
                f"row {first.row} field {first.field!r}: {first.message}", problems[:_MAX_PROBLEMS]
            )
        return rows

    def _entity_row(
        self, index: int, record: Mapping[str, Any], problems: list[FieldProblem]
    ) -> dict[str, Any]:
        service = self.binding.service
        row: dict[str, Any] = {}
        for key, field in self.binding.keys:
            value = record.get(field)
            if value is None:
                message = f"missing: the entity key {key!r} of feature service {service!r}"
                problems.append(FieldProblem(field, message, index))
            elif isinstance(value, bool) or not isinstance(value, str | int):
                message = f"an entity key must be a string or an integer, got {value!r:.40}"
                problems.append(FieldProblem(field, message, index))
            row[key] = value
        problems.extend(
            FieldProblem(name, f"served by feature service {service!r}; do not send it", index)
            for name in self.binding.outputs
            if name in record
        )
        return row

    async def fetch(self, records: Sequence[Mapping[str, Any]]) -> FetchedFeatures:
        """Return the online features of ``records`` (read together with concurrent requests).

        Raises:
            RequestProblemError: see :meth:`entity_rows` (HTTP 422).
            BackendUnavailableError: the online store or the service cannot be read (503).
        """
        return await self._batcher.submit(self.entity_rows(records))

    def _read_batch(self, requests: list[EntityRows]) -> list[FetchedFeatures]:
        rows = [row for request in requests for row in request]
        service = self.binding.service
        try:
            online = self._read(rows)
            version = self._version()
        except StewardError as exc:
            raise BackendUnavailableError(
                f"online features of feature service {service!r} could not be read: {exc}"
            ) from exc
        missing = [name for name in self.binding.outputs if name not in online.values]
        if missing:
            raise BackendUnavailableError(
                f"feature service {service!r} no longer serves {', '.join(missing)}; make a new "
                "revision of the deployment for the service as it is now"
            )
        now = self._now()
        with self._lock:
            self.reads += 1
        results = []
        start = 0
        for request in requests:
            end = start + len(request)
            results.append(self._slice(online, start, end, now, version))
            start = end
        return results

    def _slice(
        self, online: OnlineFeatures, start: int, end: int, now: datetime, version: int | None
    ) -> FetchedFeatures:
        names = self.binding.outputs
        values, statuses, stamps = online.values, online.statuses, online.event_timestamps
        ages: list[dict[str, float | None]] = []
        for i in range(start, end):
            ages.append(
                {
                    n: None
                    if (ts := stamps[n][i]) is None
                    else round((now - ts).total_seconds(), 3)
                    for n in names
                }
            )
        fetched = FetchedFeatures(
            self.binding,
            [{n: values[n][i] for n in names} for i in range(start, end)],
            [{n: statuses[n][i] for n in names} for i in range(start, end)],
            ages,
            now,
            version,
        )
        with self._lock:
            self.rows += end - start
            self.statuses.update(s for row in fetched.statuses for s in row.values())
        return fetched

    def describe(self) -> dict[str, Any]:
        """Facts for the status endpoint."""
        return {
            "service": self.binding.service,
            "entity_keys": dict(self.binding.keys),
            "features": list(self.binding.outputs),
            "reads": self.reads,
            "rows": self.rows,
            "statuses": self.status_counts(),
        }

    def status_counts(self) -> dict[str, int]:
        """Return how many values were fetched per status (a copy; safe from any thread)."""
        with self._lock:
            return dict(sorted(self.statuses.items()))

    async def close(self) -> None:
        """Finish queued reads and release the reader's thread."""
        await self._batcher.close()
