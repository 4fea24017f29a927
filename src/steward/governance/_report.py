"""The governance report of one model version: every record a reviewer asks for, in one document.

It assembles the model card, a lineage summary, every promotion request with its
check evidence and each approver's decision and comment, the stage transitions,
and the audit events about the version, its model and its requests. Markdown for
tickets and repositories; HTML as one standalone page in which every value is
escaped (names, comments and card text are user input).
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from steward.governance._promotions import PromotionRequest, PromotionService
from steward.registry import (
    LineageGraph,
    ModelCard,
    ModelRef,
    ModelVersion,
    RegisteredModel,
    Transition,
)
from steward.store import AuditEvent, Store

__all__ = ["VersionReport", "build_report"]

AUDIT_LIMIT = 500


@dataclass(frozen=True)
class VersionReport:
    """Everything governance knows about one version, ready to render."""

    generated_at: datetime
    model: RegisteredModel
    version: ModelVersion
    card: ModelCard
    lineage: LineageGraph
    requests: tuple[PromotionRequest, ...]
    transitions: tuple[Transition, ...]
    audit: tuple[AuditEvent, ...]

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly view."""
        return {
            "ref": self.version.ref,
            "generated_at": self.generated_at.isoformat(),
            "model": self.model.as_dict(),
            "version": self.version.as_dict(),
            "card": self.card.as_dict(),
            "lineage": self.lineage.as_dict(),
            "requests": [r.as_dict() for r in self.requests],
            "transitions": [t.as_dict() for t in self.transitions],
            "audit": [e.as_dict() for e in self.audit],
        }

    def to_markdown(self) -> str:
        """Render the report as Markdown (table cells have ``|`` and newlines escaped)."""
        return "\n".join(_markdown(self)) + "\n"

    def to_html(self) -> str:
        """Render the report as one standalone HTML page, every value escaped."""
        return _html(self)


def build_report(store: Store, promotions: PromotionService, ref: str | ModelRef) -> VersionReport:
    """Assemble the report of one version (``fraud:3``, ``fraud@champion``).

    Raises:
        NotFoundError: no such model or version.
        PermissionDeniedError: the caller lacks ``models:read`` on the model or ``audit:read``.
    """
    registry = promotions.registry
    version = registry.get_version(ref)
    store.authorize("models:read", resource=f"model:{version.model}")
    store.authorize("audit:read", resource=f"model:{version.model}")
    requests = [
        r
        for r in promotions.list_requests(model=version.model, limit=10_000)
        if r.version == version.version
    ]
    objects = [version.ref, version.model, version.id, *(r.id for r in requests)]
    events: dict[int, AuditEvent] = {}
    for object_id in objects:
        for event in store.audit.list_events(object_id=object_id, limit=AUDIT_LIMIT):
            if event.object_type != "model" or _about_version(event, version):
                events[event.seq] = event
    return VersionReport(
        generated_at=store.clock.now(),
        model=registry.get_model(version.model),
        version=version,
        card=registry.card(version.ref),
        lineage=registry.lineage(version.ref),
        requests=tuple(sorted(requests, key=lambda r: r.created_at)),
        transitions=tuple(registry.transitions(version.ref)),
        audit=tuple(events[s] for s in sorted(events)[-AUDIT_LIMIT:]),
    )


def _about_version(event: AuditEvent, version: ModelVersion) -> bool:
    """Model-level events (alias moves, updates) that name this version, or none."""
    named = event.details.get("version")
    return named is None or named == version.version


def _md(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _markdown(report: VersionReport) -> list[str]:
    v, m = report.version, report.model
    lines = [
        f"# Governance report: {_md(v.ref)}",
        "",
        f"Generated {report.generated_at.isoformat()}. Model owners: "
        f"{_md(', '.join(m.owners) or 'none')}; team {_md(m.team or 'none')}; "
        f"risk tier {_md(m.risk_tier.value if m.risk_tier else 'not set')}; "
        f"stage {v.stage.value}.",
        "",
        "## Model card",
        "",
        report.card.to_markdown().replace("\n# ", "\n### ").replace("\n## ", "\n### "),
        "## Lineage",
        "",
        "| kind | id | label |",
        "|---|---|---|",
        *(
            f"| {_md(n.kind)} | {_md(n.id)} | {_md(n.label)} |"
            for n in report.lineage.nodes.values()
        ),
        "",
        "## Promotion requests",
        "",
    ]
    if not report.requests:
        lines += ["None.", ""]
    for request in report.requests:
        lines += _request_markdown(request)
    lines += ["## Transitions", "", "| at | from | to | actor | reason |", "|---|---|---|---|---|"]
    lines += [
        f"| {t.at.isoformat()} | {t.from_stage.value} | {t.to_stage.value} | {_md(t.actor)} "
        f"| {_md(t.reason)} |"
        for t in report.transitions
    ]
    lines += [
        "",
        "## Audit events",
        "",
        "| seq | at | actor | action | object |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {e.seq} | {e.ts.isoformat()} | {_md(e.actor)} | {_md(e.action)} "
        f"| {_md(e.object_type)}:{_md(e.object_id)} |"
        for e in report.audit
    ]
    return lines


def _request_markdown(request: PromotionRequest) -> list[str]:
    lines = [
        f"### Request {request.id} → {request.target_stage} ({request.status})",
        "",
        f"Requested by {_md(request.requested_by)} on {request.created_at.isoformat()} "
        f"under policy version {request.policy_version}: {_md(request.reason)}",
        "",
        "| check | passed | observed | detail |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {_md(c.get('description', c.get('check', '')))} | {c.get('passed')} "
        f"| {_md(c.get('observed'))} | {_md(c.get('detail', ''))} |"
        for c in request.checks
    ]
    lines += ["", "| approver | decision | at | comment |", "|---|---|---|---|"]
    lines += [
        f"| {_md(d.get('approver', ''))} | {_md(d.get('decision', ''))} | {_md(d.get('at', ''))} "
        f"| {_md(d.get('comment', ''))} |"
        for d in request.decisions
    ]
    if request.outcome:
        lines += ["", f"Outcome: {_md(request.outcome)}"]
    return [*lines, ""]


def _e(value: object) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str, sort_keys=True)
    return html.escape(text, quote=True)


def _table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{_e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _html(report: VersionReport) -> str:
    v, m = report.version, report.model
    parts = [
        f"<h1>Governance report: {_e(v.ref)}</h1>",
        f"<p>Generated {_e(report.generated_at.isoformat())}. Owners: "
        f"{_e(', '.join(m.owners) or 'none')}; team {_e(m.team or 'none')}; risk tier "
        f"{_e(m.risk_tier.value if m.risk_tier else 'not set')}; stage {_e(v.stage.value)}.</p>",
        "<h2>Model card</h2>",
        _table(
            ["section", "content"],
            [[k, s] for k, s in report.card.as_dict()["sections"].items()],
        ),
        f"<p>Completeness {_e(f'{report.card.completeness:.0%}')}.</p>",
        "<h2>Lineage</h2>",
        _table(
            ["kind", "id", "label"],
            [[n.kind, n.id, n.label] for n in report.lineage.nodes.values()],
        ),
        "<h2>Promotion requests</h2>",
    ]
    if not report.requests:
        parts.append("<p>None.</p>")
    for r in report.requests:
        parts += [
            f"<h3>Request {_e(r.id)} → {_e(r.target_stage)} ({_e(r.status)})</h3>",
            f"<p>Requested by {_e(r.requested_by)} on {_e(r.created_at.isoformat())} under "
            f"policy version {_e(r.policy_version)}: {_e(r.reason)}</p>",
            _table(
                ["check", "passed", "observed", "detail"],
                [
                    [
                        c.get("description", c.get("check", "")),
                        c.get("passed"),
                        c.get("observed"),
                        c.get("detail", ""),
                    ]
                    for c in r.checks
                ],
            ),
            _table(
                ["approver", "decision", "at", "comment"],
                [
                    [d.get("approver"), d.get("decision"), d.get("at"), d.get("comment")]
                    for d in r.decisions
                ],
            ),
        ]
        if r.outcome:
            parts.append(f"<p>Outcome: {_e(r.outcome)}</p>")
    parts += [
        "<h2>Transitions</h2>",
        _table(
            ["at", "from", "to", "actor", "reason"],
            [
                [t.at.isoformat(), t.from_stage.value, t.to_stage.value, t.actor, t.reason]
                for t in report.transitions
            ],
        ),
        "<h2>Audit events</h2>",
        _table(
            ["seq", "at", "actor", "action", "object"],
            [
                [e.seq, e.ts.isoformat(), e.actor, e.action, f"{e.object_type}:{e.object_id}"]
                for e in report.audit
            ],
        ),
    ]
    title = _e(f"Governance report {v.ref}")
    style = (
        "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto}"
        "table{border-collapse:collapse;margin:.5rem 0}td,th{border:1px solid #ccc;"
        "padding:.25rem .5rem;text-align:left;vertical-align:top}"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{title}</title><style>{style}</style></head><body>\n"
        + "\n".join(parts)
        + "\n</body></html>\n"
    )
