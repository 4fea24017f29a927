"""Who is calling: a steward token, an identity-provider JWT, or the local identity."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from steward.core import ADMIN_SCOPE, InvalidInputError, load_settings
from steward.governance._auth_cache import cache_for
from steward.governance._authorizer import GovernanceAuthorizer, ResourceTeams
from steward.governance._errors import AuthenticationError
from steward.governance._identities import check_principal_name
from steward.governance._jwt import unverified_fingerprint, verifier_for
from steward.governance._models import AuthenticatedPrincipal, Identity
from steward.governance._refusals import record_refusal
from steward.governance._retention_guard import GovernanceRetentionGuard
from steward.governance._rows import find_identity
from steward.governance._scopes import check_scope
from steward.governance._settings import GovernanceSettings
from steward.governance._tokens import TOKEN_PREFIX, TokenService
from steward.store import Store

__all__ = ["MAX_CREDENTIAL_CHARS", "authenticate", "authenticated_store"]

# Anything longer is refused before it is parsed: no identity provider issues
# bearer tokens this large, and parsing attacker-sized input is wasted work.
MAX_CREDENTIAL_CHARS = 8192
_BEARER = re.compile(r"^bearer\s+", re.IGNORECASE)


def authenticate(
    store: Store, credential: str | None, settings: GovernanceSettings | None = None
) -> AuthenticatedPrincipal:
    """Return the principal ``credential`` proves, or the local identity when there is none.

    ``credential`` is a steward token (``stw_...``) or a JWT (optionally after
    ``Bearer``). Without one, ``STEWARD_AUTH=local`` (the default) gives the local
    identity, ``STEWARD_USER`` with every scope; ``STEWARD_AUTH=required`` refuses.

    Example:
        >>> principal = authenticate(store, os.environ.get("STEWARD_TOKEN"))  # doctest: +SKIP

    Raises:
        AuthenticationError: no credential where one is required; an oversized,
            malformed, unknown or unverifiable one; a disabled owner.
        TokenExpiredError: the token or JWT has expired.
        TokenRevokedError: the token was revoked.
    """
    settings = settings or load_settings(GovernanceSettings)
    if credential is None or not credential.strip():
        if settings.auth == "required":
            raise AuthenticationError(
                "a token is needed (STEWARD_AUTH=required): set STEWARD_TOKEN or pass --token; "
                "an administrator creates one with `steward tokens create`"
            )
        return AuthenticatedPrincipal(
            name=settings.user,
            kind="local",
            roles=frozenset({"admin"}),
            scopes=frozenset({ADMIN_SCOPE}),
        )
    if len(credential) > MAX_CREDENTIAL_CHARS:
        _refuse_unknown(store, "oversized", len(credential))
        raise AuthenticationError(
            f"the credential is {len(credential):,} characters; the limit is "
            f"{MAX_CREDENTIAL_CHARS:,}: this is not a steward token or a JWT",
            reason="oversized",
        )
    text = _BEARER.sub("", credential.strip(), count=1)
    if text.startswith(TOKEN_PREFIX):
        return TokenService(store, settings=settings).verify_token(text)
    if text.count(".") == 2:
        return _jwt_principal(store, text, settings)
    _refuse_unknown(store, "unrecognized credential", len(text))
    raise AuthenticationError(
        "the credential is neither a steward token (stw_...) nor a JWT (three dot-separated parts)",
        reason="unrecognized credential",
    )


def _refuse_unknown(store: Store, reason: str, length: int) -> None:
    """Audit a credential that is neither kind: its length is all that is recorded."""
    record_refusal(
        store,
        reason=reason,
        method="unknown",
        object_type="credential",
        object_id="unrecognized",
        details={"length": length},
    )


def _refuse_jwt(store: Store, token: str, reason: str) -> None:
    """Audit a refused JWT by its issuer and key id (read unverified), never its contents."""
    found = unverified_fingerprint(token)
    record_refusal(
        store,
        reason=reason,
        method="jwt",
        object_type="jwt",
        object_id=found["iss"] or "unknown issuer",
        details={"kid": found["kid"]},
    )


def _jwt_principal(
    store: Store, token: str, settings: GovernanceSettings
) -> AuthenticatedPrincipal:
    try:
        claims, name, scopes, roles = _jwt_claims(token, settings)
    except AuthenticationError as exc:
        _refuse_jwt(store, token, exc.reason)
        raise
    registered = _registered(store, name, settings.auth_cache_seconds)
    if registered is not None and registered.disabled:
        record_refusal(
            store, reason="disabled", method="jwt", object_type="principal", object_id=name
        )
        raise AuthenticationError(
            f"{name!r} is disabled in steward; ask an administrator", reason="disabled"
        )
    if registered is not None:
        roles |= registered.global_roles
    catalog = settings.role_catalog()
    return AuthenticatedPrincipal(
        name=name,
        kind=registered.kind if registered is not None else "user",
        roles=frozenset(roles),
        scopes=frozenset(scopes) | catalog.scopes_of(roles),
        method="jwt",
        expires_at=_timestamp(claims["exp"]),
    )


def _jwt_claims(
    token: str, settings: GovernanceSettings
) -> tuple[dict[str, Any], str, set[str], set[str]]:
    """Verify a JWT; return its claims, subject, steward scopes and known roles."""
    if not settings.jwt_enabled:
        raise AuthenticationError(
            "a JWT was presented but no identity provider is configured; set STEWARD_JWT_ISSUER, "
            "STEWARD_JWT_AUDIENCE and STEWARD_JWT_JWKS_URL (or _JWKS_FILE or _PUBLIC_KEY_FILE)",
            reason="no identity provider",
        )
    claims = verifier_for(settings).verify(token)
    try:
        name = check_principal_name(claims.get(settings.jwt_subject_claim))
    except InvalidInputError:
        raise AuthenticationError(
            f"JWT claim {settings.jwt_subject_claim!r} (STEWARD_JWT_SUBJECT_CLAIM) is missing or "
            "not a usable principal name",
            reason="unusable subject",
        ) from None
    scopes = {s for s in _strings(claims, settings.jwt_scope_claim) if _is_scope(s)}
    roles = set(settings.role_catalog().known(_strings(claims, settings.jwt_roles_claim)))
    return claims, name, scopes, roles


def _registered(store: Store, name: str, ttl: float) -> Identity | None:
    """Return the steward identity a JWT subject names, if any (cached for ``ttl``)."""
    cache = cache_for(store.database)
    found, identity = cache.identity(name) if ttl > 0 else (False, None)
    if not found:
        with store.database.read() as conn:
            identity = find_identity(conn, name)
        cache.put_identity(name, identity, ttl)
    return identity


def _timestamp(value: Any) -> datetime | None:
    try:
        return datetime.fromtimestamp(float(value), UTC)
    except (OverflowError, ValueError, OSError):  # far-future exp: valid, just not a datetime
        return None


def _strings(claims: dict[str, Any], claim: str) -> list[str]:
    """Return a claim as strings: a space-separated string (OAuth ``scope``) or a list."""
    value = claims.get(claim)
    if value is None:
        return []
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise AuthenticationError(
        f"JWT claim {claim!r} must be a space-separated string or a list of strings",
        reason="malformed claim",
    )


def _is_scope(text: str) -> bool:
    # Identity providers put their own scopes (openid, profile, email) beside steward's.
    try:
        check_scope(text)
    except InvalidInputError:
        return False
    return True


def authenticated_store(
    store: Store,
    credential: str | None = None,
    *,
    settings: GovernanceSettings | None = None,
    resource_teams: ResourceTeams | None = None,
) -> Store:
    """Authenticate and return ``store`` acting as the caller, with governance deciding access.

    ``credential`` defaults to ``STEWARD_TOKEN``. This is how adapters (SDK, CLI,
    HTTP API) bind a caller: every service built on the returned store checks
    scopes and role bindings, and audits denials; deletions below governance
    (``steward gc``) consult its legal holds through the store's retention guard.

    Raises:
        AuthenticationError: see :func:`authenticate`.
    """
    settings = settings or load_settings(GovernanceSettings)
    if credential is None and settings.token is not None:
        credential = settings.token.get_secret_value()
    principal = authenticate(store, credential, settings)
    authorizer = GovernanceAuthorizer(store, settings=settings, resource_teams=resource_teams)
    bound = store.as_principal(principal).with_authorizer(authorizer)
    return bound.with_retention_guard(GovernanceRetentionGuard(bound))
