"""Routing specs and the router that picks a deployment's primary variant per request.

A :class:`RoutingSpec` is what a deployment revision stores: its variants (a
model reference, a role and a weight) and a strategy.  A :class:`Router` turns
one request into a :class:`Route`: the primary variant that answers it, the
shadow variants to mirror it to (asynchronously, outputs never returned), and
why that variant was chosen.

Strategies:

- ``weighted``: a random split by weight (the generator is injected, so tests
  and replays are reproducible).
- ``sticky``: a split by weight on a stable hash of a key read from a header or
  an input field, so one user stays on one variant across requests, worker
  processes and restarts.  The hash is keyed BLAKE2b, never Python's ``hash``
  (salted per process).
- ``bandit``: the primaries are the arms of a bandit policy (see ``_bandit``).
- ``canary``: a split between one baseline and one canary variant whose share
  is set by the canary plan (:meth:`Router.set_canary_share`); hashed on the
  sticky key when one is declared, so a user who reached the canary stays there
  as its share grows.

An ``X-Steward-Variant`` header overrides the choice for test traffic, only
when the caller may (the gateway checks the scope and passes
``override_allowed``); such requests are marked ``test`` and are not mirrored.
"""

from __future__ import annotations

import bisect
import math
import random
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from steward.core import InvalidInputError, PermissionDeniedError
from steward.serving._routing_spec import (
    OVERRIDE_HEADER,
    RoutingSpec,
    Variant,
    read_header,
    stable_unit,
)

__all__ = ["ArmSelector", "Route", "RouteReason", "Router"]

RouteReason = Literal["weighted", "sticky", "bandit", "canary", "override", "only"]
"""Why a variant was chosen; ``only`` when one primary can take traffic and no choice was made."""


@dataclass(frozen=True)
class Route:
    """Where one request goes.

    Attributes:
        variant: the primary variant whose output is returned.
        shadows: variants to mirror the request to asynchronously (empty for test traffic).
        reason: why ``variant`` was chosen (see :data:`RouteReason`).
        test: the request is test traffic (a header override): log it as such
            and keep it out of monitoring statistics, bandit rewards and canary analysis.
        key: the sticky key's text when one was read, else None.
    """

    variant: Variant
    shadows: tuple[Variant, ...] = ()
    reason: RouteReason = "weighted"
    test: bool = False
    key: str | None = None


class ArmSelector(Protocol):
    """What the bandit strategy asks to choose an arm (implemented by the bandit policies)."""

    def choose(self, request_id: str | None = None) -> str:
        """Return the arm (variant name) to serve a request, remembering it for rewards."""
        ...


@dataclass(frozen=True)
class _Split:
    """Cumulative weights over primaries: a point u in [0, 1) falls in one bucket."""

    names: tuple[str, ...]
    bounds: tuple[float, ...] = field(repr=False)

    @classmethod
    def of(cls, weights: Iterable[tuple[str, float]]) -> _Split:
        positive = [(name, w) for name, w in weights if w > 0]
        total = math.fsum(w for _, w in positive)
        bounds: list[float] = []
        running = 0.0
        for _, weight in positive:
            running += weight
            bounds.append(running / total)
        bounds[-1] = 1.0  # no rounding gap at the top
        return cls(tuple(name for name, _ in positive), tuple(bounds))

    def pick(self, u: float) -> str:
        return self.names[min(bisect.bisect_right(self.bounds, u), len(self.names) - 1)]


class Router:
    """Pick the primary variant for each request of one deployment revision.

    One router per revision per worker; :meth:`route` is thread-safe and does no I/O.

    Example:
        >>> spec = RoutingSpec(variants=(Variant("a", "m/1", weight=1), Variant("b", "m/2")))
        >>> router = Router(spec, rng=random.Random(7))
        >>> router.route().variant.name in ("a", "b")
        True
        >>> router.route({"X-Steward-Variant": "b"}, override_allowed=True).test
        True

    Args:
        spec: the routing spec.
        rng: the random generator of the weighted split (default: a fresh,
            OS-seeded one); inject a seeded one in tests.
        bandit: the arm selector of the ``bandit`` strategy (required by it).

    Raises:
        InvalidInputError: the bandit strategy without a selector, or a selector
            with another strategy.
    """

    def __init__(
        self,
        spec: RoutingSpec,
        *,
        rng: random.Random | None = None,
        bandit: ArmSelector | None = None,
    ) -> None:
        if (spec.strategy == "bandit") != (bandit is not None):
            raise InvalidInputError(
                "the bandit strategy needs a bandit policy (and only it takes one); "
                f"strategy is {spec.strategy!r}"
            )
        self.spec = spec
        self._rng = rng or random.Random()
        self._rng_lock = threading.Lock()
        self._bandit = bandit
        self._by_name = {v.name: v for v in spec.variants}
        self._split = _Split.of((v.name, v.weight) for v in spec.primaries)
        self._only = self._split.names[0] if len(self._split.names) == 1 else None
        if spec.canary is not None:
            canary_weight = self._by_name[spec.canary].weight
            total = math.fsum(v.weight for v in spec.primaries)
            self.set_canary_share(canary_weight / total)

    @property
    def canary_share(self) -> float | None:
        """With the canary strategy, the canary's current share of traffic in [0, 1]."""
        if self.spec.canary is None:
            return None
        split = self._split
        if self.spec.canary not in split.names:
            return 0.0
        index = split.names.index(self.spec.canary)
        low = split.bounds[index - 1] if index else 0.0
        return split.bounds[index] - low

    def set_canary_share(self, share: float) -> None:
        """Give the canary ``share`` of the traffic (a fraction in [0, 1]); the baseline the rest.

        Canary plans and decisions speak in percent: pass ``decision.next_share / 100``.

        The canary's bucket sits at the bottom of the unit interval, so as its
        share grows the users already on the canary stay there.

        Raises:
            InvalidInputError: not the canary strategy, or a share outside [0, 1].
        """
        canary, baseline = self.spec.canary, self.spec.baseline
        if canary is None or baseline is None:
            raise InvalidInputError(
                f"set_canary_share needs the canary strategy; strategy is {self.spec.strategy!r}"
            )
        if not (isinstance(share, int | float) and 0.0 <= share <= 1.0):
            raise InvalidInputError(f"canary share must be in [0, 1], got {share!r}")
        # Atomic swap: a request routes on the old split or the new one, never a mix.
        self._split = _Split.of([(canary, share), (baseline, 1.0 - share)])
        self._only = self._split.names[0] if len(self._split.names) == 1 else None

    def route(
        self,
        headers: Mapping[str, str] | None = None,
        record: Mapping[str, Any] | None = None,
        *,
        override_allowed: bool = False,
        request_id: str | None = None,
    ) -> Route:
        """Choose the primary variant for one request and list the shadows to mirror it to.

        Args:
            headers: the request headers (names matched case-insensitively).
            record: the request's record (the first one of a batch), for an
                input-field sticky key.
            override_allowed: the caller holds the scope that allows the
                ``X-Steward-Variant`` header (the gateway checks it).
            request_id: the request's id, remembered by the bandit policy so
                feedback can reward the arm that served it.

        Returns:
            The route.

        Raises:
            PermissionDeniedError: the override header without ``override_allowed``.
            InvalidInputError: the override header names an unknown variant.
        """
        headers = headers or {}
        override = read_header(headers, OVERRIDE_HEADER)
        if override is not None:
            return self._override(override.strip(), override_allowed)
        shadows = self.spec.shadows
        if self._only is not None and self.spec.strategy != "bandit":
            return Route(self._by_name[self._only], shadows, "only")
        if self._bandit is not None:
            arm = self._bandit.choose(request_id)
            return Route(self.spec.variant(arm), shadows, "bandit")
        sticky = self.spec.sticky_key
        key = sticky.read(headers, record) if sticky is not None else None
        if key is not None:
            u = stable_unit(key, salt=self.spec.salt)
        else:
            with self._rng_lock:
                u = self._rng.random()
        name = self._split.pick(u)
        reason: RouteReason = "canary" if self.spec.strategy == "canary" else "weighted"
        if key is not None and self.spec.strategy == "sticky":
            reason = "sticky"
        return Route(self._by_name[name], shadows, reason, key=key)

    def _override(self, name: str, allowed: bool) -> Route:
        if not allowed:
            raise PermissionDeniedError(
                f"the {OVERRIDE_HEADER} header picks a variant for test traffic and needs the "
                "variant-override scope; remove the header or use a token that holds the scope"
            )
        variant = self._by_name.get(name)
        if variant is None:
            raise InvalidInputError(
                f"{OVERRIDE_HEADER} names variant {name!r}, which this deployment does not have; "
                f"valid: {', '.join(self.spec.names)}"
            )
        return Route(variant, (), "override", test=True)
