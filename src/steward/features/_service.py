"""The feature store service: registered definitions, apply, point-in-time retrieval.

Online serving, materialization, push and status live in their own modules;
this class carries thin methods that delegate to them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import cached_property
from typing import Any

import pyarrow as pa
import sqlalchemy as sa

from steward.core import ConflictError, InvalidInputError, load_settings
from steward.features._access import authorize_feature_read
from steward.features._definitions import Definitions, FeatureView
from steward.features._docs import render_view, write_docs
from steward.features._engine import DuckEngine
from steward.features._errors import UnknownFeatureError
from steward.features._materialize import MaterializeReport, materialize_views
from steward.features._online import OnlineStore, open_online_store
from steward.features._plan import ApplyPlan, diff_definitions
from steward.features._push import Pusher
from steward.features._pushlog import push_log_files
from steward.features._retrieval import retrieve
from steward.features._serving import OnlineFeatures, OnlineReader
from steward.features._settings import FeatureSettings
from steward.features._sources import read_view
from steward.features._status import ViewProfile, ViewStatus, read_profile, view_statuses
from steward.features._tables import feature_definitions
from steward.features._windows import compute_window_aggregates
from steward.quality import ReferenceProfile
from steward.store import Store

__all__ = ["FeatureStore"]

WRITE_SCOPE = "features:write"
READ_SCOPE = "features:read"
# How long a process trusts its cached definitions before checking for a newer
# version applied by another process.
CACHE_SECONDS = 1.0


class FeatureStore:
    """Feature definitions, training sets and online features of one steward home.

    Example:
        >>> features = FeatureStore(Store.open())  # doctest: +SKIP
        >>> features.apply(load_definitions("features.py"))  # doctest: +SKIP
        >>> training = features.get_historical_features(  # doctest: +SKIP
        ...     entity_df, ["customer_profile:age", "txn_windows:amount_sum_24h"]
        ... )
    """

    def __init__(self, store: Store, settings: FeatureSettings | None = None) -> None:
        self.store = store
        if settings is None:
            home = store.settings.home if store.settings is not None else None
            settings = (
                load_settings(FeatureSettings, home=home)
                if home is not None
                else load_settings(FeatureSettings)
            )
        self.settings = settings
        self.engine = DuckEngine(
            threads=settings.duckdb_threads,
            memory_limit=settings.duckdb_memory_limit,
            temp_dir=settings.home / "features" / "tmp",
        )
        self._cache: tuple[int | None, Definitions] | None = None
        self._checked_at = 0.0

    # -- definitions --------------------------------------------------------

    def _latest_row(self, conn: sa.Connection) -> tuple[int, str] | None:
        row = conn.execute(
            sa.select(feature_definitions.c.version, feature_definitions.c.content)
            .order_by(feature_definitions.c.version.desc())
            .limit(1)
        ).first()
        return None if row is None else (int(row.version), str(row.content))

    def _load(self, row: tuple[int, str] | None) -> tuple[int | None, Definitions]:
        if row is None:
            return None, Definitions()
        return row[0], Definitions.from_dict(json.loads(row[1]))

    def _current(self) -> tuple[int | None, Definitions]:
        now = time.monotonic()
        if self._cache is not None and now - self._checked_at < CACHE_SECONDS:
            return self._cache
        with self.store.database.read() as conn:
            version = conn.execute(sa.select(sa.func.max(feature_definitions.c.version))).scalar()
            if self._cache is None or self._cache[0] != version:
                self._cache = self._load(self._latest_row(conn))
        self._checked_at = now
        return self._cache

    def definitions(self) -> Definitions:
        """Return the registered definitions (empty before the first ``apply``)."""
        return self._current()[1]

    def definitions_version(self) -> int | None:
        """Return the registered definitions version, or None before the first ``apply``."""
        return self._current()[0]

    def list_views(self) -> list[FeatureView]:
        """Return the registered feature views, by name."""
        views = self.definitions().views
        return [views[name] for name in sorted(views)]

    def get_view(self, name: str) -> FeatureView:
        """Return a registered feature view.

        Raises:
            UnknownFeatureError: no such view; the message lists close matches.
        """
        return self.definitions().view(name)

    def apply(
        self, definitions: Definitions, *, dry_run: bool = False, check_sources: bool = True
    ) -> ApplyPlan:
        """Register new definitions: diff them against the registered ones and record a version.

        Prints nothing; the plan says what was added, changed and removed, and
        which changes are breaking.  Nothing is recorded when nothing changed or
        on a dry run.  Markdown pages per view are regenerated after a change.

        Raises:
            PermissionDeniedError: the caller lacks ``features:write`` (``features:read``
                for a dry run).
            SourceSchemaError: with ``check_sources``, a view's source is missing or
                lacks a column the view reads.
            ConflictError: another apply recorded the same version first; run it again.
        """
        self.store.authorize(READ_SCOPE if dry_run else WRITE_SCOPE, resource="feature_repo")
        if check_sources:
            self._check_sources(definitions)
        if dry_run:
            with self.store.database.read() as conn:
                version, old = self._load(self._latest_row(conn))
            changes = diff_definitions(old, definitions)
            return ApplyPlan(
                changes, definitions.digest, None if changes else version, version, True
            )
        try:
            plan = self._record(definitions)
        except sa.exc.IntegrityError:
            raise ConflictError(
                "feature definitions were applied by someone else at the same moment; "
                "run apply again to diff against their version"
            ) from None
        if plan.changed and plan.version is not None:
            self._cache, self._checked_at = (plan.version, definitions), time.monotonic()
            pages = write_docs(definitions, self.settings.docs_dir(), plan.version)
            plan = ApplyPlan(
                plan.changes,
                plan.digest,
                plan.version,
                plan.previous_version,
                docs=tuple(str(p) for p in pages),
            )
        return plan

    def _record(self, definitions: Definitions) -> ApplyPlan:
        with self.store.unit_of_work() as uow:
            previous, old = self._load(self._latest_row(uow.conn))
            changes = diff_definitions(old, definitions)
            if not changes:
                return ApplyPlan((), definitions.digest, previous, previous)
            version = (previous or 0) + 1
            plan = ApplyPlan(changes, definitions.digest, version, previous)
            uow.conn.execute(
                feature_definitions.insert(),
                {
                    "version": version,
                    "digest": definitions.digest,
                    "content": definitions.canonical_json(),
                    "plan": json.dumps(plan.as_dict(), sort_keys=True),
                    "applied_by": uow.actor,
                    "applied_at": uow.clock.now(),
                },
            )
            uow.audit(
                "features.apply",
                "feature_definitions",
                str(version),
                {
                    "version": version,
                    "digest": definitions.digest,
                    "breaking": plan.breaking,
                    "changes": [f"{c.action} {c.kind} {c.name}" for c in changes],
                },
            )
        return plan

    def _check_sources(self, definitions: Definitions) -> None:
        conn = self.engine.cursor()
        try:
            for view in definitions.views.values():
                read_view(conn, view, view.feature_names, self.push_log_files(view.name))
        finally:
            conn.close()

    # -- retrieval ----------------------------------------------------------

    def push_log_files(self, view: str) -> list[str]:
        """Return the Parquet files of the view's offline push log (rows pushed online)."""
        return push_log_files(self.settings.resolved_offline_dir(), view)

    def _requested(
        self, features: Sequence[str] | None, service: str | None
    ) -> list[tuple[FeatureView, tuple[str, ...]]]:
        if (features is None) == (service is None):
            raise InvalidInputError(
                "pass either features=['view:feature', ...] or service='name', not both or neither"
            )
        if isinstance(features, str):
            raise InvalidInputError(f"features must be a list of 'view:feature', got {features!r}")
        definitions = self.definitions()
        if not definitions.views:
            raise UnknownFeatureError(
                "no feature views are registered; define them in features.py and run "
                "`steward features apply`"
            )
        refs = definitions.service(service).features if service is not None else features or ()
        grouped = definitions.resolve(refs)
        return [(definitions.view(name), names) for name, names in grouped.items()]

    def get_historical_features(
        self,
        entity_df: Any,
        features: Sequence[str] | None = None,
        *,
        service: str | None = None,
        full_feature_names: bool = False,
        timestamp_column: str = "event_timestamp",
    ) -> pa.Table:
        """Build a point-in-time correct training set: features as known at each row's time.

        For each entity row, a plain view gives the latest value with event time
        at or before the row's timestamp and within the view's TTL (ties broken by
        the created timestamp); a window view gives its aggregates over the window
        ending at the row's timestamp.  Missing values are null; every entity row
        is returned, in input order.  Naive timestamps are taken as UTC.

        Args:
            entity_df: pyarrow Table or pandas DataFrame with the join keys and
                ``timestamp_column``.
            features: ``view:feature`` references (``view:*`` for all of a view).
            service: a feature service name, instead of ``features``.
            full_feature_names: name columns ``view__feature`` instead of ``feature``.
            timestamp_column: the entity frame's event-time column.

        Returns:
            The entity frame's columns followed by one column per feature.

        Example:
            >>> features.get_historical_features(  # doctest: +SKIP
            ...     entities, ["customer_profile:age", "txn_windows:*"]
            ... ).to_pandas()

        Raises:
            UnknownFeatureError: a view, feature or service is not registered.
            EntityFrameError: the frame lacks keys, has bad timestamps or clashing names.
            SourceSchemaError: a source is missing or no longer matches its view.
            PermissionDeniedError: the caller may not read a requested feature.
        """
        views = self._requested(features, service)
        rows = len(entity_df) if hasattr(entity_df, "__len__") else -1
        authorize_feature_read(self.store, views, rows=rows, path="historical")
        return retrieve(
            self.engine,
            views,
            entity_df,
            timestamp_column=timestamp_column,
            full_feature_names=full_feature_names,
            extra_files={view.name: self.push_log_files(view.name) for view, _ in views},
        )

    def get_historical(
        self,
        entity_df: Any,
        features: Sequence[str] | None = None,
        *,
        service: str | None = None,
        full_feature_names: bool = False,
        timestamp_column: str = "event_timestamp",
    ) -> pa.Table:
        """Alias of :meth:`get_historical_features`, the SDK's short spelling."""
        return self.get_historical_features(
            entity_df,
            features,
            service=service,
            full_feature_names=full_feature_names,
            timestamp_column=timestamp_column,
        )

    def view_markdown(self, name: str) -> str:
        """Return the documentation page of a registered view, as Markdown.

        Raises:
            UnknownFeatureError: no such view; the message lists close matches.
        """
        version, definitions = self._current()
        return render_view(definitions, definitions.view(name), version)

    def compute_window_aggregates(
        self, view: str, entity_keys: Sequence[Sequence[Any]] | None, as_of: datetime
    ) -> pa.Table:
        """Compute a window view's aggregates as of one instant (see ``compute_window_aggregates``).

        Raises:
            UnknownFeatureError: no such view.
            FeatureDefinitionError: the view has no aggregations.
        """
        definition = self.get_view(view)
        return compute_window_aggregates(
            definition,
            entity_keys,
            as_of,
            engine=self.engine,
            extra_files=self.push_log_files(view),
        )

    # -- online: materialization, serving, push, freshness ------------------
    # Thin delegations to _materialize, _serving, _push and _status.

    @cached_property
    def online_store(self) -> OnlineStore:
        """The online store ``STEWARD_ONLINE_STORE_URL`` names, opened on first use.

        Raises:
            ConfigurationError: the URL is malformed or the file cannot be opened.
            BackendUnavailableError: the Redis server cannot be reached.
        """
        return open_online_store(self.settings.resolved_online_store_url())

    @cached_property
    def _online_reader(self) -> OnlineReader:
        return OnlineReader(self.store, lambda: self.online_store, self._current)

    @cached_property
    def _pusher(self) -> Pusher:
        return Pusher(
            self.store,
            lambda: self.online_store,
            self.engine,
            self.settings.resolved_offline_dir(),
            self.push_log_files,
        )

    def materialize(
        self,
        *,
        start: datetime | None = None,
        end: datetime | None = None,
        incremental: bool = False,
        views: Sequence[str] | None = None,
        progress: bool = True,
        batch_rows: int = 100_000,
    ) -> MaterializeReport:
        """Write each view's latest values in ``[start, end]`` into the online store.

        With ``incremental`` each view starts at its watermark (the end of the last
        run that left no gap); without a ``start`` it starts at the first event;
        ``end`` defaults to now. Naive datetimes are taken as UTC. Running twice
        writes nothing the second time; a failed run leaves the watermark as it was
        (see ``steward.features._materialize``).

        Example:
            >>> features.materialize(incremental=True).rows_written  # doctest: +SKIP
            10000

        Raises:
            InvalidInputError: the window is empty or in the future, or ``start`` is
                given with ``incremental``.
            UnknownFeatureError: a named view is not registered, or none are.
            PermissionDeniedError: the caller lacks ``features:materialize`` on a view.
            SourceSchemaError: a source is missing or no longer matches its view.
            BackendUnavailableError: the online store cannot be written.
        """
        return materialize_views(
            store=self.store,
            online=self.online_store,
            engine=self.engine,
            definitions=self.definitions(),
            push_log=self.push_log_files,
            start=start,
            end=end,
            incremental=incremental,
            views=views,
            progress=progress,
            batch_rows=batch_rows,
        )

    def get_online_features(
        self,
        features: Sequence[str] | None = None,
        entity_rows: Sequence[Mapping[str, Any]] | Any = None,
        *,
        service: str | None = None,
        full_feature_names: bool = False,
        enforce_ttl: bool = False,
    ) -> OnlineFeatures:
        """Read the latest values of features for entities, with event times and statuses.

        Args:
            features: ``view:feature`` references (``view:*`` for all of a view).
            entity_rows: one dict of join-key values per entity, e.g. ``[{"customer_id": 42}]``
                (or a pyarrow Table or pandas DataFrame of join keys).
            service: a feature service name, instead of ``features``.
            full_feature_names: name columns ``view__feature`` instead of ``feature``.
            enforce_ttl: serve null (status ``outside_ttl``) for values older than their
                view's TTL, as training would see them.

        Example:
            >>> features.get_online_features(  # doctest: +SKIP
            ...     ["customer_profile:age"], entity_rows=[{"customer_id": 42}]
            ... ).to_dict()
            {'customer_id': [42], 'age': [41]}

        Raises:
            UnknownFeatureError: a view, feature or service is not registered.
            EntityFrameError: an entity row lacks a join key.
            PermissionDeniedError: the caller may not read a requested feature.
            BackendUnavailableError: the online store cannot be reached.
        """
        return self._online_reader.read(
            features,
            entity_rows,
            service=service,
            full_feature_names=full_feature_names,
            enforce_ttl=enforce_ttl,
        )

    def get_online(
        self,
        features: Sequence[str] | None = None,
        entity_rows: Sequence[Mapping[str, Any]] | Any = None,
        *,
        service: str | None = None,
        full_feature_names: bool = False,
        enforce_ttl: bool = False,
    ) -> OnlineFeatures:
        """Alias of :meth:`get_online_features`, the SDK's short spelling."""
        return self.get_online_features(
            features,
            entity_rows,
            service=service,
            full_feature_names=full_feature_names,
            enforce_ttl=enforce_ttl,
        )

    def push(self, view: str, rows: Any) -> int:
        """Write fresh rows online now and append them to the view's offline push log.

        ``rows`` (a list of dicts, a pyarrow Table or a pandas DataFrame) carry the
        view source's columns: join keys, event timestamp, optionally the created
        timestamp, and the features. Returns the number of rows pushed.

        Raises:
            UnknownFeatureError: no such view.
            PermissionDeniedError: the caller lacks ``features:push`` on the view.
            InvalidInputError: the rows lack or add columns, or hold unconvertible values.
            BackendUnavailableError: the log or the online store cannot be written.
        """
        version, definitions = self._current()
        return self._pusher.push(definitions.view(view), version, rows).rows

    def status(self) -> list[ViewStatus]:
        """Return each view's watermark, lag against its freshness SLA, runs and rows written.

        Raises:
            PermissionDeniedError: the caller lacks ``features:read``.
        """
        self.store.authorize(READ_SCOPE, resource="feature_repo")
        return view_statuses(self.store, self.definitions())

    def get_profile(self, view: str) -> ReferenceProfile:
        """Return the profile of the view's last materialization: a drift baseline for serving.

        Raises:
            UnknownFeatureError: no such view.
            NotFoundError: the view has no successful materialization with a profile.
            PermissionDeniedError: the caller lacks ``features:read`` on the view.
        """
        return self.get_view_profile(view).profile

    def get_view_profile(self, view: str) -> ViewProfile:
        """Return the profile of the view's last materialization with the run that stored it.

        Example:
            >>> features.get_view_profile("customer_profile").profile.rows  # doctest: +SKIP
            20000

        Raises:
            UnknownFeatureError: no such view.
            NotFoundError: the view has no successful materialization with a profile.
            PermissionDeniedError: the caller lacks ``features:read`` on the view.
        """
        self.get_view(view)
        self.store.authorize(READ_SCOPE, resource=f"feature_view:{view}")
        return read_profile(self.store, view)

    def close(self) -> None:
        """Release the DuckDB database and the online store."""
        self.engine.close()
        online = self.__dict__.pop("online_store", None)
        if online is not None:
            online.close()
