"""``steward lineage ...`` and ``steward import mlflow``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape
from rich.tree import Tree

from steward.cli._common import HomeOption, JsonOption, connect_client
from steward.cli._output import console, print_json, print_table
from steward.registry import LineageGraph

__all__ = ["import_app", "lineage_app", "render_lineage", "show_lineage"]

lineage_app = typer.Typer(
    help="Where a model version came from, and which versions used a dataset.",
    no_args_is_help=True,
)
import_app = typer.Typer(
    help="Bring models from other tools into the registry.", no_args_is_help=True
)

_STYLE = {
    "model_version": "bold",
    "run": "cyan",
    "dataset": "green",
    "code": "magenta",
    "environment": "yellow",
    "external_run": "blue",
    "compiled": "bright_black",
}


def render_lineage(graph: LineageGraph) -> Tree:
    """Draw the graph as a Rich tree from its root; a node met twice is drawn once."""
    root = graph.nodes[graph.root]
    tree = Tree(f"[bold]{escape(root.label)}[/]")
    seen = {root.key}

    def grow(branch: Tree, key: str) -> None:
        for edge, node in graph.children(key):
            detail = ", ".join(f"{k}={v}" for k, v in edge.attributes.items() if v is not None)
            relation = f"{edge.relation}({detail})" if detail else edge.relation
            style = _STYLE.get(node.kind, "")
            label = (
                f"[dim]{escape(relation)}[/] [{style}]{escape(node.label)}[/]"
                if style
                else (f"[dim]{escape(relation)}[/] {escape(node.label)}")
            )
            extra = node.attributes.get("digest") if node.kind == "dataset" else None
            if extra:
                label += f" [dim]{escape(str(extra)[:23])}…[/]"
            child = branch.add(label)
            if node.key not in seen:
                seen.add(node.key)
                grow(child, node.key)

    grow(tree, root.key)
    return tree


def show_lineage(ref: str, *, home: Path | None, json: bool) -> None:
    """Print a version's lineage as a tree, or its graph as JSON."""
    with connect_client(home) as st:
        graph = st.registry.lineage(ref)
    if json:
        print_json(graph.as_dict())
    else:
        console.print(render_lineage(graph))


@lineage_app.command("show")
def lineage_show(
    ref: str = typer.Argument(..., help="NAME:VERSION, NAME@ALIAS or NAME (latest)."),
    home: HomeOption = None,
    json: JsonOption = False,
) -> None:
    """Draw a version's lineage: run, datasets (digests, roles), code, environment, parents."""
    show_lineage(ref, home=home, json=json)


@lineage_app.command("dataset")
def lineage_dataset(
    digest: str = typer.Argument(..., help="The dataset digest (sha256:...)."),
    home: HomeOption = None,
    json: JsonOption = False,
) -> None:
    """List the model versions trained on a dataset with this digest."""
    with connect_client(home) as st:
        versions = st.registry.used_by_dataset(digest)
    if json:
        print_json([v.as_dict() for v in versions])
        return
    print_table(
        f"{len(versions)} versions used {digest[:23]}…",
        ["version", "stage", "run", "created"],
        ((v.ref, v.stage.value, v.run_id, f"{v.created_at:%Y-%m-%d %H:%M}") for v in versions),
    )


@import_app.command("mlflow")
def import_mlflow(
    path: Path = typer.Argument(..., help="An MLflow model directory (holding an MLmodel file)."),
    name: str = typer.Option(..., "--name", help="Register it under this model name."),
    unsafe: bool = typer.Option(
        False, "--unsafe", help="Allow unpickling a pickled sklearn model (runs its code)."
    ),
    home: HomeOption = None,
    json: JsonOption = False,
) -> None:
    """Import an MLflow sklearn or onnx model (without mlflow) as a new version."""
    with connect_client(home) as st:
        version = st.registry.import_mlflow(path, name=name, unsafe=unsafe)
    if json:
        print_json(version.as_dict())
        return
    run = version.source.get("run_id") or "-"
    console.print(f"imported {path} as {version.ref} ({version.flavor}); MLflow run {run}")
