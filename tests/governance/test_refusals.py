"""Refused credentials and policies are audited, with no secret written and no flood possible."""

from __future__ import annotations

import base64
import json
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from steward.core import FrozenClock, PermissionDeniedError, Principal, canonical_json, sha256_hex
from steward.governance import (
    AuthenticationError,
    GovernanceSettings,
    PolicyError,
    PromotionService,
    TokenExpiredError,
    authenticate,
)
from steward.governance._refusals import PER_REASON, WINDOW, RefusalLimiter
from steward.sdk import Steward
from steward.store import AuditEvent, Store

ISSUER = "https://idp.example.com/realms/bank"
SECRET_PART = "S3cr3tS3cr3tS3cr3tS3cr3tS3cr3tS3cr3tS3cr3tX"  # 43 characters, never to be audited


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def intruder() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def jwt_settings(tmp_path: Path, key: rsa.RSAPrivateKey) -> GovernanceSettings:
    jwk: dict[str, Any] = RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)  # type: ignore[assignment]
    jwk.update({"kid": "k1", "use": "sig", "alg": "RS256"})
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps({"keys": [jwk]}))
    return GovernanceSettings(
        user="root", jwt_issuer=ISSUER, jwt_audience="steward", jwt_jwks_file=path
    )


def _sign(key: Any, *, alg: str = "RS256", kid: str = "k1", **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": ISSUER, "aud": "steward", "sub": "alice", "iat": now, "exp": now + 300}
    body.update(claims)
    return jwt.encode(body, key, algorithm=alg, headers={"kid": kid})


def _unsigned(**claims: Any) -> str:
    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    now = int(time.time())
    body = {"iss": ISSUER, "aud": "steward", "sub": "alice", "exp": now + 300, **claims}
    return part({"alg": "none", "kid": "k1"}) + "." + part(body) + "."


def _refusals(store: Store) -> list[AuditEvent]:
    return store.audit.list_events(action="auth.refused", newest_first=False, limit=None)


def _refuse(store: Store, credential: str, settings: GovernanceSettings) -> AuthenticationError:
    with pytest.raises(AuthenticationError) as caught:
        authenticate(store, credential, settings)
    return caught.value


def test_garbage_is_audited_once_a_minute_with_the_count_left_out(
    store: Store, settings: GovernanceSettings, clock: FrozenClock
) -> None:
    for _ in range(51):
        assert _refuse(store, "hello world", settings).reason == "unrecognized credential"
    [first] = _refusals(store)
    assert (first.actor, first.object_type, first.object_id) == (
        "anonymous",
        "credential",
        "unrecognized",
    )
    assert first.details == {"reason": "unrecognized credential", "method": "unknown", "length": 11}
    clock.advance(seconds=WINDOW.total_seconds())
    _refuse(store, "hello again", settings)
    assert _refusals(store)[-1].details["suppressed"] == 50
    assert "hello" not in canonical_json([e.as_dict() for e in _refusals(store)])
    _refuse(store, "x" * 9000, settings)  # oversized: refused unparsed, audited by length
    assert _refusals(store)[-1].details == {
        "reason": "oversized",
        "method": "unknown",
        "length": 9000,
    }
    assert store.audit.verify().ok


def test_unknown_and_malformed_steward_tokens_are_audited_by_an_id_prefix(
    store: Store, settings: GovernanceSettings
) -> None:
    unknown = f"stw_ab12cd34{'0' * 24}_{SECRET_PART}"
    assert _refuse(store, unknown, settings).reason == "unknown token"
    assert _refuse(store, f"stw_{SECRET_PART}", settings).reason == "malformed token"
    assert _refuse(store, "stw_zz", settings).reason == "malformed token"
    events = _refusals(store)
    assert [(e.object_type, e.object_id, e.details["reason"]) for e in events] == [
        ("credential", "stw_ab12cd34", "unknown token"),
        ("credential", "stw_?", "malformed token"),  # no hex id in front: nothing kept
    ]  # the second malformed one shares reason and fingerprint: left out this minute
    text = canonical_json([e.as_dict() for e in events])
    assert SECRET_PART[:8] not in text and "0" * 24 not in text


def test_distinct_fingerprints_are_capped_per_reason(
    store: Store, settings: GovernanceSettings, clock: FrozenClock
) -> None:
    for n in range(PER_REASON + 5):
        assert _refuse(store, f"stw_{n:08x}{'0' * 24}_{SECRET_PART}", settings).reason == (
            "unknown token"
        )
    assert len(_refusals(store)) == PER_REASON
    clock.advance(seconds=WINDOW.total_seconds())
    _refuse(store, f"stw_{'f' * 32}_{SECRET_PART}", settings)
    assert _refusals(store)[-1].details["suppressed"] == 5


@pytest.mark.parametrize(
    ("make", "reason", "error"),
    [
        (lambda k, i: _sign(i), "bad signature", AuthenticationError),
        (lambda k, i: _sign(k, exp=int(time.time()) - 600), "expired", TokenExpiredError),
        (lambda k, i: _sign(k, aud="another-app"), "wrong audience", AuthenticationError),
        (lambda k, i: _sign(k, iss="https://evil.example"), "wrong issuer", AuthenticationError),
        (lambda k, i: _unsigned(), "algorithm not accepted", AuthenticationError),
        (lambda k, i: _sign(k, kid="k9"), "unknown key", AuthenticationError),
        (lambda k, i: "eyJhbGciOi.garbage.x", "malformed", AuthenticationError),
    ],
)
def test_refused_jwts_are_audited_by_issuer_and_key_id(
    store: Store,
    jwt_settings: GovernanceSettings,
    key: rsa.RSAPrivateKey,
    intruder: rsa.RSAPrivateKey,
    make: Any,
    reason: str,
    error: type[AuthenticationError],
) -> None:
    token = make(key, intruder)
    with pytest.raises(error) as caught:
        authenticate(store, token, jwt_settings)
    assert caught.value.reason == reason
    [event] = _refusals(store)
    assert event.actor == "anonymous" and event.object_type == "jwt"
    assert event.details["reason"] == reason and event.details["method"] == "jwt"
    if reason != "malformed":
        assert event.details["kid"] in ("k1", "k9")
        assert event.object_id in (ISSUER, "https://evil.example")
    text = canonical_json(event.as_dict())
    assert token not in text and token.split(".")[1] not in text and "alice" not in text


def test_a_jwt_without_a_provider_is_audited(store: Store, key: rsa.RSAPrivateKey) -> None:
    _refuse(store, _sign(key), GovernanceSettings(user="root"))
    [event] = _refusals(store)
    assert event.details == {"reason": "no identity provider", "method": "jwt", "kid": "k1"}
    assert event.object_id == ISSUER


def test_the_limiter_alone() -> None:
    limiter = RefusalLimiter(window=timedelta(seconds=10), per_reason=2)
    now = datetime(2026, 1, 1)
    assert limiter.admit("expired", "a", now) == 0
    assert limiter.admit("expired", "a", now) is None
    assert limiter.admit("expired", "b", now) == 1  # another fingerprint; reports the one left
    assert limiter.admit("expired", "c", now) is None  # two per reason per window
    assert limiter.admit("revoked", "c", now) == 0  # reasons are counted apart
    assert limiter.admit("expired", "a", now + timedelta(seconds=10)) == 1


@pytest.fixture
def client_user() -> str:
    return "root"


def test_a_refused_policy_is_audited_and_changes_nothing(st: Steward, tmp_path: Path) -> None:
    text = "policy: credit\ngates:\n  high:\n    production:\n      checks: ['auc >>= 1']\n"
    with pytest.raises(PolicyError) as caught:
        st.promotions.apply_policy("credit.yaml", text=text)
    [event] = st.store.audit.list_events(action="policy.apply.refused")
    assert (event.actor, event.object_type, event.object_id) == ("root", "policy", "credit.yaml")
    assert event.details["source"] == "credit.yaml"
    assert event.details["digest"] == sha256_hex(text)
    assert event.details["count"] == len(caught.value.problems) >= 1
    assert event.details["problems"] == [str(p) for p in caught.value.problems]
    assert st.promotions.policy_history() == []
    with pytest.raises(PolicyError, match="no such file"):
        st.promotions.apply_policy(tmp_path / "missing.yaml")
    latest = st.store.audit.list_events(action="policy.apply.refused")[0]
    assert latest.details["digest"] is None and latest.details["problems"] == ["no such file"]
    viewer = st.store.as_principal(Principal.of("vic", scopes=["models:read"]))
    with pytest.raises(PermissionDeniedError, match="admin"):  # refused before it is read
        PromotionService(viewer, st.registry).apply_policy("p.yaml", text="policy: [")
    assert len(st.store.audit.list_events(action="policy.apply.refused")) == 2
    assert st.store.audit.verify().ok
