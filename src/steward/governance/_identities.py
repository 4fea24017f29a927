"""Users, service accounts and their role bindings."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from steward.core import ConflictError, InvalidInputError, NotFoundError, load_settings, new_id
from steward.governance._models import Identity, RoleBinding
from steward.governance._rows import (
    bump_generation,
    find_identity,
    get_identity,
    list_identities,
)
from steward.governance._scopes import GLOBAL, Role, RoleCatalog, check_resource
from steward.governance._settings import GovernanceSettings
from steward.governance._tables import principals, role_bindings
from steward.store import Store, UnitOfWork

__all__ = ["IdentityService", "check_principal_name"]

# Names are what the audit chain records as the actor: printable, no spaces, and
# wide enough for e-mail addresses and identity-provider subjects ("auth0|123").
_PRINCIPAL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@|:+-]{0,199}$")
_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}$")


def check_principal_name(name: object) -> str:
    """Return a well-formed principal name.

    Raises:
        InvalidInputError: empty, too long, or with characters outside
            letters, digits and ``. _ @ | : + -``.
    """
    if not isinstance(name, str) or not _PRINCIPAL_NAME.match(name):
        shown = repr(name)[:60]
        raise InvalidInputError(
            f"principal name {shown} is malformed; use 1-200 letters, digits and . _ @ | : + - "
            "starting with a letter or digit (e.g. alice, ci-deployer, alice@example.com)"
        )
    return name


class IdentityService:
    """Users, service accounts and role bindings of one steward home. Every change is audited.

    Creating identities and granting or revoking roles need the ``admin`` scope;
    reading them needs ``audit:read`` (anyone may read their own).

    Example:
        >>> identities = IdentityService(store)  # doctest: +SKIP
        >>> identities.create_user("alice", roles=["data-scientist"])  # doctest: +SKIP
        >>> identities.grant_role("alice", "ml-engineer", resource="model:fraud")  # doctest: +SKIP
    """

    def __init__(self, store: Store, *, settings: GovernanceSettings | None = None) -> None:
        self.store = store
        self.settings = settings or load_settings(GovernanceSettings)
        self.catalog: RoleCatalog = self.settings.role_catalog()

    # -- identities --------------------------------------------------------

    def create_user(
        self,
        name: str,
        *,
        email: str | None = None,
        description: str = "",
        roles: Iterable[str] = (),
    ) -> Identity:
        """Register a user, optionally with global roles.

        Raises:
            PermissionDeniedError: the caller lacks ``admin``.
            ConflictError: the name is taken.
            InvalidInputError: malformed name or e-mail, or an unknown role.
        """
        return self._create("user", name, email=email, description=description, roles=roles)

    def create_service_account(
        self, name: str, *, description: str = "", roles: Iterable[str] = ()
    ) -> Identity:
        """Register a service account (a pipeline, the gateway, a CI job).

        Raises:
            PermissionDeniedError: the caller lacks ``admin``.
            ConflictError: the name is taken.
            InvalidInputError: malformed name or an unknown role.
        """
        return self._create("service", name, email=None, description=description, roles=roles)

    def _create(
        self,
        kind: Literal["user", "service"],
        name: str,
        *,
        email: str | None,
        description: str,
        roles: Iterable[str],
    ) -> Identity:
        check_principal_name(name)
        if email is not None and not _EMAIL.match(email):
            raise InvalidInputError(f"e-mail {email!r} is malformed; write name@domain")
        if len(description) > 2000:
            raise InvalidInputError("description is longer than 2,000 characters; shorten it")
        wanted = sorted({self.catalog.get(r).name for r in roles})
        self.store.authorize("admin")
        with self.store.unit_of_work() as uow:
            if find_identity(uow.conn, name) is not None:
                raise ConflictError(f"a user or service account named {name!r} already exists")
            principal_id = new_id()
            try:
                with uow.conn.begin_nested():  # a lost race leaves the unit usable
                    uow.conn.execute(
                        principals.insert(),
                        {
                            "id": principal_id,
                            "name": name,
                            "kind": kind,
                            "email": email,
                            "description": description,
                            "created_at": uow.clock.now(),
                            "created_by": uow.actor,
                        },
                    )
            except sa.exc.IntegrityError:
                raise ConflictError(
                    f"a user or service account named {name!r} already exists"
                ) from None
            for role in wanted:
                self._insert_binding(uow, principal_id, name, role, GLOBAL)
            uow.audit(
                "principal.create",
                "principal",
                name,
                {"kind": kind, "email": email, "roles": wanted},
            )
            created = get_identity(uow.conn, name)
        bump_generation()
        return created

    def get_identity(self, name: str) -> Identity:
        """Return a user or service account with its role bindings.

        Raises:
            NotFoundError: no such identity.
            PermissionDeniedError: reading another identity needs ``audit:read``.
        """
        if name != self.store.principal.name:
            self.store.authorize("audit:read")
        with self.store.database.read() as conn:
            return get_identity(conn, name)

    def find_identity(self, name: str) -> Identity | None:
        """Return a user or service account, or None."""
        try:
            return self.get_identity(name)
        except NotFoundError:
            return None

    def list_identities(
        self, *, kind: Literal["user", "service"] | None = None, include_disabled: bool = True
    ) -> list[Identity]:
        """Return users and service accounts by name, with their bindings.

        Raises:
            PermissionDeniedError: the caller lacks ``audit:read``.
        """
        self.store.authorize("audit:read")
        with self.store.database.read() as conn:
            return list_identities(conn, kind=kind, include_disabled=include_disabled)

    def disable(self, name: str) -> Identity:
        """Disable an identity: its tokens and JWTs are refused from now on.

        Raises:
            PermissionDeniedError: the caller lacks ``admin``.
            NotFoundError: no such identity.
            ConflictError: it is the last enabled administrator.
        """
        return self._set_disabled(name, True)

    def enable(self, name: str) -> Identity:
        """Enable a disabled identity again.

        Raises:
            PermissionDeniedError: the caller lacks ``admin``.
            NotFoundError: no such identity.
        """
        return self._set_disabled(name, False)

    def _set_disabled(self, name: str, disabled: bool) -> Identity:
        self.store.authorize("admin")
        with self.store.unit_of_work() as uow:
            found = get_identity(uow.conn, name)
            if found.disabled == disabled:
                return found
            if disabled and "admin" in found.global_roles:
                self._keep_an_admin(uow.conn, found.id, f"disabling {name!r}")
            now = uow.clock.now()
            uow.conn.execute(
                principals.update()
                .where(principals.c.id == found.id)
                .values(
                    disabled_at=now if disabled else None,
                    disabled_by=uow.actor if disabled else None,
                )
            )
            uow.audit("principal.disable" if disabled else "principal.enable", "principal", name)
            changed = get_identity(uow.conn, name)
        bump_generation()
        return changed

    # -- roles -------------------------------------------------------------

    def roles(self) -> list[Role]:
        """Return the roles in force with their scopes."""
        return self.catalog.roles

    def grant_role(self, name: str, role: str, *, resource: str | None = None) -> RoleBinding:
        """Give ``name`` a role, everywhere or on one resource (``model:fraud``, ``team:risk``).

        Raises:
            PermissionDeniedError: the caller lacks ``admin``.
            NotFoundError: no such identity.
            ConflictError: the identity already holds that role there.
            InvalidInputError: unknown role or malformed resource.
        """
        self.catalog.get(role)
        target = check_resource(resource)
        self.store.authorize("admin")
        with self.store.unit_of_work() as uow:
            found = get_identity(uow.conn, name)
            if any(b.role == role and b.resource == target for b in found.bindings):
                where = "everywhere" if target == GLOBAL else f"on {target}"
                raise ConflictError(f"{name!r} already holds the role {role!r} {where}")
            binding = self._insert_binding(uow, found.id, name, role, target)
            uow.audit("role.grant", "principal", name, {"role": role, "resource": target})
        bump_generation()
        return binding

    def revoke_role(self, name: str, role: str, *, resource: str | None = None) -> RoleBinding:
        """Take a role from ``name`` (the binding given with the same resource).

        Raises:
            PermissionDeniedError: the caller lacks ``admin``.
            NotFoundError: no such identity, or it does not hold that role there.
            ConflictError: it would leave no enabled administrator.
        """
        target = check_resource(resource)
        self.store.authorize("admin")
        with self.store.unit_of_work() as uow:
            found = get_identity(uow.conn, name)
            binding = next(
                (b for b in found.bindings if b.role == role and b.resource == target), None
            )
            if binding is None:
                held = ", ".join(f"{b.role}@{b.resource}" for b in found.bindings) or "none"
                where = "everywhere" if target == GLOBAL else f"on {target}"
                raise NotFoundError(
                    f"{name!r} does not hold the role {role!r} {where}; it holds: {held}"
                )
            if role == "admin" and target == GLOBAL and not found.disabled:
                self._keep_an_admin(uow.conn, found.id, f"revoking admin from {name!r}")
            uow.conn.execute(role_bindings.delete().where(role_bindings.c.id == binding.id))
            uow.audit("role.revoke", "principal", name, {"role": role, "resource": target})
        bump_generation()
        return binding

    def list_bindings(
        self,
        *,
        principal: str | None = None,
        role: str | None = None,
        resource: str | None = None,
    ) -> list[RoleBinding]:
        """Return role bindings, filtered by principal, role and resource (``*`` for global).

        Raises:
            PermissionDeniedError: reading others' bindings needs ``audit:read``.
        """
        if principal is None or principal != self.store.principal.name:
            self.store.authorize("audit:read")
        query = (
            sa.select(role_bindings, principals.c.name.label("principal_name"))
            .join(principals, principals.c.id == role_bindings.c.principal_id)
            .order_by(principals.c.name, role_bindings.c.role, role_bindings.c.resource)
        )
        if principal is not None:
            query = query.where(principals.c.name == principal)
        if role is not None:
            query = query.where(role_bindings.c.role == role)
        if resource is not None:
            query = query.where(role_bindings.c.resource == check_resource(resource))
        with self.store.database.read() as conn:
            rows = conn.execute(query).all()
        return [
            RoleBinding(
                id=r.id,
                principal=r.principal_name,
                role=r.role,
                resource=r.resource,
                created_at=r.created_at,
                created_by=r.created_by,
            )
            for r in rows
        ]

    # -- internals ---------------------------------------------------------

    def _insert_binding(
        self, uow: UnitOfWork, principal_id: str, name: str, role: str, resource: str
    ) -> RoleBinding:
        binding = RoleBinding(
            id=new_id(),
            principal=name,
            role=role,
            resource=resource,
            created_at=uow.clock.now(),
            created_by=uow.actor,
        )
        try:
            with uow.conn.begin_nested():  # a concurrent identical grant loses cleanly
                uow.conn.execute(
                    role_bindings.insert(),
                    {
                        "id": binding.id,
                        "principal_id": principal_id,
                        "role": role,
                        "resource": resource,
                        "created_at": binding.created_at,
                        "created_by": binding.created_by,
                    },
                )
        except sa.exc.IntegrityError:
            raise ConflictError(f"{name!r} already holds the role {role!r} on {resource}") from None
        return binding

    def _keep_an_admin(self, conn: Connection, principal_id: str, doing: str) -> None:
        # The local identity (embedded mode) is always an administrator, so only a
        # caller who authenticated can lock everyone out.
        if self.store.principal.kind == "local":
            return
        others = conn.execute(
            sa.select(sa.func.count())
            .select_from(role_bindings.join(principals))
            .where(
                role_bindings.c.role == "admin",
                role_bindings.c.resource == GLOBAL,
                principals.c.disabled_at.is_(None),
                principals.c.id != principal_id,
            )
        ).scalar_one()
        if not others:
            raise ConflictError(
                f"{doing} would leave no enabled administrator; grant admin to another "
                "identity first"
            )
