"""Bearer JWTs from an external identity provider (OAuth2 / OpenID Connect), verified with PyJWT.

The key comes from a JWKS endpoint (fetched with :class:`jwt.PyJWKClient`, cached),
a local JWKS file, or a PEM public key or certificate. A token is accepted only if:

- its ``alg`` is one of ``STEWARD_JWT_ALGORITHMS`` (asymmetric only: never ``none``,
  never ``HS*``, so a public key can never serve as an HMAC secret) and fits the
  key's type (``RS*``/``PS*`` for RSA, the curve's ``ES*`` for EC, ``EdDSA``);
- its signature verifies with the key named by its ``kid`` (or the only key);
- ``iss`` and ``aud`` equal the configured issuer and audience, ``exp`` is present
  and in the future, and ``nbf`` (if present) is past, within ``STEWARD_JWT_LEEWAY``.
"""

from __future__ import annotations

import contextlib
import hashlib
import ipaddress
import json
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

from steward.core import BackendUnavailableError, ConfigurationError
from steward.governance._errors import AuthenticationError, TokenExpiredError
from steward.governance._settings import ASYMMETRIC_ALGORITHMS, GovernanceSettings

__all__ = ["JwtVerifier", "unverified_fingerprint", "verifier_for"]

PublicKey = (
    rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey | ed448.Ed448PublicKey
)

_EC_ALGORITHMS = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
_RSA_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
# A forced JWKS refresh on an unknown kid (key rotation) happens at most this often.
_REFRESH_COOLDOWN_S = 30.0
_FETCH_TIMEOUT_S = 5.0
_MAX_VERIFIED = 10_000


@dataclass(frozen=True)
class _Key:
    kid: str | None
    key: PublicKey
    alg: str | None  # declared by the JWK, if any


def _algorithms_for(key: PublicKey) -> frozenset[str]:
    if isinstance(key, rsa.RSAPublicKey):
        return _RSA_ALGORITHMS
    if isinstance(key, ec.EllipticCurvePublicKey):
        alg = _EC_ALGORITHMS.get(key.curve.name)
        return frozenset({alg}) if alg else frozenset()
    return frozenset({"EdDSA"})


def _as_public_key(key: Any, origin: str) -> PublicKey:
    if isinstance(
        key,
        rsa.RSAPublicKey
        | ec.EllipticCurvePublicKey
        | ed25519.Ed25519PublicKey
        | ed448.Ed448PublicKey,
    ):
        return key
    raise ConfigurationError(
        f"{origin} holds a {type(key).__name__}; use an RSA, EC or Ed25519 public key"
    )


def _parse_jwks(data: Any, origin: str) -> list[_Key]:
    """Return the usable signing keys of a JWKS document (symmetric and encryption keys dropped)."""
    if not isinstance(data, dict) or not isinstance(data.get("keys"), list):
        raise ConfigurationError(f'{origin} is not a JWKS document ({{"keys": [...]}})')
    keys: list[_Key] = []
    for entry in data["keys"]:
        if not isinstance(entry, dict) or entry.get("kty") == "oct" or entry.get("use") == "enc":
            continue
        declared = entry.get("alg")
        if declared is not None and declared not in ASYMMETRIC_ALGORITHMS:
            continue
        try:
            parsed = jwt.PyJWK.from_dict(entry)
        except (jwt.PyJWTError, ValueError, TypeError, NotImplementedError):
            continue  # a key this steward cannot use is skipped, as PyJWKSet does
        kid = entry.get("kid")
        keys.append(
            _Key(
                kid if isinstance(kid, str) else None, _as_public_key(parsed.key, origin), declared
            )
        )
    if not keys:
        raise ConfigurationError(f"{origin} holds no usable RSA, EC or Ed25519 signing key")
    return keys


def _load_pem(path: Path) -> list[_Key]:
    origin = f"STEWARD_JWT_PUBLIC_KEY_FILE={str(path)!r}"
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"{origin} cannot be read ({exc.strerror})") from exc
    try:
        if b"BEGIN CERTIFICATE" in data:
            key: Any = x509.load_pem_x509_certificate(data).public_key()
        else:
            key = serialization.load_pem_public_key(data)
    except ValueError as exc:
        raise ConfigurationError(
            f"{origin} is not a PEM public key or certificate (a private key does not belong here)"
        ) from exc
    return [_Key(None, _as_public_key(key, origin), None)]


def _load_jwks_file(path: Path) -> list[_Key]:
    origin = f"STEWARD_JWT_JWKS_FILE={str(path)!r}"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(f"{origin} cannot be read ({exc.strerror})") from exc
    except ValueError as exc:
        raise ConfigurationError(f"{origin} is not JSON: {exc}") from exc
    return _parse_jwks(data, origin)


def _check_jwks_url(url: str) -> None:
    parsed = urlparse(url)
    host = parsed.hostname or ""
    loopback = host == "localhost"
    try:
        loopback = loopback or ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    if parsed.scheme != "https" and not (parsed.scheme == "http" and loopback):
        raise ConfigurationError(
            f"STEWARD_JWT_JWKS_URL={url!r} must be an https:// URL (plain http only on loopback)"
        )


class _RemoteKeys:
    """Keys fetched from a JWKS endpoint, cached, refreshed on an unknown ``kid``."""

    def __init__(self, url: str, lifespan: float) -> None:
        _check_jwks_url(url)
        # PyJWKClient fetches (no redirects, http(s) only); caching is ours, so the
        # raw documents can be filtered the same way as a local file.
        self._client = jwt.PyJWKClient(url, cache_jwk_set=False, timeout=_FETCH_TIMEOUT_S)
        self._url = url
        self._lifespan = lifespan
        self._keys: list[_Key] = []
        self._fetched_at = -float("inf")
        self._lock = threading.Lock()

    def keys(self, *, refresh: bool = False) -> list[_Key]:
        with self._lock:
            age = time.monotonic() - self._fetched_at
            stale = age >= self._lifespan
            if stale or (refresh and age >= _REFRESH_COOLDOWN_S):
                try:
                    data = self._client.fetch_data()
                except jwt.PyJWKClientError as exc:
                    raise BackendUnavailableError(
                        f"cannot fetch the identity provider's keys from {self._url} "
                        f"(STEWARD_JWT_JWKS_URL): {exc}"
                    ) from exc
                self._keys = _parse_jwks(data, f"the JWKS at {self._url}")
                self._fetched_at = time.monotonic()
            return self._keys


class JwtVerifier:
    """Verifies identity-provider JWTs against the configured keys, issuer and audience.

    Example:
        >>> verifier = JwtVerifier(settings)  # doctest: +SKIP
        >>> claims = verifier.verify(bearer)  # doctest: +SKIP
    """

    def __init__(self, settings: GovernanceSettings) -> None:
        if not settings.jwt_enabled:
            raise ConfigurationError(
                "no identity provider is configured; set STEWARD_JWT_ISSUER, "
                "STEWARD_JWT_AUDIENCE and one of STEWARD_JWT_JWKS_URL, STEWARD_JWT_JWKS_FILE, "
                "STEWARD_JWT_PUBLIC_KEY_FILE"
            )
        self._issuer = settings.jwt_issuer
        self._audience = settings.jwt_audience
        self._algorithms = frozenset(settings.jwt_algorithms)
        self._leeway = settings.jwt_leeway
        # Verified claims by token digest, reused for STEWARD_AUTH_CACHE_SECONDS (never
        # past their exp): a client sends the same bearer token with every request.
        self._ttl = settings.auth_cache_seconds
        self._verified: dict[str, tuple[float, float, dict[str, Any]]] = {}
        self._verified_lock = threading.Lock()
        self._remote: _RemoteKeys | None = None
        self._static: list[_Key] = []
        if settings.jwt_jwks_url:
            self._remote = _RemoteKeys(settings.jwt_jwks_url, settings.jwt_jwks_cache_seconds)
        elif settings.jwt_jwks_file:
            self._static = _load_jwks_file(settings.jwt_jwks_file)
        elif settings.jwt_public_key_file:
            self._static = _load_pem(settings.jwt_public_key_file)

    def verify(self, token: str) -> dict[str, Any]:
        """Return the verified claims of ``token``.

        Raises:
            AuthenticationError: malformed, wrong algorithm or key, bad signature,
                wrong issuer or audience, not yet valid, or a required claim missing.
            TokenExpiredError: past ``exp``.
            BackendUnavailableError: the JWKS endpoint cannot be reached.
        """
        digest = hashlib.sha256(token.encode()).hexdigest()
        hit = self._verified.get(digest)
        if hit is not None and hit[0] > time.monotonic() and time.time() < hit[1] + self._leeway:
            return dict(hit[2])
        claims = self._verify(token)
        self._remember(digest, claims)
        return claims

    def _remember(self, digest: str, claims: dict[str, Any]) -> None:
        try:
            expires = float(claims["exp"])
        except (TypeError, ValueError):  # pragma: no cover - PyJWT checked exp is a number
            return
        if self._ttl <= 0:
            return
        with self._verified_lock:
            if len(self._verified) >= _MAX_VERIFIED:
                self._verified.clear()
            self._verified[digest] = (time.monotonic() + self._ttl, expires, dict(claims))

    def _verify(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise AuthenticationError(f"malformed JWT: {exc}", reason="malformed") from None
        alg = header.get("alg")
        if alg not in self._algorithms:
            raise AuthenticationError(
                f"JWT algorithm {alg!r} is not accepted; accepted: {sorted(self._algorithms)} "
                "(STEWARD_JWT_ALGORITHMS)",
                reason="algorithm not accepted",
            )
        key = self._key_for(header.get("kid"))
        if alg not in _algorithms_for(key.key) or (key.alg is not None and key.alg != alg):
            raise AuthenticationError(
                f"JWT algorithm {alg!r} does not fit the key {key.kid or '(unnamed)'} "
                f"({type(key.key).__name__}{', alg ' + key.alg if key.alg else ''})",
                reason="algorithm does not fit the key",
            )
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key.key,
                algorithms=[alg],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": ["exp", "iss", "aud"], "enforce_minimum_key_length": True},
            )
        except jwt.PyJWTError as exc:
            raise _translate(exc, self._issuer, self._audience) from None
        return claims

    def _key_for(self, kid: Any) -> _Key:
        if kid is not None and not isinstance(kid, str):
            raise AuthenticationError("JWT header 'kid' must be a string", reason="malformed")
        keys = self._keys()
        chosen = _select(keys, kid)
        if chosen is None and self._remote is not None and kid is not None:
            chosen = _select(self._remote.keys(refresh=True), kid)  # the provider rotated keys
        if chosen is None:
            if kid is None:
                raise AuthenticationError(
                    f"JWT has no 'kid' header and {len(keys)} keys are configured; "
                    "the identity provider must name its key",
                    reason="unknown key",
                )
            raise AuthenticationError(
                f"JWT names key {kid!r}, which the configured keys lack", reason="unknown key"
            )
        return chosen

    def _keys(self) -> list[_Key]:
        return self._remote.keys() if self._remote is not None else self._static


def _select(keys: Sequence[_Key], kid: str | None) -> _Key | None:
    if kid is None:
        return keys[0] if len(keys) == 1 else None
    named = [k for k in keys if k.kid == kid]
    if named:
        return named[0]
    # A single unnamed key (a PEM file) verifies whatever kid the token names.
    return keys[0] if len(keys) == 1 and keys[0].kid is None else None


def _translate(exc: jwt.PyJWTError, issuer: str | None, audience: str | None) -> Exception:
    if isinstance(exc, jwt.ExpiredSignatureError):
        return TokenExpiredError("JWT has expired (exp is past); sign in again for a new one")
    if isinstance(exc, jwt.ImmatureSignatureError):
        return AuthenticationError(
            "JWT is not valid yet (nbf is in the future); check clocks", reason="not yet valid"
        )
    if isinstance(exc, jwt.InvalidAudienceError):
        return AuthenticationError(
            f"JWT audience does not match STEWARD_JWT_AUDIENCE={audience!r}: {exc}",
            reason="wrong audience",
        )
    if isinstance(exc, jwt.InvalidIssuerError):
        return AuthenticationError(
            f"JWT issuer does not match STEWARD_JWT_ISSUER={issuer!r}", reason="wrong issuer"
        )
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return AuthenticationError(
            f"JWT lacks the required claim {exc.claim!r}", reason="missing claim"
        )
    if isinstance(exc, jwt.InvalidSignatureError):
        return AuthenticationError(
            "JWT signature does not verify with the configured key", reason="bad signature"
        )
    if isinstance(exc, jwt.InvalidKeyError):
        return AuthenticationError(f"JWT key is unusable: {exc}", reason="unusable key")
    if isinstance(exc, jwt.DecodeError):
        return AuthenticationError(f"JWT refused: {exc}", reason="malformed")
    return AuthenticationError(f"JWT refused: {exc}", reason="invalid")


def unverified_fingerprint(token: str) -> dict[str, str | None]:
    """Return a refused JWT's ``kid`` and ``iss``, read without verifying, for the audit record.

    Both are public (a key's name, the issuer's URL), cut to 100 characters; a
    part that cannot be read is None. Nothing else of the token is returned.
    """
    found: dict[str, str | None] = {"kid": None, "iss": None}
    kid: Any = None
    iss: Any = None
    with contextlib.suppress(jwt.PyJWTError, ValueError, TypeError, AttributeError):
        kid = jwt.get_unverified_header(token).get("kid")
    with contextlib.suppress(jwt.PyJWTError, ValueError, TypeError, AttributeError):
        iss = jwt.decode(token, options={"verify_signature": False}).get("iss")
    for name, value in (("kid", kid), ("iss", iss)):
        if isinstance(value, str) and value:
            found[name] = "".join(c for c in value[:100] if c.isprintable())
    return found


_cache: dict[tuple[Any, ...], JwtVerifier] = {}
_cache_lock = threading.Lock()


def _mtime(path: Path | None) -> int | None:
    try:
        return path.stat().st_mtime_ns if path is not None else None
    except OSError:
        return None


def verifier_for(settings: GovernanceSettings) -> JwtVerifier:
    """Return a verifier for these settings, reused across calls (fetched keys stay cached).

    A key file that changes on disk is read again.
    """
    key = (
        settings.jwt_issuer,
        settings.jwt_audience,
        settings.jwt_jwks_url,
        settings.jwt_jwks_file,
        _mtime(settings.jwt_jwks_file),
        settings.jwt_public_key_file,
        _mtime(settings.jwt_public_key_file),
        tuple(settings.jwt_algorithms),
        settings.jwt_leeway,
        settings.jwt_jwks_cache_seconds,
        settings.auth_cache_seconds,
    )
    with _cache_lock:
        found = _cache.get(key)
    if found is None:
        found = JwtVerifier(settings)
        with _cache_lock:
            if len(_cache) >= 16:
                _cache.clear()
            _cache[key] = found
    return found
