"""API tokens: shown once, stored as a hash, capped by their owner, refused when stale."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from tests.governance._support import acting_as

from steward.core import (
    ConflictError,
    FrozenClock,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    canonical_json,
)
from steward.governance import (
    AuthenticationError,
    GovernanceSettings,
    IdentityService,
    TokenExpiredError,
    TokenRevokedError,
    TokenService,
    authenticate,
)
from steward.governance._tables import api_tokens
from steward.store import Store


@pytest.fixture
def bob(identities: IdentityService) -> str:
    identities.create_user("bob", roles=["data-scientist"])
    return "bob"


def _auth(store: Store, secret: str) -> object:
    return authenticate(store, secret, GovernanceSettings(user="root"))


def test_create_returns_the_secret_once_and_stores_only_a_hash(
    tokens: TokenService, store: Store, bob: str, clock: FrozenClock
) -> None:
    info, secret = tokens.create_token(bob, name="laptop", scopes="models:read,models:write")
    assert secret.startswith(f"stw_{info.id}_") and len(secret) == 4 + 32 + 1 + 43
    assert info.scopes == ("models:read", "models:write")
    assert info.expires_at == clock.now() + timedelta(days=30)  # the default expiry
    with store.database.read() as conn:
        row = conn.execute(sa.select(api_tokens)).one()
    stored = " ".join(str(v) for v in row)
    assert secret.split("_", 2)[2] not in stored
    assert len(row.secret_hash) == 64
    event = store.audit.list_events(action="token.create")[0]
    assert event.details == {
        "name": "laptop",
        "principal": "bob",
        "scopes": ["models:read", "models:write"],
        "expires_at": info.expires_at.isoformat(),
    }
    assert secret.split("_", 2)[2] not in str(event.details)


def test_token_authenticates_as_its_owner_capped_by_the_owner_s_roles(
    tokens: TokenService, store: Store, bob: str
) -> None:
    _, secret = tokens.create_token(bob, name="wide", scopes=["models:*", "audit:read"])
    principal = _auth(store, secret)
    assert principal.name == "bob"
    assert principal.method == "token" and principal.token_name == "wide"
    assert principal.roles == {"data-scientist"}
    # audit:read is not bob's to give; models:promote is not a data scientist's
    assert principal.scopes == {"models:read", "models:write"}
    assert _auth(store, f"Bearer {secret}").name == "bob"


def test_owner_s_roles_are_read_at_use_time(
    tokens: TokenService, identities: IdentityService, store: Store, bob: str
) -> None:
    _, secret = tokens.create_token(bob, name="t", scopes=["models:write"])
    assert _auth(store, secret).scopes == {"models:write"}
    identities.revoke_role(bob, "data-scientist")
    identities.grant_role(bob, "viewer")
    assert _auth(store, secret).scopes == frozenset()


def test_expired_token_refused_with_its_own_error(
    tokens: TokenService, store: Store, bob: str, clock: FrozenClock
) -> None:
    info, secret = tokens.create_token(bob, name="short", scopes=["models:read"], expires_in="1h")
    clock.advance(seconds=3599)
    assert _auth(store, secret).name == "bob"
    clock.advance(seconds=1)
    with pytest.raises(TokenExpiredError, match=rf"token {info.id} \('short'\) expired at"):
        _auth(store, secret)
    assert tokens.list_tokens(bob) == []
    assert [t.state(clock.now()) for t in tokens.list_tokens(bob, include_inactive=True)] == [
        "expired"
    ]
    refused = store.audit.list_events(action="auth.refused")
    assert [(e.actor, e.object_id, e.details["reason"]) for e in refused] == [
        ("anonymous", info.id, "expired")
    ]


def test_revoked_token_refused_with_its_own_error(
    tokens: TokenService, store: Store, bob: str
) -> None:
    info, secret = tokens.create_token(bob, name="ci", scopes=["models:read"])
    revoked = tokens.revoke_token(info.id)
    assert revoked.revoked_by == "root"
    with pytest.raises(TokenRevokedError, match=r"was revoked at .* by root"):
        _auth(store, secret)
    with pytest.raises(ConflictError, match="already revoked"):
        tokens.revoke_token(info.id)
    assert [e.action for e in store.audit.list_events(object_type="token", newest_first=False)] == [
        "token.create",
        "token.revoke",
        "auth.refused",
    ]


def test_revoke_accepts_the_whole_leaked_token(tokens: TokenService, bob: str) -> None:
    info, secret = tokens.create_token(bob, name="leaked", scopes=["models:read"])
    assert tokens.revoke_token(secret).id == info.id
    with pytest.raises(InvalidInputError, match="malformed"):
        tokens.revoke_token("not-an-id")
    with pytest.raises(NotFoundError, match="no token"):
        tokens.revoke_token("0" * 32)


def test_disabled_owner_s_token_refused(
    tokens: TokenService, identities: IdentityService, store: Store, bob: str
) -> None:
    _, secret = tokens.create_token(bob, name="t", scopes=["models:read"])
    identities.disable(bob)
    with pytest.raises(AuthenticationError, match="belongs to 'bob', which is disabled"):
        _auth(store, secret)
    with pytest.raises(ConflictError, match="disabled"):
        tokens.create_token(bob, name="t2", scopes=["models:read"])


def test_wrong_secret_and_unknown_id_refused(tokens: TokenService, store: Store, bob: str) -> None:
    _, secret = tokens.create_token(bob, name="t", scopes=["models:read"])
    forged = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    with pytest.raises(AuthenticationError, match="does not verify"):
        _auth(store, forged)
    with pytest.raises(AuthenticationError, match="unknown token"):
        _auth(store, "stw_" + "0" * 32 + "_" + secret.split("_", 2)[2])
    refused = store.audit.list_events(action="auth.refused", newest_first=False)
    assert [(e.object_type, e.details["reason"]) for e in refused] == [
        ("token", "secret does not match"),
        ("credential", "unknown token"),  # by the id's first 8 characters: "stw_00000000"
    ]
    assert refused[1].object_id == "stw_00000000"
    assert _auth(store, secret).name == "bob"  # the real one still works


@pytest.mark.parametrize(
    "credential",
    [
        "stw_",
        "stw_xyz",
        "stw_" + "0" * 32,
        "stw_" + "0" * 32 + "_short",
        "stw_" + "G" * 32 + "_" + "a" * 43,
        "stw_" + "0" * 32 + "_" + "a" * 42 + "\x00",
        "stw_" + "0" * 32 + "_" + "a" * 42 + "é",
        "stw_" + "0" * 32 + "_" + "a" * 43 + "\n" + "x",
        "garbage",
        "a.b",
        "Bearer ",
    ],
)
def test_malformed_tokens_refused_and_audited_without_their_text(
    store: Store, credential: str
) -> None:
    settings = GovernanceSettings(user="root", auth="required")
    with pytest.raises(AuthenticationError) as refused:
        authenticate(store, credential, settings)
    assert credential.strip() not in str(refused.value) or len(credential.strip()) < 8
    [event] = store.audit.list_events(action="auth.refused")
    assert event.actor == "anonymous" and event.object_type == "credential"
    assert event.details["reason"] in ("malformed token", "unrecognized credential")
    recorded = canonical_json(event.as_dict())
    text = credential.strip()
    assert len(text) <= 4 or text not in recorded  # at most "stw_" and 8 hex of the id
    assert len(text) <= 12 or text[12:] not in recorded


def test_oversized_credential_refused_before_parsing(store: Store) -> None:
    with pytest.raises(AuthenticationError, match="8,193 characters; the limit is 8,192"):
        _auth(store, "stw_" + "a" * (8193 - 4))
    with pytest.raises(AuthenticationError, match="limit"):
        _auth(store, "e" * 10_000 + "." + "e" * 10 + "." + "e")


def test_expiry_bounds(tokens: TokenService, bob: str, clock: FrozenClock) -> None:
    with pytest.raises(InvalidInputError, match="at most 365 days"):
        tokens.create_token(bob, name="t", scopes=["models:read"], expires_in="400d")
    with pytest.raises(InvalidInputError, match="in the past"):
        tokens.create_token(
            bob, name="t", scopes=["models:read"], expires_at=clock.now() - timedelta(seconds=1)
        )
    with pytest.raises(InvalidInputError, match="no time zone"):
        tokens.create_token(bob, name="t", scopes=["models:read"], expires_at=datetime(2027, 1, 1))
    with pytest.raises(InvalidInputError, match="not both"):
        tokens.create_token(
            bob,
            name="t",
            scopes=["models:read"],
            expires_in="1d",
            expires_at=datetime(2027, 1, 1, tzinfo=UTC),
        )
    info, _ = tokens.create_token(
        bob, name="t", scopes=["models:read"], expires_at=datetime(2026, 6, 1, tzinfo=UTC)
    )
    assert info.expires_at == datetime(2026, 6, 1, tzinfo=UTC)


def test_bad_names_scopes_and_duplicates_refused(tokens: TokenService, bob: str) -> None:
    with pytest.raises(InvalidInputError, match="unknown scope 'models:delete'"):
        tokens.create_token(bob, name="t", scopes=["models:delete"])
    with pytest.raises(InvalidInputError, match="token name"):
        tokens.create_token(bob, name="bad\nname", scopes=["models:read"])
    with pytest.raises(NotFoundError, match="no user or service account 'zed'"):
        tokens.create_token("zed", name="t", scopes=["models:read"])
    tokens.create_token(bob, name="t", scopes=["models:read"])
    with pytest.raises(ConflictError, match="already has an active token named 't'"):
        tokens.create_token(bob, name="t", scopes=["models:read"])


def test_last_used_written_at_most_once_a_minute(
    tokens: TokenService, store: Store, bob: str, clock: FrozenClock
) -> None:
    info, secret = tokens.create_token(bob, name="t", scopes=["models:read"])
    assert tokens.get_token(info.id).last_used_at is None
    first = clock.now()
    _auth(store, secret)
    clock.advance(seconds=30)
    _auth(store, secret)
    assert tokens.get_token(info.id).last_used_at == first
    clock.advance(seconds=31)
    _auth(store, secret)
    assert tokens.get_token(info.id).last_used_at == clock.now()


def test_listing_and_revoking_others_tokens_needs_admin(
    tokens: TokenService, identities: IdentityService, store: Store, bob: str
) -> None:
    identities.create_user("eve", roles=["viewer"])
    bob_token, _ = tokens.create_token(bob, name="b", scopes=["models:read"])
    eve_store = acting_as(store, "eve", scopes=["models:read"])
    eve = TokenService(eve_store, settings=GovernanceSettings(user="root"))
    assert [t.principal for t in eve.list_tokens()] == ["eve"]  # her own only
    with pytest.raises(PermissionDeniedError, match="'eve' lacks the scope 'admin'"):
        eve.list_tokens("bob")
    with pytest.raises(PermissionDeniedError):
        eve.revoke_token(bob_token.id)
    with pytest.raises(PermissionDeniedError):
        eve.get_token(bob_token.id)
    with pytest.raises(PermissionDeniedError):
        eve.create_token("eve", name="more", scopes=["admin"])
    own = eve.list_tokens()[0]
    assert eve.revoke_token(own.id).revoked_by == "eve"  # anyone may revoke their own
    assert {t.principal for t in tokens.list_tokens(include_inactive=True)} == {"bob", "eve"}
    assert store.audit.verify().ok


def test_revocation_elsewhere_is_seen_within_the_cache_ttl(
    store: Store, bob: str, clock: FrozenClock
) -> None:
    cached = GovernanceSettings(user="root", auth_cache_seconds=300)
    tokens = TokenService(store, settings=cached)
    info, secret = tokens.create_token(bob, name="t", scopes=["models:read"])
    assert authenticate(store, secret, cached).name == "bob"
    # Another process revokes it straight in the database: this one's cache holds...
    with store.database.write() as conn:
        conn.execute(
            api_tokens.update()
            .where(api_tokens.c.id == info.id)
            .values(revoked_at=clock.now(), revoked_by="elsewhere")
        )
    assert authenticate(store, secret, cached).name == "bob"
    # ...until it expires (here: no caching at all).
    with pytest.raises(TokenRevokedError, match="by elsewhere"):
        authenticate(store, secret, GovernanceSettings(user="root", auth_cache_seconds=0))
