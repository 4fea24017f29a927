"""Run the ``steward`` entry point in-process, as a shell would, and capture what it says."""

from __future__ import annotations

import sys

import pytest

from steward.cli import main


def run(
    args: list[str], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str, str]:
    """Return ``(exit code, stdout, stderr)`` of ``steward ARGS``."""
    monkeypatch.setattr(sys, "argv", ["steward", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    out, err = capsys.readouterr()
    code = exit_info.value.code
    return (code if isinstance(code, int) else 1), out, err
