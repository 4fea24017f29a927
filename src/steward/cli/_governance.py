"""``steward users``, ``steward roles``, ``steward tokens`` and ``steward whoami``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal, cast

import typer

from steward.cli._common import HomeOption, JsonOption, connect_client
from steward.cli._output import console, err_console, print_json, print_table
from steward.core import NotFoundError
from steward.governance import AuthenticatedPrincipal, Identity, RoleBinding, TokenInfo
from steward.sdk import Steward

__all__ = ["roles_app", "tokens_app", "users_app", "whoami"]

users_app = typer.Typer(
    help="Users and service accounts: create, list, disable.", no_args_is_help=True
)
roles_app = typer.Typer(
    help="Roles and their scopes; grant and revoke them, everywhere or on one resource.",
    no_args_is_help=True,
)
tokens_app = typer.Typer(
    help="API tokens: created once (only a hash is kept), listed, revoked.", no_args_is_help=True
)

OnOption = Annotated[
    str | None,
    typer.Option(
        "--on",
        help="Only on this resource: model:NAME, team:NAME, deployment:NAME, feature_view:NAME.",
        show_default=False,
    ),
]


def _client(home: Path | None) -> Steward:
    return connect_client(home)


def _bindings_text(bindings: tuple[RoleBinding, ...] | list[RoleBinding]) -> str:
    return ", ".join(b.role if b.is_global else f"{b.role}@{b.resource}" for b in bindings)


def _print_identity(found: Identity, verb: str) -> None:
    kind = "service account" if found.kind == "service" else "user"
    roles = _bindings_text(found.bindings) or "no roles"
    console.print(f"{kind} {found.name} {verb} ({roles})")


# -- users -----------------------------------------------------------------


@users_app.command("create")
def users_create(
    name: Annotated[str, typer.Argument(help="Login name, e.g. alice or ci-deployer.")],
    role: Annotated[
        list[str],
        typer.Option("--role", "-r", help="A global role to grant (repeatable); see roles list."),
    ] = [],  # noqa: B006 - typer reads the default, never mutates it
    service: Annotated[
        bool, typer.Option("--service", help="Create a service account, not a person.")
    ] = False,
    email: Annotated[str | None, typer.Option(help="E-mail address.", show_default=False)] = None,
    description: Annotated[str, typer.Option(help="What it is for.")] = "",
    home: HomeOption = None,
    json: JsonOption = False,
) -> None:
    """Register a user or service account (needs admin)."""
    with _client(home) as st:
        if service:
            found = st.identities.create_service_account(name, description=description, roles=role)
        else:
            found = st.identities.create_user(
                name, email=email, description=description, roles=role
            )
    if json:
        print_json(found.as_dict())
    else:
        _print_identity(found, "created")


@users_app.command("list")
def users_list(
    kind: Annotated[
        str | None, typer.Option(help="Only 'user' or 'service'.", show_default=False)
    ] = None,
    home: HomeOption = None,
    json: JsonOption = False,
) -> None:
    """List users and service accounts with their roles (needs audit:read)."""
    if kind not in (None, "user", "service"):
        raise typer.BadParameter(f"--kind {kind!r}: use user or service")
    wanted = cast(Literal["user", "service"] | None, kind)
    with _client(home) as st:
        found = st.identities.list_identities(kind=wanted)
    if json:
        print_json([i.as_dict() for i in found])
        return
    print_table(
        f"{len(found)} identities",
        ["name", "kind", "status", "roles", "created"],
        (
            (
                i.name,
                i.kind,
                "disabled" if i.disabled else "enabled",
                _bindings_text(i.bindings),
                f"{i.created_at:%Y-%m-%d} by {i.created_by}",
            )
            for i in found
        ),
    )


@users_app.command("show")
def users_show(
    name: Annotated[str, typer.Argument(help="User or service account.")],
    home: HomeOption = None,
    json: JsonOption = False,
) -> None:
    """Show one identity and its role bindings (your own, or any with audit:read)."""
    with _client(home) as st:
        found = st.identities.get_identity(name)
    if json:
        print_json(found.as_dict())
        return
    status = "disabled" if found.disabled else "enabled"
    console.print(f"[bold]{found.name}[/] ({found.kind}, {status}) created by {found.created_by}")
    print_table(
        "roles",
        ["role", "resource", "granted"],
        (
            (b.role, b.resource, f"{b.created_at:%Y-%m-%d} by {b.created_by}")
            for b in found.bindings
        ),
    )


def _set_disabled(name: str, disabled: bool, home: Path | None, json: bool) -> None:
    with _client(home) as st:
        found = st.identities.disable(name) if disabled else st.identities.enable(name)
    if json:
        print_json(found.as_dict())
    else:
        _print_identity(found, "disabled" if disabled else "enabled")


@users_app.command("disable")
def users_disable(
    name: Annotated[str, typer.Argument(help="User or service account.")],
    home: HomeOption = None,
    json: JsonOption = False,
) -> None:
    """Disable an identity: its tokens and JWTs are refused from now on (needs admin)."""
    _set_disabled(name, True, home, json)


@users_app.command("enable")
def users_enable(
    name: Annotated[str, typer.Argument(help="User or service account.")],
    home: HomeOption = None,
    json: JsonOption = False,
) -> None:
    """Enable a disabled identity again (needs admin)."""
    _set_disabled(name, False, home, json)


# -- roles -----------------------------------------------------------------


@roles_app.command("list")
def roles_list(home: HomeOption = None, json: JsonOption = False) -> None:
    """List the roles in force and the scopes each carries."""
    with _client(home) as st:
        roles = st.identities.roles()
    if json:
        print_json([r.as_dict() for r in roles])
        return
    print_table(
        "roles",
        ["role", "scopes", "kind", "description"],
        (
            (
                r.name,
                ", ".join(sorted(r.scopes)),
                ("approver " if r.approver else "") + ("built-in" if r.builtin else "configured"),
                r.description,
            )
            for r in roles
        ),
    )


@roles_app.command("grant")
def roles_grant(
    role: Annotated[str, typer.Argument(help="Role name; see `steward roles list`.")],
    to: Annotated[str, typer.Option("--to", help="User or service account.")],
    on: OnOption = None,
    home: HomeOption = None,
    json: JsonOption = False,
) -> None:
    """Grant a role, everywhere or on one resource (needs admin)."""
    with _client(home) as st:
        binding = st.identities.grant_role(to, role, resource=on)
    if json:
        print_json(binding.as_dict())
    else:
        where = "everywhere" if binding.is_global else f"on {binding.resource}"
        console.print(f"granted {role} to {to} {where}")


@roles_app.command("revoke")
def roles_revoke(
    role: Annotated[str, typer.Argument(help="Role name.")],
    from_: Annotated[str, typer.Option("--from", help="User or service account.")],
    on: OnOption = None,
    home: HomeOption = None,
    json: JsonOption = False,
) -> None:
    """Revoke a role given everywhere, or on the resource named by --on (needs admin)."""
    with _client(home) as st:
        binding = st.identities.revoke_role(from_, role, resource=on)
    if json:
        print_json(binding.as_dict())
    else:
        where = "everywhere" if binding.is_global else f"on {binding.resource}"
        console.print(f"revoked {role} from {from_} {where}")


@roles_app.command("bindings")
def roles_bindings(
    user: Annotated[
        str | None, typer.Option(help="Only this identity.", show_default=False)
    ] = None,
    role: Annotated[str | None, typer.Option(help="Only this role.", show_default=False)] = None,
    on: OnOption = None,
    home: HomeOption = None,
    json: JsonOption = False,
) -> None:
    """List who holds which role where (yours, or everyone's with audit:read)."""
    with _client(home) as st:
        found = st.identities.list_bindings(principal=user, role=role, resource=on)
    if json:
        print_json([b.as_dict() for b in found])
        return
    print_table(
        f"{len(found)} role bindings",
        ["principal", "role", "resource", "granted"],
        (
            (b.principal, b.role, b.resource, f"{b.created_at:%Y-%m-%d} by {b.created_by}")
            for b in found
        ),
    )


# -- tokens ----------------------------------------------------------------


@tokens_app.command("create")
def tokens_create(
    name: Annotated[str, typer.Option("--name", help="What the token is for, e.g. ci-deploy.")],
    scopes: Annotated[
        str,
        typer.Option("--scopes", help="Comma-separated, e.g. models:read,predict:fraud-api."),
    ],
    expires: Annotated[
        str | None,
        typer.Option(
            "--expires",
            help="Lifetime: 90s, 15m, 12h, 30d, 2w (default STEWARD_TOKEN_DEFAULT_EXPIRY, 30d).",
            show_default=False,
        ),
    ] = None,
    for_: Annotated[
        str | None,
        typer.Option("--for", help="Owner (default: you).", show_default=False),
    ] = None,
    home: HomeOption = None,
    json: JsonOption = False,
) -> None:
    """Create a token and print it once: only its hash is kept (needs admin)."""
    with _client(home) as st:
        owner = for_ or st.principal.name
        try:
            info, secret = st.tokens.create_token(
                owner, name=name, scopes=scopes, expires_in=expires
            )
        except NotFoundError as exc:
            if for_ is None:
                raise NotFoundError(
                    f"you ({owner!r}) are not a registered user, so cannot own a token; "
                    "pass --for USER (create one with `steward users create`)"
                ) from exc
            raise
    if json:
        print_json({**info.as_dict(), "token": secret})
        return
    err_console.print(
        f"token {info.id} ({info.name}) for {info.principal}, scopes {', '.join(info.scopes)}, "
        f"expires {info.expires_at:%Y-%m-%d %H:%M} UTC. It is shown once; store it now:"
    )
    console.print(secret, highlight=False, soft_wrap=True)


def _token_row(t: TokenInfo, now: Any) -> tuple[Any, ...]:
    used = f"{t.last_used_at:%Y-%m-%d %H:%M}" if t.last_used_at else "never"
    return (
        t.id,
        t.name,
        t.principal,
        ", ".join(t.scopes),
        t.state(now),
        f"{t.expires_at:%Y-%m-%d %H:%M}",
        used,
    )


@tokens_app.command("list")
def tokens_list(
    for_: Annotated[
        str | None,
        typer.Option("--for", help="Only this owner's (default: yours; every one's for an admin)."),
    ] = None,
    all_: Annotated[
        bool, typer.Option("--all", help="Include expired and revoked tokens.")
    ] = False,
    home: HomeOption = None,
    json: JsonOption = False,
) -> None:
    """List tokens, newest first; never their secrets."""
    with _client(home) as st:
        found = st.tokens.list_tokens(for_, include_inactive=all_)
        now = st.store.clock.now()
    if json:
        print_json([t.as_dict(now) for t in found])
        return
    print_table(
        f"{len(found)} tokens",
        ["id", "name", "owner", "scopes", "state", "expires (UTC)", "last used"],
        (_token_row(t, now) for t in found),
    )


@tokens_app.command("revoke")
def tokens_revoke(
    token_id: Annotated[str, typer.Argument(help="Token id from `steward tokens list`.")],
    home: HomeOption = None,
    json: JsonOption = False,
) -> None:
    """Revoke a token at once (yours, or any with admin)."""
    with _client(home) as st:
        info = st.tokens.revoke_token(token_id)
        now = st.store.clock.now()
    if json:
        print_json(info.as_dict(now))
    else:
        console.print(f"token {info.id} ({info.name}) of {info.principal} revoked")


# -- whoami ----------------------------------------------------------------


def whoami(home: HomeOption = None, json: JsonOption = False) -> None:
    """Show who you act as: name, how you authenticated, roles and scopes."""
    with _client(home) as st:
        principal = st.principal
    view: dict[str, Any] = (
        principal.as_dict()
        if isinstance(principal, AuthenticatedPrincipal)
        else {
            "name": principal.name,
            "kind": principal.kind,
            "roles": sorted(principal.roles),
            "scopes": sorted(principal.scopes),
        }
    )
    if json:
        print_json(view)
        return
    how = view.get("method", principal.kind)
    token_note = f" (token {view['token_name']} {view['token_id']})" if view.get("token_id") else ""
    console.print(f"[bold]{principal.name}[/] via {how}{token_note}")
    console.print(f"roles   {', '.join(view['roles']) or '-'}")
    console.print(f"scopes  {', '.join(view['scopes']) or '-'}")
    if view.get("expires_at"):
        console.print(f"expires {view['expires_at']}")
