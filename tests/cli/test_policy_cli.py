"""``steward policy validate``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.cli._helpers import run

POLICY = """\
policy: credit
gates:
  high:
    production:
      checks:
        - "holdout auc >= 0.85"
      approvals:
        - {role: model-risk, count: 2}
"""


def test_valid_policy_is_summarized(tmp_path: Path, capsys, monkeypatch) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY)
    code, out, _ = run(["policy", "validate", str(path)], capsys, monkeypatch)
    assert code == 0
    assert "policy 'credit' is valid" in out
    assert "holdout auc >= 0.85" in out
    assert "2 x model-risk" in out
    code, out, _ = run(["policy", "validate", str(path), "--json"], capsys, monkeypatch)
    data = json.loads(out)
    assert data["valid"] is True
    assert data["gates"]["high"]["production"]["approvals"] == [{"role": "model-risk", "count": 2}]


def test_invalid_policy_lists_problems_with_lines(tmp_path: Path, capsys, monkeypatch) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY.replace("count: 2", "count: 0").replace("checks:", "chex:"))
    code, out, _ = run(["policy", "validate", str(path)], capsys, monkeypatch)
    assert code == 2
    assert "is not a valid policy" in out
    assert "line 5: gates.high.production.chex: unknown setting" in out
    assert "line 8:" in out
    code, out, _ = run(["policy", "validate", str(path), "--json"], capsys, monkeypatch)
    data = json.loads(out)
    assert data["valid"] is False
    assert {p["line"] for p in data["problems"]} == {5, 8}


@pytest.mark.parametrize("content", [None, b"\x00\xff"])
def test_unreadable_files(tmp_path: Path, capsys, monkeypatch, content: bytes | None) -> None:
    path = tmp_path / "policy.yaml"
    if content is not None:
        path.write_bytes(content)
    code, out, _ = run(["policy", "validate", str(path)], capsys, monkeypatch)
    assert code == 2
    assert "not a valid policy" in out
