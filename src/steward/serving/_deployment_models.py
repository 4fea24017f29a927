"""What a deployment is: a name, a production flag, and revisions of a routing spec.

A revision's spec holds concrete model versions (``fraud:7``): an alias given
at revision time (``fraud@champion``) is resolved then and kept in
``requested``, so moving an alias later never changes what a revision serves.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Literal, get_args

from steward.core import InvalidInputError
from steward.serving._fallback import parse_fallback
from steward.serving._routing_spec import RoutingSpec

__all__ = [
    "BanditPolicyName",
    "Deployment",
    "DeploymentRevision",
    "DeploymentSettings",
    "LogMode",
    "check_deployment_name",
]

LogMode = Literal["durable", "async"]
_LOG_MODES: tuple[str, ...] = get_args(LogMode)
BanditPolicyName = Literal["thompson", "epsilon_greedy"]
_BANDIT_POLICIES: tuple[str, ...] = get_args(BanditPolicyName)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def check_deployment_name(name: object) -> str:
    """Return ``name`` if it can name a deployment, else raise.

    Raises:
        InvalidInputError: not 1-128 letters, digits, ``.``, ``_`` or ``-`` starting
            with a letter or digit (it names log partitions and scopes).
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInputError(
            f"deployment name {name!r} is not valid: use 1 to 128 letters, digits, '.', '_' or "
            "'-', starting with a letter or digit"
        )
    return name


@dataclass(frozen=True)
class DeploymentSettings:
    """How the gateway serves a revision.

    Attributes:
        timeout_ms: the model call timeout of every variant (None: no timeout).
        variant_timeout_ms: variant name -> its own timeout in ms (None: no
            timeout), overriding ``timeout_ms`` for that variant.
        max_batch_size: the most requests one micro-batched model call takes.
        max_wait_ms: how long a partial micro-batch waits to fill.
        cache: serve repeated identical inputs from the response cache.
        cache_ttl_s: how long a cached answer stays valid.
        fallback: the fallback declaration (see ``parse_fallback``), or None.
        log_mode: ``durable`` (answer after the record is on disk) or ``async``.
        bandit_policy: the ``bandit`` strategy's policy: ``thompson`` (binary
            rewards) or ``epsilon_greedy`` (any finite reward).
        bandit_epsilon: epsilon-greedy's exploration probability, in [0, 1].
        feature_service: a feature service (steward.features) whose online values
            are fetched for every request row and merged into the model input.
        entity_keys: with ``feature_service``: the request field holding each join
            key, as ``{join_key: field}`` (a list names fields equal to the join
            keys; default: every join key is read from the field of its name).
    """

    timeout_ms: float | None = 1000.0
    variant_timeout_ms: dict[str, float | None] = field(default_factory=dict)
    max_batch_size: int = 32
    max_wait_ms: float = 1.0
    cache: bool = False
    cache_ttl_s: float = 60.0
    fallback: dict[str, Any] | None = None
    log_mode: LogMode = "durable"
    bandit_policy: BanditPolicyName = "thompson"
    bandit_epsilon: float = 0.1
    feature_service: str | None = None
    entity_keys: dict[str, str] | None = None

    def __post_init__(self) -> None:
        if self.timeout_ms is not None and not _positive(self.timeout_ms):
            raise InvalidInputError(
                f"timeout_ms is {self.timeout_ms!r}; use a positive number of milliseconds"
            )
        _check_variant_timeouts(self.variant_timeout_ms)
        if self.bandit_policy not in _BANDIT_POLICIES:
            raise InvalidInputError(
                f"bandit_policy {self.bandit_policy!r} is not valid; valid: "
                f"{', '.join(_BANDIT_POLICIES)}"
            )
        if not (_number(self.bandit_epsilon) and 0 <= self.bandit_epsilon <= 1):
            raise InvalidInputError(f"bandit_epsilon is {self.bandit_epsilon!r}; use 0 to 1")
        if isinstance(self.max_batch_size, bool) or not isinstance(self.max_batch_size, int):
            raise InvalidInputError(f"max_batch_size {self.max_batch_size!r} is not an integer")
        if not 1 <= self.max_batch_size <= 4096:
            raise InvalidInputError(f"max_batch_size is {self.max_batch_size}; use 1 to 4096")
        if not (_number(self.max_wait_ms) and 0 <= self.max_wait_ms <= 1000):
            raise InvalidInputError(f"max_wait_ms is {self.max_wait_ms!r}; use 0 to 1000")
        if not isinstance(self.cache, bool):
            raise InvalidInputError(f"cache must be true or false, got {self.cache!r}")
        if not _positive(self.cache_ttl_s):
            raise InvalidInputError(f"cache_ttl_s is {self.cache_ttl_s!r}; use a positive number")
        if self.log_mode not in _LOG_MODES:
            raise InvalidInputError(
                f"log_mode {self.log_mode!r} is not valid; valid: {', '.join(_LOG_MODES)}"
            )
        if self.fallback is not None:
            parse_fallback(self.fallback)
        self._check_features()

    def _check_features(self) -> None:
        service, keys = self.feature_service, self.entity_keys
        if service is not None and (not isinstance(service, str) or not service.strip()):
            raise InvalidInputError(
                f'feature_service {service!r} must name a feature service, e.g. "scoring"'
            )
        if keys is None:
            return
        if service is None:
            raise InvalidInputError(
                f"entity_keys {keys!r} is set without a feature_service; name the service too"
            )
        # A list names request fields spelled like the join keys; keep one form (a dict).
        pairs = {k: k for k in keys} if isinstance(keys, list | tuple) else keys
        if (
            not isinstance(pairs, Mapping)
            or not pairs
            or not all(
                isinstance(k, str) and k and isinstance(v, str) and v for k, v in pairs.items()
            )
        ):
            raise InvalidInputError(
                f"entity_keys {keys!r} must map join keys to request fields, e.g. "
                '{"customer_id": "customer"}, or list the fields, e.g. ["customer_id"]'
            )
        object.__setattr__(self, "entity_keys", dict(pairs))

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict that :meth:`from_dict` reads back."""
        return {
            "timeout_ms": self.timeout_ms,
            "variant_timeout_ms": dict(self.variant_timeout_ms),
            "max_batch_size": self.max_batch_size,
            "max_wait_ms": self.max_wait_ms,
            "cache": self.cache,
            "cache_ttl_s": self.cache_ttl_s,
            "fallback": self.fallback,
            "log_mode": self.log_mode,
            "bandit_policy": self.bandit_policy,
            "bandit_epsilon": self.bandit_epsilon,
            "feature_service": self.feature_service,
            "entity_keys": None if self.entity_keys is None else dict(self.entity_keys),
        }

    def timeout_s(self, variant: str) -> float | None:
        """Return ``variant``'s model call timeout in seconds (None: no timeout)."""
        ms = self.variant_timeout_ms.get(variant, self.timeout_ms)
        return None if ms is None else ms / 1000.0

    def check_variants(self, names: Iterable[str]) -> None:
        """Check that every per-variant setting names one of ``names`` (a revision's variants).

        Raises:
            InvalidInputError: ``variant_timeout_ms`` names a variant the spec lacks.
        """
        known = set(names)
        unknown = sorted(set(self.variant_timeout_ms) - known)
        if unknown:
            raise InvalidInputError(
                f"variant_timeout_ms names variant(s) {', '.join(map(repr, unknown))} that the "
                f"deployment does not have; variants: {', '.join(sorted(known))}"
            )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> DeploymentSettings:
        """Build settings from a dict (missing keys take their defaults).

        Raises:
            InvalidInputError: an unknown key or a value out of range.
        """
        if not isinstance(data, Mapping):
            raise InvalidInputError(f"deployment settings must be an object, got {data!r}")
        valid = set(cls().to_dict())
        unknown = sorted(set(data) - valid)
        if unknown:
            raise InvalidInputError(
                f"unknown deployment setting(s) {', '.join(map(repr, unknown))}; valid: "
                f"{', '.join(sorted(valid))}"
            )
        return cls(**dict(data))

    def merged(self, changes: Mapping[str, Any]) -> DeploymentSettings:
        """Return a copy with ``changes`` applied (same checks as :meth:`from_dict`)."""
        return DeploymentSettings.from_dict({**self.to_dict(), **dict(changes)})


def _check_variant_timeouts(value: object) -> None:
    if not isinstance(value, Mapping):
        raise InvalidInputError(
            f"variant_timeout_ms must map variant names to milliseconds, got {value!r}"
        )
    for name, ms in value.items():
        if not isinstance(name, str) or not name:
            raise InvalidInputError(f"variant_timeout_ms has a key {name!r}; use variant names")
        if ms is not None and not _positive(ms):
            raise InvalidInputError(
                f"variant_timeout_ms[{name!r}] is {ms!r}; use a positive number of "
                "milliseconds, or null for no timeout"
            )


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _positive(value: object) -> bool:
    return _number(value) and value > 0  # type: ignore[operator]


@dataclass(frozen=True)
class DeploymentRevision:
    """One revision of a deployment: what serves, how, and who decided it.

    Attributes:
        deployment: the deployment's name.
        revision: 1, 2, ... in order of creation.
        spec: the routing spec, with every variant's model a concrete ``NAME:VERSION``.
        requested: variant name -> the reference as given (``fraud@champion``).
        settings: how the gateway serves it.
        production: whether the deployment was marked production at this revision.
        reason: why the revision was made.
        rollback_of: the revision this one copies, for a rollback.
        created_by: who made it.
        created_at: when.
    """

    deployment: str
    revision: int
    spec: RoutingSpec
    requested: dict[str, str]
    settings: DeploymentSettings
    production: bool
    reason: str | None
    rollback_of: int | None
    created_by: str
    created_at: datetime

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-ready view."""
        return {
            "deployment": self.deployment,
            "revision": self.revision,
            "spec": self.spec.to_dict(),
            "requested": dict(self.requested),
            "settings": self.settings.to_dict(),
            "production": self.production,
            "reason": self.reason,
            "rollback_of": self.rollback_of,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
        }


@dataclass(frozen=True)
class Deployment:
    """A named deployment and its latest revision.

    Attributes:
        name: the deployment's name (also its ``predict:<name>`` scope's suffix).
        production: production deployments reference only production-stage versions.
        latest: the revision in force.
        created_by: who created it.
        created_at: when.
        updated_at: when its latest revision was made.
    """

    name: str
    production: bool
    latest: DeploymentRevision
    created_by: str
    created_at: datetime
    updated_at: datetime

    @property
    def revision(self) -> int:
        """The latest revision's number."""
        return self.latest.revision

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-ready view."""
        return {
            "name": self.name,
            "production": self.production,
            "revision": self.revision,
            "created_by": self.created_by,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "latest": self.latest.as_dict(),
        }


def with_salt(spec: RoutingSpec, name: str) -> RoutingSpec:
    """Return ``spec`` salted with the deployment name when it has no salt of its own."""
    return spec if spec.salt else replace(spec, salt=name)
