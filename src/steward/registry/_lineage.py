"""Lineage: the graph from a model version back to its run, data, code and environment.

Nodes are keyed ``KIND:ID`` (``model_version:fraud:3``, ``run:0192...``,
``dataset:sha256:ab...``, ``code:4f1c...``, ``environment:sha256:...``,
``external_run:mlflow:...``, ``compiled:onnx:...``) and carry attributes; edges
carry a relation, from the newer thing to what it came from::

    model_version:fraud:3 ──trained_by──▶ run:R ──used_dataset(role=train)──▶ dataset:D
                                           run:R ──from_code──▶ code:C
                                           run:R ──ran_in──▶ environment:E
                                           run:R ──child_of──▶ run:P

Later contexts add their own nodes (deployments, predictions) with
:meth:`LineageGraph.add_node` and :meth:`LineageGraph.add_edge`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from steward.core import InvalidInputError, NotFoundError
from steward.registry._models import ModelVersion
from steward.tracking import Run, TrackingService

__all__ = ["LineageEdge", "LineageGraph", "LineageNode", "build_lineage", "run_lineage"]

MAX_PARENT_DEPTH = 20


@dataclass(frozen=True, slots=True)
class LineageNode:
    """One thing in the graph: its kind, id, a short label and attributes."""

    kind: str
    id: str
    label: str
    attributes: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        """The node's key in the graph, ``KIND:ID``."""
        return f"{self.kind}:{self.id}"

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly view."""
        return {
            "key": self.key,
            "kind": self.kind,
            "id": self.id,
            "label": self.label,
            "attributes": self.attributes,
        }


@dataclass(frozen=True, slots=True)
class LineageEdge:
    """A relation from one node to another (``trained_by``, ``used_dataset``, ...)."""

    source: str
    target: str
    relation: str
    attributes: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly view."""
        return {
            "source": self.source,
            "target": self.target,
            "relation": self.relation,
            "attributes": self.attributes,
        }


@dataclass
class LineageGraph:
    """A directed graph of where things came from, rooted at one node."""

    root: str
    nodes: dict[str, LineageNode] = field(default_factory=dict)
    edges: list[LineageEdge] = field(default_factory=list)

    def add_node(self, node: LineageNode) -> str:
        """Add a node (a node already present is kept); return its key."""
        self.nodes.setdefault(node.key, node)
        return node.key

    def add_edge(self, source: str, target: str, relation: str, **attributes: Any) -> LineageEdge:
        """Add an edge between two nodes already in the graph.

        Raises:
            NotFoundError: either end is not in the graph.
        """
        for key in (source, target):
            if key not in self.nodes:
                raise NotFoundError(f"lineage node {key!r} is not in the graph; add it first")
        edge = LineageEdge(source, target, relation, dict(attributes))
        if edge not in self.edges:
            self.edges.append(edge)
        return edge

    def children(self, key: str) -> Iterator[tuple[LineageEdge, LineageNode]]:
        """Yield the edges leaving ``key`` with the nodes they reach, in insertion order."""
        for edge in self.edges:
            if edge.source == key:
                yield edge, self.nodes[edge.target]

    def merge(self, other: LineageGraph) -> None:
        """Add every node and edge of ``other`` (nodes already present are kept)."""
        for node in other.nodes.values():
            self.add_node(node)
        for edge in other.edges:
            if edge not in self.edges:
                self.edges.append(edge)

    def find(self, kind: str) -> list[LineageNode]:
        """Return the nodes of one kind."""
        return [n for n in self.nodes.values() if n.kind == kind]

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-friendly view: root, nodes and edges."""
        return {
            "format": "steward.lineage/1",
            "root": self.root,
            "nodes": [n.as_dict() for n in self.nodes.values()],
            "edges": [e.as_dict() for e in self.edges],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LineageGraph:
        """Rebuild a graph from :meth:`as_dict` output (e.g. one received over HTTP).

        Raises:
            InvalidInputError: the document is not a lineage graph.
        """
        try:
            graph = cls(str(data["root"]))
            for node in data["nodes"]:
                graph.add_node(
                    LineageNode(
                        str(node["kind"]),
                        str(node["id"]),
                        str(node["label"]),
                        dict(node.get("attributes", {})),
                    )
                )
            for edge in data["edges"]:
                graph.add_edge(
                    str(edge["source"]),
                    str(edge["target"]),
                    str(edge["relation"]),
                    **dict(edge.get("attributes", {})),
                )
        except (KeyError, TypeError, NotFoundError) as exc:
            raise InvalidInputError(f"not a lineage graph: {exc}") from None
        if graph.root not in graph.nodes:
            raise InvalidInputError(f"lineage graph root {graph.root!r} is not among its nodes")
        return graph


def _run_node(run: Run) -> LineageNode:
    return LineageNode(
        "run",
        run.id,
        f"run {run.name} ({run.experiment_name})",
        {
            "experiment": run.experiment_name,
            "name": run.name,
            "status": run.status.value,
            "user": run.user,
            "start_time": run.start_time.isoformat(),
            "seed": run.seed,
            "params": run.params,
        },
    )


def _add_run(graph: LineageGraph, tracking: TrackingService, run: Run) -> str:
    key = graph.add_node(_run_node(run))
    for dataset in tracking.run_datasets(run.id):
        node = LineageNode(
            "dataset",
            dataset.digest,
            f"{dataset.name} ({dataset.num_rows} rows)",
            {
                "name": dataset.name,
                "digest": dataset.digest,
                "source_uri": dataset.source_uri,
                "rows": dataset.num_rows,
                "columns": dataset.num_columns,
            },
        )
        graph.add_edge(key, graph.add_node(node), "used_dataset", role=dataset.role)
    if run.environment_digest:
        environment = tracking.get_environment(run.environment_digest)
        env_key = graph.add_node(
            LineageNode(
                "environment",
                run.environment_digest,
                f"Python {environment.get('python_version', '?')} on "
                f"{environment.get('machine', '?')}",
                {
                    "python_version": environment.get("python_version"),
                    "platform": environment.get("platform"),
                    "packages_digest": environment.get("packages_digest"),
                    "lockfile_digest": environment.get("lockfile_digest"),
                },
            )
        )
        graph.add_edge(key, env_key, "ran_in")
        commit = environment.get("git_commit")
        if commit:
            code_key = graph.add_node(
                LineageNode(
                    "code",
                    str(commit),
                    f"commit {str(commit)[:12]}"
                    + (" (dirty)" if environment.get("git_dirty") else ""),
                    {
                        "commit": commit,
                        "dirty": environment.get("git_dirty"),
                        "branch": environment.get("git_branch"),
                        "remote": environment.get("git_remote"),
                    },
                )
            )
            graph.add_edge(key, code_key, "from_code")
    return key


def run_lineage(tracking: TrackingService, run_id: str) -> LineageGraph:
    """Return the graph of one run: its datasets, environment, code and parent runs.

    Raises:
        NotFoundError: the run does not exist.
    """
    run = tracking.get_run(run_id)
    graph = LineageGraph(_run_node(run).key)
    child = _add_run(graph, tracking, run)
    for _ in range(MAX_PARENT_DEPTH):
        if run.parent_run_id is None:
            break
        run = tracking.get_run(run.parent_run_id)
        parent = _add_run(graph, tracking, run)
        graph.add_edge(child, parent, "child_of")
        child = parent
    return graph


def build_lineage(version: ModelVersion, run_graph: LineageGraph | None = None) -> LineageGraph:
    """Build the lineage graph of one version around the graph of the run that trained it."""
    root = LineageNode(
        "model_version",
        version.ref,
        f"{version.ref} ({version.flavor}, {version.stage.value})",
        {
            "model": version.model,
            "version": version.version,
            "flavor": version.flavor,
            "artifact_digest": version.artifact_digest,
            "stage": version.stage.value,
            "created_by": version.created_by,
            "created_at": version.created_at.isoformat(),
        },
    )
    graph = LineageGraph(root.key)
    graph.add_node(root)
    if run_graph is not None:
        graph.merge(run_graph)
        graph.add_edge(root.key, run_graph.root, "trained_by")
    for target, compilation in version.compilations.items():
        if compilation.verified and compilation.artifact_digest:
            node = LineageNode(
                "compiled",
                f"{target}:{compilation.artifact_digest}",
                f"{target} ({compilation.converter}, parity verified)",
                {
                    "target": target,
                    "digest": compilation.artifact_digest,
                    "opset": compilation.opset,
                },
            )
            graph.add_edge(root.key, graph.add_node(node), "compiled_to")
    external = version.source.get("run_id") if version.source.get("kind") == "mlflow" else None
    if external:
        node = LineageNode(
            "external_run",
            f"mlflow:{external}",
            f"MLflow run {external}",
            {k: v for k, v in version.source.items() if k != "source_files"},
        )
        graph.add_edge(root.key, graph.add_node(node), "imported_from")
    return graph
