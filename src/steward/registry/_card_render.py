"""Model cards as Markdown and as standalone HTML.

Both renderings walk the same blocks (headings, key/value lists, tables, text).
In HTML every value is escaped — including the text people wrote, which is shown
as paragraphs, never interpreted as markup.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["SECTION_TITLES", "render_html", "render_markdown"]

SECTION_TITLES: dict[str, str] = {
    "overview": "Overview",
    "intended_use": "Intended use",
    "out_of_scope_use": "Out-of-scope use",
    "owners": "Owners",
    "risk_tier": "Risk tier",
    "training_data": "Training data",
    "evaluation": "Evaluation",
    "signature": "Signature",
    "limitations": "Limitations",
    "ethical_considerations": "Ethical considerations",
    "caveats": "Caveats and recommendations",
    "lineage": "Lineage",
}

# A block is ("h3", text) | ("pairs", [(key, value)]) | ("table", header, rows) | ("text", text)
Block = tuple[Any, ...]
_NOT_PROVIDED = "Not provided."


def _fmt(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list | tuple):
        return ", ".join(_fmt(v) for v in value)
    return str(value)


def _overview(data: Mapping[str, Any]) -> list[Block]:
    estimator = data.get("estimator") or {}
    pairs = [
        ("Model", data.get("model")),
        ("Version", data.get("version")),
        ("Stage", data.get("stage")),
        ("Flavor", data.get("flavor")),
        ("Estimator", estimator.get("estimator") or estimator.get("class")),
        ("Decision mode", str(data.get("decision_mode", "")).replace("_", " ")),
        ("Registered by", data.get("created_by")),
        ("Registered at", data.get("created_at")),
        ("Compiled to", data.get("compiled") or "—"),
    ]
    blocks: list[Block] = [("pairs", pairs)]
    if data.get("description"):
        blocks.append(("text", data["description"]))
    return blocks


def _training(datasets: Sequence[Mapping[str, Any]]) -> list[Block]:
    blocks: list[Block] = []
    for d in datasets:
        blocks.append(("h3", f"{d.get('role')}: {d.get('name')}"))
        blocks.append(
            (
                "pairs",
                [
                    ("Digest", d.get("digest")),
                    ("Rows", d.get("rows")),
                    ("Columns", d.get("columns")),
                    ("Source", d.get("source_uri")),
                ],
            )
        )
        rows = []
        for c in d.get("profile", []):
            detail = (
                f"min {_fmt(c.get('min'))}, max {_fmt(c.get('max'))}, mean {_fmt(c.get('mean'))}"
                if c.get("kind") == "numeric"
                else f"{_fmt(c.get('distinct'))} distinct; top {_fmt(c.get('top_values'))}"
            )
            rows.append([c.get("name"), c.get("kind"), _fmt(c.get("null_fraction")), detail])
        if rows:
            blocks.append(("table", ["column", "kind", "null fraction", "summary"], rows))
    return blocks


def _evaluation(groups: Mapping[str, Any]) -> list[Block]:
    blocks: list[Block] = []
    for dataset, group in groups.items():
        blocks.append(("h3", f"{dataset}"))
        metrics = group.get("metrics", {})
        if metrics:
            blocks.append(
                ("table", ["metric", "value"], [[k, _fmt(v)] for k, v in metrics.items()])
            )
        for segment, values in group.get("segments", {}).items():
            rows = [[segment, k, _fmt(v)] for k, v in values.items()]
            blocks.append(("table", ["segment", "metric", "value"], rows))
    return blocks


def _signature(sig: Mapping[str, Any]) -> list[Block]:
    rows = []
    for c in sig.get("inputs", []):
        span = f"{_fmt(c.get('min'))} … {_fmt(c.get('max'))}" if c.get("min") is not None else ""
        rows.append(
            [
                c.get("name"),
                c.get("dtype"),
                "yes" if c.get("nullable") else "no",
                span,
                _fmt(c.get("categories")),
            ]
        )
    outputs = ", ".join(f"{o['name']} ({o['dtype']})" for o in sig.get("outputs", []))
    return [
        (
            "pairs",
            [
                ("Input format", sig.get("input_format")),
                ("Outputs", outputs or "—"),
                ("Classes", _fmt(sig.get("classes")) or "—"),
            ],
        ),
        ("table", ["column", "dtype", "nullable", "training range", "categories"], rows),
    ]


def _lineage(data: Mapping[str, Any]) -> list[Block]:
    run = data.get("run") or {}
    code = data.get("code") or {}
    pairs = [
        ("Run", f"{run.get('name')} ({run.get('id')}) in {run.get('experiment')}" if run else "—"),
        ("Datasets", data.get("datasets") or "—"),
        ("Code", f"{code.get('commit')}{' (dirty)' if code.get('dirty') else ''}" if code else "—"),
        ("Environment", data.get("environment") or "—"),
        ("Parent runs", data.get("parent_runs") or "—"),
        ("Imported from", data.get("imported_from") or "—"),
        ("Artifact digest", data.get("artifact_digest")),
    ]
    return [("pairs", pairs)]


def _blocks(key: str, value: Any) -> list[Block]:
    if value in (None, "", [], {}):
        return [("text", _NOT_PROVIDED)]
    if isinstance(value, str):
        return [("text", value)]
    builders: dict[str, Any] = {
        "overview": _overview,
        "training_data": _training,
        "evaluation": _evaluation,
        "signature": _signature,
        "lineage": _lineage,
    }
    if key in builders:
        built: list[Block] = builders[key](value)
        return built
    if key == "owners":
        return [("pairs", [("Owners", value.get("owners") or "—"), ("Team", value.get("team"))])]
    return [("text", _fmt(value))]


def _header(card: Mapping[str, Any]) -> str:
    missing = ", ".join(card["missing"]) or "none"
    return (
        f"Revision {card['revision']} by {card['created_by']} at {card['created_at']} · "
        f"completeness {card['completeness']:.0%} · missing: {missing}"
    )


def _md_cell(value: Any) -> str:
    return _fmt(value).replace("|", "\\|").replace("\n", " ")


def render_markdown(card: Mapping[str, Any]) -> str:
    """Render a card (``ModelCard.as_dict()``) as Markdown."""
    lines = [f"# Model card: {card['ref']}", "", f"_{_header(card)}_", ""]
    for key, title in SECTION_TITLES.items():
        lines += [f"## {title}", ""]
        for block in _blocks(key, card["sections"].get(key)):
            if block[0] == "h3":
                lines += [f"### {block[1]}", ""]
            elif block[0] == "pairs":
                lines += [f"- **{k}**: {_md_cell(v)}" for k, v in block[1]] + [""]
            elif block[0] == "table":
                lines.append("| " + " | ".join(block[1]) + " |")
                lines.append("|" + "---|" * len(block[1]))
                lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block[2]]
                lines.append("")
            else:
                lines += [str(block[1]), ""]
    return "\n".join(lines).rstrip() + "\n"


_STYLE = (
    "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;"
    "color:#1d1d1f}table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ccc;"
    "padding:.25rem .5rem;text-align:left}th{background:#f4f4f4}.meta{color:#555}"
    "dt{font-weight:600}dd{margin:0 0 .25rem 1rem}"
)


def _esc(value: Any) -> str:
    return html.escape(_fmt(value), quote=True)


def _html_block(block: Block) -> str:
    if block[0] == "h3":
        return f"<h3>{_esc(block[1])}</h3>"
    if block[0] == "pairs":
        items = "".join(f"<dt>{_esc(k)}</dt><dd>{_esc(v)}</dd>" for k, v in block[1])
        return f"<dl>{items}</dl>"
    if block[0] == "table":
        head = "".join(f"<th>{_esc(h)}</th>" for h in block[1])
        body = "".join(
            "<tr>" + "".join(f"<td>{_esc(c)}</td>" for c in row) + "</tr>" for row in block[2]
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    paragraphs = [p for p in str(block[1]).split("\n\n") if p.strip()]
    return "".join(f"<p>{html.escape(p).replace(chr(10), '<br>')}</p>" for p in paragraphs)


def render_html(card: Mapping[str, Any]) -> str:
    """Render a card (``ModelCard.as_dict()``) as a standalone, escaped HTML document."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Model card: {_esc(card['ref'])}</title><style>{_STYLE}</style></head><body>",
        f"<h1>Model card: {_esc(card['ref'])}</h1>",
        f'<p class="meta">{_esc(_header(card))}</p>',
    ]
    for key, title in SECTION_TITLES.items():
        parts.append(f'<section id="{key}"><h2>{_esc(title)}</h2>')
        parts += [_html_block(b) for b in _blocks(key, card["sections"].get(key))]
        parts.append("</section>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
