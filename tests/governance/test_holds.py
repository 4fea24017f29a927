"""Legal holds: placing and releasing them, who may, and what each selector keeps."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from steward.core import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    Principal,
)
from steward.governance import HoldService
from steward.store import Store

JAN = datetime(2026, 1, 1, tzinfo=UTC)
FEB = datetime(2026, 2, 1, tzinfo=UTC)


def _as(store: Store, name: str, *roles: str) -> HoldService:
    return HoldService(store.as_principal(Principal.of(name, roles=roles, scopes=["models:read"])))


def test_place_list_release_are_audited(store: Store) -> None:
    holds = HoldService(store)
    hold = holds.place("version", "fraud:3", reason="case 114")
    assert hold.active
    assert hold.selector == "version fraud:3"
    assert [h.id for h in holds.list_holds()] == [hold.id]

    released = holds.release(hold.id, reason="case closed")

    assert not released.active
    assert released.released_by == "root"
    assert released.release_reason == "case closed"
    assert holds.list_holds() == []
    assert [h.id for h in holds.list_holds(include_released=True)] == [hold.id]
    actions = [e.action for e in store.audit.list_events(object_id=hold.id)]
    assert actions == ["legal_hold.release", "legal_hold.place"]


def test_a_legal_role_may_place_and_release(store: Store) -> None:
    legal = _as(store, "lea", "legal")
    hold = legal.place("model", "fraud", reason="regulator inquiry")
    assert hold.placed_by == "lea"
    assert not legal.release(hold.id, reason="done").active


def test_others_are_refused_and_audited(store: Store) -> None:
    viewer = _as(store, "vic", "viewer")
    with pytest.raises(PermissionDeniedError, match=r"needs `admin` or a legal role \(legal\)"):
        viewer.place("model", "fraud", reason="x")
    assert store.audit.list_events(limit=1)[0].action == "access.denied"
    assert HoldService(store).list_holds() == []


def test_release_twice_and_unknown_are_refused(store: Store) -> None:
    holds = HoldService(store)
    hold = holds.place("subject", "cust-1", reason="DSAR")
    holds.release(hold.id, reason="answered")
    with pytest.raises(ConflictError, match="already released"):
        holds.release(hold.id, reason="again")
    with pytest.raises(NotFoundError, match="no legal hold"):
        holds.release("nope", reason="x")


@pytest.mark.parametrize(
    ("kind", "target", "start", "end", "message"),
    [
        ("everything", None, None, None, "hold kind 'everything' is not known"),
        ("model", None, None, None, "needs a target"),
        ("model", "fraud:3", None, None, "use a version hold"),
        ("model", "../etc", None, None, "model name"),
        ("version", "fraud", None, None, "a version such as 'fraud:3'"),
        ("version", "fraud:0", None, None, "versions are positive integers"),
        ("runs", None, None, None, "needs a time range"),
        ("runs", "x", JAN, None, "no target"),
        ("runs", None, FEB, JAN, "starts after it ends"),
        ("runs", None, datetime(2026, 1, 1), None, "timezone-aware"),
        ("predictions", "bad/name", JAN, FEB, "deployment name"),
        ("subject", "a b; drop table", None, None, "subject hold target"),
        ("subject", "x" * 300, None, None, "subject hold target"),
    ],
)
def test_bad_selectors_are_refused(
    store: Store,
    kind: str,
    target: str | None,
    start: datetime | None,
    end: datetime | None,
    message: str,
) -> None:
    with pytest.raises(InvalidInputError, match=message):
        HoldService(store).place(kind, target, start=start, end=end, reason="r")
    assert HoldService(store).list_holds(include_released=True) == []


@pytest.mark.parametrize("reason", ["", "   ", "x" * 2001])
def test_a_reason_is_required_and_bounded(store: Store, reason: str) -> None:
    with pytest.raises(InvalidInputError, match="reason"):
        HoldService(store).place("model", "fraud", reason=reason)


def test_partitions_held_by_range_deployment_and_subject(store: Store) -> None:
    holds = HoldService(store)
    assert not holds.is_held_partition("fraud-api", date(2026, 1, 10))
    holds.place("predictions", "fraud-api", start=JAN, end=FEB, reason="audit")
    assert holds.is_held_partition("fraud-api", date(2026, 1, 10))
    assert holds.is_held_partition("fraud-api", date(2026, 2, 1))
    assert not holds.is_held_partition("fraud-api", date(2026, 2, 2))
    assert not holds.is_held_partition("credit-api", date(2026, 1, 10))
    holds.place("subject", "cust-9", start=JAN, end=JAN, reason="DSAR")
    assert holds.is_held_partition("credit-api", date(2026, 1, 1))
    assert not holds.is_held_partition("credit-api", date(2026, 1, 2))


def test_version_and_run_matching(store: Store) -> None:
    holds = HoldService(store)
    holds.place("model", "fraud", reason="m")
    holds.place("version", "credit:2", reason="v")
    active = holds.active()
    assert active.for_version("fraud", 7) is not None
    assert active.for_version("credit", 2) is not None
    assert active.for_version("credit", 1) is None
    assert active.for_run(JAN, {}, [("credit", 2)]) is not None
    assert active.for_run(JAN, {"subject": "cust-1"}) is None


def test_reading_holds_needs_a_legal_role_or_audit_read(store: Store) -> None:
    hold = HoldService(store).place("model", "fraud", reason="sealed case 9")
    with pytest.raises(PermissionDeniedError, match="audit:read"):
        _as(store, "vic", "viewer").list_holds()
    with pytest.raises(PermissionDeniedError, match="audit:read"):
        _as(store, "vic", "viewer").get(hold.id)
    assert [h.id for h in _as(store, "lea", "legal").list_holds()] == [hold.id]
    assert _as(store, "vic", "viewer").active().for_version("fraud", 1) is not None
