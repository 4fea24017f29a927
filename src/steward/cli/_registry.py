"""``steward models ...``: registered models, versions, aliases, stages, cards, compilation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import typer

from steward.cli._common import HomeOption, JsonOption, connect_client
from steward.cli._lineage import show_lineage
from steward.cli._output import console, print_json, print_table
from steward.core import InvalidInputError, NotFoundError
from steward.registry import ModelVersion, Stage
from steward.sdk import Steward

__all__ = ["models_app"]

models_app = typer.Typer(
    help="Registered models: versions, aliases, stages, model cards, ONNX compilation, lineage.",
    no_args_is_help=True,
)

RefArgument = typer.Argument(..., help="NAME:VERSION, NAME@ALIAS or NAME (latest).")


def _client(home: Path | None) -> Steward:
    return connect_client(home)


def _versions_table(title: str, versions: list[ModelVersion]) -> None:
    keys = sorted({k for v in versions for k in v.metrics})[:3]
    print_table(
        title,
        ["v", "stage", "aliases", "flavor", "onnx", "created", *keys],
        (
            (
                v.version,
                v.stage.value,
                ", ".join(v.aliases),
                v.flavor,
                _onnx_state(v),
                f"{v.created_at:%Y-%m-%d}",
                *(f"{v.metrics[k]:.4g}" if k in v.metrics else "" for k in keys),
            )
            for v in versions
        ),
    )


def _onnx_state(version: ModelVersion) -> str:
    compiled = version.compilations.get("onnx")
    if compiled is None:
        return ""
    return "verified" if compiled.verified else "failed"


@models_app.command("list")
def models_list(home: HomeOption = None, json: JsonOption = False) -> None:
    """List registered models with their latest version and aliases."""
    with _client(home) as st:
        found = st.registry.list_models()
    if json:
        print_json([m.as_dict() for m in found])
        return
    print_table(
        f"{len(found)} models",
        ["name", "latest", "aliases", "risk tier", "owners", "description"],
        (
            (
                m.name,
                m.latest_version,
                ", ".join(f"{a}→{v}" for a, v in m.aliases.items()),
                m.risk_tier.value if m.risk_tier else "",
                ", ".join(m.owners),
                m.description,
            )
            for m in found
        ),
    )


@models_app.command("show")
def models_show(name: str, home: HomeOption = None, json: JsonOption = False) -> None:
    """Show a model's metadata and its versions."""
    with _client(home) as st:
        model = st.registry.get_model(name)
        versions = st.registry.list_versions(name)
    if json:
        print_json({**model.as_dict(), "versions": [v.as_dict() for v in versions]})
        return
    console.print(f"[bold]{model.name}[/]  owners {', '.join(model.owners) or '-'}")
    console.print(
        f"  risk tier {model.risk_tier.value if model.risk_tier else 'not set'}, "
        f"{model.decision_mode.value.replace('_', ' ')}, team {model.team or '-'}"
    )
    for label, text in (("description", model.description), ("intended use", model.intended_use)):
        if text:
            console.print(f"  {label}: {text}")
    _versions_table("versions", versions)


@models_app.command("versions")
def models_versions(
    name: str,
    home: HomeOption = None,
    json: JsonOption = False,
    active: bool = typer.Option(False, "--active", help="Leave archived versions out."),
) -> None:
    """List a model's versions, newest first."""
    with _client(home) as st:
        versions = st.registry.list_versions(name, include_archived=not active)
    if json:
        print_json([v.as_dict() for v in versions])
        return
    _versions_table(f"{name}: {len(versions)} versions", versions)


@models_app.command("version")
def models_version(
    ref: str = RefArgument, home: HomeOption = None, json: JsonOption = False
) -> None:
    """Show one version: source, artifact digest, signature, metrics, compilation."""
    with _client(home) as st:
        version = st.registry.get_version(ref)
    if json:
        print_json(version.as_dict())
        return
    console.print(
        f"[bold]{version.ref}[/]  {version.stage.value}  flavor {version.flavor}  "
        f"aliases {', '.join(version.aliases) or '-'}"
    )
    console.print(f"  artifact sha256:{version.artifact_digest} ({version.artifact_size} bytes)")
    if version.purged_at is not None:
        console.print(
            f"  artifacts deleted on {version.purged_at.date().isoformat()} by retention rule "
            f"'{version.purged_by_rule}'; the record is kept"
        )
    console.print(f"  source {version.source.get('kind')} run {version.run_id or '-'}")
    if version.stage_reason:
        console.print(f"  stage reason: {version.stage_reason}")
    if version.signature is not None:
        print_table(
            f"signature ({version.signature.input_format})",
            ["column", "dtype", "nullable", "min", "max"],
            ((c.name, c.dtype, c.nullable, c.min, c.max) for c in version.signature.inputs),
        )
    if version.metrics:
        print_table("metrics", ["key", "value"], sorted(version.metrics.items()))


def _update_model(name: str, values: dict[str, Any], home: Path | None, json: bool) -> None:
    with _client(home) as st:
        model = st.registry.update_model(name, **values)
    if json:
        print_json(model.as_dict())
    else:
        console.print(f"model {model.name} updated: {', '.join(values) or 'nothing to change'}")


@models_app.command("update")
def models_update(
    name: str,
    home: HomeOption = None,
    json: JsonOption = False,
    description: str | None = typer.Option(None, help="What the model does."),
    owner: list[str] = typer.Option([], "--owner", help="An accountable owner (repeatable)."),
    team: str | None = typer.Option(None, help="Owning team."),
    risk_tier: str | None = typer.Option(None, help="low, medium, high or critical."),
    intended_use: str | None = typer.Option(None, help="What the model is for."),
    decision_mode: str | None = typer.Option(
        None, help="automation (it decides) or decision_support (a person decides)."
    ),
) -> None:
    """Change a model's description, owners, team, risk tier, intended use or decision mode."""
    values: dict[str, Any] = {
        "description": description,
        "owners": owner or None,
        "team": team,
        "risk_tier": risk_tier,
        "intended_use": intended_use,
        "decision_mode": decision_mode,
    }
    _update_model(name, {k: v for k, v in values.items() if v is not None}, home, json)


@models_app.command("alias")
def models_alias(
    ref: str = RefArgument,
    alias: str = typer.Argument(..., help="e.g. champion, challenger."),
    home: HomeOption = None,
    json: JsonOption = False,
    delete: bool = typer.Option(False, "--delete", help="Remove the alias from the model."),
) -> None:
    """Point an alias at a version (moved atomically), or remove it with --delete."""
    with _client(home) as st:
        if delete:
            name = ref.split(":")[0].split("@")[0]
            st.registry.delete_alias(name, alias)
            result: dict[str, Any] = {"model": name, "alias": alias, "deleted": True}
        else:
            version = st.registry.set_alias(ref, alias)
            result = {"model": version.model, "alias": alias, "version": version.version}
    if json:
        print_json(result)
    elif delete:
        console.print(f"alias {alias} removed from {result['model']}")
    else:
        console.print(f"{result['model']}@{alias} → version {result['version']}")


@models_app.command("stage")
def models_stage(
    ref: str = RefArgument,
    stage: str = typer.Argument(..., help="registered, staging, production or archived."),
    home: HomeOption = None,
    json: JsonOption = False,
    reason: str | None = typer.Option(None, "--reason", "-r", help="Why (kept in the record)."),
    alias: list[str] = typer.Option([], "--alias", help="Move this alias here too (repeatable)."),
) -> None:
    """Move a version to another stage (archived is final); aliases move in the same step."""
    with _client(home) as st:
        version = st.registry.transition(ref, stage, reason=reason, aliases=alias)
    if json:
        print_json(version.as_dict())
    else:
        console.print(f"{version.ref} is now in {version.stage.value}")


@models_app.command("archive")
def models_archive(
    ref: str = RefArgument,
    home: HomeOption = None,
    json: JsonOption = False,
    reason: str = typer.Option(..., "--reason", "-r", help="Why it is retired (required)."),
    successor: int | None = typer.Option(
        None, "--successor", help="The version replacing it; its aliases move there."
    ),
) -> None:
    """Archive a version: still loadable for audit, never deployable again."""
    with _client(home) as st:
        version = st.registry.transition(ref, Stage.ARCHIVED, reason=reason, successor=successor)
    if json:
        print_json(version.as_dict())
    else:
        follow = f"; succeeded by version {successor}" if successor else ""
        console.print(f"{version.ref} archived{follow}")


def _edits(pairs: list[str]) -> dict[str, str]:
    edits = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidInputError(
                f"--set takes SECTION=TEXT or SECTION=@FILE, got {pair!r} "
                "(e.g. --set limitations=@limits.md)"
            )
        if value.startswith("@"):
            path = Path(value[1:])
            if not path.is_file():
                raise NotFoundError(f"--set {key}: file {str(path)!r} does not exist")
            value = path.read_text(encoding="utf-8")
        edits[key.strip()] = value
    return edits


@models_app.command("card")
def models_card(
    ref: str = RefArgument,
    home: HomeOption = None,
    json: JsonOption = False,
    set_: list[str] = typer.Option(
        [], "--set", help="SECTION=TEXT or SECTION=@FILE.md: edit a section (repeatable)."
    ),
    refresh: bool = typer.Option(
        False, "--refresh", help="Store a new revision with the generated sections recomputed."
    ),
    revision: int | None = typer.Option(None, help="Show an earlier revision."),
    html: Path | None = typer.Option(None, "--html", help="Write the card as HTML to this file."),
    markdown: Path | None = typer.Option(
        None, "--markdown", help="Write the card as Markdown to this file."
    ),
) -> None:
    """Show a version's model card, edit its sections, or write it as Markdown/HTML."""
    edits = _edits(set_)
    with _client(home) as st:
        if edits or refresh:
            card = st.registry.update_card(ref, edits)
        else:
            card = st.registry.card(ref, revision=revision)
    if html is not None:
        html.write_text(card.to_html(), encoding="utf-8")
    if markdown is not None:
        markdown.write_text(card.to_markdown(), encoding="utf-8")
    if json:
        print_json(card.as_dict())
        return
    if html is None and markdown is None:
        console.print(card.to_markdown(), markup=False, highlight=False)
    missing = ", ".join(card.missing) or "none"
    written = " ".join(f"→ {p}" for p in (html, markdown) if p is not None)
    console.print(
        f"{card.ref} card revision {card.revision}: completeness {card.completeness:.0%}, "
        f"missing: {missing} {written}".rstrip(),
        markup=False,
    )


def _read_sample(path: Path) -> pa.Table:
    if not path.is_file():
        raise NotFoundError(f"sample file {str(path)!r} does not exist")
    try:
        if path.suffix.lower() == ".csv":
            return pa_csv.read_csv(path)
        return pq.read_table(path)
    except pa.ArrowInvalid as exc:
        raise InvalidInputError(
            f"cannot read sample {str(path)!r} (Parquet or CSV): {exc}"
        ) from None


@models_app.command("compile")
def models_compile(
    ref: str = RefArgument,
    home: HomeOption = None,
    json: JsonOption = False,
    sample: Path | None = typer.Option(
        None, "--sample", help="Parquet/CSV rows to verify parity on (default: the input example)."
    ),
    atol: float = typer.Option(1e-5, min=0, help="Largest absolute difference allowed."),
) -> None:
    """Compile a scikit-learn version to ONNX and verify parity; exit 1 when parity fails."""
    table = _read_sample(sample) if sample is not None else None
    with _client(home) as st:
        with console.status(f"compiling {ref} to ONNX and checking parity…"):
            report = st.registry.compile(ref, sample=table, atol=atol)
    if json:
        print_json(report.to_dict())
    else:
        console.print(report.summary(), markup=False)
    if not report.passed:
        raise typer.Exit(1)


@models_app.command("lineage")
def models_lineage(
    ref: str = RefArgument, home: HomeOption = None, json: JsonOption = False
) -> None:
    """Draw a version's lineage: run, datasets, code, environment, parent runs."""
    show_lineage(ref, home=home, json=json)
