"""The accounts file's YAML walk gives exactly what PyYAML's safe loader gives, errors included."""

from __future__ import annotations

import datetime

import pytest
import yaml

from provisioning import yaml_load

pytestmark = pytest.mark.unit

DOCUMENTS = [
    "",
    "# only a comment\n",
    "version: 1\naccounts: []\n",
    "version: 1\naccounts:\n  - id: acme\n    secret_expires: 2031-03-31\n    domains: [a.example, b.example]\n"
    "    it_contact: {name: Ivy, email: ivy@a.example}\n    pilot: []\n    stage: live\n    tenant_id: ~\n",
    "a: yes\nb: No\nc: 0x1F\nd: 1.5e3\ne: .inf\nf: null\ng: '2031-03-31'\nh: 2031-03-31T10:00:00Z\ni: 012\n",
    "base: &b {name: x, list: [1, 2]}\ncopy: *b\nlist: &l [a, b]\nagain: *l\n",
    "base: &b {name: x}\nmerged:\n  <<: *b\n  extra: 1\n",
    "s: !!set {a, b}\no: !!omap [{a: 1}, {b: 2}]\np: !!pairs [{a: 1}]\nbin: !!binary aGVsbG8=\n",
    "t: !!str 123\nn: !!int '7'\nf: !!float '1'\n",
    "? [a, b]\n: unhashable key\n",
    "=: value key\n",
    "dup: 1\ndup: 2\n",
    "- 1\n- [2, 3]\n- {a: b}\n",
    "just a string\n",
    "self: &s [*s]\n",
]


@pytest.mark.parametrize("text", DOCUMENTS)
def test_the_walk_builds_what_the_safe_loader_builds(text: str):
    try:
        expected = yaml.load(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        with pytest.raises(type(exc)):
            yaml_load.safe_load(text)
        return
    got = yaml_load.safe_load(text)
    if text.startswith("self:"):  # a list holding itself: compare the shape
        assert got["self"][0] is got["self"]
        return
    assert got == expected and type(got) is type(expected)


def test_aliases_are_one_object_as_with_pyyaml():
    got = yaml_load.safe_load("base: &b {name: x}\ncopy: *b\n")
    assert got["copy"] is got["base"]
    assert yaml_load.safe_load("d: 2031-03-31\n")["d"] == datetime.date(2031, 3, 31)


@pytest.mark.parametrize(
    "text", ["a: [1, 2\n", "a: b\n---\nc: d\n", "a: *missing\n", "a: !!python/object:os.system x\n"]
)
def test_bad_documents_raise_pyyamls_errors(text: str):
    with pytest.raises(yaml.YAMLError):
        yaml.load(text, Loader=yaml.SafeLoader)
    with pytest.raises(yaml.YAMLError):
        yaml_load.safe_load(text)


@pytest.mark.parametrize("depth", [400, 900, 3000])
def test_deep_nesting_gives_what_the_c_loader_gives_not_a_recursion_error(depth: int):
    """The walk is recursive, libyaml's composer and PyYAML's constructor are not: nesting past
    Python's recursion limit goes to PyYAML's C loader (a value, or libyaml's 'maximum nesting
    depth' error), never a RecursionError (which the pure-Python loader itself would raise)."""
    text = "a: " + "[" * depth + "]" * depth + "\n"
    try:
        expected = yaml.load(text, Loader=yaml.CSafeLoader)
    except yaml.YAMLError as exc:
        assert "nesting depth" in str(exc)
        with pytest.raises(yaml.YAMLError, match="nesting depth"):
            yaml_load.safe_load(text)
        return
    assert yaml_load.safe_load(text) == expected
