"""Reading policy documents: YAML or TOML text to a validated :class:`Policy`.

:func:`parse_policy` validates a document completely and reports every problem
at once, each with its path in the document and, when it can be found, its
line number.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import ValidationError

from steward.core import InvalidInputError
from steward.governance._policy import Policy
from steward.governance._policy_checks import CHECK_KINDS

__all__ = ["MAX_POLICY_BYTES", "PolicyError", "PolicyProblem", "parse_policy", "read_policy"]

MAX_POLICY_BYTES = 1_000_000


@dataclass(frozen=True)
class PolicyProblem:
    """One thing wrong with a policy document: where (line, path) and what."""

    path: str
    message: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"line {self.line}: " if self.line else ""
        return f"{where}{self.path}: {self.message}" if self.path else f"{where}{self.message}"


class PolicyError(InvalidInputError):
    """A policy document is malformed; ``problems`` lists every issue found."""

    def __init__(self, source: str, problems: Sequence[PolicyProblem]) -> None:
        self.source = source
        self.problems = tuple(problems)
        listed = "; ".join(str(p) for p in self.problems)
        super().__init__(f"invalid policy {source}: {listed}")


def read_policy(path: str | Path) -> tuple[Policy, str]:
    """Read and validate a policy file (``.yaml``, ``.yml`` or ``.toml``).

    Returns:
        The policy and the document's text.

    Raises:
        PolicyError: the file is missing, too large, not YAML/TOML, or invalid.
    """
    file = Path(path)
    if not file.is_file():
        raise PolicyError(str(path), [PolicyProblem("", "no such file")])
    if file.stat().st_size > MAX_POLICY_BYTES:
        raise PolicyError(str(path), [PolicyProblem("", f"larger than {MAX_POLICY_BYTES} bytes")])
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise PolicyError(str(path), [PolicyProblem("", f"not UTF-8 text ({exc})")]) from None
    fmt: Literal["yaml", "toml"] = "toml" if file.suffix.lower() == ".toml" else "yaml"
    return parse_policy(text, fmt=fmt, source=str(path)), text


def parse_policy(
    text: str, *, fmt: Literal["yaml", "toml"] = "yaml", source: str = "<text>"
) -> Policy:
    """Validate a policy document given as text.

    Raises:
        PolicyError: every problem found, each with its line number when known.
    """
    if len(text.encode("utf-8")) > MAX_POLICY_BYTES:
        raise PolicyError(source, [PolicyProblem("", f"larger than {MAX_POLICY_BYTES} bytes")])
    data, root = _load_document(text, fmt, source)
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        raise PolicyError(source, _problems(exc, data, root, text)) from None


def _load_document(
    text: str, fmt: Literal["yaml", "toml"], source: str
) -> tuple[dict[str, Any], yaml.Node | None]:
    """Parse the text into a mapping, with the YAML node tree kept for line numbers.

    Raises:
        PolicyError: the text is not valid YAML/TOML, or not a mapping.
    """
    root: yaml.Node | None = None
    try:
        if fmt == "toml":
            data: Any = tomllib.loads(text)
        else:
            root = yaml.compose(text, Loader=yaml.SafeLoader)
            data = yaml.safe_load(text)
    except tomllib.TOMLDecodeError as exc:
        found = re.search(r"line (\d+)", str(exc))
        line = int(found[1]) if found else None
        raise PolicyError(source, [PolicyProblem("", f"not valid TOML: {exc}", line)]) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None) or str(exc)
        line_no = mark.line + 1 if mark is not None else None
        raise PolicyError(
            source, [PolicyProblem("", f"not valid YAML: {problem}", line_no)]
        ) from None
    if not isinstance(data, dict):
        raise PolicyError(source, [PolicyProblem("", "a policy must be a mapping of settings")])
    return data, root


def _problems(
    exc: ValidationError, data: dict[str, Any], root: yaml.Node | None, text: str
) -> list[PolicyProblem]:
    """One problem per validation error, located by document path and line."""
    problems = []
    for error in exc.errors():
        loc = _document_path(data, error["loc"])
        path = ".".join(str(part) for part in loc)
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown setting (check the spelling)"
        line = _yaml_line(root, loc) if root is not None else _toml_line(text, loc)
        problems.append(PolicyProblem(path, message, line))
    return problems


def _document_path(data: Any, loc: Sequence[Any]) -> list[str | int]:
    """Drop the union tags pydantic puts in error locations (``checks.0.fairness.min``)."""
    path: list[str | int] = []
    node = data
    for part in loc:
        if isinstance(part, str) and part in CHECK_KINDS and isinstance(node, dict | str):
            kind = node.get("check") if isinstance(node, dict) else "metric"
            if kind == part:
                continue
        path.append(part)
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            node = None
    return path


def _yaml_line(root: yaml.Node, loc: Sequence[Any]) -> int | None:
    node, line = root, root.start_mark.line + 1
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == str(part):
                    node, line = value, key.start_mark.line + 1
                    break
            else:
                return line
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return line
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            return line
    return line


def _toml_line(text: str, loc: Sequence[Any]) -> int | None:
    """Best effort for TOML (the parser keeps no positions): the line defining the last key."""
    names = [str(part) for part in loc if isinstance(part, str)]
    lines = text.splitlines()
    for name in reversed(names):
        pattern = re.compile(
            rf"^\s*(\[+[^\]]*\b{re.escape(name)}\b[^\]]*\]+|{re.escape(name)}\s*=)"
        )
        for number, content in enumerate(lines, start=1):
            if pattern.search(content):
                return number
    return None
