"""Stage rules and the gate every stage transition passes.

``registered``, ``staging`` and ``production`` may move to one another;
``archived`` is final: an archived version stays loadable for audit but never
returns to service. Before a transition is applied, the :class:`TransitionGate`
in force is asked, inside the transition's unit of work. The default allows
everything; governance installs one that checks policies and approvals (and
may record in the same transaction that an approval was used).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from steward.core import ConflictError, InvalidInputError, Principal
from steward.registry._compatibility import Compatibility
from steward.registry._models import ModelVersion, RegisteredModel, Stage
from steward.store import UnitOfWork

__all__ = [
    "AllowAllGate",
    "TransitionGate",
    "TransitionRequest",
    "check_transition",
    "parse_stage",
]

_NEXT: dict[Stage, frozenset[Stage]] = {
    Stage.REGISTERED: frozenset({Stage.STAGING, Stage.PRODUCTION, Stage.ARCHIVED}),
    Stage.STAGING: frozenset({Stage.REGISTERED, Stage.PRODUCTION, Stage.ARCHIVED}),
    Stage.PRODUCTION: frozenset({Stage.REGISTERED, Stage.STAGING, Stage.ARCHIVED}),
    Stage.ARCHIVED: frozenset(),
}


def parse_stage(value: str | Stage) -> Stage:
    """Return the stage named by ``value``.

    Raises:
        InvalidInputError: not a stage; the message lists the stages.
    """
    try:
        return Stage(value)
    except ValueError:
        names = ", ".join(s.value for s in Stage)
        raise InvalidInputError(f"unknown stage {value!r}; stages: {names}") from None


def check_transition(ref: str, current: Stage, target: Stage) -> None:
    """Refuse a move the stage rules forbid.

    Raises:
        ConflictError: the version is already there, or is archived.
    """
    if current == target:
        raise ConflictError(f"{ref} is already in {target.value}")
    if target not in _NEXT[current]:
        raise ConflictError(
            f"{ref} is archived; archived versions stay loadable for audit but cannot move to "
            f"{target.value}. Register or promote another version instead"
        )


@dataclass(frozen=True, slots=True)
class TransitionRequest:
    """Everything a gate needs to decide on one stage transition.

    Attributes:
        model: the model, with its owners and risk tier.
        version: the version to move, as it is before the move.
        incumbent: the newest other version already in ``to_stage`` (staging or
            production), if any.
        compatibility: the version's signature compared with the incumbent's.
        principal: who asks.
    """

    model: RegisteredModel
    version: ModelVersion
    from_stage: Stage
    to_stage: Stage
    reason: str
    principal: Principal
    aliases: tuple[str, ...] = ()
    successor: int | None = None
    incumbent: ModelVersion | None = None
    compatibility: Compatibility | None = None

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly view (for audit details)."""
        return {
            "ref": self.version.ref,
            "from": self.from_stage.value,
            "to": self.to_stage.value,
            "reason": self.reason,
            "principal": self.principal.name,
            "aliases": list(self.aliases),
            "successor": self.successor,
            "incumbent": self.incumbent.ref if self.incumbent else None,
            "compatibility": self.compatibility.as_dict() if self.compatibility else None,
        }


@runtime_checkable
class TransitionGate(Protocol):
    """Decides whether a stage transition may happen.

    Called inside the transition's unit of work, after the stage rules passed:
    return to allow; raise :class:`~steward.core.PermissionDeniedError` (missing
    approval, policy) or :class:`~steward.core.ConflictError` to refuse, with a
    message saying what is missing. A refusal rolls the transition back and is
    recorded in the audit chain.
    """

    def check(self, request: TransitionRequest, uow: UnitOfWork) -> None:
        """Return if allowed; raise to refuse."""
        ...


class AllowAllGate:
    """The default gate: every transition the stage rules allow may happen."""

    def check(self, request: TransitionRequest, uow: UnitOfWork) -> None:
        """Allow."""
        return None
