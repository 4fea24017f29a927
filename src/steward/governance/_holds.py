"""Legal holds: selectors that keep records from deletion until a person releases them.

A hold names what it keeps with a *kind* and a *target*:

========== ================== ==========================================================
kind       target             keeps
========== ================== ==========================================================
model      ``NAME``           every version of the model, the runs that produced them
                              and the dataset versions those runs used
version    ``NAME:V``         that version, its run and the run's dataset versions
runs       (none)             runs started inside ``[start, end]``
predictions deployment or none prediction log partitions dated inside ``[start, end]``
subject    data subject id    runs tagged ``subject=<id>``, dataset versions named
                              ``<id>``, and — when a time range is given — every
                              prediction partition in it (partitions are not indexed
                              by subject, so the range is the only safe reading)
========== ================== ==========================================================

Placing and releasing a hold needs ``admin`` or one of the legal roles (``legal``
by default); both are audited. A hold is never deleted: releasing it records who,
when and why.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

import sqlalchemy as sa

from steward.core import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    new_id,
)
from steward.governance._retention_tables import legal_holds
from steward.registry import ModelRef
from steward.store import Store

__all__ = ["HOLD_KINDS", "ActiveHolds", "HoldService", "LegalHold"]

HOLD_KINDS = ("model", "version", "runs", "predictions", "subject")
_SUBJECT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:@+-]{0,199}")
_DEPLOYMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,199}")
MAX_REASON_CHARS = 2000


@dataclass(frozen=True)
class LegalHold:
    """One hold: what it keeps, why, and whether it has been released."""

    id: str
    kind: str
    target: str | None
    start: datetime | None
    end: datetime | None
    reason: str
    placed_by: str
    placed_at: datetime
    released_by: str | None = None
    released_at: datetime | None = None
    release_reason: str | None = None

    @property
    def active(self) -> bool:
        """True until the hold is released."""
        return self.released_at is None

    @property
    def selector(self) -> str:
        """The hold in words: ``version fraud:3``, ``runs 2026-01-01..2026-02-01``."""
        parts = [self.kind]
        if self.target:
            parts.append(self.target)
        if self.start or self.end:
            start = self.start.date().isoformat() if self.start else "…"
            end = self.end.date().isoformat() if self.end else "…"
            parts.append(f"{start}..{end}")
        return " ".join(parts)

    def covers(self, moment: datetime) -> bool:
        """True when ``moment`` lies inside the hold's time range (open ends included)."""
        if self.start is not None and moment < self.start:
            return False
        return self.end is None or moment <= self.end

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly view."""
        stamp = _iso
        return {
            "id": self.id,
            "kind": self.kind,
            "target": self.target,
            "selector": self.selector,
            "start": stamp(self.start),
            "end": stamp(self.end),
            "reason": self.reason,
            "placed_by": self.placed_by,
            "placed_at": stamp(self.placed_at),
            "active": self.active,
            "released_by": self.released_by,
            "released_at": stamp(self.released_at),
            "release_reason": self.release_reason,
        }


@dataclass(frozen=True)
class ActiveHolds:
    """The holds in force at one moment, with the matching rules of each selector kind."""

    holds: tuple[LegalHold, ...]

    def for_version(self, model: str, version: int) -> LegalHold | None:
        """The first hold keeping ``model:version`` (a model or version hold)."""
        ref = f"{model}:{version}"
        for hold in self.holds:
            if (hold.kind == "model" and hold.target == model) or (
                hold.kind == "version" and hold.target == ref
            ):
                return hold
        return None

    def for_run(
        self,
        started: datetime,
        tags: Mapping[str, str],
        versions: Iterable[tuple[str, int]] = (),
    ) -> LegalHold | None:
        """The first hold keeping a run started at ``started`` with ``tags``.

        ``versions`` are the model versions registered from the run.
        """
        for model, version in versions:
            if (hold := self.for_version(model, version)) is not None:
                return hold
        for hold in self.holds:
            if hold.kind == "runs" and hold.covers(started):
                return hold
            if hold.kind == "subject" and tags.get("subject") == hold.target:
                return hold
        return None

    def for_dataset(self, name: str) -> LegalHold | None:
        """The first subject hold naming the dataset ``name``."""
        return next((h for h in self.holds if h.kind == "subject" and h.target == name), None)

    def for_partition(self, deployment: str, day: date) -> LegalHold | None:
        """The first hold keeping the prediction partition of ``deployment`` on ``day``."""
        start = datetime.combine(day, time.min, tzinfo=UTC)
        end = datetime.combine(day, time.max, tzinfo=UTC)
        for hold in self.holds:
            in_range = (hold.start is None or end >= hold.start) and (
                hold.end is None or start <= hold.end
            )
            if hold.kind == "predictions" and hold.target in (None, deployment) and in_range:
                return hold
            if hold.kind == "subject" and (hold.start or hold.end) and in_range:
                return hold
        return None


class HoldService:
    """Place, list and release legal holds.

    Example:
        >>> holds = HoldService(store)  # doctest: +SKIP
        >>> hold = holds.place("version", "fraud:3", reason="case 2026-114")  # doctest: +SKIP
        >>> holds.release(hold.id, reason="case closed")  # doctest: +SKIP
    """

    def __init__(self, store: Store, *, legal_roles: Sequence[str] = ("legal",)) -> None:
        self.store = store
        self.legal_roles = tuple(legal_roles)

    def place(
        self,
        kind: str,
        target: str | None = None,
        *,
        reason: str,
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> LegalHold:
        """Place a hold; deletion of what it selects is refused until it is released.

        Raises:
            InvalidInputError: unknown kind, malformed target, bad time range or no reason.
            PermissionDeniedError: the caller is neither ``admin`` nor in a legal role.
        """
        self._require_legal("place a legal hold")
        target = _check_selector(kind, target, start, end)
        reason = _check_reason(reason)
        hold_id = new_id()
        with self.store.unit_of_work() as uow:
            now = uow.clock.now()
            uow.conn.execute(
                legal_holds.insert(),
                {
                    "id": hold_id,
                    "kind": kind,
                    "target": target,
                    "start_at": start,
                    "end_at": end,
                    "reason": reason,
                    "placed_by": uow.actor,
                    "placed_at": now,
                },
            )
            details = {"kind": kind, "target": target, "reason": reason}
            details |= {"start": _iso(start), "end": _iso(end)}
            uow.audit("legal_hold.place", "legal_hold", hold_id, details)
        return self.get(hold_id)

    def release(self, hold_id: str, *, reason: str) -> LegalHold:
        """Release a hold, keeping its record.

        Raises:
            NotFoundError: no hold has that id.
            ConflictError: the hold was already released.
            InvalidInputError: no reason given.
            PermissionDeniedError: the caller is neither ``admin`` nor in a legal role.
        """
        self._require_legal("release a legal hold")
        reason = _check_reason(reason)
        with self.store.unit_of_work() as uow:
            row = uow.conn.execute(
                sa.select(legal_holds).where(legal_holds.c.id == hold_id)
            ).first()
            if row is None:
                raise NotFoundError(f"no legal hold {hold_id!r}; `steward holds list` shows them")
            if row.released_at is not None:
                raise ConflictError(
                    f"legal hold {hold_id} was already released by {row.released_by} "
                    f"on {row.released_at.date().isoformat()}"
                )
            uow.conn.execute(
                legal_holds.update()
                .where(legal_holds.c.id == hold_id)
                .values(released_by=uow.actor, released_at=uow.clock.now(), release_reason=reason)
            )
            uow.audit(
                "legal_hold.release",
                "legal_hold",
                hold_id,
                {"kind": row.kind, "target": row.target, "reason": reason},
            )
        return self.get(hold_id)

    def get(self, hold_id: str) -> LegalHold:
        """Return one hold.

        Raises:
            NotFoundError: no hold has that id.
            PermissionDeniedError: the caller is not in a legal role and lacks ``audit:read``.
        """
        self._require_reader()
        with self.store.database.read() as conn:
            row = conn.execute(sa.select(legal_holds).where(legal_holds.c.id == hold_id)).first()
        if row is None:
            raise NotFoundError(f"no legal hold {hold_id!r}; `steward holds list` shows them")
        return _to_hold(row)

    def list_holds(self, *, include_released: bool = False) -> list[LegalHold]:
        """Holds, oldest first; released ones only when asked.

        Raises:
            PermissionDeniedError: the caller is not in a legal role and lacks ``audit:read``.
        """
        self._require_reader()
        return self._holds(include_released=include_released)

    def _holds(self, *, include_released: bool) -> list[LegalHold]:
        query = sa.select(legal_holds).order_by(legal_holds.c.placed_at, legal_holds.c.id)
        if not include_released:
            query = query.where(legal_holds.c.released_at.is_(None))
        with self.store.database.read() as conn:
            return [_to_hold(r) for r in conn.execute(query).all()]

    def active(self) -> ActiveHolds:
        """The holds in force now, for matching many objects against them.

        For services deciding deletions in process (retention, the prediction log's
        purge); it checks no scope, so adapters list holds with :meth:`list_holds`.
        """
        return ActiveHolds(tuple(self._holds(include_released=False)))

    def is_held_partition(self, deployment: str, day: date) -> bool:
        """Whether a hold keeps the prediction partition of ``deployment`` on ``day``.

        This is the ``held`` callable the prediction log's ``purge`` takes.
        """
        return self.active().for_partition(deployment, day) is not None

    def _require_reader(self) -> None:
        if not set(self.store.principal.roles) & set(self.legal_roles):
            self.store.authorize("audit:read", resource="legal_hold")

    def _require_legal(self, what: str) -> None:
        principal = self.store.principal
        if set(principal.roles) & set(self.legal_roles):
            return
        try:
            self.store.authorize("admin", resource="legal_hold")  # audits the denial
        except PermissionDeniedError as exc:
            roles = ", ".join(self.legal_roles) or "none configured"
            raise PermissionDeniedError(
                f"{principal.name!r} may not {what}: it needs `admin` or a legal role "
                f"({roles}); their roles: {', '.join(sorted(principal.roles)) or 'none'}"
            ) from exc


def _check_selector(
    kind: str, target: str | None, start: datetime | None, end: datetime | None
) -> str | None:
    if kind not in HOLD_KINDS:
        raise InvalidInputError(
            f"hold kind {kind!r} is not known; use one of {', '.join(HOLD_KINDS)}"
        )
    for name, value in (("start", start), ("end", end)):
        if value is not None and (not isinstance(value, datetime) or value.tzinfo is None):
            raise InvalidInputError(f"hold {name} {value!r} must be a timezone-aware datetime")
    if start is not None and end is not None and start > end:
        raise InvalidInputError(
            f"hold range starts after it ends ({start.isoformat()} > {end.isoformat()})"
        )
    if kind == "model":
        ref = ModelRef.parse(_required(kind, target))
        if ref.version is not None or ref.alias is not None:
            _bad(kind, target, "a model name such as 'fraud' (use a version hold for 'fraud:3')")
        return ref.name
    if kind == "version":
        ref = ModelRef.parse(_required(kind, target))
        if ref.version is None:
            _bad(kind, target, "a version such as 'fraud:3'")
        return str(ref)
    if kind == "runs":
        if target:
            _bad(kind, target, "no target (the time range selects the runs)")
        if start is None and end is None:
            raise InvalidInputError("a runs hold needs a time range: give --start and/or --end")
        return None
    if kind == "predictions":
        if target is not None and not _DEPLOYMENT.fullmatch(target):
            _bad(kind, target, "a deployment name (letters, digits, '.', '_', '-') or none")
        if start is None and end is None:
            raise InvalidInputError(
                "a predictions hold needs a time range: give --start and/or --end"
            )
        return target
    subject = _required(kind, target)
    if not _SUBJECT.fullmatch(subject):
        _bad(kind, subject, "an id of up to 200 letters, digits and '._:@+-'")
    return subject


def _required(kind: str, target: str | None) -> str:
    if not target:
        raise InvalidInputError(f"a {kind} hold needs a target; see `steward holds place --help`")
    return target


def _bad(kind: str, target: object, expected: str) -> Any:
    raise InvalidInputError(f"{kind} hold target {target!r} is not valid; expected {expected}")


def _check_reason(reason: object) -> str:
    if not isinstance(reason, str) or not reason.strip():
        raise InvalidInputError("a reason is required (the case or request behind the hold)")
    if len(reason) > MAX_REASON_CHARS:
        raise InvalidInputError(
            f"the reason is {len(reason)} characters; keep it under {MAX_REASON_CHARS} "
            "and refer to the case file"
        )
    return reason.strip()


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _to_hold(row: Any) -> LegalHold:
    return LegalHold(
        id=row.id,
        kind=row.kind,
        target=row.target,
        start=row.start_at,
        end=row.end_at,
        reason=row.reason,
        placed_by=row.placed_by,
        placed_at=row.placed_at,
        released_by=row.released_by,
        released_at=row.released_at,
        release_reason=row.release_reason,
    )
