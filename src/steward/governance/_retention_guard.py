"""Governance's answer to ``core.RetentionGuard``: legal holds and model versions keep records.

Contexts below governance delete things too: tracking collects the artifacts of
long-archived runs (``steward gc``). They cannot import governance, so they ask
the guard the store carries; :func:`~steward.governance.authenticated_store`
installs this one. Runs, tags and versions are read through the tables their
contexts declare on ``steward.store.metadata`` (by name, as retention does), so
no scope is checked here: the deleting service has authorized its caller.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from steward.core import KeepReason, StewardError
from steward.governance._holds import HoldService, LegalHold
from steward.store import Store, metadata

__all__ = ["GovernanceRetentionGuard", "deployment_refs", "manifest_digests", "manifest_files"]

_CHUNK = 500  # ids per IN list


def manifest_digests(store: Store, manifest_digest: str) -> list[str]:
    """Return the digests of the files a model version's manifest lists.

    Raises:
        StewardError, OSError, ValueError, LookupError, TypeError, AttributeError:
            the manifest cannot be read or parsed (callers keep everything then).
    """
    return [digest for _path, digest, _size in manifest_files(store, manifest_digest)]


def manifest_files(store: Store, manifest_digest: str) -> list[tuple[str, str, int | None]]:
    """Return ``(path, digest, size)`` of each file a model version's manifest lists.

    Raises:
        StewardError, OSError, ValueError, LookupError, TypeError, AttributeError:
            the manifest cannot be read or parsed (callers keep everything then).
    """
    with store.artifacts.open(manifest_digest) as handle:
        manifest = json.loads(handle.read())
    return [
        (str(path), str(entry["digest"]), entry.get("size"))
        for path, entry in manifest.get("files", {}).items()
    ]


# Serving's tables, named here without importing serving (it sits above governance);
# only the columns read. Every migrated home has them.
_REVISIONS = sa.table(
    "deployment_revisions", sa.column("deployment"), sa.column("revision"), sa.column("spec")
)
_LATEST = sa.table("deployments", sa.column("name"), sa.column("latest_revision"))


def deployment_refs(conn: Connection) -> dict[str, str]:
    """Map each model version (``fraud:3``) any deployment revision routes to, to the newest.

    Every revision counts, not only the current one: a rollback may bring any back.
    """
    if not sa.inspect(conn).has_table("deployment_revisions"):
        return {}
    latest = dict(conn.execute(sa.select(_LATEST.c.name, _LATEST.c.latest_revision)).all())
    found: dict[str, str] = {}
    rows = conn.execute(
        sa.select(_REVISIONS.c.deployment, _REVISIONS.c.revision, _REVISIONS.c.spec).order_by(
            _REVISIONS.c.revision.desc()
        )
    ).all()
    for row in rows:
        when = "current" if latest.get(row.deployment) == row.revision else "a rollback target"
        for variant in json.loads(row.spec).get("variants", []):
            found.setdefault(
                str(variant["model"]),
                f"deployment {row.deployment} revision {row.revision} ({when})",
            )
    return found


def _table(name: str) -> sa.Table:
    return metadata.tables[name]


def _held(hold: LegalHold) -> KeepReason:
    return KeepReason(f"held by {hold.id} ({hold.selector}): {hold.reason}", hold.id)


def _chunks(values: Sequence[str]) -> Iterator[list[str]]:
    for start in range(0, len(values), _CHUNK):
        yield list(values[start : start + _CHUNK])


class GovernanceRetentionGuard:
    """Keeps runs under a legal hold and blobs that a model version uses.

    Example:
        >>> store = store.with_retention_guard(GovernanceRetentionGuard(store))  # doctest: +SKIP
        >>> TrackingService(store).collect_garbage(dry_run=False)  # doctest: +SKIP
    """

    def __init__(self, store: Store, *, holds: HoldService | None = None) -> None:
        self._store = store
        self._holds = holds or HoldService(store)

    def kept_runs(self, run_ids: Collection[str]) -> dict[str, KeepReason]:
        """Return the runs a legal hold keeps (by model, version, time range or subject)."""
        active = self._holds.active()
        if not active.holds or not run_ids:
            return {}
        kept: dict[str, KeepReason] = {}
        for chunk in _chunks(sorted(set(run_ids))):
            for run_id, started, subject, versions in self._runs(chunk):
                hold = active.for_run(started, {"subject": subject} if subject else {}, versions)
                if hold is not None:
                    kept[run_id] = _held(hold)
        return kept

    def _runs(self, chunk: list[str]) -> list[tuple[str, Any, str | None, list[tuple[str, int]]]]:
        runs_t, tags_t = _table("runs"), _table("run_tags")
        versions_t, models_t = _table("model_versions"), _table("registered_models")
        with self._store.database.read() as conn:
            started = dict(
                conn.execute(
                    sa.select(runs_t.c.id, runs_t.c.start_time).where(runs_t.c.id.in_(chunk))
                ).all()
            )
            subjects = dict(
                conn.execute(
                    sa.select(tags_t.c.run_id, tags_t.c.value).where(
                        tags_t.c.run_id.in_(chunk), tags_t.c.key == "subject"
                    )
                ).all()
            )
            produced: dict[str, list[tuple[str, int]]] = {}
            for row in conn.execute(
                sa.select(versions_t.c.run_id, models_t.c.name, versions_t.c.version)
                .join(models_t, models_t.c.id == versions_t.c.model_id)
                .where(versions_t.c.run_id.in_(chunk))
            ).all():
                produced.setdefault(row.run_id, []).append((row.name, row.version))
        return [(r, s, subjects.get(r), produced.get(r, [])) for r, s in started.items()]

    def kept_blobs(self, digests: Collection[str]) -> dict[str, KeepReason]:
        """Return the blobs a model version uses: its manifest, files, example, compilations.

        A version whose artifacts retention deleted keeps only its example. A manifest
        that cannot be read keeps every blob asked about (the safe side).
        """
        wanted = set(digests)
        if not wanted:
            return {}
        used, problem = self._version_blobs()
        if problem is not None:
            return {d: KeepReason(f"kept: {problem}") for d in wanted}
        return {
            d: KeepReason(f"part of model version {used[d]}") for d in sorted(wanted) if d in used
        }

    def _version_blobs(self) -> tuple[dict[str, str], str | None]:
        versions_t, models_t = _table("model_versions"), _table("registered_models")
        compiled_t = _table("model_compilations")
        with self._store.database.read() as conn:
            rows = conn.execute(
                sa.select(
                    versions_t.c.id,
                    models_t.c.name,
                    versions_t.c.version,
                    versions_t.c.artifact_digest,
                    versions_t.c.example_digest,
                    versions_t.c.purged_at,
                ).join(models_t, models_t.c.id == versions_t.c.model_id)
            ).all()
            compiled = conn.execute(
                sa.select(compiled_t.c.version_id, compiled_t.c.artifact_digest).where(
                    compiled_t.c.artifact_digest.is_not(None)
                )
            ).all()
        refs = {r.id: f"{r.name}:{r.version}" for r in rows}
        purged = {r.id for r in rows if r.purged_at is not None}
        used: dict[str, str] = {}
        for row in rows:
            manifest = None if row.id in purged else row.artifact_digest
            for digest in filter(None, (manifest, row.example_digest)):
                used.setdefault(digest, refs[row.id])
        for version_id, digest in compiled:
            if version_id not in purged:
                used.setdefault(digest, refs.get(version_id, version_id))
        for row in rows:
            if row.id in purged:
                continue
            try:
                for digest in manifest_digests(self._store, row.artifact_digest):
                    used.setdefault(digest, refs[row.id])
            except (StewardError, OSError, ValueError, LookupError, TypeError, AttributeError) as e:
                # Any failure keeps every blob asked about: the safe side.
                kind = type(e).__name__
                return used, f"the manifest of {refs[row.id]} could not be read ({kind})"
        return used, None
