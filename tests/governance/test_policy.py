"""Policy documents: parsing, validation with line numbers, gates and freeze windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from steward.governance import Policy, PolicyError, parse_policy, read_policy

GOOD = """\
policy: credit-models
tiers: [low, medium, high, critical]
request_ttl: 3d
gates:
  high:
    staging:
      checks:
        - "holdout auc >= 0.80"
    production:
      checks:
        - "holdout auc >= 0.85"
        - check: beats_champion
          metric: auc
          dataset: holdout
          margin: 0.005
        - {check: fairness, attribute: gender, min: 0.8}
        - {check: card_completeness, min: 0.75}
        - {check: signature_compatible}
        - {check: prohibited_attributes, attributes: [race, religion], proxy_threshold: 0.5}
        - {check: drift, max_drifted_share: 0.2}
      approvals:
        - {role: model-risk, count: 1}
        - {role: compliance, count: 2}
freeze_windows:
  - {name: year-end, start: 2026-12-20, end: 2027-01-04}
  - name: friday-evening
    weekdays: [fri]
    from_time: "16:00"
    timezone: Europe/Paris
emergency:
  approvals: [{role: admin, count: 1}, {role: model-risk, count: 1}]
"""


def test_a_full_policy_parses() -> None:
    policy = parse_policy(GOOD)
    assert policy.policy == "credit-models"
    assert policy.request_ttl == timedelta(days=3)
    gate = policy.gate("high", "production")
    assert [check.check for check in gate.checks] == [
        "metric",
        "beats_champion",
        "fairness",
        "card_completeness",
        "signature_compatible",
        "prohibited_attributes",
        "drift",
    ]
    first = gate.checks[0]
    assert first.describe() == "holdout auc >= 0.85"
    assert [(a.role, a.count) for a in gate.approvals] == [("model-risk", 1), ("compliance", 2)]
    assert gate.separation_of_duties is True
    assert policy.gate("low", "production").checks == []  # no gate: nothing required
    assert [a.role for a in policy.emergency.approvals] == ["admin", "model-risk"]


def test_digest_is_stable_and_sensitive() -> None:
    first, second = parse_policy(GOOD), parse_policy(GOOD.replace("# nothing", ""))
    assert first.digest == second.digest
    changed = parse_policy(GOOD.replace(">= 0.85", ">= 0.86"))
    assert changed.digest != first.digest
    assert Policy.model_validate_json(first.model_dump_json()).digest == first.digest


def test_unknown_tier_in_gate_call_is_refused() -> None:
    with pytest.raises(ValueError, match="risk tier 'extreme' is not in policy"):
        parse_policy(GOOD).gate("extreme", "production")


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (GOOD.replace("margin: 0.005", "margn: 0.005"), 15, "unknown setting"),
        (GOOD.replace('"holdout auc >= 0.85"', '"holdout auc is great"'), 10, "cannot read check"),
        (
            GOOD.replace(
                "{check: fairness, attribute: gender, min: 0.8}",
                "{check: fairness, attribute: gender}",
            ),
            16,
            "give min or max",
        ),
        (GOOD.replace("count: 2", "count: 0"), 23, "greater than or equal to 1"),
        (GOOD.replace("timezone: Europe/Paris", "timezone: Mars/Olympus"), 29, "unknown time zone"),
        (GOOD.replace("request_ttl: 3d", "request_ttl: soon"), 3, "cannot read duration"),
        (GOOD.replace("  high:\n", "  extreme:\n"), None, "unknown tier(s) extreme"),
        (
            GOOD.replace(
                "{check: card_completeness, min: 0.75}", "{check: card_completeness, min: 75}"
            ),
            17,
            "less than or equal to 1",
        ),
        (
            GOOD.replace("{check: drift, max_drifted_share: 0.2}", "{check: telepathy}"),
            20,
            "telepathy",
        ),
    ],
)
def test_problems_are_reported_with_their_line(text: str, line: int | None, message: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(text, source="policy.yaml")
    problems = caught.value.problems
    assert any(message in p.message for p in problems), problems
    if line is not None:
        assert any(p.line == line for p in problems), problems
    assert "policy.yaml" in str(caught.value)


def test_every_problem_is_listed_at_once() -> None:
    text = GOOD.replace("count: 2", "count: 0").replace("margin: 0.005", "margn: 0.005")
    with pytest.raises(PolicyError) as caught:
        parse_policy(text)
    assert len(caught.value.problems) == 2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("policy: [unclosed", "not valid YAML"),
        ("- just\n- a list\n", "must be a mapping"),
        ("", "must be a mapping"),
        ("policy: x\ntiers: []\n", "at least one risk tier"),
        ("policy: x\ntiers: [High]\n", "lowercase"),
        ("policy: x\ntiers: [low, low]\n", "unique"),
    ],
)
def test_malformed_documents(text: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        parse_policy(text)


def test_hostile_yaml_is_not_executed() -> None:
    with pytest.raises(PolicyError, match="not valid YAML"):
        parse_policy("policy: !!python/object/apply:os.system ['echo owned']\n")


def test_oversized_document_is_refused() -> None:
    with pytest.raises(PolicyError, match="larger than"):
        parse_policy("policy: x\n" + "#" * 1_000_001)


def test_toml_policy_and_its_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "policy.toml"
    path.write_text(
        'policy = "p"\n'
        'tiers = ["low", "high"]\n'
        "[gates.high.production]\n"
        'checks = ["holdout auc >= 0.8"]\n'
        'approvals = [{role = "model-risk", count = 1}]\n'
    )
    policy, text = read_policy(path)
    assert policy.gate("high", "production").checks[0].describe() == "holdout auc >= 0.8"
    assert "model-risk" in text
    path.write_text(path.read_text().replace("approvals", "aprovals"))
    with pytest.raises(PolicyError) as caught:
        read_policy(path)
    assert caught.value.problems[0].line == 5
    path.write_text("policy = \n")
    with pytest.raises(PolicyError, match="not valid TOML"):
        read_policy(path)


def test_missing_and_binary_files(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="no such file"):
        read_policy(tmp_path / "absent.yaml")
    binary = tmp_path / "policy.yaml"
    binary.write_bytes(b"\xff\xfe\x00policy")
    with pytest.raises(PolicyError, match="not UTF-8"):
        read_policy(binary)


def test_fixed_freeze_window() -> None:
    policy = parse_policy(GOOD)
    inside = datetime(2026, 12, 24, 12, tzinfo=UTC)
    window = policy.freeze_at(inside, "production")
    assert window is not None and window.name == "year-end"
    assert policy.freeze_at(inside, "staging") is None  # only production is frozen
    assert policy.freeze_at(datetime(2027, 1, 4, tzinfo=UTC), "production") is None  # end excluded
    assert policy.freeze_at(datetime(2026, 12, 19, 23, 59, tzinfo=UTC), "production") is None


def test_recurring_freeze_window_uses_its_time_zone() -> None:
    policy = parse_policy(GOOD)
    # Friday 2026-11-27 15:30 UTC is 16:30 in Paris: frozen.
    window = policy.freeze_at(datetime(2026, 11, 27, 15, 30, tzinfo=UTC), "production")
    assert window is not None and window.name == "friday-evening"
    # 14:30 UTC is 15:30 in Paris: open.
    assert policy.freeze_at(datetime(2026, 11, 27, 14, 30, tzinfo=UTC), "production") is None
    # Thursday: open.
    assert policy.freeze_at(datetime(2026, 11, 26, 17, 0, tzinfo=UTC), "production") is None


def test_freeze_window_shapes() -> None:
    with pytest.raises(PolicyError, match="either start and end, or weekdays"):
        parse_policy("policy: x\nfreeze_windows: [{name: w}]\n")
    with pytest.raises(PolicyError, match="end must be after start"):
        parse_policy("policy: x\nfreeze_windows: [{name: w, start: 2026-12-02, end: 2026-12-01}]\n")
    with pytest.raises(PolicyError, match="no time zone"):
        parse_policy(
            "policy: x\nfreeze_windows: "
            "[{name: w, start: '2026-12-01T00:00:00', end: '2026-12-02T00:00:00'}]\n"
        )
