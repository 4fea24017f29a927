"""Markdown documentation generated from the definitions: one page per view and an index.

The pages are rebuilt after every ``apply`` under ``STEWARD_HOME/features/docs``;
pages of removed views are deleted, so the folder always mirrors the registry.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from steward.features._definitions import Definitions, FeatureView, FileSource, window_label

__all__ = ["render_view", "write_docs"]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ") or " "


def _duration(seconds: object) -> str:
    if not isinstance(seconds, int | float):
        return "none"
    return window_label(timedelta(seconds=seconds))


def render_view(definitions: Definitions, view: FeatureView, version: int | None = None) -> str:
    """Return the Markdown page of one view."""
    raw = view.to_dict()
    source = view.source
    lines = [f"# {view.name}", ""]
    if view.description:
        lines += [view.description, ""]
    entities = ", ".join(f"`{e.name}` ({', '.join(e.join_keys)})" for e in view.entities)
    location = source.path if isinstance(source, FileSource) else "SQL query"
    lines += [
        f"- **Kind**: {'window aggregates' if view.is_window else 'features'}",
        f"- **Entities**: {entities}",
        f"- **Source**: `{source.name}` ({location}), event time `{source.timestamp_field}`"
        + (
            f", created time `{source.created_timestamp_field}`"
            if source.created_timestamp_field
            else ""
        ),
        f"- **TTL**: {_duration(raw['ttl_seconds'])}",
        f"- **Freshness SLA**: {_duration(raw['freshness_sla_seconds'])}",
        f"- **Owner**: {view.owner or 'unassigned'}",
    ]
    if view.tags:
        lines.append("- **Tags**: " + ", ".join(f"`{k}={v}`" for k, v in sorted(view.tags.items())))
    if version is not None:
        lines.append(f"- **Definitions version**: {version}")
    lines.append("")
    if view.is_window:
        lines += [
            "| feature | function | column | window |",
            "|---|---|---|---|",
            *(
                f"| `{a.name}` | {a.function} | `{a.column}` | {window_label(a.window)} |"
                for a in view.aggregations
            ),
        ]
    else:
        lines += [
            "| feature | dtype | PII | description | tags |",
            "|---|---|---|---|---|",
            *(
                f"| `{f.name}` | {f.dtype} | {'yes' if f.pii else 'no'} | "
                f"{_cell(f.description)} | "
                f"{_cell(', '.join(f'{k}={v}' for k, v in sorted(f.tags.items())))} |"
                for f in view.features
            ),
        ]
    if not isinstance(source, FileSource):
        lines += ["", "Source query:", "", "```sql", source.query.strip(), "```"]
    services = sorted(
        s.name for s in definitions.services.values() if any(r.view == view.name for r in s.refs)
    )
    if services:
        lines += ["", "Used by feature services: " + ", ".join(f"`{s}`" for s in services)]
    pii = [f.name for f in view.features if f.pii]
    if pii:
        lines += ["", f"Reading {', '.join(pii)} needs the `features:read:pii` scope."]
    return "\n".join(lines) + "\n"


def write_docs(definitions: Definitions, folder: Path, version: int | None = None) -> list[Path]:
    """Write one page per view plus ``index.md``; delete pages of views no longer defined."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name, view in sorted(definitions.views.items()):
        page = folder / f"{name}.md"
        page.write_text(render_view(definitions, view, version), encoding="utf-8")
        written.append(page)
    for stale in folder.glob("*.md"):
        if stale.name != "index.md" and stale.stem not in definitions.views:
            stale.unlink()
    index = ["# Feature views", ""]
    if version is not None:
        index += [f"Definitions version {version}.", ""]
    index += [
        f"- [{name}]({name}.md): {view.description or 'no description'}"
        for name, view in sorted(definitions.views.items())
    ]
    (folder / "index.md").write_text("\n".join(index) + "\n", encoding="utf-8")
    return written
