"""Peers: the tools steward is compared with, each in its own virtual environment.

A peer ``<name>`` is declared by a requirements file ``benchmarks/peers/<name>.txt``.
On first use its venv is built at ``benchmarks/.peers/<name>`` with ``uv venv`` and
``uv pip install -r``; it is rebuilt whenever the requirements file changes (its
SHA-256 is kept in the venv's ``steward-peer.json``).  Peers are never installed into
the project's own environment or lock.  A line ``# python: 3.12`` in the requirements
file picks the peer's Python; the default is the version running the benchmarks.

Peer code runs in a subprocess and reports by printing one JSON object on its last
line of stdout::

    run_peer("evidently", "import json, sys; print(json.dumps({'n': len(sys.argv)}))", "a")
    -> {"n": 2}
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["PeerEnv", "PeerError", "PeerInstallError", "Peers"]

_HERE = Path(__file__).resolve().parent
REQUIREMENTS_DIR = _HERE / "peers"
VENVS_DIR = _HERE / ".peers"
_MARKER = "steward-peer.json"
_PYTHON_DIRECTIVE = re.compile(r"^#\s*python:\s*(\S+)\s*$", re.MULTILINE)
_REQUIREMENT_NAME = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)")
_INSTALL_TIMEOUT_S = 1800
# Prints {"python": ..., "packages": {name: version or null}} for the names in argv.
_VERSIONS_SNIPPET = """
import json, platform, sys
from importlib import metadata
def version(name):
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
print(json.dumps({"python": platform.python_version(),
                  "packages": {n: version(n) for n in sys.argv[1:]}}))
"""


class PeerError(Exception):
    """Peer code failed: it exited non-zero, timed out, or printed no JSON object."""


class PeerInstallError(Exception):
    """A peer's environment could not be built (no uv, no network, unresolvable pins)."""


@dataclass(frozen=True)
class PeerEnv:
    """A ready peer environment and what is installed in it."""

    name: str
    python: Path
    python_version: str
    packages: dict[str, str | None]

    def as_dict(self) -> dict[str, Any]:
        """Return the JSON view recorded in benchmark results."""
        return {"python": self.python_version, "packages": self.packages}


def requirement_names(text: str) -> list[str]:
    """Return the distribution names a requirements file asks for.

    ``"numpy>=2  # fast\\n-r other.txt\\nevidently[all]==0.4"`` -> ``["numpy", "evidently"]``
    """
    names = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        match = _REQUIREMENT_NAME.match(line)
        if match:
            names.append(match.group(1))
    return names


def _venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def _subprocess_env() -> dict[str, str]:
    # The benchmarks run inside the project's venv; the peer must see none of it.
    env = dict(os.environ)
    for key in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "UV_PROJECT_ENVIRONMENT"):
        env.pop(key, None)
    return env


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    # Two benchmark runs building the same peer at once would corrupt its venv.
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class Peers:
    """Builds peer environments on first use and runs code in them."""

    def __init__(
        self, requirements_dir: Path = REQUIREMENTS_DIR, venvs_dir: Path = VENVS_DIR
    ) -> None:
        self.requirements_dir = requirements_dir
        self.venvs_dir = venvs_dir
        self._ready: dict[str, PeerEnv] = {}

    def ensure(self, name: str) -> PeerEnv:
        """Return the peer's environment, building or rebuilding it when needed.

        Raises:
            FileNotFoundError: there is no requirements file for ``name``.
            PeerInstallError: the environment could not be built.
        """
        if name in self._ready:
            return self._ready[name]
        requirements = self.requirements_dir / f"{name}.txt"
        if not requirements.is_file():
            known = sorted(p.stem for p in self.requirements_dir.glob("*.txt"))
            raise FileNotFoundError(
                f"no peer {name!r}: {requirements} does not exist; known peers: {known or 'none'}"
            )
        text = requirements.read_text()
        digest = hashlib.sha256(text.encode()).hexdigest()
        venv = self.venvs_dir / name
        with _locked(self.venvs_dir / f"{name}.lock"):
            env = self._load(name, venv, digest) or self._build(name, venv, requirements, digest)
        self._ready[name] = env
        return env

    def _load(self, name: str, venv: Path, digest: str) -> PeerEnv | None:
        marker = venv / _MARKER
        python = _venv_python(venv)
        if not (marker.is_file() and python.exists()):
            return None
        info = json.loads(marker.read_text())
        if info.get("requirements_sha256") != digest:
            return None
        return PeerEnv(name, python, info["python"], info["packages"])

    def _build(self, name: str, venv: Path, requirements: Path, digest: str) -> PeerEnv:
        uv = _find_uv()
        if uv is None:
            raise PeerInstallError(
                f"peer {name!r} needs `uv` (on PATH, or bootstrapped by `make setup`) "
                "to build its environment"
            )
        text = requirements.read_text()
        directive = _PYTHON_DIRECTIVE.search(text)
        python_request = directive.group(1) if directive else "{}.{}".format(*sys.version_info)
        shutil.rmtree(venv, ignore_errors=True)
        python = _venv_python(venv)
        self._uv(name, [uv, "venv", "--quiet", "--python", python_request, str(venv)])
        self._uv(
            name,
            [uv, "pip", "install", "--quiet", "--python", str(python), "-r", str(requirements)],
        )
        info = self._versions(name, python, requirement_names(text))
        (venv / _MARKER).write_text(json.dumps({"requirements_sha256": digest, **info}, indent=2))
        return PeerEnv(name, python, info["python"], info["packages"])

    @staticmethod
    def _uv(name: str, command: list[str]) -> None:
        try:
            subprocess.run(
                command,
                check=True,
                capture_output=True,
                text=True,
                env=_subprocess_env(),
                timeout=_INSTALL_TIMEOUT_S,
            )
        except subprocess.CalledProcessError as exc:
            tail = (exc.stderr or exc.stdout or "").strip()[-2000:]
            raise PeerInstallError(
                f"building peer {name!r} failed: `{' '.join(command)}` exited {exc.returncode}: "
                f"{tail}"
            ) from exc
        except subprocess.TimeoutExpired as exc:
            raise PeerInstallError(
                f"building peer {name!r} timed out after {_INSTALL_TIMEOUT_S} s"
            ) from exc

    def _versions(self, name: str, python: Path, packages: list[str]) -> dict[str, Any]:
        try:
            return _run_json(name, [str(python), "-c", _VERSIONS_SNIPPET, *packages], None, 120)
        except PeerError as exc:
            raise PeerInstallError(str(exc)) from exc

    def run(
        self,
        name: str,
        script: str | Path,
        *args: str,
        cwd: Path | None = None,
        timeout_s: float = 600.0,
    ) -> dict[str, Any]:
        """Run ``script`` in the peer's Python; return the JSON object it printed last.

        ``script`` is a file when it is a ``Path`` or a one-line string ending in
        ``.py`` that names an existing file; otherwise it is source code (``-c``).

        Raises:
            PeerInstallError: the peer's environment could not be built.
            PeerError: the script failed or printed no JSON object on its last line.
        """
        env = self.ensure(name)
        if isinstance(script, Path) or (
            "\n" not in script and script.endswith(".py") and Path(script).is_file()
        ):
            command = [str(env.python), str(Path(script).resolve()), *args]
        else:
            command = [str(env.python), "-c", script, *args]
        return _run_json(name, command, cwd, timeout_s)


def _run_json(name: str, command: list[str], cwd: Path | None, timeout_s: float) -> dict[str, Any]:
    try:
        proc = subprocess.run(
            command,
            capture_output=True,
            text=True,
            cwd=cwd,
            env=_subprocess_env(),
            timeout=timeout_s,
        )
    except subprocess.TimeoutExpired as exc:
        raise PeerError(f"peer {name!r} ran past {timeout_s:g} s") from exc
    stderr_tail = proc.stderr.strip()[-2000:]
    if proc.returncode != 0:
        raise PeerError(f"peer {name!r} exited {proc.returncode}: {stderr_tail}")
    lines = [line for line in proc.stdout.splitlines() if line.strip()]
    last = lines[-1] if lines else ""
    try:
        value = json.loads(last)
    except json.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise PeerError(
            f"peer {name!r} must print a JSON object on its last stdout line; got {last[-200:]!r}"
            + (f" (stderr: {stderr_tail})" if stderr_tail else "")
        )
    return value


def _find_uv() -> str | None:
    """Return uv from PATH, else the copy `make` bootstraps into the repository's .tools."""
    found = shutil.which("uv")
    if found is not None:
        return found
    bootstrapped = Path(__file__).resolve().parent.parent / ".tools" / "bin" / "uv"
    return str(bootstrapped) if bootstrapped.is_file() else None
