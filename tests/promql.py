"""Reading PromQL just enough to find the metric selectors of an expression (the production
lane's Prometheus test queries each selector of monitoring/'s rules)."""

from __future__ import annotations

import re

NOT_METRICS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset"}

Matcher = tuple[str, str, str]


def selectors(expr: str) -> list[tuple[str, list[Matcher]]]:
    """The vector selectors of a PromQL expression: (metric, [(label, op, value)])."""
    text = re.sub(r"\b(by|without|on|ignoring)\s*\([^)]*\)", " ", expr)
    text = re.sub(r"\[[^\]]*\]", " ", text)
    found = []
    for m in re.finditer(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{[^}]*\})?(\s*\()?", text):
        name, braces, call = m.group(1), m.group(2), m.group(3)
        if call or name in NOT_METRICS or (m.start() > 0 and text[m.start() - 1] in "\"'"):
            continue
        matchers = re.findall(r'(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"', braces or "")
        found.append((name, matchers))
    return found


def render(name: str, matchers: list[Matcher]) -> str:
    """The selector as PromQL (``name`` alone without matchers: ``name{}`` is not valid)."""
    if not matchers:
        return name
    return name + "{" + ",".join(f'{label}{op}"{value}"' for label, op, value in matchers) + "}"
