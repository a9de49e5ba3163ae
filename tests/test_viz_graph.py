"""md.viz.draw_graph: the computational graph as DOT text, with or without Graphviz."""

import re
import shutil
import sys

import numpy as np
import pytest

import minideep as md
from minideep import viz


def _nodes_and_edges(source: str):
    """``{dot name: label}`` and ``[(label from, label to)]`` parsed from DOT text."""
    labels = dict(re.findall(r'^\s*(\w+) \[label="((?:[^"\\]|\\.)*)"', source, re.M))
    edges = re.findall(r"^\s*(\w+) -> (\w+);", source, re.M)
    return labels, [(labels[a], labels[b]) for a, b in edges]


def _first_line(label: str) -> str:
    return label.split("\\n")[0]


@pytest.fixture
def no_graphviz_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "graphviz", None)  # `import graphviz` raises ImportError


@pytest.fixture
def no_dot_program(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name, *args, **kwargs: None)


def _small_graph():
    x = md.tensor([1.0, 2.0, 3.0], requires_grad=True)
    w = md.tensor(0.5, requires_grad=True)
    y = (x * w + 1.0).sum()
    return x, w, y


def test_dot_text_names_every_op():
    _, _, y = _small_graph()
    labels, _ = _nodes_and_edges(viz.draw_graph(y).source)
    ops = {_first_line(label) for label in labels.values()}
    assert {"Mul", "Add", "Sum"} <= ops


def test_edges_run_input_to_op_to_output():
    x, w, y = _small_graph()
    _, edges = _nodes_and_edges(viz.draw_graph(y, names={"x": x, "w": w}).source)
    edges = {(_first_line(a), _first_line(b)) for a, b in edges}
    assert ("x", "Mul") in edges
    assert ("w", "Mul") in edges
    assert ("Mul", "(3,) float32") in edges
    assert ("(3,) float32", "Add") in edges
    assert ("Sum", "output") in edges


def test_reused_tensor_has_one_edge_per_use():
    x = md.tensor([1.0, 2.0], requires_grad=True)
    source = viz.draw_graph((x * x).sum(), names={"x": x}).source
    _, edges = _nodes_and_edges(source)
    assert sum(1 for a, b in edges if _first_line(a) == "x" and b == "Mul") == 2


@pytest.mark.parametrize(
    "names_of", [lambda x, w: {"x": x, "w": w}, lambda x, w: [("x", x), ("w", w)]]
)
def test_names_label_tensors(names_of):
    x, w, y = _small_graph()
    labels, _ = _nodes_and_edges(viz.draw_graph(y, names=names_of(x, w)).source)
    assert "x\\n(3,) float32" in labels.values()
    assert "w\\n() float32" in labels.values()


def test_leaves_that_require_grad_are_highlighted_and_constants_dashed():
    x = md.tensor([1.0, 2.0], requires_grad=True)
    c = md.tensor([3.0, 4.0])
    source = viz.draw_graph((x * c).sum(), names={"x": x, "c": c}).source
    x_line = next(line for line in source.splitlines() if 'label="x\\n' in line)
    c_line = next(line for line in source.splitlines() if 'label="c\\n' in line)
    assert "filled" in x_line and "fillcolor" in x_line
    assert "dashed" in c_line


def test_python_number_arguments_appear_on_the_op():
    x = md.tensor([1.0, 2.0], requires_grad=True)
    labels, _ = _nodes_and_edges(viz.draw_graph(x**2).source)
    assert "Pow\\n(·, 2)" in labels.values()


def test_show_grad_and_show_data_add_values():
    x, w, y = _small_graph()
    y.backward()
    source = viz.draw_graph(y, names={"x": x, "w": w}, show_data=True, show_grad=True).source
    labels, _ = _nodes_and_edges(source)
    assert "w\\n() float32\\ndata 0.5\\ngrad 6" in labels.values()
    assert "x\\n(3,) float32\\ndata [1, 2, 3]\\ngrad [0.5, 0.5, 0.5]" in labels.values()


def test_large_tensors_show_a_norm_instead_of_values():
    x = md.tensor(np.full(10, 2.0), requires_grad=True)
    labels, _ = _nodes_and_edges(viz.draw_graph(x.sum(), show_data=True).source)
    assert any(label.endswith("data norm 6.325") for label in labels.values())


def test_graph_of_one_leaf_is_a_single_box():
    x = md.tensor([1.0], requires_grad=True)
    labels, edges = _nodes_and_edges(viz.draw_graph(x).source)
    assert len(labels) == 1 and edges == []


def test_deep_graph_needs_no_recursion():
    x = md.tensor([1.0], requires_grad=True)
    y = x
    for _ in range(3000):
        y = y + 1.0
    labels, edges = _nodes_and_edges(viz.draw_graph(y).source)
    assert len(edges) == 2 * 3000


def test_non_tensor_is_refused():
    with pytest.raises(TypeError, match="expects a Tensor"):
        viz.draw_graph(np.ones(3))


def test_without_graphviz_package_returns_dot_graph(no_graphviz_package):
    _, _, y = _small_graph()
    graph = viz.draw_graph(y)
    assert isinstance(graph, viz.DotGraph)
    assert str(graph) == graph.source
    assert graph.source.startswith("digraph")


def test_without_dot_program_there_is_no_svg_and_pipe_explains(no_graphviz_package, no_dot_program):
    _, _, y = _small_graph()
    graph = viz.draw_graph(y)
    assert graph._repr_svg_() is None
    with pytest.raises(RuntimeError, match="dot"):
        graph.pipe("svg")


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_with_dot_program_renders_svg(no_graphviz_package):
    _, _, y = _small_graph()
    assert "<svg" in viz.draw_graph(y)._repr_svg_()


def test_with_graphviz_package_returns_its_source_object():
    graphviz = pytest.importorskip("graphviz")
    _, _, y = _small_graph()
    graph = viz.draw_graph(y)
    assert isinstance(graph, graphviz.Source)
    assert graph.source == viz.graph_dot(y)
