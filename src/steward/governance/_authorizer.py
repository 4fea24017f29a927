"""The authorizer governance installs on a store: global scopes plus per-resource role bindings."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

import sqlalchemy as sa

from steward.core import (
    InvalidInputError,
    PermissionDeniedError,
    Principal,
    load_settings,
    scope_covers,
)
from steward.governance._rows import access_generation, resource_roles
from steward.governance._scopes import GLOBAL, RoleCatalog, cap_scopes, check_resource
from steward.governance._settings import GovernanceSettings
from steward.store import Store, metadata

__all__ = ["GovernanceAuthorizer", "ResourceTeams"]

ResourceTeams = Callable[[str], Iterable[str]]
"""Maps a resource (``model:fraud``) to the teams it belongs to (``{"risk"}``)."""

_MAX_CACHED = 10_000
_RUN = "run:"  # tracking names one run as its resource


class GovernanceAuthorizer:
    """Decides with the principal's global scopes, then its role bindings on the resource.

    A binding on ``model:fraud`` applies to checks on ``model:fraud``; a binding on
    ``team:risk`` applies to ``team:risk`` and to every resource that
    ``resource_teams`` places in team ``risk`` (the registry supplies it). A check
    on a run (``run:<id>``) also counts bindings on the models its versions belong
    to, and on their teams. For a
    caller holding a steward token, what a binding adds is capped by the token's
    scopes. Bindings are cached per principal for ``STEWARD_AUTH_CACHE_SECONDS``;
    a change made in this process is seen at once.

    Example:
        >>> authorizer = GovernanceAuthorizer(store)  # doctest: +SKIP
        >>> store.as_principal(bob).with_authorizer(authorizer)  # doctest: +SKIP
    """

    def __init__(
        self,
        store: Store,
        *,
        settings: GovernanceSettings | None = None,
        resource_teams: ResourceTeams | None = None,
    ) -> None:
        settings = settings or load_settings(GovernanceSettings)
        self._database = store.database
        self._catalog: RoleCatalog = settings.role_catalog()
        self._ttl = settings.auth_cache_seconds
        self._resource_teams = resource_teams
        self._cache: dict[str, tuple[float, int, dict[str, frozenset[str]]]] = {}
        self._run_models: dict[str, tuple[float, tuple[str, ...]]] = {}
        self._lock = threading.Lock()

    def check(self, principal: Principal, scope: str, *, resource: str | None = None) -> None:
        """Return if ``principal`` may use ``scope`` (on ``resource``); raise otherwise.

        Raises:
            PermissionDeniedError: naming the scope, the resource, and the roles that carry it.
        """
        if principal.allows(scope):
            return
        if resource is not None and principal.kind != "local":
            granted = self._catalog.scopes_of(self._roles_on(principal.name, resource))
            cap = getattr(principal, "token_scopes", None)
            if cap is not None:
                granted = cap_scopes(granted, cap)
            if any(scope_covers(g, scope) for g in granted):
                return
        raise PermissionDeniedError(self._denial(principal, scope, resource))

    def roles_for(self, principal: Principal, resource: str | None = None) -> frozenset[str]:
        """Return the roles ``principal`` holds globally and, if given, on ``resource``."""
        roles = set(principal.roles)
        if resource is not None and principal.kind != "local":
            roles |= self._roles_on(principal.name, resource)
        return frozenset(roles)

    def _roles_on(self, name: str, resource: str) -> frozenset[str]:
        bindings = self._bindings(name)
        if not bindings:
            return frozenset()
        covered = [resource]
        if resource.startswith(_RUN) and any(r.startswith(("model:", "team:")) for r in bindings):
            covered += self._models_of_run(resource.removeprefix(_RUN))
        roles: set[str] = set()
        for each in covered:
            roles |= bindings.get(each, frozenset())
        if self._resource_teams is not None and any(r.startswith("team:") for r in bindings):
            for each in covered:
                for team in self._resource_teams(each):
                    roles |= bindings.get(f"team:{team}", frozenset())
        return frozenset(roles)

    def _models_of_run(self, run_id: str) -> tuple[str, ...]:
        """``model:NAME`` of each model with a version trained by the run (cached for the TTL).

        A grant on a model covers the runs that trained its versions: reading a
        version's lineage, card or promotion evidence reads its run.
        """
        now = time.monotonic()
        entry = self._run_models.get(run_id)
        if entry is not None and entry[0] > now:
            return entry[1]
        versions, models = metadata.tables["model_versions"], metadata.tables["registered_models"]
        with self._database.read() as conn:
            names = conn.execute(
                sa.select(models.c.name)
                .join(versions, versions.c.model_id == models.c.id)
                .where(versions.c.run_id == run_id)
                .distinct()
            ).scalars()
            found = tuple(sorted(f"model:{n}" for n in names))
        with self._lock:
            if len(self._run_models) >= _MAX_CACHED:
                self._run_models.clear()
            self._run_models[run_id] = (now + self._ttl, found)
        return found

    def _bindings(self, name: str) -> dict[str, frozenset[str]]:
        now = time.monotonic()
        generation = access_generation()
        entry = self._cache.get(name)
        if entry is not None and entry[0] > now and entry[1] == generation:
            return entry[2]
        with self._database.read() as conn:
            found = resource_roles(conn, name)
        found.pop(GLOBAL, None)  # global roles travel on the principal itself
        with self._lock:
            if len(self._cache) >= _MAX_CACHED:
                self._cache.clear()
            self._cache[name] = (now + self._ttl, generation, found)
        return found

    def _denial(self, principal: Principal, scope: str, resource: str | None) -> str:
        target = f" on {resource}" if resource else ""
        message = f"{principal.name!r} lacks the scope {scope!r}{target}"
        cap = getattr(principal, "token_scopes", None)
        if cap is not None and not any(scope_covers(c, scope) for c in cap):
            return (
                f"{message}; the token in use carries only {', '.join(sorted(cap))} "
                "(and never more than its owner's roles grant)"
            )
        carrying = self._catalog.carrying(scope)
        roles = f"a role that carries it ({', '.join(carrying)})" if carrying else "admin"
        where = f" --on {resource}" if _bindable(resource) else ""
        return (
            f"{message}; an administrator can grant {roles}: "
            f"steward roles grant ROLE --to {principal.name}{where}"
        )


def _bindable(resource: str | None) -> bool:
    """Whether a role can be bound on ``resource`` (``run:...`` or ``retention`` cannot)."""
    if resource is None:
        return False
    try:
        return check_resource(resource) != GLOBAL
    except InvalidInputError:
        return False
