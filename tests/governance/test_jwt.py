"""Identity-provider JWTs: RSA and EC keys made here, every way a token can be wrong."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from steward.core import BackendUnavailableError, ConfigurationError
from steward.governance import (
    AuthenticationError,
    GovernanceSettings,
    IdentityService,
    JwtVerifier,
    TokenExpiredError,
    authenticate,
)
from steward.store import Store

ISSUER = "https://idp.example.com/realms/bank"
AUDIENCE = "steward"


def _rsa(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return _rsa()


@pytest.fixture(scope="module")
def other_rsa_key() -> rsa.RSAPrivateKey:
    return _rsa()


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _jwk(key: Any, kid: str, alg: str | None = None) -> dict[str, Any]:
    public = key.public_key()
    algorithm = RSAAlgorithm if isinstance(public, rsa.RSAPublicKey) else ECAlgorithm
    jwk: dict[str, Any] = algorithm.to_jwk(public, as_dict=True)  # type: ignore[assignment]
    jwk.update({"kid": kid, "use": "sig"})
    if alg:
        jwk["alg"] = alg
    return jwk


def _claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "alice",
        "iat": now,
        "exp": now + 300,
        "scope": "openid profile models:read",
    }
    for key, value in overrides.items():
        if value is None:
            claims.pop(key, None)
        else:
            claims[key] = value
    return claims


def _sign(key: Any, alg: str = "RS256", kid: str | None = "k1", **claims: Any) -> str:
    headers = {"kid": kid} if kid else None
    return jwt.encode(_claims(**claims), key, algorithm=alg, headers=headers)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    head = _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(claims).encode())
    return head + "." + _b64(signature)


@pytest.fixture
def jwks_file(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey
) -> Path:
    path = tmp_path / "jwks.json"
    keys = [_jwk(rsa_key, "k1", "RS256"), _jwk(ec_key, "e1"), {"kty": "oct", "k": "c2VjcmV0"}]
    path.write_text(json.dumps({"keys": keys}))
    return path


@pytest.fixture
def jwt_settings(jwks_file: Path) -> GovernanceSettings:
    return GovernanceSettings(
        user="root", jwt_issuer=ISSUER, jwt_audience=AUDIENCE, jwt_jwks_file=jwks_file
    )


def _verify(settings: GovernanceSettings, token: str) -> dict[str, Any]:
    return JwtVerifier(settings).verify(token)


def test_valid_rsa_and_ec_tokens(
    jwt_settings: GovernanceSettings,
    rsa_key: rsa.RSAPrivateKey,
    ec_key: ec.EllipticCurvePrivateKey,
) -> None:
    assert _verify(jwt_settings, _sign(rsa_key))["sub"] == "alice"
    assert _verify(jwt_settings, _sign(ec_key, "ES256", kid="e1"))["sub"] == "alice"


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda k, o: _sign(o), AuthenticationError, "signature does not verify"),
        (lambda k, o: _sign(k, exp=int(time.time()) - 120), TokenExpiredError, "expired"),
        (lambda k, o: _sign(k, nbf=int(time.time()) + 600), AuthenticationError, "not valid yet"),
        (lambda k, o: _sign(k, aud="another-app"), AuthenticationError, "audience"),
        (lambda k, o: _sign(k, iss="https://evil.example.com"), AuthenticationError, "issuer"),
        (lambda k, o: _sign(k, exp=None), AuthenticationError, "claim 'exp'"),
        (lambda k, o: _sign(k, aud=None), AuthenticationError, "claim 'aud'"),
        (lambda k, o: _sign(k, iss=None), AuthenticationError, "claim 'iss'"),
        (lambda k, o: _sign(k, kid="nope"), AuthenticationError, "names key 'nope'"),
        (lambda k, o: _sign(k, kid=None), AuthenticationError, "no 'kid' header"),
        (lambda k, o: _sign(k, "PS256"), AuthenticationError, "does not fit the key"),
        (lambda k, o: _sign(k, "RS512"), AuthenticationError, "not fit"),
        (
            lambda k, o: _unsigned({"alg": "none", "kid": "k1"}, _claims()),
            AuthenticationError,
            "algorithm 'none' is not accepted",
        ),
        (
            lambda k, o: _unsigned({"kid": "k1"}, _claims()),
            AuthenticationError,
            "algorithm None is not accepted",
        ),
        (lambda k, o: "a.b.c", AuthenticationError, "malformed JWT"),
        (lambda k, o: "e30.e30.", AuthenticationError, "algorithm None"),
    ],
    ids=[
        "wrong-key",
        "expired",
        "not-yet-valid",
        "wrong-audience",
        "wrong-issuer",
        "no-exp",
        "no-aud",
        "no-iss",
        "unknown-kid",
        "no-kid-many-keys",
        "alg-not-declared-by-key",
        "rs512-vs-rs256-key",
        "alg-none",
        "no-alg",
        "garbage",
        "empty-header",
    ],
)
def test_bad_tokens_refused(
    jwt_settings: GovernanceSettings,
    rsa_key: rsa.RSAPrivateKey,
    other_rsa_key: rsa.RSAPrivateKey,
    make: Any,
    error: type[Exception],
    match: str,
) -> None:
    with pytest.raises(error, match=match):
        _verify(jwt_settings, make(rsa_key, other_rsa_key))


def test_tampered_payload_refused(jwt_settings: GovernanceSettings, rsa_key: Any) -> None:
    header, _, signature = _sign(rsa_key).split(".")
    forged = _b64(json.dumps(_claims(sub="admin", scope="admin")).encode())
    with pytest.raises(AuthenticationError, match="signature does not verify"):
        _verify(jwt_settings, f"{header}.{forged}.{signature}")


def test_hs256_signed_with_the_public_key_is_refused(
    tmp_path: Path, rsa_key: rsa.RSAPrivateKey
) -> None:
    """The algorithm-confusion attack: the public key's bytes used as an HMAC secret."""
    pem = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (tmp_path / "idp.pem").write_bytes(pem)
    settings = GovernanceSettings(
        jwt_issuer=ISSUER, jwt_audience=AUDIENCE, jwt_public_key_file=tmp_path / "idp.pem"
    )
    header = {"alg": "HS256", "typ": "JWT"}
    head = _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(_claims()).encode())
    signature = hmac.new(pem, head.encode(), hashlib.sha256).digest()
    with pytest.raises(AuthenticationError, match="algorithm 'HS256' is not accepted"):
        _verify(settings, head + "." + _b64(signature))
    assert _verify(settings, _sign(rsa_key, kid=None))["sub"] == "alice"  # the real key works


def test_pem_public_key_and_certificate_files(
    tmp_path: Path, ec_key: ec.EllipticCurvePrivateKey, rsa_key: rsa.RSAPrivateKey
) -> None:
    pem = ec_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (tmp_path / "ec.pem").write_bytes(pem)
    settings = GovernanceSettings(
        jwt_issuer=ISSUER, jwt_audience=AUDIENCE, jwt_public_key_file=tmp_path / "ec.pem"
    )
    assert _verify(settings, _sign(ec_key, "ES256", kid="any"))["sub"] == "alice"
    with pytest.raises(AuthenticationError, match="does not fit"):
        _verify(settings, _sign(rsa_key))
    private = rsa_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (tmp_path / "private.pem").write_bytes(private)
    wrong = GovernanceSettings(
        jwt_issuer=ISSUER, jwt_audience=AUDIENCE, jwt_public_key_file=tmp_path / "private.pem"
    )
    with pytest.raises(ConfigurationError, match="not a PEM public key"):
        JwtVerifier(wrong)


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_weak_rsa_key_refused(tmp_path: Path) -> None:
    weak = _rsa(1024)
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [_jwk(weak, "w")]}))
    settings = GovernanceSettings(jwt_issuer=ISSUER, jwt_audience=AUDIENCE, jwt_jwks_file=path)
    with pytest.raises(AuthenticationError, match="unusable: The RSA key is 1024 bits"):
        _verify(settings, _sign(weak, kid="w"))


@pytest.mark.parametrize(
    ("content", "match"),
    [
        ("not json", "is not JSON"),
        ('{"keys": "x"}', "not a JWKS document"),
        ('{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}', "no usable"),
        ('{"keys": [{"kty": "RSA", "n": "x", "e": "AQAB", "alg": "HS256"}]}', "no usable"),
    ],
)
def test_bad_jwks_files_refused(tmp_path: Path, content: str, match: str) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(content)
    settings = GovernanceSettings(jwt_issuer=ISSUER, jwt_audience=AUDIENCE, jwt_jwks_file=path)
    with pytest.raises(ConfigurationError, match=match):
        JwtVerifier(settings)


def test_leeway_tolerates_small_skew(jwks_file: Path, rsa_key: Any) -> None:
    settings = GovernanceSettings(
        jwt_issuer=ISSUER, jwt_audience=AUDIENCE, jwt_jwks_file=jwks_file, jwt_leeway=60
    )
    assert _verify(settings, _sign(rsa_key, exp=int(time.time()) - 20))["sub"] == "alice"
    strict = GovernanceSettings(
        jwt_issuer=ISSUER, jwt_audience=AUDIENCE, jwt_jwks_file=jwks_file, jwt_leeway=0
    )
    with pytest.raises(TokenExpiredError):
        _verify(strict, _sign(rsa_key, exp=int(time.time()) - 20))


# -- the principal a JWT stands for -----------------------------------------------


def test_jwt_principal_from_claims(
    store: Store, jwt_settings: GovernanceSettings, rsa_key: Any
) -> None:
    token = _sign(rsa_key, roles=["ml-engineer", "not-a-steward-role"])
    principal = authenticate(store, token, jwt_settings)
    assert principal.name == "alice" and principal.method == "jwt"
    assert principal.roles == {"ml-engineer"}
    assert "models:read" in principal.scopes and "models:promote" in principal.scopes
    assert "openid" not in principal.scopes
    assert principal.expires_at is not None


def test_configurable_claims(store: Store, jwks_file: Path, rsa_key: Any) -> None:
    settings = GovernanceSettings(
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
        jwt_jwks_file=jwks_file,
        jwt_subject_claim="preferred_username",
        jwt_scope_claim="scp",
        jwt_roles_claim="groups",
    )
    token = _sign(
        rsa_key, preferred_username="a.lovelace", scp=["audit:read"], groups="model-risk viewer"
    )
    principal = authenticate(store, token, settings)
    assert principal.name == "a.lovelace"
    assert principal.roles == {"model-risk", "viewer"}
    assert principal.scopes == {"audit:read", "models:read", "features:read"}
    with pytest.raises(AuthenticationError, match="'preferred_username'"):
        authenticate(store, _sign(rsa_key), settings)
    with pytest.raises(AuthenticationError, match="'scp' must be"):
        authenticate(store, _sign(rsa_key, preferred_username="x", scp={"a": 1}), settings)


@pytest.mark.parametrize("subject", [None, "", "has space", 42, "x" * 300])
def test_unusable_subject_refused(
    store: Store, jwt_settings: GovernanceSettings, rsa_key: Any, subject: Any
) -> None:
    token = _sign(rsa_key, sub=subject) if subject is not None else _sign(rsa_key, sub=None)
    with pytest.raises(AuthenticationError):
        authenticate(store, token, jwt_settings)


def test_registered_identity_adds_roles_and_can_be_disabled(
    store: Store, jwt_settings: GovernanceSettings, rsa_key: Any, identities: IdentityService
) -> None:
    identities.create_service_account("alice", roles=["approver"])
    principal = authenticate(store, _sign(rsa_key, scope=None), jwt_settings)
    assert principal.kind == "service"
    assert principal.roles == {"approver"}
    identities.disable("alice")
    with pytest.raises(AuthenticationError, match="'alice' is disabled"):
        authenticate(store, _sign(rsa_key), jwt_settings)
    refused = store.audit.list_events(action="auth.refused")
    assert [(e.actor, e.object_id, e.details) for e in refused] == [
        ("anonymous", "alice", {"reason": "disabled", "method": "jwt"})
    ]


def test_jwt_without_a_configured_provider_refused(store: Store, rsa_key: Any) -> None:
    with pytest.raises(AuthenticationError, match="no identity provider is configured"):
        authenticate(store, _sign(rsa_key), GovernanceSettings())


def test_far_future_expiry_is_not_a_crash(
    store: Store, jwt_settings: GovernanceSettings, rsa_key: Any
) -> None:
    principal = authenticate(store, _sign(rsa_key, exp=10**15), jwt_settings)
    assert principal.name == "alice" and principal.expires_at is None


# -- keys from a JWKS endpoint ------------------------------------------------------


class _Jwks:
    def __init__(self) -> None:
        self.document: dict[str, Any] = {"keys": []}
        self.fetches = 0


@pytest.fixture
def jwks_server() -> Iterator[tuple[str, _Jwks]]:
    state = _Jwks()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.fetches += 1
            body = json.dumps(state.document).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/jwks", state
    server.shutdown()
    server.server_close()


def test_jwks_url_fetched_once_then_cached_and_refreshed_on_rotation(
    jwks_server: tuple[str, _Jwks], rsa_key: Any, other_rsa_key: Any, monkeypatch: Any
) -> None:
    url, state = jwks_server
    state.document = {"keys": [_jwk(rsa_key, "k1")]}
    verifier = JwtVerifier(
        GovernanceSettings(jwt_issuer=ISSUER, jwt_audience=AUDIENCE, jwt_jwks_url=url)
    )
    for _ in range(3):
        assert verifier.verify(_sign(rsa_key))["sub"] == "alice"
    assert state.fetches == 1
    # The provider rotates to a new key: an unknown kid forces one refresh...
    state.document = {"keys": [_jwk(rsa_key, "k1"), _jwk(other_rsa_key, "k2")]}
    monkeypatch.setattr("steward.governance._jwt._REFRESH_COOLDOWN_S", 0.0)
    assert verifier.verify(_sign(other_rsa_key, kid="k2"))["sub"] == "alice"
    assert state.fetches == 2
    # ...but not more often than the cooldown allows.
    monkeypatch.setattr("steward.governance._jwt._REFRESH_COOLDOWN_S", 3600.0)
    with pytest.raises(AuthenticationError, match="names key 'k3'"):
        verifier.verify(_sign(other_rsa_key, kid="k3"))
    assert state.fetches == 2


def test_unreachable_jwks_url_is_a_backend_error(rsa_key: Any) -> None:
    verifier = JwtVerifier(
        GovernanceSettings(
            jwt_issuer=ISSUER, jwt_audience=AUDIENCE, jwt_jwks_url="http://127.0.0.1:9/jwks"
        )
    )
    with pytest.raises(BackendUnavailableError, match="cannot fetch the identity provider"):
        verifier.verify(_sign(rsa_key))


@pytest.mark.parametrize("url", ["http://idp.example.com/jwks", "file:///etc/passwd", "ftp://x/y"])
def test_jwks_url_must_be_https(url: str) -> None:
    settings = GovernanceSettings(jwt_issuer=ISSUER, jwt_audience=AUDIENCE, jwt_jwks_url=url)
    with pytest.raises(ConfigurationError, match="must be an https:// URL"):
        JwtVerifier(settings)


def test_verified_claims_are_reused_but_never_past_exp(
    jwks_file: Path, rsa_key: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = GovernanceSettings(
        jwt_issuer=ISSUER, jwt_audience=AUDIENCE, jwt_jwks_file=jwks_file, jwt_leeway=0
    )
    verifier = JwtVerifier(settings)
    calls = []
    real_decode = jwt.decode
    monkeypatch.setattr(jwt, "decode", lambda *a, **k: calls.append(1) or real_decode(*a, **k))
    expires = int(time.time()) + 2
    token = _sign(rsa_key, exp=expires)
    assert verifier.verify(token)["sub"] == "alice"
    assert verifier.verify(token)["sub"] == "alice"
    assert len(calls) == 1  # the second call came from the cache
    while time.time() < expires:
        time.sleep(0.1)
    with pytest.raises(TokenExpiredError):
        verifier.verify(token)
