"""Shared rendering for quality reports: number formatting, HTML pages and inline SVG charts.

HTML output is one self-contained page with no scripts; each chart is a small
inline SVG built from two ``<path>`` elements, so a report of 1,000 columns
stays a few hundred kilobytes and opens at once.
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

__all__ = ["fmt", "html_page", "html_table", "pct", "svg_overlay"]

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#1f2933}
h1{font-size:20px;margin:0 0 4px} .summary{margin:8px 0 16px;color:#52606d}
table{border-collapse:collapse;font-size:13px} th{text-align:left;background:#f0f4f8}
th,td{padding:3px 8px;border-bottom:1px solid #e4e7eb;vertical-align:middle}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.bad{color:#c92a2a;font-weight:600} .warn{color:#b35c00} .ok{color:#2b8a3e}
.legend span{display:inline-block;width:10px;height:10px;margin:0 4px 0 12px}
"""


def fmt(value: float | None, digits: int = 4) -> str:
    """Format a number compactly; None (undefined) shows as an em dash.

    Example:
        >>> fmt(0.000123), fmt(12.5), fmt(None)
        ('1.23e-04', '12.5', '—')
    """
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    if value != 0 and abs(value) < 10 ** -(digits - 1):
        return f"{value:.2e}"
    return f"{value:.{digits}g}"


def pct(value: float | None) -> str:
    """Format a share in [0, 1] as a percentage."""
    if value is None:
        return "—"
    return f"{100 * value:.1f}%"


def html_page(title: str, summary: str, body: str) -> str:
    """Wrap escaped ``summary`` text and trusted ``body`` markup into a standalone page."""
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><div class='summary'>{html.escape(summary)}</div>"
        f"{body}</body></html>"
    )


def html_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Build a table; headers are escaped, cells are trusted markup (escape them first)."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def svg_overlay(labels: Sequence[str], reference: Sequence[float], current: Sequence[float]) -> str:
    """Draw reference shares as grey bars and current shares as an orange step line.

    Example:
        ``svg_overlay(["a", "b"], [0.5, 0.5], [0.9, 0.1])`` returns an
        ``<svg>`` element about 200 bytes long.
    """
    width, height = 160.0, 36.0
    count = max(len(reference), 1)
    step = width / count
    top = max(max(reference, default=0.0), max(current, default=0.0), 1e-12)
    bars = []
    for i, share in enumerate(reference):
        h = height * share / top
        bars.append(f"M{i * step:.1f} {height:.1f}v{-h:.1f}h{step * 0.9:.1f}v{h:.1f}z")
    line = [f"M0 {height:.1f}"]
    for i, share in enumerate(current):
        y = height - height * share / top
        line.append(f"V{y:.1f}H{(i + 1) * step:.1f}")
    line.append(f"V{height:.1f}")
    title = ", ".join(
        f"{label}: {pct(r)} → {pct(c)}"
        for label, r, c in zip(labels, reference, current, strict=True)
    )
    return (
        f"<svg width='{width:.0f}' height='{height:.0f}' role='img'>"
        f"<title>{html.escape(title)}</title>"
        f"<path d='{''.join(bars)}' fill='#9aa5b1'/>"
        f"<path d='{''.join(line)}' fill='none' stroke='#e8590c' stroke-width='1.5'/></svg>"
    )
