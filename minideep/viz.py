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

__all__ = ["plot_history", "plot_confusion_matrix"]


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

    fig, axes = plt.subplots(1, n_panels, figsize=(4.2 * n_panels, 3.4), squeeze=False)
    axes = axes[0]
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
