"""Reading registry records out of the database, and resolving references to versions.

Every "not found" names what does exist, closest matches first, so a typo is
one glance from its fix: ``model 'fruad' does not exist; did you mean 'fraud'?``.
"""

from __future__ import annotations

import difflib
import json
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from steward.core import NotFoundError
from steward.registry._models import (
    Compilation,
    DecisionMode,
    ModelRef,
    ModelVersion,
    RegisteredModel,
    RiskTier,
    Stage,
)
from steward.registry._signatures import Signature
from steward.registry._tables import (
    model_aliases,
    model_compilations,
    model_versions,
    registered_models,
)

__all__ = [
    "aliases_of",
    "close_matches",
    "load_versions",
    "model_row",
    "resolve_version_row",
    "to_model",
]


def _closest_first(wanted: str, known: Sequence[str], limit: int) -> list[str]:
    near = difflib.get_close_matches(wanted, known, n=limit, cutoff=0.5)
    return [*near, *(k for k in known if k not in near)][:limit]


def close_matches(wanted: str, known: Sequence[str], *, limit: int = 10) -> str:
    """Render known names, the closest to ``wanted`` first: ``'fraud', 'fraud2', 'churn'``."""
    shown = _closest_first(wanted, known, limit)
    more = f" (+{len(known) - limit} more)" if len(known) > limit else ""
    return ", ".join(repr(k) for k in shown) + more


def _did_you_mean(wanted: str, known: Sequence[str]) -> str:
    near = difflib.get_close_matches(wanted, known, n=1, cutoff=0.6)
    return f"; did you mean {near[0]!r}?" if near else ""


def model_row(conn: Connection, name: str) -> Any:
    """Return the ``registered_models`` row of ``name``.

    Raises:
        NotFoundError: no such model; the message lists models, closest first.
    """
    row = conn.execute(sa.select(registered_models).where(registered_models.c.name == name)).first()
    if row is not None:
        return row
    known = list(conn.execute(sa.select(registered_models.c.name)).scalars())
    if not known:
        raise NotFoundError(
            f"model {name!r} does not exist; no models are registered yet "
            "(register one with run.register_model(...) or registry.register(...))"
        )
    raise NotFoundError(
        f"model {name!r} does not exist{_did_you_mean(name, known)} "
        f"existing: {close_matches(name, known)}"
    )


def aliases_of(conn: Connection, model_id: str) -> dict[str, int]:
    """Return ``{alias: version number}`` of one model."""
    rows = conn.execute(
        sa.select(model_aliases.c.alias, model_versions.c.version)
        .join(model_versions, model_versions.c.id == model_aliases.c.version_id)
        .where(model_aliases.c.model_id == model_id)
        .order_by(model_aliases.c.alias)
    )
    return {r.alias: r.version for r in rows}


def to_model(row: Any, aliases: dict[str, int]) -> RegisteredModel:
    """Build a RegisteredModel from a ``registered_models`` row."""
    return RegisteredModel(
        id=row.id,
        name=row.name,
        description=row.description,
        owners=tuple(json.loads(row.owners)),
        team=row.team,
        tags=json.loads(row.tags),
        risk_tier=RiskTier(row.risk_tier) if row.risk_tier else None,
        intended_use=row.intended_use,
        decision_mode=DecisionMode(row.decision_mode),
        latest_version=row.latest_version,
        created_by=row.created_by,
        created_at=row.created_at,
        updated_at=row.updated_at,
        aliases=aliases,
    )


def _listing(numbers: Sequence[int]) -> str:
    shown = ", ".join(str(n) for n in numbers[-10:])
    return ("..., " if len(numbers) > 10 else "") + shown


def resolve_version_row(conn: Connection, ref: ModelRef) -> tuple[Any, Any]:
    """Return ``(model row, version row)`` that ``ref`` points at.

    ``NAME`` alone means the highest version number.

    Raises:
        NotFoundError: the model, version or alias does not exist; the message
            lists what does.
    """
    model = model_row(conn, ref.name)
    query = sa.select(model_versions).where(model_versions.c.model_id == model.id)
    if ref.alias is not None:
        version_id = conn.execute(
            sa.select(model_aliases.c.version_id).where(
                model_aliases.c.model_id == model.id, model_aliases.c.alias == ref.alias
            )
        ).scalar()
        if version_id is None:
            aliases = aliases_of(conn, model.id)
            if not aliases:
                raise NotFoundError(
                    f"model {ref.name!r} has no alias {ref.alias!r}; it has no aliases yet "
                    f"(set one with: steward models alias {ref.name}:VERSION {ref.alias})"
                )
            ordered = _closest_first(ref.alias, list(aliases), 10)
            listing = ", ".join(f"{a} → {aliases[a]}" for a in ordered)
            raise NotFoundError(
                f"model {ref.name!r} has no alias {ref.alias!r}"
                f"{_did_you_mean(ref.alias, list(aliases))} aliases: {listing}"
            )
        aliased = conn.execute(query.where(model_versions.c.id == version_id)).one()
        return model, aliased
    if ref.version is not None:
        query = query.where(model_versions.c.version == ref.version)
    else:
        query = query.order_by(model_versions.c.version.desc()).limit(1)
    row = conn.execute(query).first()
    if row is not None:
        return model, row
    numbers = list(
        conn.execute(
            sa.select(model_versions.c.version)
            .where(model_versions.c.model_id == model.id)
            .order_by(model_versions.c.version)
        ).scalars()
    )
    if not numbers:
        raise NotFoundError(f"model {ref.name!r} has no versions yet")
    raise NotFoundError(
        f"model {ref.name!r} has no version {ref.version}; versions: {_listing(numbers)} "
        f"(latest {numbers[-1]})"
    )


def _to_compilation(row: Any) -> Compilation:
    return Compilation(
        target=row.target,
        status=row.status,
        artifact_digest=row.artifact_digest,
        converter=row.converter,
        opset=row.opset,
        report=json.loads(row.report),
        created_by=row.created_by,
        created_at=row.created_at,
    )


def load_versions(
    conn: Connection, rows: Sequence[Any], names: dict[str, str]
) -> list[ModelVersion]:
    """Build ModelVersions from ``model_versions`` rows, with aliases and compilations.

    Args:
        conn: an open connection.
        rows: version rows, in the order wanted.
        names: model id → model name for every model the rows belong to.
    """
    if not rows:
        return []
    ids = [r.id for r in rows]
    by_alias: dict[str, list[str]] = defaultdict(list)
    for alias in conn.execute(
        sa.select(model_aliases.c.version_id, model_aliases.c.alias)
        .where(model_aliases.c.version_id.in_(ids))
        .order_by(model_aliases.c.alias)
    ):
        by_alias[alias.version_id].append(alias.alias)
    compiled: dict[str, dict[str, Compilation]] = defaultdict(dict)
    for row in conn.execute(
        sa.select(model_compilations).where(model_compilations.c.version_id.in_(ids))
    ):
        compiled[row.version_id][row.target] = _to_compilation(row)
    return [
        ModelVersion(
            id=r.id,
            model=names[r.model_id],
            version=r.version,
            run_id=r.run_id,
            source=json.loads(r.source),
            flavor=r.flavor,
            artifact_digest=r.artifact_digest,
            artifact_size=r.artifact_size,
            example_digest=r.example_digest,
            signature=Signature.from_dict(json.loads(r.signature)) if r.signature else None,
            metrics=json.loads(r.metrics),
            description=r.description,
            tags=json.loads(r.tags),
            unsafe=r.unsafe,
            stage=Stage(r.stage),
            stage_reason=r.stage_reason,
            successor_version=r.successor_version,
            created_by=r.created_by,
            created_at=r.created_at,
            stage_changed_at=r.stage_changed_at,
            aliases=tuple(by_alias[r.id]),
            compilations=compiled[r.id],
            purged_at=r.purged_at,
            purged_by_rule=r.purged_by_rule,
        )
        for r in rows
    ]
