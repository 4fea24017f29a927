"""``steward deployments ...``: create, update, roll back and inspect deployments."""

from __future__ import annotations

import json as jsonlib
from pathlib import Path
from typing import Annotated, Any

import typer

from steward.cli._canary import canary_app
from steward.cli._common import HomeOption, JsonOption, connect_client
from steward.cli._output import console, print_json, print_table
from steward.core import InvalidInputError
from steward.registry import ModelRef
from steward.sdk import Steward
from steward.serving import Deployment, DeploymentRevision, DeploymentService, RoutingSpec, Variant

__all__ = ["deployments_app"]

deployments_app = typer.Typer(
    help=(
        "Deployments: named routing specs (variants, weights, shadows, settings) served by "
        "`steward gateway`. Every change is a new, audited revision."
    ),
    no_args_is_help=True,
)
deployments_app.add_typer(canary_app, name="canary")

ModelOption = Annotated[
    list[str] | None,
    typer.Option(
        "--model",
        "-m",
        help=(
            "A primary variant: REF or VARIANT=REF (REF: fraud@champion, fraud:4). Repeat for "
            "a split; aliases are resolved to versions now."
        ),
        show_default=False,
    ),
]
ShadowOption = Annotated[
    list[str] | None,
    typer.Option(
        "--shadow",
        help="A shadow variant (REF or VARIANT=REF): gets mirrored traffic, never answers.",
        show_default=False,
    ),
]
WeightsOption = Annotated[
    str | None,
    typer.Option(
        "--weights",
        help="Weights of the --model variants, in order, e.g. 90,10.",
        show_default=False,
    ),
]
StrategyOption = Annotated[
    str | None,
    typer.Option(
        "--strategy", help="weighted (default), sticky, bandit or canary.", show_default=False
    ),
]
StickyOption = Annotated[
    str | None,
    typer.Option(
        "--sticky-header",
        help="With --strategy sticky: the request header whose value keeps a user on one variant.",
        show_default=False,
    ),
]
SettingsOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        help=(
            "A setting KEY=VALUE (VALUE in JSON): timeout_ms, variant_timeout_ms, "
            "max_batch_size, max_wait_ms, cache, cache_ttl_s, fallback, log_mode, "
            "bandit_policy, bandit_epsilon, feature_service, entity_keys. "
            "E.g. --set timeout_ms=200 "
            '--set \'fallback={"kind":"constant","value":0}\''
        ),
        show_default=False,
    ),
]
ReasonOption = Annotated[
    str | None, typer.Option("--reason", help="Why, for the audit trail.", show_default=False)
]


def _service(st: Steward) -> DeploymentService:
    return DeploymentService(st.store, st.registry)


def _client(home: Path | None) -> Steward:
    return connect_client(home)


def _variant(text: str, role: str, weight: float) -> Variant:
    name, sep, ref = text.partition("=")
    if not sep:
        ref = text
        parsed = ModelRef.parse(text)
        if parsed.alias is not None:
            name = parsed.alias
        elif parsed.version is not None:
            name = f"{parsed.name}-{parsed.version}"
        else:
            name = parsed.name
        if role == "shadow":
            name = f"shadow-{name}"
    return Variant(name, ref, role, weight)  # type: ignore[arg-type]


def _spec(
    models: list[str],
    shadows: list[str],
    weights: str | None,
    strategy: str | None,
    sticky: str | None,
) -> RoutingSpec:
    parsed: list[float] = [1.0] * len(models)
    if weights is not None:
        try:
            parsed = [float(w) for w in weights.split(",")]
        except ValueError:
            raise InvalidInputError(f"--weights {weights!r} must be numbers like 90,10") from None
        if len(parsed) != len(models):
            raise InvalidInputError(
                f"--weights gives {len(parsed)} weights for {len(models)} --model variants; "
                "give one per --model, in order"
            )
    variants = [_variant(m, "primary", w) for m, w in zip(models, parsed, strict=True)]
    variants += [_variant(s, "shadow", 0.0) for s in shadows]
    data: dict[str, Any] = {"variants": [v.to_dict() for v in variants]}
    if strategy is not None:
        data["strategy"] = strategy
    if sticky is not None:
        data["sticky_key"] = {"source": "header", "name": sticky}
    return RoutingSpec.from_dict(data)


def _settings(items: list[str] | None) -> dict[str, Any] | None:
    if not items:
        return None
    values: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep:
            raise InvalidInputError(f"--set {item!r} must be KEY=VALUE, e.g. timeout_ms=200")
        try:
            values[key.strip()] = jsonlib.loads(raw)
        except jsonlib.JSONDecodeError:
            values[key.strip()] = raw  # a bare word: log_mode=async
    return values


def _print(dep: Deployment, verb: str) -> None:
    console.print(f"deployment {dep.name} {verb}: revision {dep.revision}")
    _print_revision(dep.latest)


def _print_revision(rev: DeploymentRevision) -> None:
    print_table(
        f"{rev.deployment} revision {rev.revision} ({rev.spec.strategy}"
        f"{', production' if rev.production else ''})",
        ["variant", "role", "weight", "model", "requested"],
        (
            (v.name, v.role, f"{v.weight:g}", v.model, rev.requested.get(v.name, ""))
            for v in rev.spec.variants
        ),
    )
    settings = ", ".join(f"{k}={v}" for k, v in rev.settings.to_dict().items())
    console.print(f"  settings: {settings}")


@deployments_app.command("create")
def create(
    name: str,
    model: ModelOption = None,
    shadow: ShadowOption = None,
    weights: WeightsOption = None,
    strategy: StrategyOption = None,
    sticky_header: StickyOption = None,
    setting: SettingsOption = None,
    production: Annotated[
        bool,
        typer.Option(
            "--production", help="Serve production traffic: only production-stage versions."
        ),
    ] = False,
    reason: ReasonOption = None,
    home: HomeOption = None,
    json: JsonOption = False,
) -> None:
    """Create a deployment: steward deployments create fraud-api --model fraud@champion."""
    if not model:
        raise InvalidInputError("give at least one --model REF (e.g. --model fraud@champion)")
    spec = _spec(model, shadow or [], weights, strategy, sticky_header)
    with _client(home) as st:
        dep = _service(st).create(
            name, spec, settings=_settings(setting), production=production, reason=reason
        )
    if json:
        print_json(dep.as_dict())
    else:
        _print(dep, "created")


@deployments_app.command("update")
def update(
    name: str,
    model: ModelOption = None,
    shadow: ShadowOption = None,
    weights: WeightsOption = None,
    strategy: StrategyOption = None,
    sticky_header: StickyOption = None,
    setting: SettingsOption = None,
    production: Annotated[
        bool | None,
        typer.Option(
            "--production/--no-production",
            help="Mark (or unmark) the deployment as production.",
            show_default=False,
        ),
    ] = None,
    reason: ReasonOption = None,
    home: HomeOption = None,
    json: JsonOption = False,
) -> None:
    """Make a new revision: new variants (--model/--shadow) and/or settings (--set)."""
    spec = _spec(model, shadow or [], weights, strategy, sticky_header) if model else None
    if spec is None and (shadow or weights or strategy or sticky_header):
        raise InvalidInputError(
            "--shadow, --weights, --strategy and --sticky-header describe a new spec: give the "
            "primaries with --model as well"
        )
    with _client(home) as st:
        dep = _service(st).update(
            name, spec, settings=_settings(setting), production=production, reason=reason
        )
    if json:
        print_json(dep.as_dict())
    else:
        _print(dep, "updated")


@deployments_app.command("rollback")
def rollback(
    name: str,
    revision: Annotated[int, typer.Argument(help="The revision to go back to.")],
    reason: ReasonOption = None,
    home: HomeOption = None,
    json: JsonOption = False,
) -> None:
    """Go back to an earlier revision (as a new revision); gateways switch within ~1 s."""
    with _client(home) as st:
        dep = _service(st).rollback(name, revision, reason=reason)
    if json:
        print_json(dep.as_dict())
    else:
        _print(dep, f"rolled back to revision {revision}")


@deployments_app.command("show")
def show(name: str, home: HomeOption = None, json: JsonOption = False) -> None:
    """Show a deployment's latest revision."""
    with _client(home) as st:
        dep = _service(st).get(name)
    if json:
        print_json(dep.as_dict())
    else:
        _print(dep, f"(created by {dep.created_by} {dep.created_at:%Y-%m-%d %H:%M})")


@deployments_app.command("list")
def list_(home: HomeOption = None, json: JsonOption = False) -> None:
    """List deployments with their latest revision."""
    with _client(home) as st:
        found = _service(st).list_deployments()
    if json:
        print_json([d.as_dict() for d in found])
        return
    print_table(
        f"{len(found)} deployments",
        ["name", "revision", "production", "strategy", "variants", "updated"],
        (
            (
                d.name,
                d.revision,
                "yes" if d.production else "",
                d.latest.spec.strategy,
                ", ".join(f"{v.name}={v.model}" for v in d.latest.spec.variants),
                f"{d.updated_at:%Y-%m-%d %H:%M}",
            )
            for d in found
        ),
    )


@deployments_app.command("history")
def history(name: str, home: HomeOption = None, json: JsonOption = False) -> None:
    """List every revision of a deployment, oldest first."""
    with _client(home) as st:
        revisions = _service(st).history(name)
    if json:
        print_json([r.as_dict() for r in revisions])
        return
    print_table(
        f"{name}: {len(revisions)} revisions",
        ["revision", "by", "at", "variants", "rollback of", "reason"],
        (
            (
                r.revision,
                r.created_by,
                f"{r.created_at:%Y-%m-%d %H:%M:%S}",
                ", ".join(f"{v.name}={v.model}" for v in r.spec.variants),
                r.rollback_of or "",
                r.reason or "",
            )
            for r in revisions
        ),
    )
