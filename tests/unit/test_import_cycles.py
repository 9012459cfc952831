"""No import circles among the project's packages (the graph is read with ``ast``:
``tests/import_graph.py``; ``python tests/import_graph.py`` prints any circle)."""

from __future__ import annotations

import pytest

from tests import import_graph

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def edges() -> dict[str, set[str]]:
    return import_graph.graph()


def test_no_module_of_the_project_imports_itself_round_a_circle(edges: dict[str, set[str]]):
    assert import_graph.cycles(edges) == []


def test_the_graph_sees_imports_inside_functions_under_type_checking_and_relative_ones(edges: dict[str, set[str]]):
    assert "apsis_core.redaction" in edges["apsis_core.errors"]  # module level
    assert "sync.outbox" in edges["sync.domain_check"]  # under TYPE_CHECKING
    assert "devenv.entra_emulator.admin" in edges["devenv.entra_emulator.controls"]  # relative
    assert "apsis_core.settings" in edges["apsis_core.cli"]  # inside a function
    assert edges["apsis_core.redaction"] == set(), "the scrubber imports nothing of ours"


def test_a_circle_is_found_whatever_its_length():
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}, "f": {"g"}, "g": {"f"}}
    assert import_graph.cycles(edges) == [["a", "b", "c"], ["f", "g"]]
