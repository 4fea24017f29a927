"""Opaque API tokens: created once, stored as a hash, refused when expired or revoked.

A token reads ``stw_<id>_<secret>``: ``id`` is 32 hex characters (the row's key,
so verification is one primary-key lookup) and ``secret`` is 32 random bytes,
URL-safe base64 (43 characters). Only ``sha256("<id>:<secret>")`` is stored and
compared in constant time (:func:`hmac.compare_digest`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from steward.core import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    canonical_json,
    load_settings,
    new_id,
)
from steward.governance._auth_cache import TokenRecord, cache_for
from steward.governance._errors import AuthenticationError, TokenExpiredError, TokenRevokedError
from steward.governance._models import AuthenticatedPrincipal, TokenInfo
from steward.governance._refusals import record_refusal
from steward.governance._rows import (
    bindings_of,
    bump_generation,
    get_identity,
    to_token,
)
from steward.governance._scopes import GLOBAL, RoleCatalog, cap_scopes, check_scope
from steward.governance._settings import GovernanceSettings, parse_duration
from steward.governance._tables import api_tokens, principals
from steward.store import Store

__all__ = ["TOKEN_PREFIX", "TokenService", "parse_scopes"]

TOKEN_PREFIX = "stw_"
_TOKEN = re.compile(r"^stw_([0-9a-f]{32})_([A-Za-z0-9_-]{43})$")
_TOKEN_ID = re.compile(r"^(?:stw_)?([0-9a-f]{32})(?:_[A-Za-z0-9_-]*)?$")
_HEX8 = re.compile(r"^[0-9a-f]{8}$")
_TOKEN_NAME = re.compile(r"^[^\x00-\x1f\x7f]{1,200}$")
# last_used_at is bookkeeping, not evidence: written at most this often per token.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def _id_prefix(text: str) -> str:
    """The first 8 characters of a token's id, when they are hex: never any of the secret."""
    head = text[len(TOKEN_PREFIX) : len(TOKEN_PREFIX) + 8]
    return head if _HEX8.match(head) else ""


def _digest(token_id: str, secret: str) -> str:
    return hashlib.sha256(f"{token_id}:{secret}".encode()).hexdigest()


def parse_scopes(scopes: str | Iterable[str]) -> tuple[str, ...]:
    """Return sorted, distinct, valid scopes from a list or a comma/space-separated string.

    Example:
        >>> parse_scopes("models:read, predict:fraud-api")
        ('models:read', 'predict:fraud-api')

    Raises:
        InvalidInputError: no scope given, or an unknown one.
    """
    items = re.split(r"[,\s]+", scopes) if isinstance(scopes, str) else list(scopes)
    found = sorted({check_scope(s) for s in items if s})
    if not found:
        raise InvalidInputError("a token needs at least one scope, e.g. models:read")
    return tuple(found)


class TokenService:
    """API tokens of one steward home. Creating one needs ``admin``; every change is audited.

    Example:
        >>> tokens = TokenService(store)  # doctest: +SKIP
        >>> info, secret = tokens.create_token(  # doctest: +SKIP
        ...     "ci-deployer", name="deploy", scopes=["deployments:write"], expires_in="30d"
        ... )
    """

    def __init__(self, store: Store, *, settings: GovernanceSettings | None = None) -> None:
        self.store = store
        self.settings = settings or load_settings(GovernanceSettings)
        self.catalog: RoleCatalog = self.settings.role_catalog()

    # -- create, read, revoke ------------------------------------------------

    def create_token(
        self,
        principal_name: str,
        *,
        name: str,
        scopes: str | Iterable[str],
        expires_in: str | timedelta | None = None,
        expires_at: datetime | None = None,
    ) -> tuple[TokenInfo, str]:
        """Create a token for a user or service account; return it and its secret, once.

        The secret is not stored and cannot be shown again. At use, the token's
        scopes are capped by what its owner holds then.

        Raises:
            PermissionDeniedError: the caller lacks ``admin``.
            NotFoundError: no such user or service account.
            ConflictError: the owner is disabled, or has an active token of that name.
            InvalidInputError: malformed name, unknown scope, or an expiry in the past
                or beyond ``STEWARD_TOKEN_MAX_EXPIRY``.
        """
        if not isinstance(name, str) or not _TOKEN_NAME.match(name):
            raise InvalidInputError(
                f"token name {name!r} must be 1-200 printable characters, e.g. ci-deploy"
            )
        wanted = parse_scopes(scopes)
        self.store.authorize("admin")
        now = self.store.clock.now()
        expiry = self._expiry(now, expires_in, expires_at)
        token_id, secret = new_id(), secrets.token_urlsafe(32)
        with self.store.unit_of_work() as uow:
            owner = get_identity(uow.conn, principal_name)
            if owner.disabled:
                raise ConflictError(
                    f"{principal_name!r} is disabled; enable it before creating tokens for it"
                )
            clash = uow.conn.execute(
                sa.select(api_tokens.c.id).where(
                    api_tokens.c.principal_id == owner.id,
                    api_tokens.c.name == name,
                    api_tokens.c.revoked_at.is_(None),
                    api_tokens.c.expires_at > now,
                )
            ).first()
            if clash is not None:
                raise ConflictError(
                    f"{principal_name!r} already has an active token named {name!r} "
                    f"(id {clash.id}); revoke it or choose another name"
                )
            row: dict[str, Any] = {
                "id": token_id,
                "principal_id": owner.id,
                "name": name,
                "scopes": canonical_json(list(wanted)),
                "secret_hash": _digest(token_id, secret),
                "created_at": now,
                "created_by": uow.actor,
                "expires_at": expiry,
            }
            uow.conn.execute(api_tokens.insert(), row)
            uow.audit(
                "token.create",
                "token",
                token_id,
                {
                    "name": name,
                    "principal": principal_name,
                    "scopes": list(wanted),
                    "expires_at": expiry.isoformat(),
                },
            )
        info = TokenInfo(
            id=token_id,
            name=name,
            principal=principal_name,
            scopes=wanted,
            created_at=now,
            created_by=uow.actor,
            expires_at=expiry,
        )
        return info, f"{TOKEN_PREFIX}{token_id}_{secret}"

    def _expiry(
        self, now: datetime, expires_in: str | timedelta | None, expires_at: datetime | None
    ) -> datetime:
        if expires_in is not None and expires_at is not None:
            raise InvalidInputError("give expires_in or expires_at, not both")
        if expires_at is not None:
            if expires_at.tzinfo is None:
                raise InvalidInputError(
                    f"expires_at {expires_at.isoformat()} has no time zone; give one (e.g. UTC)"
                )
            lifetime = expires_at - now
        else:
            lifetime = parse_duration(
                expires_in if expires_in is not None else self.settings.token_default_expiry
            )
        if lifetime <= timedelta(0):
            raise InvalidInputError(f"the expiry {now + lifetime:%Y-%m-%d %H:%M} is in the past")
        if lifetime > self.settings.token_max_expiry:
            raise InvalidInputError(
                f"a token may live at most {self.settings.token_max_expiry.days} days "
                f"(STEWARD_TOKEN_MAX_EXPIRY); asked for {lifetime.days} days"
            )
        return now + lifetime

    def list_tokens(
        self, principal_name: str | None = None, *, include_inactive: bool = False
    ) -> list[TokenInfo]:
        """Return tokens, newest first: one principal's, or (None) every one's for an admin.

        Without ``admin``, ``None`` means the caller's own tokens.

        Raises:
            PermissionDeniedError: listing another principal's tokens needs ``admin``.
        """
        caller = self.store.principal
        if principal_name is None and not caller.allows("admin"):
            principal_name = caller.name
        if principal_name is not None and principal_name != caller.name:
            self.store.authorize("admin")
        query = (
            sa.select(api_tokens, principals.c.name.label("principal_name"))
            .join(principals, principals.c.id == api_tokens.c.principal_id)
            .order_by(api_tokens.c.created_at.desc(), api_tokens.c.id.desc())
        )
        if principal_name is not None:
            query = query.where(principals.c.name == principal_name)
        if not include_inactive:
            query = query.where(
                api_tokens.c.revoked_at.is_(None), api_tokens.c.expires_at > self.store.clock.now()
            )
        with self.store.database.read() as conn:
            return [to_token(r, r.principal_name) for r in conn.execute(query)]

    def get_token(self, token_id: str) -> TokenInfo:
        """Return one token by id (or by the full token text).

        Raises:
            NotFoundError: no such token.
            InvalidInputError: the id is malformed.
            PermissionDeniedError: reading another principal's token needs ``admin``.
        """
        found = self._find(self._token_id(token_id))
        if found.principal != self.store.principal.name:
            self.store.authorize("admin")
        return found

    def revoke_token(self, token_id: str) -> TokenInfo:
        """Revoke a token at once: every later use is refused. Its owner or an admin may.

        ``token_id`` may also be the whole token text, e.g. one found in a leaked log.

        Raises:
            NotFoundError: no such token.
            ConflictError: it is already revoked.
            PermissionDeniedError: revoking another principal's token needs ``admin``.
        """
        key = self._token_id(token_id)
        found = self._find(key)
        if found.principal != self.store.principal.name:
            self.store.authorize("admin")
        with self.store.unit_of_work() as uow:
            now = uow.clock.now()
            changed = uow.conn.execute(
                api_tokens.update()
                .where(api_tokens.c.id == key, api_tokens.c.revoked_at.is_(None))
                .values(revoked_at=now, revoked_by=uow.actor)
            ).rowcount
            if not changed:
                raise ConflictError(
                    f"token {key} was already revoked at {found.revoked_at:%Y-%m-%d %H:%M} UTC"
                    if found.revoked_at
                    else f"token {key} was already revoked"
                )
            uow.audit(
                "token.revoke", "token", key, {"name": found.name, "principal": found.principal}
            )
        bump_generation()  # refused at once in this process, not after the cache TTL
        return self._find(key)

    def _token_id(self, text: str) -> str:
        match = _TOKEN_ID.match(text.strip()) if isinstance(text, str) else None
        if match is None:
            raise InvalidInputError(
                f"token id {text[:40]!r} is malformed; give the 32-hex id shown by "
                "`steward tokens list`"
            )
        return match.group(1)

    def _find(self, token_id: str) -> TokenInfo:
        with self.store.database.read() as conn:
            row = conn.execute(
                sa.select(api_tokens, principals.c.name.label("principal_name"))
                .join(principals, principals.c.id == api_tokens.c.principal_id)
                .where(api_tokens.c.id == token_id)
            ).first()
        if row is None:
            raise NotFoundError(f"no token {token_id}; `steward tokens list` shows the tokens")
        return to_token(row, row.principal_name)

    # -- verification --------------------------------------------------------

    def verify_token(self, text: str) -> AuthenticatedPrincipal:
        """Return the principal a token stands for; refuse it with a reason otherwise.

        Raises:
            AuthenticationError: malformed, unknown, not matching, or its owner disabled.
            TokenExpiredError: past its expiry.
            TokenRevokedError: revoked.
        """
        match = _TOKEN.match(text)
        if match is None:
            self._refuse(_id_prefix(text), "malformed token", known=False)
            raise AuthenticationError(
                "malformed steward token: expected stw_, 32 hex characters, '_' and 43 "
                "characters; check that it was copied whole",
                reason="malformed token",
            )
        token_id, secret = match.groups()
        cache = cache_for(self.store.database)
        cached = cache.get(token_id) if self.settings.auth_cache_seconds > 0 else None
        record = cached or self._load(token_id)
        if not hmac.compare_digest(_digest(token_id, secret), record.secret_hash):
            self._refuse(token_id, "secret does not match")
            raise AuthenticationError(
                f"token {token_id} does not verify; its secret is wrong",
                reason="secret does not match",
            )
        now = self.store.clock.now()
        if record.revoked_at is not None:
            self._refuse(token_id, "revoked")
            raise TokenRevokedError(
                f"token {token_id} ({record.name!r}) was revoked at "
                f"{record.revoked_at:%Y-%m-%d %H:%M} UTC by {record.revoked_by}; ask for a new one"
            )
        if record.expires_at <= now:
            self._refuse(token_id, "expired")
            raise TokenExpiredError(
                f"token {token_id} ({record.name!r}) expired at "
                f"{record.expires_at:%Y-%m-%d %H:%M} UTC; create a new one with "
                "`steward tokens create`"
            )
        if record.principal_disabled:
            self._refuse(token_id, "owner disabled")
            raise AuthenticationError(
                f"token {token_id} belongs to {record.principal!r}, which is disabled",
                reason="owner disabled",
            )
        self._touch(token_id, now)
        return AuthenticatedPrincipal(
            name=record.principal,
            kind="service" if record.principal_kind == "service" else "user",
            roles=record.roles,
            scopes=cap_scopes(record.scopes, self.catalog.scopes_of(record.roles)),
            method="token",
            token_id=token_id,
            token_name=record.name,
            token_scopes=record.scopes,
            expires_at=record.expires_at,
        )

    def _load(self, token_id: str) -> TokenRecord:
        with self.store.database.read() as conn:
            row = conn.execute(
                sa.select(
                    api_tokens,
                    principals.c.name.label("principal_name"),
                    principals.c.kind.label("principal_kind"),
                    principals.c.disabled_at.label("principal_disabled_at"),
                )
                .join(principals, principals.c.id == api_tokens.c.principal_id)
                .where(api_tokens.c.id == token_id)
            ).first()
            owners = bindings_of(conn, [row.principal_id]) if row is not None else {}
        if row is None:
            self._refuse(token_id[:8], "unknown token", known=False)
            raise AuthenticationError(
                f"unknown token {token_id}; it may have been mistyped", reason="unknown token"
            )
        record = TokenRecord(
            secret_hash=row.secret_hash,
            name=row.name,
            principal=row.principal_name,
            principal_kind=row.principal_kind,
            principal_disabled=row.principal_disabled_at is not None,
            scopes=frozenset(json.loads(row.scopes)),
            roles=frozenset(b.role for b in owners[row.principal_id] if b.resource == GLOBAL),
            expires_at=row.expires_at,
            revoked_at=row.revoked_at,
            revoked_by=row.revoked_by,
        )
        cache_for(self.store.database).put(
            token_id, record, row.last_used_at, self.settings.auth_cache_seconds
        )
        return record

    def _refuse(self, fingerprint: str, reason: str, *, known: bool = True) -> None:
        """Audit a refusal: a known token by its id; any other by its first 8 characters."""
        record_refusal(
            self.store,
            reason=reason,
            method="token",
            object_type="token" if known else "credential",
            object_id=fingerprint if known else f"stw_{fingerprint or '?'}",
        )

    def _touch(self, token_id: str, now: datetime) -> None:
        cache = cache_for(self.store.database)
        last_used = cache.last_used(token_id)
        if last_used is not None and now - last_used < LAST_USED_RESOLUTION:
            return
        with self.store.database.write() as conn:
            conn.execute(
                api_tokens.update().where(api_tokens.c.id == token_id).values(last_used_at=now)
            )
        cache.set_last_used(token_id, now)
