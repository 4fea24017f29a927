from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import os
import platform
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from steward.core import InvalidInputError, canonical_json, sha256_hex
from steward.tracking._environment import (
    RECORDED_ENV,
    EnvironmentChange,
    EnvironmentSnapshot,
    capture_environment,
    diff_environments,
    mask_command,
    seed_everything,
    strip_credentials,
)

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    git(root, "symbolic-ref", "HEAD", "refs/heads/main")
    git(root, "config", "user.email", "dev@example.com")
    git(root, "config", "user.name", "Dev")
    git(root, "config", "commit.gpgsign", "false")
    (root / "train.py").write_text("print('hello')\n")
    (root / ".gitignore").write_text("outputs/\n")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "first")
    return root


def test_capture_environment_describes_this_interpreter() -> None:
    snapshot = capture_environment()
    assert snapshot.python_version == platform.python_version()
    assert snapshot.python_implementation == platform.python_implementation()
    assert snapshot.machine == platform.machine()
    assert snapshot.cpu_count == os.cpu_count()
    assert snapshot.packages["numpy"] == np.__version__
    assert snapshot.packages["pyarrow"] == pa.__version__
    assert list(snapshot.packages) == sorted(snapshot.packages)
    expected = "sha256:" + sha256_hex(canonical_json(dict(snapshot.packages)))
    assert snapshot.packages_digest == expected
    if sys.platform == "linux":
        assert snapshot.memory_bytes is not None and snapshot.memory_bytes > 0
        assert snapshot.cpu_model


@needs_git
def test_capture_environment_reads_git_state(repo: Path) -> None:
    git(repo, "remote", "add", "origin", "https://alice:s3cret-token@example.com/org/repo.git")
    clean = capture_environment(repo)
    assert clean.git_commit == git(repo, "rev-parse", "HEAD")
    assert (clean.git_dirty, clean.git_branch) == (False, "main")
    assert clean.git_remote == "https://example.com/org/repo.git"
    assert "s3cret" not in json.dumps(clean.as_dict())

    (repo / "outputs").mkdir()
    (repo / "outputs" / "model.bin").write_bytes(b"ignored")
    assert capture_environment(repo).git_dirty is False
    (repo / "notes.py").write_text("untracked\n")
    assert capture_environment(repo).git_dirty is True
    (repo / "notes.py").unlink()
    (repo / "train.py").write_text("print('changed')\n")
    assert capture_environment(repo / "outputs").git_dirty is True  # any folder of the repo


@needs_git
def test_capture_environment_detached_head_and_empty_repo(repo: Path, tmp_path: Path) -> None:
    git(repo, "checkout", "-q", "--detach")
    detached = capture_environment(repo)
    assert detached.git_branch is None and detached.git_commit == git(repo, "rev-parse", "HEAD")
    assert detached.git_remote is None
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q")
    fresh = capture_environment(empty)
    assert (fresh.git_commit, fresh.git_dirty) == (None, False)


def test_capture_environment_without_repository_or_git(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outside = capture_environment(tmp_path)
    assert (outside.git_commit, outside.git_dirty, outside.git_branch, outside.git_remote) == (
        None,
        None,
        None,
        None,
    )
    monkeypatch.setenv("PATH", str(tmp_path / "no-binaries-here"))
    without_git = capture_environment(tmp_path)
    assert without_git.git_commit is None and without_git.python_version


@needs_git
def test_capture_environment_finds_the_nearest_lockfile_up_to_the_repo(repo: Path) -> None:
    (repo.parent / "uv.lock").write_text("outside the repository")
    assert capture_environment(repo).lockfile is None
    (repo / "requirements-dev.txt").write_text("pytest\n")
    (repo / "uv.lock").write_text("version = 1\n")
    sub = repo / "src" / "pkg"
    sub.mkdir(parents=True)
    found = capture_environment(sub)
    assert found.lockfile == str((repo / "uv.lock").resolve())
    assert found.lockfile_digest == "sha256:" + hashlib.sha256(b"version = 1\n").hexdigest()
    (sub / "requirements-gpu.txt").write_text("torch\n")
    assert capture_environment(sub).lockfile == str((sub / "requirements-gpu.txt").resolve())


def test_capture_environment_lockfile_outside_a_repository(tmp_path: Path) -> None:
    (tmp_path / "poetry.lock").write_text("[[package]]\n")
    child = tmp_path / "child"
    child.mkdir()
    assert capture_environment(tmp_path).lockfile == str((tmp_path / "poetry.lock").resolve())
    assert capture_environment(child).lockfile is None  # no repository: the folder only


def test_capture_environment_records_allowed_env_and_masked_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in RECORDED_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "do-not-record")
    monkeypatch.setattr(sys, "argv", ["train.py", "--api-key", "k123", "--lr", "0.1"])
    snapshot = capture_environment()
    assert snapshot.env == {"CUDA_VISIBLE_DEVICES": "0,1"}
    assert snapshot.command == ("train.py", "--api-key", "***", "--lr", "0.1")
    text = json.dumps(snapshot.as_dict())
    assert "do-not-record" not in text and "k123" not in text


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["x.py", "--token", "abc"], ("x.py", "--token", "***")),
        (["x.py", "--password=hunter2", "-v"], ("x.py", "--password=***", "-v")),
        (
            ["x.py", "--db-url", "postgresql://u:pw@db:5432/x"],
            ("x.py", "--db-url", "postgresql://***@db:5432/x"),
        ),
        (["x.py", "--AWS_SECRET=1", "--seed", "3"], ("x.py", "--AWS_SECRET=***", "--seed", "3")),
        (["x.py", "--epochs", "3"], ("x.py", "--epochs", "3")),
    ],
)
def test_mask_command_hides_secret_values(argv: list[str], expected: tuple[str, ...]) -> None:
    assert mask_command(argv) == expected


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://user:pass@github.com/org/repo.git", "https://github.com/org/repo.git"),
        ("https://ghp_token@github.com/org/repo.git", "https://github.com/org/repo.git"),
        ("https://u:p@git.example.com:8443/r.git", "https://git.example.com:8443/r.git"),
        ("ssh://git@github.com/org/repo.git", "ssh://github.com/org/repo.git"),
        ("git@github.com:org/repo.git", "git@github.com:org/repo.git"),
        ("https://github.com/org/repo.git", "https://github.com/org/repo.git"),
        ("/srv/git/repo.git", "/srv/git/repo.git"),
    ],
)
def test_strip_credentials(url: str, expected: str) -> None:
    assert strip_credentials(url) == expected


def test_snapshot_round_trips_through_json() -> None:
    snapshot = capture_environment()
    restored = EnvironmentSnapshot.from_dict(json.loads(json.dumps(snapshot.as_dict())))
    assert restored == snapshot
    assert restored.digest == snapshot.digest and len(snapshot.digest) == 64
    assert EnvironmentSnapshot.from_dict({**snapshot.as_dict(), "added_later": 1}) == snapshot
    with pytest.raises(InvalidInputError, match="not an environment snapshot"):
        EnvironmentSnapshot.from_dict({"python_version": "3.11.7"})
    with pytest.raises(InvalidInputError, match="mapping"):
        EnvironmentSnapshot.from_dict([])  # type: ignore[arg-type]


def _snapshot(**changes: object) -> EnvironmentSnapshot:
    base = EnvironmentSnapshot(
        python_version="3.11.7",
        python_implementation="CPython",
        platform="Linux-6.1-x86_64",
        machine="x86_64",
        cpu_count=8,
        cpu_model="cpu",
        memory_bytes=1 << 34,
        packages={"numpy": "1.26.4", "pandas": "2.2.2", "scipy": "1.13.0"},
        packages_digest="sha256:a",
        lockfile="/repo/uv.lock",
        lockfile_digest="sha256:l1",
        git_commit="c1",
        git_dirty=False,
        git_branch="main",
        command=("train.py",),
        env={"CUDA_VISIBLE_DEVICES": "0"},
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_diff_environments_lists_what_can_change_results() -> None:
    old = _snapshot()
    new = _snapshot(
        python_version="3.12.1",
        packages={"numpy": "2.0.0", "scipy": "1.13.0", "torch": "2.3.0"},
        git_commit="c2",
        git_dirty=True,
        lockfile_digest="sha256:l2",
        env={},
        cpu_count=2,  # hardware size and command line are not differences
        command=("other.py",),
    )
    changes = diff_environments(old, new)
    assert changes == [
        EnvironmentChange("python", "python_version", "3.11.7", "3.12.1"),
        EnvironmentChange("package", "numpy", "1.26.4", "2.0.0"),
        EnvironmentChange("package", "pandas", "2.2.2", None),
        EnvironmentChange("package", "torch", None, "2.3.0"),
        EnvironmentChange("git", "git_commit", "c1", "c2"),
        EnvironmentChange("git", "git_dirty", "false", "true"),
        EnvironmentChange("lockfile", "lockfile_digest", "sha256:l1", "sha256:l2"),
        EnvironmentChange("env", "CUDA_VISIBLE_DEVICES", "0", None),
    ]
    assert [c.change for c in changes[1:4]] == ["changed", "removed", "added"]
    assert [str(c) for c in changes[1:4]] == [
        "numpy: 1.26.4 -> 2.0.0",
        "pandas: removed (was 2.2.2)",
        "torch: added 2.3.0",
    ]
    assert diff_environments(old, _snapshot(cpu_count=64)) == []


def test_seed_everything_makes_random_and_numpy_repeatable() -> None:
    seeded = seed_everything(1234)
    first = (random.random(), np.random.rand())
    seed_everything(1234)
    assert (random.random(), np.random.rand()) == first
    assert seeded["random"] == seeded["numpy"] == 1234
    if importlib.util.find_spec("torch") is None:
        assert "torch" not in seeded and "torch" not in sys.modules
    else:
        assert seeded["torch"] == 1234


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, True, "7"])
def test_seed_everything_refuses_bad_seeds(seed: object) -> None:
    with pytest.raises(InvalidInputError, match="seed must be an int"):
        seed_everything(seed)  # type: ignore[arg-type]
