"""Okta's SCIM-style expressions for ``search`` and ``filter``: ``lastUpdated gt "2024-…"``,
``status eq "DEPROVISIONED" and profile.login sw "ann"``, ``eventType eq "user.lifecycle.suspend"``.

Operators ``eq ne gt ge lt le sw co pr``, ``and`` / ``or`` (``and`` binds tighter), parentheses,
``not`` is refused. Values are double-quoted strings, ``true``/``false``/``null`` or numbers.
Timestamps compare as instants. A malformed expression raises ``QueryError`` (Okta: 400 E0000031).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any

_TOKEN = re.compile(r'\s*(?:(\()|(\))|"((?:[^"\\]|\\.)*)"|([A-Za-z_][A-Za-z0-9_.]*)|(-?\d+(?:\.\d+)?))')
_OPERATORS = {"eq", "ne", "gt", "ge", "lt", "le", "sw", "co", "pr"}
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")

Predicate = Callable[[Callable[[str], list[Any]]], bool]


class QueryError(ValueError):
    pass


def _tokens(text: str) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    pos = 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise QueryError(f"Invalid search criteria near {text[pos : pos + 20]!r}")
        pos = match.end()
        lpar, rpar, string, word, number = match.groups()
        if lpar:
            out.append(("(", None))
        elif rpar:
            out.append((")", None))
        elif string is not None:
            out.append(("value", re.sub(r"\\(.)", r"\1", string)))
        elif number is not None:
            out.append(("value", float(number) if "." in number else int(number)))
        elif word in ("true", "false"):
            out.append(("value", word == "true"))
        elif word == "null":
            out.append(("value", None))
        else:
            out.append(("word", word))
    return out


def parse(text: str, attributes: set[str] | None = None) -> Predicate:
    """A predicate over a getter (attribute path -> its values). ``attributes`` limits which
    attributes may appear (the Users API's ``filter`` knows only a few)."""
    tokens = _tokens(text)
    if not tokens:
        raise QueryError("Invalid search criteria: empty expression")
    pos = 0

    def peek() -> tuple[str, Any] | None:
        return tokens[pos] if pos < len(tokens) else None

    def take() -> tuple[str, Any]:
        nonlocal pos
        if pos >= len(tokens):
            raise QueryError("Invalid search criteria: unexpected end of expression")
        pos += 1
        return tokens[pos - 1]

    def expr() -> Predicate:
        left = conj()
        while peek() == ("word", "or"):
            take()
            right = conj()
            left = (lambda a, b: lambda get: a(get) or b(get))(left, right)
        return left

    def conj() -> Predicate:
        left = atom()
        while peek() == ("word", "and"):
            take()
            right = atom()
            left = (lambda a, b: lambda get: a(get) and b(get))(left, right)
        return left

    def atom() -> Predicate:
        kind, value = take()
        if kind == "(":
            inner = expr()
            if take()[0] != ")":
                raise QueryError("Invalid search criteria: missing ')'")
            return inner
        if kind != "word" or value in ("and", "or", "not"):
            raise QueryError(f"Invalid search criteria: unexpected {value!r}")
        attr = value
        if attributes is not None and attr not in attributes:
            raise QueryError(f"Invalid filter: {attr} cannot be used in this expression")
        op_kind, op = take()
        if op_kind != "word" or op.lower() not in _OPERATORS:
            raise QueryError(f"Invalid search criteria: unknown operator {op!r}")
        op = op.lower()
        if op == "pr":
            return lambda get: any(v not in (None, "") for v in get(attr))
        val_kind, operand = take()
        if val_kind != "value":
            raise QueryError(f"Invalid search criteria: {attr} {op} needs a value")
        return lambda get: any(_compare(v, op, operand) for v in get(attr))

    predicate = expr()
    if pos != len(tokens):
        raise QueryError(f"Invalid search criteria: unexpected {tokens[pos][1]!r}")
    return predicate


def _instant(value: Any) -> dt.datetime | None:
    if isinstance(value, str) and _TIMESTAMP.match(value):
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return None


def _compare(actual: Any, op: str, operand: Any) -> bool:
    if actual is None:
        return op == "ne" and operand is not None
    left: Any = _instant(actual)
    right: Any = _instant(operand)
    if left is None or right is None:
        left, right = actual, operand
        if isinstance(left, str) and isinstance(right, str) and op in ("eq", "ne", "sw", "co"):
            left, right = left.lower(), right.lower()  # string matching is case-insensitive
    try:
        if op == "eq":
            return bool(left == right)
        if op == "ne":
            return bool(left != right)
        if op == "sw":
            return isinstance(left, str) and left.startswith(str(right))
        if op == "co":
            return isinstance(left, str) and str(right) in left
        if op == "gt":
            return bool(left > right)
        if op == "ge":
            return bool(left >= right)
        if op == "lt":
            return bool(left < right)
        if op == "le":
            return bool(left <= right)
    except TypeError:
        return False
    return False


def getter(doc: dict[str, Any]) -> Callable[[str], list[Any]]:
    """Attribute paths over a JSON document; a list on the way (``target.id``) fans out."""

    def get(path: str) -> list[Any]:
        values: list[Any] = [doc]
        for part in path.split("."):
            nxt: list[Any] = []
            for value in values:
                if isinstance(value, list):
                    nxt.extend(v.get(part) for v in value if isinstance(v, dict))
                elif isinstance(value, dict):
                    nxt.append(value.get(part))
            values = nxt
        flat: list[Any] = []
        for value in values:
            flat.extend(value if isinstance(value, list) else [value])
        return flat

    return get
