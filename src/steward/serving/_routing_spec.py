"""Routing specs: a deployment revision's variants, their roles and weights, and a strategy.

A :class:`RoutingSpec` is what a deployment revision stores and what
:class:`~steward.serving._routing.Router` routes by.  It validates itself on
construction, so an invalid spec never reaches a router; ``to_dict`` and
``from_dict`` give the JSON form the deployment layer stores.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from steward.core import InvalidInputError

__all__ = [
    "OVERRIDE_HEADER",
    "Role",
    "RoutingSpec",
    "StickyKey",
    "Strategy",
    "Variant",
    "read_header",
    "stable_unit",
]

OVERRIDE_HEADER = "X-Steward-Variant"
"""The request header naming a variant to use instead of the routed one (test traffic)."""

Role = Literal["primary", "shadow"]
Strategy = Literal["weighted", "sticky", "bandit", "canary"]

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_STRATEGIES: tuple[str, ...] = get_args(Strategy)
_ROLES: tuple[str, ...] = get_args(Role)
_UNIT = float(2**64)


def read_header(headers: Mapping[str, str], name: str) -> str | None:
    """Return the value of header ``name`` (matched case-insensitively), or None."""
    wanted = name.lower()
    for key, value in headers.items():
        if key.lower() == wanted:
            return value
    return None


def stable_unit(key: str, *, salt: str = "") -> float:
    """Map ``key`` to a number in [0, 1) that is the same in every process and release.

    The first 8 bytes of BLAKE2b keyed with ``salt`` (so two deployments split
    the same users independently), read as an unsigned big-endian integer.

    Example:
        >>> stable_unit("customer-42", salt="fraud")
        0.648578421287644
    """
    digest = hashlib.blake2b(
        key.encode("utf-8"), digest_size=8, key=salt.encode("utf-8")[:64]
    ).digest()
    return int.from_bytes(digest, "big") / _UNIT


@dataclass(frozen=True)
class Variant:
    """One model behind a deployment.

    Attributes:
        name: unique within the spec (letters, digits, ``_ . -``; at most 64).
        model: the model reference the deployment layer resolves, e.g.
            ``"fraud@champion"`` or ``"fraud/7"``.
        role: ``primary`` variants answer requests; ``shadow`` variants get a
            mirrored copy whose output is logged, never returned.
        weight: share of traffic relative to the other primaries (>= 0; a
            weight of 0 takes no routed traffic but stays reachable by override).
    """

    name: str
    model: str
    role: Role = "primary"
    weight: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {"name": self.name, "model": self.model, "role": self.role, "weight": self.weight}


@dataclass(frozen=True)
class StickyKey:
    """Where the sticky routing key comes from: a request header or an input field.

    Attributes:
        source: ``"header"`` (matched case-insensitively) or ``"input"`` (a field
            of the request's record).
        name: the header or field name.
    """

    source: Literal["header", "input"]
    name: str

    def read(self, headers: Mapping[str, str], record: Mapping[str, Any] | None) -> str | None:
        """Return the key's text for one request, or None when the request lacks it."""
        if self.source == "header":
            return read_header(headers, self.name) or None
        if record is None or record.get(self.name) is None:
            return None
        value: Any = record[self.name]
        # 42 and 42.0 must land on the same variant: integral floats hash as ints.
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        return str(value)

    def to_dict(self) -> dict[str, str]:
        """Return a JSON-ready dict."""
        return {"source": self.source, "name": self.name}


@dataclass(frozen=True)
class RoutingSpec:
    """The variants of a deployment revision and how traffic is split between them.

    Example:
        >>> spec = RoutingSpec(
        ...     variants=(
        ...         Variant("champion", "fraud@champion", weight=90),
        ...         Variant("challenger", "fraud/8", weight=10),
        ...         Variant("next", "fraud/9", role="shadow"),
        ...     ),
        ...     strategy="sticky",
        ...     sticky_key=StickyKey("header", "X-Customer-Id"),
        ... )
        >>> [v.name for v in spec.primaries], [v.name for v in spec.shadows]
        (['champion', 'challenger'], ['next'])

    Attributes:
        variants: every variant, primaries and shadows, in a stable order (the
            split assigns hash ranges in this order).
        strategy: ``weighted``, ``sticky``, ``bandit`` or ``canary``.
        sticky_key: where the key comes from; required by ``sticky``, optional
            for ``canary``, not allowed with ``weighted`` or ``bandit``.
        canary: the canary variant's name; required by (and only allowed with)
            the ``canary`` strategy, which needs exactly two primaries.
        salt: mixed into the sticky hash (the deployment name is a good choice),
            so deployments split users independently.

    Raises:
        InvalidInputError: duplicate or malformed names, negative or non-finite
            weights, no primary with a positive weight, or a strategy whose
            requirements are not met; the message names the offending value.
    """

    variants: tuple[Variant, ...]
    strategy: Strategy = "weighted"
    sticky_key: StickyKey | None = None
    canary: str | None = None
    salt: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "variants", tuple(self.variants))
        _check_variants(self.variants)
        _check_strategy(self)

    @property
    def primaries(self) -> tuple[Variant, ...]:
        """The variants that answer requests, in spec order."""
        return tuple(v for v in self.variants if v.role == "primary")

    @property
    def shadows(self) -> tuple[Variant, ...]:
        """The variants that receive mirrored traffic only, in spec order."""
        return tuple(v for v in self.variants if v.role == "shadow")

    @property
    def baseline(self) -> str | None:
        """With the canary strategy, the primary that is not the canary; else None."""
        if self.canary is None:
            return None
        return next(v.name for v in self.primaries if v.name != self.canary)

    def variant(self, name: str) -> Variant:
        """Return the variant called ``name``.

        Raises:
            InvalidInputError: no such variant; the message lists the valid names.
        """
        for variant in self.variants:
            if variant.name == name:
                return variant
        raise InvalidInputError(
            f"deployment has no variant {name!r}; valid: {', '.join(self.names)}"
        )

    @property
    def names(self) -> tuple[str, ...]:
        """Every variant's name, in spec order."""
        return tuple(v.name for v in self.variants)

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict that :meth:`from_dict` reads back."""
        return {
            "variants": [v.to_dict() for v in self.variants],
            "strategy": self.strategy,
            "sticky_key": None if self.sticky_key is None else self.sticky_key.to_dict(),
            "canary": self.canary,
            "salt": self.salt,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RoutingSpec:
        """Build a spec from its dict form (as stored, or as a user wrote it).

        Raises:
            InvalidInputError: a missing or unknown key, or a value of the wrong type.
        """
        _check_keys(data, {"variants"}, {"strategy", "sticky_key", "canary", "salt"}, "spec")
        raw_variants = data["variants"]
        if not isinstance(raw_variants, list | tuple):
            raise InvalidInputError(
                f"routing spec 'variants' must be a list, got {type(raw_variants).__name__}"
            )
        variants = tuple(_variant_from_dict(item, i) for i, item in enumerate(raw_variants))
        sticky = data.get("sticky_key")
        if sticky is not None:
            if not isinstance(sticky, Mapping):
                raise InvalidInputError(
                    "routing spec 'sticky_key' must be an object like "
                    '{"source": "header", "name": "X-Customer-Id"}'
                )
            _check_keys(sticky, {"source", "name"}, set(), "sticky_key")
            if sticky["source"] not in ("header", "input"):
                raise InvalidInputError(
                    f"sticky_key source {sticky['source']!r} is not valid; use header or input"
                )
            sticky = StickyKey(sticky["source"], _text(sticky["name"], "sticky_key name"))
        return cls(
            variants=variants,
            strategy=data.get("strategy", "weighted"),
            sticky_key=sticky,
            canary=data.get("canary"),
            salt=_text(data.get("salt", ""), "salt", allow_empty=True),
        )


def _check_keys(data: Mapping[str, Any], required: set[str], optional: set[str], what: str) -> None:
    missing = sorted(required - set(data))
    if missing:
        raise InvalidInputError(f"routing {what} is missing {', '.join(map(repr, missing))}")
    unknown = sorted(set(data) - required - optional)
    if unknown:
        valid = ", ".join(sorted(required | optional))
        raise InvalidInputError(
            f"routing {what} has unknown key(s) {', '.join(map(repr, unknown))}; valid: {valid}"
        )


def _text(value: Any, what: str, *, allow_empty: bool = False) -> str:
    if not isinstance(value, str) or (not value and not allow_empty):
        raise InvalidInputError(f"{what} must be a non-empty string, got {value!r}")
    return value


def _variant_from_dict(item: Any, index: int) -> Variant:
    if not isinstance(item, Mapping):
        raise InvalidInputError(
            f"variant #{index} must be an object with name, model, role and weight; got {item!r}"
        )
    _check_keys(item, {"name", "model"}, {"role", "weight"}, f"variant #{index}")
    weight = item.get("weight", 1.0)
    if isinstance(weight, bool) or not isinstance(weight, int | float):
        raise InvalidInputError(f"variant {item['name']!r} weight must be a number, got {weight!r}")
    return Variant(
        name=_text(item["name"], f"variant #{index} name"),
        model=_text(item["model"], f"variant {item['name']!r} model"),
        role=item.get("role", "primary"),
        weight=float(weight),
    )


def _check_variants(variants: tuple[Variant, ...]) -> None:
    if not variants:
        raise InvalidInputError("a routing spec needs at least one variant")
    seen: set[str] = set()
    for variant in variants:
        if not isinstance(variant.name, str) or not _NAME.match(variant.name):
            raise InvalidInputError(
                f"variant name {variant.name!r} is not valid: use 1-64 letters, digits, '_', "
                "'.' or '-', starting with a letter or digit"
            )
        if variant.name in seen:
            raise InvalidInputError(
                f"variant name {variant.name!r} is used twice; make names unique"
            )
        seen.add(variant.name)
        if not isinstance(variant.model, str) or not variant.model:
            raise InvalidInputError(f"variant {variant.name!r} has no model reference")
        if variant.role not in _ROLES:
            raise InvalidInputError(
                f"variant {variant.name!r} has role {variant.role!r}; valid: primary, shadow"
            )
        weight = variant.weight
        if isinstance(weight, bool) or not isinstance(weight, int | float):
            raise InvalidInputError(f"variant {variant.name!r} weight {weight!r} is not a number")
        if not math.isfinite(weight) or weight < 0:
            raise InvalidInputError(
                f"variant {variant.name!r} weight {weight!r} is not valid; use a finite number >= 0"
            )
    primaries = [v for v in variants if v.role == "primary"]
    if not primaries:
        raise InvalidInputError(
            "a routing spec needs at least one primary variant; shadows alone cannot answer"
        )
    if sum(v.weight for v in primaries) <= 0:
        weights = ", ".join(f"{v.name}={v.weight:g}" for v in primaries)
        raise InvalidInputError(
            f"the primary weights must sum to more than 0 (got {weights}); give at least one "
            "primary a positive weight"
        )


def _check_strategy(spec: RoutingSpec) -> None:
    if spec.strategy not in _STRATEGIES:
        raise InvalidInputError(
            f"routing strategy {spec.strategy!r} is not valid; valid: {', '.join(_STRATEGIES)}"
        )
    if spec.strategy == "sticky" and spec.sticky_key is None:
        raise InvalidInputError(
            "the sticky strategy needs a sticky_key (a header or an input field to hash)"
        )
    if spec.strategy in ("weighted", "bandit") and spec.sticky_key is not None:
        raise InvalidInputError(
            f"the {spec.strategy} strategy does not use a sticky_key; use strategy 'sticky' "
            "to split by a key"
        )
    if spec.strategy != "canary":
        if spec.canary is not None:
            raise InvalidInputError(
                f"'canary' names a canary variant but the strategy is {spec.strategy!r}; "
                "set strategy 'canary' or drop it"
            )
        return
    primaries = spec.primaries
    if spec.canary is None or spec.canary not in {v.name for v in primaries}:
        names = ", ".join(v.name for v in primaries)
        raise InvalidInputError(
            f"the canary strategy needs 'canary' to name a primary variant; got {spec.canary!r}, "
            f"primaries: {names}"
        )
    if len(primaries) != 2:
        raise InvalidInputError(
            f"the canary strategy needs exactly two primaries (baseline and canary); got "
            f"{len(primaries)}: {', '.join(v.name for v in primaries)}"
        )
