"""Capture what a run ran on, compare two captures, and seed the random generators.

:func:`capture_environment` is called at every run start, so it is cheap:
facts that cannot change within a process (interpreter, platform, CPU, RAM,
installed packages) are gathered once per process; the working directory's
git state, lockfile, command line and allow-listed environment variables are
read on every call.  Git runs as a subprocess with a timeout; without git, or
outside a repository, the git fields are None.  Nothing here raises on a
missing fact: what cannot be read is None.

Secrets stay out: environment variables are read only from an allow-list
(:data:`RECORDED_ENV`), credentials are removed from the git remote URL, and
command-line values of options that look like secrets (``--token``,
``--password=...``) and credentials inside URLs are masked.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import importlib.util
import os
import platform
import random
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from steward.core import InvalidInputError, canonical_json, sha256_file, sha256_hex

__all__ = [
    "LOCKFILE_NAMES",
    "RECORDED_ENV",
    "EnvironmentChange",
    "EnvironmentSnapshot",
    "capture_environment",
    "diff_environments",
    "seed_everything",
]

RECORDED_ENV = (
    "CUDA_VISIBLE_DEVICES",
    "NVIDIA_VISIBLE_DEVICES",
    "CUBLAS_WORKSPACE_CONFIG",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "PYTHONHASHSEED",
)
"""The only environment variables recorded: they change results, and hold no secrets."""

LOCKFILE_NAMES = (
    "uv.lock",
    "poetry.lock",
    "pdm.lock",
    "Pipfile.lock",
    "requirements.lock",
    "requirements.txt",
)
"""Lockfiles looked for, most specific first; ``requirements*.txt`` files come after these."""

_GIT_TIMEOUT_S = 2.0
_MASK = "***"
_SECRET_OPTION = re.compile(
    r"^(--?[\w.-]*(?:token|password|passwd|secret|api[-_]?key|credential|auth)[\w.-]*)(=.*)?$",
    re.IGNORECASE,
)
_URL_CREDENTIALS = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@")


@dataclass(frozen=True)
class EnvironmentSnapshot:
    """What a run ran on: interpreter, machine, packages, code version, command line.

    Attributes:
        python_version: e.g. ``"3.11.7"``.
        python_implementation: e.g. ``"CPython"``.
        platform: ``platform.platform()``, e.g. ``"Linux-6.1.0-x86_64-with-glibc2.36"``.
        machine: e.g. ``"x86_64"``, ``"arm64"``.
        cpu_count: logical CPUs, or None.
        cpu_model: CPU model name (from /proc/cpuinfo), or None.
        memory_bytes: total physical memory, or None.
        packages: installed distributions, normalized name -> version, sorted by name.
        packages_digest: ``"sha256:<hex>"`` of the canonical JSON of ``packages``.
        lockfile: path of the lockfile found in the working directory or a parent
            up to the repository root, or None.
        lockfile_digest: ``"sha256:<hex>"`` of the lockfile's bytes, or None.
        git_commit: full commit hash of HEAD, or None outside a repository.
        git_dirty: whether tracked files are modified or untracked files are
            present (ignored files excepted); None outside a repository.
        git_branch: current branch, or None (detached HEAD, no repository).
        git_remote: URL of ``origin`` (else the first remote), credentials removed.
        command: ``sys.argv`` with secret-looking values masked.
        env: the allow-listed environment variables (:data:`RECORDED_ENV`) that are set.
    """

    python_version: str
    python_implementation: str
    platform: str
    machine: str
    cpu_count: int | None
    cpu_model: str | None
    memory_bytes: int | None
    packages: Mapping[str, str]
    packages_digest: str
    lockfile: str | None = None
    lockfile_digest: str | None = None
    git_commit: str | None = None
    git_dirty: bool | None = None
    git_branch: str | None = None
    git_remote: str | None = None
    command: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict; :meth:`from_dict` reverses it."""
        data = asdict(self)
        data["packages"] = dict(self.packages)
        data["command"] = list(self.command)
        data["env"] = dict(self.env)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EnvironmentSnapshot:
        """Rebuild a snapshot from :meth:`as_dict` output; unknown keys are ignored.

        Raises:
            InvalidInputError: a required key is missing or has the wrong type.
        """
        if not isinstance(data, Mapping):
            raise InvalidInputError(
                f"an environment snapshot is a mapping, got {type(data).__name__}"
            )
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in data.items() if k in known}
        try:
            values["packages"] = {str(k): str(v) for k, v in dict(values["packages"]).items()}
            values["command"] = tuple(str(arg) for arg in values.get("command", ()))
            values["env"] = {str(k): str(v) for k, v in dict(values.get("env", {})).items()}
            return cls(**values)
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInputError(f"not an environment snapshot: {exc!r}") from exc

    @property
    def digest(self) -> str:
        """SHA-256 (64 hex characters) of the snapshot's canonical JSON."""
        return sha256_hex(canonical_json(self.as_dict()))


ChangeKind = Literal["python", "platform", "package", "git", "lockfile", "env"]


@dataclass(frozen=True)
class EnvironmentChange:
    """One difference between two snapshots; ``old``/``new`` None means absent."""

    kind: ChangeKind
    name: str
    old: str | None
    new: str | None

    @property
    def change(self) -> Literal["added", "removed", "changed"]:
        """Whether the item appeared, disappeared or changed value."""
        if self.old is None:
            return "added"
        if self.new is None:
            return "removed"
        return "changed"

    def __str__(self) -> str:
        if self.change == "added":
            return f"{self.name}: added {self.new}"
        if self.change == "removed":
            return f"{self.name}: removed (was {self.old})"
        return f"{self.name}: {self.old} -> {self.new}"


def capture_environment(cwd: Path | None = None) -> EnvironmentSnapshot:
    """Capture the current interpreter, machine, packages and code version.

    Args:
        cwd: the working directory whose git repository and lockfile are read
            (default: the process's current directory).

    Example:
        >>> snapshot = capture_environment()
        >>> snapshot.python_implementation in {"CPython", "PyPy"}
        True
    """
    directory = Path.cwd() if cwd is None else Path(cwd)
    facts = _process_facts()
    packages = _installed_packages()
    git = _git_state(directory)
    lockfile = _find_lockfile(directory, Path(git.root) if git.root else None)
    return EnvironmentSnapshot(
        python_version=facts["python_version"],
        python_implementation=facts["python_implementation"],
        platform=facts["platform"],
        machine=facts["machine"],
        cpu_count=os.cpu_count(),
        cpu_model=facts["cpu_model"],
        memory_bytes=_memory_bytes(),
        packages=packages,
        packages_digest=_packages_digest(),
        lockfile=str(lockfile) if lockfile else None,
        lockfile_digest=_file_digest(lockfile) if lockfile else None,
        git_commit=git.commit,
        git_dirty=git.dirty,
        git_branch=git.branch,
        git_remote=git.remote,
        command=mask_command(sys.argv),
        env={name: os.environ[name] for name in RECORDED_ENV if name in os.environ},
    )


def diff_environments(
    old: EnvironmentSnapshot, new: EnvironmentSnapshot
) -> list[EnvironmentChange]:
    """List what changed from ``old`` to ``new`` that can change a run's results.

    Compared: interpreter, platform and machine; each package (added, removed,
    changed version, by name); git commit and dirty flag; lockfile digest; the
    recorded environment variables.  CPU, memory and command line are not.

    Example:
        >>> [str(c) for c in diff_environments(before, after)]  # doctest: +SKIP
        ['python_version: 3.11.7 -> 3.12.1', 'numpy: 1.26.4 -> 2.0.0']
    """
    changes: list[EnvironmentChange] = []

    def compare(kind: ChangeKind, name: str, before: object, after: object) -> None:
        if before != after:
            changes.append(EnvironmentChange(kind, name, _text(before), _text(after)))

    compare("python", "python_implementation", old.python_implementation, new.python_implementation)
    compare("python", "python_version", old.python_version, new.python_version)
    compare("platform", "platform", old.platform, new.platform)
    compare("platform", "machine", old.machine, new.machine)
    for name in sorted(set(old.packages) | set(new.packages)):
        compare("package", name, old.packages.get(name), new.packages.get(name))
    compare("git", "git_commit", old.git_commit, new.git_commit)
    compare("git", "git_dirty", old.git_dirty, new.git_dirty)
    compare("lockfile", "lockfile_digest", old.lockfile_digest, new.lockfile_digest)
    for name in sorted(set(old.env) | set(new.env)):
        compare("env", name, old.env.get(name), new.env.get(name))
    return changes


def seed_everything(seed: int) -> dict[str, int]:
    """Seed Python's ``random``, NumPy's global generator and, if installed, PyTorch.

    PyTorch is imported only when it is installed (it is never required).

    Returns:
        The generators seeded, e.g. ``{"random": 7, "numpy": 7}``.

    Raises:
        InvalidInputError: ``seed`` is not an int in [0, 2**32).

    Example:
        >>> seed_everything(7)["numpy"]
        7
    """
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**32:
        raise InvalidInputError(f"seed must be an int in [0, 2**32), got {seed!r}")
    random.seed(seed)
    np.random.seed(seed)  # the legacy global generator: what most user code draws from
    seeded = {"random": seed, "numpy": seed}
    if "torch" in sys.modules or importlib.util.find_spec("torch") is not None:
        torch = importlib.import_module("torch")  # optional: only when installed
        torch.manual_seed(seed)  # seeds every CUDA device too
        seeded["torch"] = seed
    return seeded


def mask_command(argv: Sequence[str]) -> tuple[str, ...]:
    """Return ``argv`` with secret-looking option values and URL credentials masked.

    Example:
        >>> mask_command(["train.py", "--token", "abc", "--db=postgres://u:p@h/db"])
        ('train.py', '--token', '***', '--db=postgres://***@h/db')
    """
    masked: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            masked.append(_MASK)
            hide_next = False
            continue
        match = _SECRET_OPTION.match(arg)
        if match:
            hide_next = match.group(2) is None
            masked.append(match.group(1) + ("=" + _MASK if match.group(2) is not None else ""))
            continue
        masked.append(_URL_CREDENTIALS.sub(r"\g<scheme>" + _MASK + "@", arg))
    return tuple(masked)


def strip_credentials(url: str) -> str:
    """Remove user and password from a URL; scp-like ``git@host:path`` is kept as is.

    Example:
        >>> strip_credentials("https://user:token@github.com/org/repo.git")
        'https://github.com/org/repo.git'
    """
    parts = urlsplit(url)
    if not parts.scheme or parts.netloc.rfind("@") < 0:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


# -- facts of this process ---------------------------------------------------------------------


@functools.cache
def _process_facts() -> dict[str, Any]:
    return {
        "python_version": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_model": _cpu_model(),
    }


@functools.cache
def _installed_packages() -> Mapping[str, str]:
    """Installed distributions as {normalized name: version}; the first on sys.path wins.

    Names and versions come from ``<name>-<version>.dist-info`` folder names
    (their format is standardized), which is ~50x faster than parsing every
    METADATA file; other layouts (``.egg-info``) fall back to the metadata.
    """
    found: dict[str, str] = {}
    for entry in sys.path:
        try:
            items = sorted(os.scandir(entry or "."), key=lambda item: item.name)
        except OSError:
            continue
        for item in items:
            name, version = _name_and_version(item)
            if name and version:
                found.setdefault(re.sub(r"[-_.]+", "-", name).lower(), version)
    return dict(sorted(found.items()))


def _name_and_version(item: os.DirEntry[str]) -> tuple[str | None, str | None]:
    if item.name.endswith(".dist-info"):
        name, _, version = item.name.removesuffix(".dist-info").partition("-")
        if version[:1].isdigit():
            return name, version
    elif not item.name.endswith(".egg-info"):
        return None, None
    try:
        metadata = importlib.metadata.PathDistribution(Path(item.path)).metadata
        return metadata["Name"], metadata["Version"]
    except (OSError, ValueError, KeyError, TypeError):
        return None, None


@functools.cache
def _packages_digest() -> str:
    return "sha256:" + sha256_hex(canonical_json(dict(_installed_packages())))


def _cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key.strip() in ("model name", "Model", "cpu model", "Processor"):
                    return value.strip() or None
    except OSError:
        pass
    return platform.processor() or None


def _memory_bytes() -> int | None:
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None
    return pages * size if pages > 0 and size > 0 else None


# -- working directory ------------------------------------------------------------------------


@dataclass(frozen=True)
class _GitState:
    root: str | None = None
    commit: str | None = None
    dirty: bool | None = None
    branch: str | None = None
    remote: str | None = None


def _git(directory: Path, *args: str) -> str | None:
    """Run git in ``directory``; return stdout, or None on any failure (absent git included)."""
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    try:
        done = subprocess.run(
            ["git", "-C", str(directory), *args],
            capture_output=True,
            text=True,
            timeout=_GIT_TIMEOUT_S,
            env=env,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 else None


def _git_state(directory: Path) -> _GitState:
    root = _git(directory, "rev-parse", "--show-toplevel")
    if root is None:
        return _GitState()
    status = _git(directory, "status", "--porcelain=v2", "--branch")
    commit = branch = None
    dirty: bool | None = None
    if status is not None:
        dirty = False
        for line in status.splitlines():
            if line.startswith("# branch.oid "):
                oid = line.removeprefix("# branch.oid ").strip()
                commit = oid if oid != "(initial)" else None
            elif line.startswith("# branch.head "):
                head = line.removeprefix("# branch.head ").strip()
                branch = head if head != "(detached)" else None
            elif line and not line.startswith("#"):
                dirty = True
    return _GitState(root.strip(), commit, dirty, branch, _git_remote(directory))


def _git_remote(directory: Path) -> str | None:
    listing = _git(directory, "config", "--get-regexp", r"^remote\..*\.url$")
    if not listing:
        return None
    urls = dict(line.split(" ", 1) for line in listing.splitlines() if " " in line)
    url = urls.get("remote.origin.url") or next(iter(urls.values()), None)
    return strip_credentials(url.strip()) if url else None


def _find_lockfile(directory: Path, root: Path | None) -> Path | None:
    """The most specific lockfile in ``directory``, else in its parents up to ``root``."""
    current = directory.resolve()
    stop = root.resolve() if root is not None else current
    while True:
        for name in LOCKFILE_NAMES:
            if (current / name).is_file():
                return current / name
        extra = sorted(current.glob("requirements*.txt"))
        if extra:
            return extra[0]
        if current == stop or current.parent == current:
            return None
        current = current.parent


def _file_digest(path: Path) -> str | None:
    try:
        return "sha256:" + sha256_file(str(path))[0]
    except OSError:
        return None


def _text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
