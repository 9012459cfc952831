"""Render the JSON templates of ``realm-templates/``.

Templates are plain Keycloak representations with ``{{ name }}`` placeholders. Rendering
works on the parsed JSON, not on text, so values are never re-parsed as JSON (no injection
through a display name), and a string that is exactly one placeholder may become a list or
an object (``"redirectUris": "{{ apsis_one_redirect_uris }}"``). A placeholder without a
value is an error that names the template and the placeholder.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

from apsis_core.errors import InvalidInput

PLACEHOLDER = re.compile(r"\{\{\s*([a-z_][a-z0-9_]*)\s*\}\}")
WHOLE = re.compile(r"^\{\{\s*([a-z_][a-z0-9_]*)\s*\}\}$")


def load(templates_dir: Path, name: str) -> Any:
    path = templates_dir / name
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"cannot read template {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise InvalidInput(f"template {path} is not UTF-8 text") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"template {path} is not valid JSON: line {exc.lineno}: {exc.msg}") from None


def placeholders(template: Any) -> set[str]:
    """Every placeholder name a template uses (keys and values)."""
    found: set[str] = set()
    if isinstance(template, str):
        found.update(PLACEHOLDER.findall(template))
    elif isinstance(template, list):
        for item in template:
            found |= placeholders(item)
    elif isinstance(template, dict):
        for key, item in template.items():
            found.update(PLACEHOLDER.findall(key))
            found |= placeholders(item)
    return found


def render(template: Any, values: dict[str, Any], name: str = "template") -> Any:
    missing = sorted(placeholders(template) - values.keys())
    if missing:
        raise InvalidInput(f"{name} uses placeholder {{{{ {missing[0]} }}}} which has no value")
    return compiled(template)(values)


def _as_text(value: Any) -> str:
    if isinstance(value, (list, dict)):
        raise InvalidInput("a list or object placeholder must be a whole JSON string by itself")
    return str(value)


def render_file(templates_dir: Path, name: str, values: dict[str, Any]) -> Any:
    """``name`` rendered with ``values``. The file is read and parsed once per version of it
    (a plan over 10,000 accounts renders three templates per account)."""
    path = templates_dir / name
    try:
        version = path.stat().st_mtime_ns
    except OSError:
        version = None  # let load() say what is wrong
    renderer, used = _parsed(templates_dir, name, version)
    missing = sorted(used - values.keys())
    if missing:
        raise InvalidInput(f"{name} uses placeholder {{{{ {missing[0]} }}}} which has no value")
    return renderer(values)


@lru_cache(maxsize=64)
def _parsed(templates_dir: Path, name: str, version: int | None) -> tuple[Renderer, frozenset[str]]:
    """A template compiled (``compiled``) and its placeholders."""
    template = load(templates_dir, name)
    return compiled(template), frozenset(placeholders(template))


Renderer = Callable[[dict[str, Any]], Any]


def compiled(template: Any) -> Renderer:
    """``template`` rendered, as a function of the values, with the placeholders found
    once: a plan renders three templates per account (30,000 times at 10,000 accounts), and
    matching every string of them against the placeholder patterns each time was most of a
    render. Lists and objects are built anew on every call (callers change what they get)."""
    if isinstance(template, str):
        whole = WHOLE.match(template)
        if whole:
            name = whole.group(1)
            return lambda values: values[name]
        if not PLACEHOLDER.search(template):
            return lambda values: template
        return lambda values: PLACEHOLDER.sub(lambda m: _as_text(values[m.group(1)]), template)
    if isinstance(template, list):
        items = [compiled(item) for item in template]
        return lambda values: [item(values) for item in items]
    if isinstance(template, dict):
        pairs = [(_compiled_key(key), compiled(item)) for key, item in template.items()]
        return lambda values: {key(values): item(values) for key, item in pairs}
    return lambda values: template


def _compiled_key(key: str) -> Renderer:
    if not PLACEHOLDER.search(key):
        return lambda values: key
    return lambda values: PLACEHOLDER.sub(lambda m: _as_text(values[m.group(1)]), key)
