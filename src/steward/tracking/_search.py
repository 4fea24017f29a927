"""The run filter language, parsed into SQL (never evaluated in Python over all runs).

Grammar (keywords are case-insensitive)::

    expr       := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | "(" expr ")" | comparison
    comparison := field op value
                | field ["not"] "in" "(" value ("," value)* ")"
                | field ["not"] ("like" | "ilike") string
                | field "is" ["not"] "null"
    field      := ("metrics" | "params" | "tags" | "attributes") "." key | attribute
    op         := "=" | "==" | "!=" | "<>" | "<" | "<=" | ">" | ">="

Keys with spaces or symbols go in backticks: ``metrics.`val loss` < 0.3``.
Example: ``metrics.auc > 0.8 and params.model = 'hgb' and tags.team = 'risk'``.

A hand-written parser: the grammar is a screenful, and a parser library would
add a dependency for less control over the error messages, which point at the
offending token.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from steward.core import InvalidInputError
from steward.tracking._tables import latest_metrics, params, run_tags, runs

__all__ = ["FilterSyntaxError", "compile_filter", "compile_order_by"]

ATTRIBUTES: dict[str, sa.Column[Any]] = {
    "run_id": runs.c.id,
    "id": runs.c.id,
    "name": runs.c.name,
    "status": runs.c.status,
    "user": runs.c.user,
    "start_time": runs.c.start_time,
    "end_time": runs.c.end_time,
    "parent_run_id": runs.c.parent_run_id,
    "wall_seconds": runs.c.wall_seconds,
    "cpu_seconds": runs.c.cpu_seconds,
    "seed": runs.c.seed,
}
_PREFIXES = {
    "metrics": "metrics",
    "metric": "metrics",
    "params": "params",
    "param": "params",
    "tags": "tags",
    "tag": "tags",
    "attributes": "attributes",
    "attribute": "attributes",
    "attr": "attributes",
    "run": "attributes",
}
_OPS: dict[str, Callable[[Any, Any], ColumnElement[bool]]] = {
    "=": lambda a, b: a == b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<>": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}
_TOKEN = re.compile(
    r"""\s*(?:
      (?P<number>-?\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|-?\.\d+(?:[eE][-+]?\d+)?)
    | (?P<string>'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*")
    | (?P<op><=|>=|!=|<>|==|=|<|>)
    | (?P<punct>[(),])
    | (?P<field>[A-Za-z_][A-Za-z0-9_]*(?:\.(?:`[^`]+`|[A-Za-z0-9_\-/:.]+))?)
    )""",
    re.VERBOSE,
)
_KEYWORDS = {"and", "or", "not", "in", "like", "ilike", "is", "null", "true", "false"}


class FilterSyntaxError(InvalidInputError):
    """A search filter or ordering cannot be parsed; the message points at the token."""


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # number | string | op | punct | field | keyword | end
    text: str
    pos: int


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            start = len(text) - len(text[pos:].lstrip())
            _fail(text, start, f"unexpected character {text[start]!r}")
        assert match is not None  # for mypy: _fail raises
        kind = match.lastgroup or ""
        value = match.group(kind)
        start = match.start(kind)
        if kind == "field" and value.lower() in _KEYWORDS:
            kind, value = "keyword", value.lower()
        tokens.append(_Token(kind, value, start))
        pos = match.end()
    tokens.append(_Token("end", "", len(text)))
    return tokens


def _fail(text: str, pos: int, message: str) -> None:
    raise FilterSyntaxError(f"{message} at position {pos}:\n  {text}\n  {' ' * pos}^")


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.i = 0

    @property
    def tok(self) -> _Token:
        return self.tokens[self.i]

    def take(self) -> _Token:
        token = self.tokens[self.i]
        self.i += 1
        return token

    def accept(self, kind: str, text: str | None = None) -> bool:
        if self.tok.kind == kind and (text is None or self.tok.text == text):
            self.i += 1
            return True
        return False

    def expect(self, kind: str, text: str, what: str) -> None:
        if not self.accept(kind, text):
            self.error(f"expected {what}")

    def error(self, expected: str) -> None:
        got = "the end of the filter" if self.tok.kind == "end" else repr(self.tok.text)
        _fail(self.text, self.tok.pos, f"{expected}, got {got}")

    def parse(self) -> ColumnElement[bool]:
        expr = self.or_expr()
        if self.tok.kind != "end":
            self.error("expected 'and', 'or' or the end of the filter")
        return expr

    def or_expr(self) -> ColumnElement[bool]:
        parts = [self.and_expr()]
        while self.accept("keyword", "or"):
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else sa.or_(*parts)

    def and_expr(self) -> ColumnElement[bool]:
        parts = [self.not_expr()]
        while self.accept("keyword", "and"):
            parts.append(self.not_expr())
        return parts[0] if len(parts) == 1 else sa.and_(*parts)

    def not_expr(self) -> ColumnElement[bool]:
        if self.accept("keyword", "not"):
            return sa.not_(self.not_expr())
        if self.accept("punct", "("):
            expr = self.or_expr()
            self.expect("punct", ")", "')'")
            return expr
        return self.comparison()

    def comparison(self) -> ColumnElement[bool]:
        if self.tok.kind != "field":
            self.error("expected a field such as metrics.auc, params.model, tags.team or status")
        field = self.take()
        negate = self.accept("keyword", "not")
        if self.accept("keyword", "in"):
            values = self.value_list()
            column = _column(self.text, field, values[0])
            clause: ColumnElement[bool] = column.in_(values)
            return sa.not_(clause) if negate else clause
        if self.tok.kind == "keyword" and self.tok.text in ("like", "ilike"):
            op = self.take().text
            if self.tok.kind != "string":
                self.error(f"expected a quoted pattern after {op!r}")
            pattern = _unquote(self.take().text)
            column = _column(self.text, field, pattern)
            clause = column.like(pattern) if op == "like" else column.ilike(pattern)
            return sa.not_(clause) if negate else clause
        if negate:
            self.error("expected 'in' or 'like' after 'not'")
        if self.accept("keyword", "is"):
            is_not = self.accept("keyword", "not")
            self.expect("keyword", "null", "'null'")
            column = _column(self.text, field, None)
            nullness: ColumnElement[bool] = column.is_not(None) if is_not else column.is_(None)
            return nullness
        if self.tok.kind != "op":
            self.error(
                f"expected a comparison (=, !=, <, <=, >, >=, in, like, is) after {field.text!r}"
            )
        op = self.take().text
        value = self.value()
        return _OPS[op](_column(self.text, field, value), value)

    def value(self) -> Any:
        token = self.tok
        if token.kind == "number":
            self.take()
            number = float(token.text)
            return int(number) if re.fullmatch(r"-?\d+", token.text) else number
        if token.kind == "string":
            self.take()
            return _unquote(token.text)
        if token.kind == "keyword" and token.text in ("true", "false"):
            self.take()
            return token.text == "true"
        self.error("expected a number, a quoted string, true or false")
        return None  # pragma: no cover - error() raises

    def value_list(self) -> list[Any]:
        self.expect("punct", "(", "'(' to open the list")
        values = [self.value()]
        while self.accept("punct", ","):
            values.append(self.value())
        self.expect("punct", ")", "')' to close the list")
        kinds = {type(v) for v in values}
        if len(kinds) > 1 and not kinds <= {int, float}:
            _fail(self.text, self.tok.pos, "a list mixes numbers and strings")
        return values


def _unquote(text: str) -> str:
    body = text[1:-1]
    return re.sub(r"\\(.)", r"\1", body)


def _split_field(text: str, token: _Token) -> tuple[str, str]:
    if "." not in token.text:
        return "attributes", token.text
    prefix, key = token.text.split(".", 1)
    kind = _PREFIXES.get(prefix.lower())
    if kind is None:
        _fail(
            text,
            token.pos,
            f"unknown field prefix {prefix!r}; use metrics., params., tags. or attributes.",
        )
    if key.startswith("`") and key.endswith("`"):
        key = key[1:-1]
    return kind or "", key


def _column(text: str, token: _Token, sample: Any) -> Any:
    kind, key = _split_field(text, token)
    if kind == "attributes":
        column = ATTRIBUTES.get(key)
        if column is None:
            _fail(
                text,
                token.pos,
                f"unknown attribute {key!r}; valid: {', '.join(sorted(ATTRIBUTES))}",
            )
        return column
    if kind == "metrics":
        if isinstance(sample, str | bool):
            _fail(text, token.pos, f"metric {key!r} is numeric; compare it with a number")
        return (
            sa.select(latest_metrics.c.value)
            .where(latest_metrics.c.run_id == runs.c.id, latest_metrics.c.key == key)
            .scalar_subquery()
        )
    if kind == "params":
        numeric = isinstance(sample, int | float) and not isinstance(sample, bool)
        value_column = params.c.num_value if numeric else params.c.value
        if isinstance(sample, bool):
            return (
                sa.select(params.c.value == ("true" if sample else "false"))
                .where(params.c.run_id == runs.c.id, params.c.key == key)
                .scalar_subquery()
            )
        return (
            sa.select(value_column)
            .where(params.c.run_id == runs.c.id, params.c.key == key)
            .scalar_subquery()
        )
    return (
        sa.select(run_tags.c.value)
        .where(run_tags.c.run_id == runs.c.id, run_tags.c.key == key)
        .scalar_subquery()
    )


def compile_filter(text: str | None) -> ColumnElement[bool] | None:
    """Parse a filter into a SQL condition on ``runs`` (None for an empty filter).

    Raises:
        FilterSyntaxError: the filter is malformed; the message points at the token.
    """
    if text is None or not text.strip():
        return None
    return _Parser(text).parse()


def compile_order_by(clauses: Sequence[str] | None) -> list[Any]:
    """Parse ``["metrics.auc DESC", "start_time"]`` into SQL ordering (nulls last).

    Raises:
        FilterSyntaxError: a clause names an unknown field or direction.
    """
    order: list[Any] = []
    for clause in clauses or []:
        tokens = _tokenize(clause)
        if tokens[0].kind != "field":
            _fail(clause, tokens[0].pos, "expected a field to order by")
        direction = "asc"
        if tokens[1].kind in ("field", "keyword") and tokens[1].text.lower() in ("asc", "desc"):
            direction = tokens[1].text.lower()
            rest = tokens[2]
        else:
            rest = tokens[1]
        if rest.kind != "end":
            _fail(clause, rest.pos, f"expected ASC or DESC, got {rest.text!r}")
        kind, _ = _split_field(clause, tokens[0])
        column = _column(clause, tokens[0], 0.0 if kind in ("metrics", "params") else None)
        ordered = column.desc() if direction == "desc" else column.asc()
        order.append(ordered.nulls_last())
    return order
