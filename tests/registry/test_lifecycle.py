"""Aliases and stage transitions: rules, atomic moves, the gate, the record."""

from __future__ import annotations

import pytest
from tests.registry.conftest import Trained

from steward.core import ConflictError, InvalidInputError, PermissionDeniedError
from steward.registry import (
    ColumnSpec,
    RegistryService,
    Signature,
    Stage,
    TransitionGate,
    TransitionRequest,
)
from steward.sdk import Steward
from steward.store import UnitOfWork


@pytest.fixture
def three(registry: RegistryService, trained: Trained) -> RegistryService:
    for _ in range(3):
        registry.register(trained.model, name="fraud", sample_input=trained.frame[:10])
    return registry


def _actions(client: Steward, prefix: str) -> list[tuple[str, str, dict[str, object]]]:
    return [
        (e.action, e.object_id, dict(e.details))
        for e in client.store.audit.list_events(limit=None, newest_first=False)
        if e.action.startswith(prefix)
    ]


def test_alias_moves_atomically_and_is_audited(client: Steward, three: RegistryService) -> None:
    three.set_alias("fraud:1", "champion")
    three.set_alias("fraud:2", "challenger")
    moved = three.set_alias("fraud:2", "champion")
    assert moved.aliases == ("challenger", "champion")
    assert three.get_model("fraud").aliases == {"challenger": 2, "champion": 2}
    assert three.get_version("fraud:1").aliases == ()
    three.delete_alias("fraud", "challenger")
    assert three.get_model("fraud").aliases == {"champion": 2}
    events = _actions(client, "model.alias")
    assert events[2] == (
        "model.alias.set",
        "fraud",
        {"alias": "champion", "version": 2, "previous": 1},
    )
    assert events[-1][0] == "model.alias.delete"
    with pytest.raises(InvalidInputError, match="alias '7' is not valid"):
        three.set_alias("fraud:1", "7")


def test_transition_moves_stage_and_aliases_and_records_why(
    client: Steward, three: RegistryService
) -> None:
    staged = three.transition("fraud:2", "staging", reason="shadow test", aliases=["challenger"])
    assert staged.stage is Stage.STAGING and staged.aliases == ("challenger",)
    live = three.transition(
        "fraud@challenger", Stage.PRODUCTION, reason="beat v1", aliases=["champion"]
    )
    assert live.stage is Stage.PRODUCTION
    assert live.stage_reason == "beat v1"
    history = three.transitions("fraud:2")
    assert [(t.from_stage, t.to_stage) for t in history] == [
        (Stage.REGISTERED, Stage.STAGING),
        (Stage.STAGING, Stage.PRODUCTION),
    ]
    assert history[1].details["aliases_moved"] == {"champion": None}
    [*_, (action, ref, details)] = _actions(client, "model.version.transition")
    assert (action, ref, details["from"], details["to"]) == (
        "model.version.transition",
        "fraud:2",
        "staging",
        "production",
    )


def test_archived_is_final_and_never_deployable(three: RegistryService) -> None:
    three.set_alias("fraud:1", "champion")
    with pytest.raises(InvalidInputError, match="archiving needs a reason"):
        three.archive("fraud:1", reason="  ")
    archived = three.archive("fraud:1", reason="leaks a feature", successor=3)
    assert (archived.stage, archived.successor_version) == (Stage.ARCHIVED, 3)
    assert three.get_model("fraud").aliases == {"champion": 3}  # handed to the successor
    for target in ("production", "staging", "registered"):
        with pytest.raises(ConflictError, match="archived versions stay loadable for audit"):
            three.transition("fraud:1", target, reason="undo")
    with pytest.raises(ConflictError, match="cannot be given the alias"):
        three.set_alias("fraud:1", "champion")
    with pytest.raises(ConflictError, match="cannot be deployed"):
        three.check_deployable("fraud:1")
    assert three.load("fraud:1").version.stage is Stage.ARCHIVED  # still loadable for audit
    assert three.check_deployable("fraud:3").version == 3


def test_archive_without_successor_drops_aliases_and_checks_the_successor(
    three: RegistryService,
) -> None:
    three.set_alias("fraud:2", "champion")
    three.archive("fraud:3", reason="bad")
    with pytest.raises(ConflictError, match="cannot be a successor"):
        three.archive("fraud:1", reason="old", successor=3)
    with pytest.raises(InvalidInputError, match="cannot succeed itself"):
        three.archive("fraud:1", reason="old", successor=1)
    with pytest.raises(InvalidInputError, match="only when archiving"):
        three.transition("fraud:1", "staging", successor=2)
    three.archive("fraud:2", reason="replaced")
    assert three.get_model("fraud").aliases == {}


def test_transition_refuses_unknown_stage_and_no_op(three: RegistryService) -> None:
    with pytest.raises(
        InvalidInputError, match="stages: registered, staging, production, archived"
    ):
        three.transition("fraud:1", "prod")
    with pytest.raises(ConflictError, match="already in registered"):
        three.transition("fraud:1", "registered")


class RecordingGate:
    """Refuses production without an approval; records what it was asked."""

    def __init__(self) -> None:
        self.requests: list[TransitionRequest] = []
        self.approved: set[str] = set()

    def check(self, request: TransitionRequest, uow: UnitOfWork) -> None:
        self.requests.append(request)
        if request.to_stage is Stage.PRODUCTION and request.version.ref not in self.approved:
            raise PermissionDeniedError(f"{request.version.ref} needs an approval for production")
        uow.audit("approval.used", "model_version", request.version.ref)


def test_gate_decides_inside_the_transition_and_refusals_are_recorded(
    client: Steward, three: RegistryService
) -> None:
    gate = RecordingGate()
    assert isinstance(gate, TransitionGate)
    three.gate = gate
    three.set_alias("fraud:1", "champion")
    with pytest.raises(PermissionDeniedError, match="needs an approval"):
        three.transition("fraud:2", "production", reason="go", aliases=["champion"])
    assert three.get_version("fraud:2").stage is Stage.REGISTERED  # rolled back
    assert three.get_model("fraud").aliases == {"champion": 1}
    [(_, ref, details)] = _actions(client, "model.version.transition.denied")
    assert ref == "fraud:2" and "needs an approval" in str(details["error"])
    gate.approved.add("fraud:2")
    three.transition("fraud:2", "production", reason="approved", aliases=["champion"])
    assert [e[0] for e in _actions(client, "approval.used")] == ["approval.used"]
    request = gate.requests[-1]
    assert request.principal.name == client.store.actor
    assert request.incumbent is None and request.compatibility is None


def test_gate_sees_the_incumbent_and_signature_compatibility(
    registry: RegistryService, trained: Trained
) -> None:
    registry.register(trained.model, name="fraud", sample_input=trained.frame[:10])
    wider = Signature(
        (ColumnSpec("amount", "float64"), ColumnSpec("hour", "int64"), ColumnSpec("age", "int64")),
        input_format="ndarray",
    )
    registry.register(trained.model, name="fraud", signature=wider)
    registry.transition("fraud:1", "production", reason="first")
    gate = RecordingGate()
    gate.approved.add("fraud:2")
    registry.gate = gate
    registry.transition("fraud:2", "production", reason="second")
    request = gate.requests[-1]
    assert request.incumbent is not None and request.incumbent.ref == "fraud:1"
    assert request.compatibility is not None and request.compatibility.level == "breaking"
    assert "new input 'age' is required" in request.compatibility.reasons[0]
