"""The routing spec of each canary stage, derived from the deployment's spec before the canary.

A canary changes only how traffic is split between the baseline (the
deployment's one primary) and the candidate; every other part of the spec
(shadows, sticky key, salt) is kept::

    before:   champion (primary, 1)                           strategy weighted
    shadow:   champion (primary, 1) + canary (shadow, 0)      strategy weighted
    5 %:      champion (primary, 95) + canary (primary, 5)    strategy canary
    100 %:    canary (primary, 1)                             strategy weighted
    rollback: champion (primary, 1)                           strategy weighted

A spec with a sticky key keeps it at every stage (strategy ``sticky`` outside
the canary steps), so a user who reached the candidate stays there as its
share grows.
"""

from __future__ import annotations

from dataclasses import replace

from steward.core import ConflictError
from steward.serving._routing_spec import RoutingSpec, Variant

__all__ = ["baseline_of", "origin_spec", "stage_spec"]


def baseline_of(spec: RoutingSpec, deployment: str) -> str:
    """Return the name of the spec's one primary, the baseline a canary is measured against.

    Raises:
        ConflictError: the spec routes by bandit or canary, or has more than one primary.
    """
    if spec.strategy in ("bandit", "canary"):
        raise ConflictError(
            f"deployment {deployment!r} routes with the {spec.strategy} strategy; a canary "
            "starts from a deployment with one primary variant (update it to one --model first)"
        )
    primaries = spec.primaries
    if len(primaries) != 1:
        names = ", ".join(v.name for v in primaries)
        raise ConflictError(
            f"deployment {deployment!r} has {len(primaries)} primary variants ({names}); a "
            "canary starts from a deployment with one primary (update it to one --model first)"
        )
    return primaries[0].name


def origin_spec(spec: RoutingSpec, baseline: str, candidate: str) -> RoutingSpec:
    """Return ``spec`` without the candidate: the baseline alone answers (what a rollback restores).

    Raises:
        ConflictError: the spec no longer has the baseline as a primary, or has
            another primary besides the baseline and the candidate (the deployment
            was changed outside the canary).
    """
    kept = tuple(v for v in spec.variants if v.name != candidate)
    primaries = [v.name for v in kept if v.role == "primary"]
    if primaries != [baseline]:
        raise ConflictError(
            f"the deployment's spec no longer has {baseline!r} as its only primary besides the "
            f"canary (primaries: {', '.join(primaries) or 'none'}); it was changed outside the "
            "canary"
        )
    variants = tuple(replace(v, weight=1.0) if v.name == baseline else v for v in kept)
    strategy = spec.strategy
    if strategy == "canary":
        strategy = "sticky" if spec.sticky_key is not None else "weighted"
    return RoutingSpec(
        variants=variants, strategy=strategy, sticky_key=spec.sticky_key, salt=spec.salt
    )


def stage_spec(origin: RoutingSpec, baseline: str, candidate: Variant, share: float) -> RoutingSpec:
    """Return the spec that gives ``candidate`` ``share`` percent of the traffic.

    Args:
        origin: the spec without the candidate (see :func:`origin_spec`).
        baseline: the name of its primary.
        candidate: the candidate's name and model (role and weight are set here).
        share: 0 (shadow: mirrored, never answers), a step in (0, 100), or 100
            (the candidate alone answers).
    """
    shadows = tuple(v for v in origin.variants if v.role == "shadow")
    if share <= 0:
        variants = (*origin.variants, replace(candidate, role="shadow", weight=0.0))
        return replace(origin, variants=variants)
    if share >= 100:
        variants = (replace(candidate, role="primary", weight=1.0), *shadows)
        return replace(origin, variants=variants)
    split = tuple(
        replace(v, weight=100.0 - share) if v.name == baseline else v for v in origin.variants
    )
    return RoutingSpec(
        variants=(*split, replace(candidate, role="primary", weight=share)),
        strategy="canary",
        sticky_key=origin.sticky_key,
        canary=candidate.name,
        salt=origin.salt,
    )
