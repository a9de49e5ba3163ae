"""Training plots: learning curves and confusion matrices (matplotlib, imported lazily).

Each function builds and returns a matplotlib ``Figure``, and saves it as a PNG when
given a ``path``. Without a display (a server, CI) the non-interactive "Agg" backend is
selected, so the functions work anywhere. In a notebook a returned figure shows once
as the cell's result; assign it (``fig = plot_history(h)``) to keep it quiet.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

import numpy as np

__all__ = ["plot_history", "plot_confusion_matrix", "draw_graph", "graph_dot", "DotGraph"]


def _pyplot():
    """``matplotlib.pyplot``, on the Agg backend when there is nowhere to show figures."""
    import matplotlib

    headless = (
        sys.platform.startswith("linux")
        and not os.environ.get("DISPLAY")
        and not os.environ.get("WAYLAND_DISPLAY")
    )
    in_notebook = "ipykernel" in sys.modules
    if headless and not in_notebook and "matplotlib.pyplot" not in sys.modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _finish(plt, fig, path):
    fig.tight_layout()
    if path is not None:
        fig.savefig(os.fspath(path), dpi=120)
    backend = plt.get_backend().lower()
    if backend == "agg" or "inline" in backend:
        # Non-interactive: release pyplot's reference so figures don't pile up; the
        # returned Figure can still be saved or displayed.
        plt.close(fig)
    return fig


def plot_history(history: Mapping[str, Sequence[float]], path=None, title: str | None = None):
    """Learning curves of a :class:`~minideep.train.History` (or any dict of lists).

    One panel for the loss and one per metric found (``train_<name>`` with its
    ``val_<name>`` when present), plus the learning rate when it changed. The x axis
    counts epochs from 1. Returns the Figure; saves a PNG at ``path`` if given.
    """
    plt = _pyplot()
    names = []
    for key in history:
        if key.startswith("train_"):
            names.append(key[len("train_") :])
    lrs = list(history.get("lr", []))
    show_lr = len(set(lrs)) > 1
    n_panels = len(names) + int(show_lr)
    if n_panels == 0:
        raise ValueError(f"nothing to plot: the history has no train_* records ({list(history)})")

    n_cols = min(3, n_panels)
    n_rows = -(-n_panels // n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(4.2 * n_cols, 3.4 * n_rows), squeeze=False)
    axes = axes.ravel()
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    axes = axes[:n_panels]
    for ax, name in zip(axes, names):
        for split, style in (("train", "-o"), ("val", "--s")):
            values = history.get(f"{split}_{name}")
            if values:
                epochs = np.arange(1, len(values) + 1)
                ax.plot(epochs, values, style, markersize=3, label=split)
        ax.set_title(name)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    if show_lr:
        ax = axes[-1]
        ax.plot(np.arange(1, len(lrs) + 1), lrs, "-o", markersize=3, color="tab:green")
        ax.set_title("learning rate")
        ax.set_xlabel("epoch")
        if min(lrs) > 0 and max(lrs) / min(lrs) > 20:
            ax.set_yscale("log")
        ax.grid(alpha=0.3)
    if title:
        fig.suptitle(title)
    return _finish(plt, fig, path)


def plot_confusion_matrix(
    cm,
    class_names: Sequence[str] | None = None,
    path=None,
    normalize: bool = False,
    title: str = "confusion matrix",
):
    """Draw a confusion matrix ``cm[true, predicted]`` (see ``metrics.confusion_matrix``).

    Each cell shows its count (or, with ``normalize``, the fraction of its row: the
    recall of that true class). Returns the Figure; saves a PNG at ``path`` if given.
    """
    plt = _pyplot()
    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"a confusion matrix is square (C, C), got shape {cm.shape}")
    n = cm.shape[0]
    if class_names is None:
        class_names = [str(i) for i in range(n)]
    if len(class_names) != n:
        raise ValueError(f"{len(class_names)} class names for a {n}x{n} confusion matrix")
    values = cm.astype(np.float64)
    if normalize:
        rows = values.sum(axis=1, keepdims=True)
        values = np.divide(values, rows, out=np.zeros_like(values), where=rows > 0)

    size = max(3.5, 0.6 * n + 2)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(values, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(n), labels=class_names, rotation=45, ha="right")
    ax.set_yticks(range(n), labels=class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    threshold = values.max() / 2 if values.size else 0
    for i in range(n):
        for j in range(n):
            text = f"{values[i, j]:.2f}" if normalize else f"{int(cm[i, j])}"
            color = "white" if values[i, j] > threshold else "black"
            ax.text(j, i, text, ha="center", va="center", color=color, fontsize=9)
    return _finish(plt, fig, path)


# ---------------------------------------------------------------------------- graphs
# The computational graph as Graphviz DOT text, built in pure Python. Rendering it
# needs Graphviz's ``dot`` program; without it the DOT text is still there to read.

_SMALL = 6  # tensors with at most this many elements show their values


def _dot_quote(text: str) -> str:
    """A DOT string literal; ``\\n`` in ``text`` becomes a centred line break."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _values(array) -> str:
    from .backend import as_numpy

    values = as_numpy(array)
    if values.size > _SMALL:
        return f"norm {float(np.linalg.norm(values.astype(np.float64))):.4g}"
    numbers = [f"{float(v):.4g}" for v in values.reshape(-1)]
    return numbers[0] if values.ndim == 0 else "[" + ", ".join(numbers) + "]"


def _tensor_label(t, name: str | None, show_data: bool, show_grad: bool) -> str:
    shape = "(" + ", ".join(str(n) for n in t.shape) + ("," if t.ndim == 1 else "") + ")"
    lines = [name] if name else []
    lines.append(f"{shape} {t.dtype}")
    if show_data:
        lines.append("data " + _values(t.data))
    if show_grad and t.grad is not None:
        lines.append("grad " + _values(t.grad.data))
    return "\n".join(lines)


def _op_label(node) -> str:
    """``Mul`` or, when the op got non-tensor arguments, ``Pow`` over ``(·, 2)``."""
    from .tensor import Tensor

    name = type(node).__name__
    if all(isinstance(a, Tensor) for a in node.inputs):
        return name
    args = []
    for a in node.inputs:
        text = "·" if isinstance(a, Tensor) else repr(a)
        args.append(text if len(text) <= 16 else text[:13] + "...")
    return name + "\n(" + ", ".join(args) + ")"


def graph_dot(tensor, names=None, show_data: bool = False, show_grad: bool = False) -> str:
    """The graph that produced ``tensor``, as Graphviz DOT text (see :func:`draw_graph`)."""
    from .tensor import Tensor

    if not isinstance(tensor, Tensor):
        raise TypeError(f"draw_graph expects a Tensor, got {type(tensor).__name__}")
    pairs = names.items() if isinstance(names, Mapping) else (names or ())
    label_of = {id(t): str(name) for name, t in pairs}

    lines = [
        "digraph minideep {",
        "  rankdir=TB;",
        '  node [fontname="Helvetica", fontsize=10];',
        '  edge [color="#555555"];',
    ]
    tensors = {id(tensor): (tensor, "t0")}  # id -> (Tensor, DOT name), in discovery order
    ops: dict[int, str] = {}  # id(Function node) -> DOT name
    edges: list[tuple[str, str]] = []
    stack = [tensor]
    while stack:
        t = stack.pop()
        node = t._ctx
        if node is None:
            continue
        drawn = id(node) in ops  # a multi-output node reached from another output
        op = ops.setdefault(id(node), f"op{len(ops)}")
        edges.append((op, tensors[id(t)][1]))
        if drawn:
            continue
        lines.append(
            f"  {op} [label={_dot_quote(_op_label(node))}, shape=ellipse, style=filled, "
            f'fillcolor="#eeeeee"];'
        )
        for a in node.inputs:
            if not isinstance(a, Tensor):
                continue
            if id(a) not in tensors:
                tensors[id(a)] = (a, f"t{len(tensors)}")
                stack.append(a)
            edges.append((tensors[id(a)][1], op))

    for key, (t, dot_name) in tensors.items():
        name = label_of.get(key, "output" if t is tensor and t._ctx is not None else None)
        label = _dot_quote(_tensor_label(t, name, show_data, show_grad))
        if t._ctx is None and t.requires_grad:  # a leaf that receives a gradient
            style = 'style="filled,bold", fillcolor="#cfe2ff"'
        elif t._ctx is None:  # a constant
            style = 'style=dashed, color="#888888", fontcolor="#555555"'
        elif t is tensor:
            style = 'style=filled, fillcolor="#d4edda"'
        else:
            style = "style=solid"
        lines.append(f"  {dot_name} [label={label}, shape=box, {style}];")
    for a, b in edges:  # x * x gives two edges x -> Mul: x is used twice
        lines.append(f"  {a} -> {b};")
    lines.append("}")
    return "\n".join(lines) + "\n"


class DotGraph:
    """DOT text that shows itself as SVG in Jupyter when Graphviz's ``dot`` is installed.

    ``.source`` is the DOT text (``str(graph)`` too); ``pipe(format)`` renders it with
    ``dot``. A stand-in for ``graphviz.Source`` when that package is not installed.
    """

    def __init__(self, source: str):
        self.source = source

    def __str__(self) -> str:
        return self.source

    def __repr__(self) -> str:
        n_lines = self.source.count("\n")
        return f"<DotGraph: {n_lines} lines of DOT; print(graph) shows them>"

    def pipe(self, format: str = "svg") -> bytes:
        """The graph rendered by ``dot -T<format>`` (svg, png, pdf, ...)."""
        import shutil
        import subprocess

        dot = shutil.which("dot")
        if dot is None:
            raise RuntimeError(
                "rendering needs Graphviz's 'dot' program, which is not on PATH "
                "(install Graphviz, e.g. apt-get install graphviz); print(graph) shows the DOT text"
            )
        done = subprocess.run(
            [dot, f"-T{format}"], input=self.source.encode(), capture_output=True, timeout=60
        )
        if done.returncode != 0:
            raise RuntimeError(f"dot -T{format} failed: {done.stderr.decode(errors='replace')}")
        return done.stdout

    def _repr_svg_(self) -> str | None:
        import shutil

        if shutil.which("dot") is None:
            return None  # Jupyter falls back to the text repr
        return self.pipe("svg").decode()


def draw_graph(tensor, names=None, show_data: bool = False, show_grad: bool = False):
    """Draw the computational graph that produced ``tensor``.

    Walks from ``tensor`` back through the :class:`~minideep.autograd.Function` nodes that
    made it. Tensors are boxes labelled with their shape and dtype (leaves that require
    grad in blue, constants dashed, ``tensor`` itself in green); ops are ellipses named by
    their Function class, with their non-tensor arguments when they have some (tensors
    shown as ``·``); edges run input -> op -> output.

    names: ``{"name": tensor}`` or ``(name, tensor)`` pairs (``model.named_parameters()``)
    to label tensors. show_data / show_grad: add the values (or, for tensors of more
    than six elements, the norm) of ``.data`` / ``.grad``.

    Returns ``graphviz.Source`` when the ``graphviz`` package is installed, otherwise a
    :class:`DotGraph`; both show as SVG in Jupyter when Graphviz's ``dot`` program is
    installed, and both keep the DOT text in ``.source``.
    """
    source = graph_dot(tensor, names, show_data=show_data, show_grad=show_grad)
    try:
        import graphviz
    except ImportError:
        return DotGraph(source)
    return graphviz.Source(source)
