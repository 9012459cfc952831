"""YAML to Python objects, faster for large files, the same objects as PyYAML's safe loader.

PyYAML's C loader (``CSafeLoader``) parses and composes in C but constructs in Python, node by
node through generators, which is most of its time on a large accounts file (bench/README.md,
"Figures behind the code"). Here the C loader composes the node tree and one recursive walk builds the
plain mappings, sequences and strings that make up almost every node of an accounts file;
every other scalar (int, date, bool, null, ...) is still built by PyYAML's own
``SafeConstructor`` from the tag PyYAML's resolver gave it, so values are identical. Anything
the walk does not build itself (merge keys ``<<``, a key ``=``, explicitly tagged collections such as
``!!set``, a key that cannot be a dict key) sends the whole document to the ordinary loader,
which also raises PyYAML's own errors for it; so does nesting deeper than this recursive walk
can go (a few hundred levels), which libyaml composes and PyYAML constructs without recursion.
"""

from __future__ import annotations

from typing import Any

import yaml

STR = "tag:yaml.org,2002:str"
SEQ = "tag:yaml.org,2002:seq"
MAP = "tag:yaml.org,2002:map"
MERGE = "tag:yaml.org,2002:merge"
VALUE = "tag:yaml.org,2002:value"  # a key `=`: PyYAML turns it into the string "=" while merging


class _Unusual(Exception):
    """The document needs PyYAML's own constructor."""


def safe_load(text: str) -> Any:
    """``yaml.load(text, Loader=SafeLoader)``, with libyaml when PyYAML has it."""
    loader_class = getattr(yaml, "CSafeLoader", None)
    if loader_class is None:
        return yaml.load(text, Loader=yaml.SafeLoader)  # noqa: S506 - the safe loader
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        try:
            return _build(node, loader, {})
        except (_Unusual, RecursionError):  # deep nesting: PyYAML's constructor is not recursive
            pass
    finally:
        loader.dispose()
    return yaml.load(text, Loader=loader_class)  # noqa: S506 - the safe loader, C


def _build(node: yaml.Node, constructor: Any, built: dict[int, Any]) -> Any:
    known = built.get(id(node))  # an alias: the same object, as PyYAML gives it
    if known is not None:
        return known
    if isinstance(node, yaml.ScalarNode):
        if node.tag == STR:
            return node.value
        value = constructor.construct_object(node, deep=True)
    elif isinstance(node, yaml.SequenceNode):
        if node.tag != SEQ:
            raise _Unusual
        value = []
        built[id(node)] = value
        value.extend(_build(item, constructor, built) for item in node.value)
    elif isinstance(node, yaml.MappingNode):
        if node.tag != MAP:
            raise _Unusual
        value = {}
        built[id(node)] = value
        for key_node, value_node in node.value:
            if key_node.tag in (MERGE, VALUE):
                raise _Unusual
            key = _build(key_node, constructor, built)
            try:
                value[key] = _build(value_node, constructor, built)
            except TypeError:  # an unhashable key: PyYAML's error, from its own path
                raise _Unusual from None
    else:
        raise _Unusual
    built[id(node)] = value
    return value
