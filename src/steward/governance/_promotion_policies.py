"""Applied policy versions: applying a document (or refusing it, audited), the one in force.

Each applied document is stored whole as version N+1 with its digest; applying
a document identical in meaning to the latest (same digest) stores nothing.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Literal

import sqlalchemy as sa

from steward.core import sha256_hex
from steward.governance._policy import Policy
from steward.governance._policy_parser import PolicyError, parse_policy, read_policy
from steward.governance._promotion_models import (
    DEFAULT_POLICY,
    PolicyVersion,
    latest_policy,
    to_policy_version,
)
from steward.governance._promotion_tables import policy_versions
from steward.store import Store, UnitOfWork

__all__ = ["apply_policy", "current_policy", "policy_history"]

MAX_AUDITED_PROBLEMS = 20  # a refused policy's audit event lists at most this many problems


def apply_policy(store: Store, source: str | Path, text: str | None) -> PolicyVersion:
    """Validate a policy file (or ``text``) and make it the policy in force.

    Raises:
        PolicyError: the document is invalid; audited as ``policy.apply.refused``.
        PermissionDeniedError: the caller lacks ``admin``.
    """
    store.authorize("admin", resource="policy")
    fmt: Literal["yaml", "toml"] = "toml" if str(source).endswith(".toml") else "yaml"
    try:
        if text is None:
            policy, text = read_policy(source)
        else:
            policy = parse_policy(text, fmt=fmt, source=str(source))
    except PolicyError as exc:
        _refuse_policy(store, source, text, exc)
        raise
    with store.unit_of_work() as uow:
        current = latest_policy(uow.conn)
        if current is not None and current.digest == policy.digest:
            return current
        number = 1 if current is None else current.version + 1
        now = uow.clock.now()
        _record_policy(uow, number, policy, text, fmt, now, previous=current)
    return PolicyVersion(number, policy, policy.digest, text, store.actor, now)


def _record_policy(
    uow: UnitOfWork,
    number: int,
    policy: Policy,
    text: str,
    fmt: Literal["yaml", "toml"],
    now: datetime,
    *,
    previous: PolicyVersion | None,
) -> None:
    uow.conn.execute(
        policy_versions.insert(),
        {
            "version": number,
            "name": policy.policy,
            "digest": policy.digest,
            "document": text,
            "format": fmt,
            "created_by": uow.actor,
            "created_at": now,
        },
    )
    uow.audit(
        "policy.apply",
        "policy",
        str(number),
        {
            "name": policy.policy,
            "digest": policy.digest,
            "previous": previous.version if previous else None,
        },
    )


def _refuse_policy(store: Store, source: str | Path, text: str | None, error: PolicyError) -> None:
    """Audit a refused policy: where from, its digest, and what was wrong (no text)."""
    with store.unit_of_work() as uow:
        uow.audit(
            "policy.apply.refused",
            "policy",
            str(source)[:200] or "<text>",
            {
                "source": str(source)[:500],
                "digest": sha256_hex(text) if text is not None else None,
                "problems": [str(p)[:500] for p in error.problems[:MAX_AUDITED_PROBLEMS]],
                "count": len(error.problems),
            },
        )


def current_policy(store: Store) -> PolicyVersion:
    """The policy in force; before any is applied, a built-in one with no gates (version 0)."""
    with store.database.read() as conn:
        found = latest_policy(conn)
    if found is not None:
        return found
    return PolicyVersion(0, DEFAULT_POLICY, DEFAULT_POLICY.digest, "", "steward", None)


def policy_history(store: Store) -> list[PolicyVersion]:
    """Every applied policy version, newest first."""
    with store.database.read() as conn:
        rows = conn.execute(
            sa.select(policy_versions).order_by(policy_versions.c.version.desc())
        ).all()
    return [to_policy_version(r) for r in rows]
