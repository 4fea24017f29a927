"""What authorization and authentication add to a service call.

- ``governance.authorize``: ``store.authorize(scope, resource=...)`` through the
  ``GovernanceAuthorizer``, the check every service method makes. ``global_us``: the
  scope is among the caller's global scopes; ``binding_us``: it comes from a role
  bound on the model (the binding cache warm, as it is for all but one call per
  ``STEWARD_AUTH_CACHE_SECONDS``); ``team_us``: from a binding on the model's team
  through a resolver; ``miss_us``: the cache expired on every call (TTL 0), so each
  check reads the bindings (SQLite). Median of batches of 1,000 calls.
- ``governance.authenticate.token.*``: ``authenticate(store, "stw_...")``: parse, the
  token's record from the per-process cache (``per_call_us``; one read per
  ``STEWARD_AUTH_CACHE_SECONDS``), constant-time hash comparison, expiry, owner's
  scopes applied; ``uncached_us`` with the cache off (TTL 0): one primary-key read of
  the token with its owner and bindings per call. ``last_used_at`` is written at most
  once a minute, so not in the loop. On SQLite and PostgreSQL.
- ``governance.authenticate.jwt``: ``authenticate`` with an RS256 JWT against a local
  JWKS file: ``per_call_us`` with verified claims and the subject's steward identity
  cached (a client repeats its bearer token), ``uncached_us`` with the caches off:
  signature, iss, aud, exp checked and the subject looked up on every call.

The target: authorization adds at most 50 µs per service call.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from benchmarks._harness import Context, Measurements, benchmark
from steward.governance import (
    GovernanceSettings,
    IdentityService,
    TokenService,
    authenticate,
    authenticated_store,
)
from steward.store import Store, StoreSettings

Backend = Literal["sqlite", "postgres"]
_BATCH = 1_000
_SETTINGS = GovernanceSettings(user="bench")


def _store(ctx: Context, backend: Backend = "sqlite") -> Store:
    url = f"sqlite:///{ctx.tmp / 'steward.db'}" if backend == "sqlite" else ctx.postgres_url()
    store = Store.open(StoreSettings(home=ctx.tmp / "home", database_url=url, user="bench"))
    store.initialize()
    return store


def _per_call_us(fn: Callable[[], object], batches: int) -> float:
    """Median over ``batches`` of the mean µs of ``_BATCH`` calls (after one warm batch)."""
    samples = []
    for index in range(batches + 1):
        start = time.perf_counter()
        for _ in range(_BATCH):
            fn()
        if index:  # the first batch warms caches
            samples.append((time.perf_counter() - start) / _BATCH * 1e6)
    return statistics.median(samples)


def _token(store: Store, name: str, roles: list[str], scopes: list[str]) -> str:
    IdentityService(store, settings=_SETTINGS).create_user(name, roles=roles)
    _, secret = TokenService(store, settings=_SETTINGS).create_token(
        name, name="bench", scopes=scopes
    )
    return secret


@benchmark("governance.authorize", repeats=3, quick_repeats=1)
def authorize(ctx: Context) -> Measurements:
    """store.authorize through GovernanceAuthorizer: global scope, model binding, team binding."""
    batches = ctx.size(9, 3)
    store = _store(ctx)
    identities = IdentityService(store, settings=_SETTINGS)
    secret = _token(store, "bob", ["viewer"], ["models:*"])
    identities.grant_role("bob", "data-scientist", resource="model:fraud")
    identities.grant_role("bob", "data-scientist", resource="team:risk")
    bob = authenticated_store(store, secret, settings=_SETTINGS, resource_teams=lambda r: ("risk",))
    uncached = authenticated_store(
        store, secret, settings=GovernanceSettings(user="bench", auth_cache_seconds=0)
    )
    try:
        results = {
            "global_us": _per_call_us(
                lambda: bob.authorize("models:read", resource="model:fraud"), batches
            ),
            "binding_us": _per_call_us(
                lambda: bob.authorize("models:write", resource="model:fraud"), batches
            ),
            "team_us": _per_call_us(
                lambda: bob.authorize("models:write", resource="model:churn"), batches
            ),
            "miss_us": _per_call_us(
                lambda: uncached.authorize("models:write", resource="model:fraud"), 1
            ),
        }
    finally:
        store.close()
    return {name: (value, "µs") for name, value in results.items()}


def _authenticate_token(ctx: Context, backend: Backend) -> Measurements:
    store = _store(ctx, backend)
    secret = _token(store, "bob", ["data-scientist"], ["models:read", "models:write"])
    uncached = GovernanceSettings(user="bench", auth_cache_seconds=0)
    try:
        per_call = _per_call_us(lambda: authenticate(store, secret, _SETTINGS), ctx.size(5, 1))
        per_read = _per_call_us(lambda: authenticate(store, secret, uncached), ctx.size(3, 1))
    finally:
        store.close()
    return {"per_call_us": (per_call, "µs"), "uncached_us": (per_read, "µs")}


@benchmark("governance.authenticate.token.sqlite", group="governance")
def authenticate_token_sqlite(ctx: Context) -> Measurements:
    """authenticate() with an opaque stw_ token on SQLite."""
    return _authenticate_token(ctx, "sqlite")


@benchmark("governance.authenticate.token.postgres", group="governance")
def authenticate_token_postgres(ctx: Context) -> Measurements:
    """authenticate() with an opaque stw_ token on PostgreSQL."""
    return _authenticate_token(ctx, "postgres")


def _jwks(tmp: Path, key: rsa.RSAPrivateKey) -> Path:
    jwk = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    assert isinstance(jwk, dict)
    jwk.update({"kid": "k1", "alg": "RS256", "use": "sig"})
    path = tmp / "jwks.json"
    path.write_text(json.dumps({"keys": [jwk]}))
    return path


@benchmark("governance.authenticate.jwt", group="governance")
def authenticate_jwt(ctx: Context) -> Measurements:
    """authenticate() with an RS256 JWT against a local JWKS file (SQLite)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    settings = GovernanceSettings(
        user="bench",
        jwt_issuer="https://idp.example.com",
        jwt_audience="steward",
        jwt_jwks_file=_jwks(ctx.tmp, key),
    )
    now = int(time.time())
    token = jwt.encode(
        {
            "iss": "https://idp.example.com",
            "aud": "steward",
            "sub": "alice",
            "exp": now + 3600,
            "scope": "models:read",
        },
        key,
        algorithm="RS256",
        headers={"kid": "k1"},
    )
    uncached = settings.model_copy(update={"auth_cache_seconds": 0.0})
    store = _store(ctx)
    try:
        per_call = _per_call_us(lambda: authenticate(store, token, settings), ctx.size(3, 1))
        per_verify = _per_call_us(lambda: authenticate(store, token, uncached), ctx.size(3, 1))
    finally:
        store.close()
    return {"per_call_us": (per_call, "µs"), "uncached_us": (per_verify, "µs")}
