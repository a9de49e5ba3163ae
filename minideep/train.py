"""The training loop: ``fit``, ``evaluate``, ``predict`` and the ``History`` they record.

One training step is the five lines every deep-learning program repeats::

    output = model(inputs)              # forward: build the graph
    loss = loss_fn(output, targets)     # a scalar Tensor
    optimizer.zero_grad()               # forget the previous step's gradients
    loss.backward()                     # fill p.grad for every parameter
    optimizer.step()                    # move every parameter against its gradient

``fit`` repeats it over every batch of a loader for a number of epochs, and around it
keeps the bookkeeping: train/eval mode, devices, a progress bar, per-epoch loss and
metrics, validation, the learning-rate schedule, Ctrl-C and a diverging loss.

A *loader* is any iterable of ``(inputs, targets)`` batches - ``md.data.DataLoader``, a
list of pairs, a generator - whose items are Tensors or numpy arrays. ``inputs`` may be
a tuple of several model inputs.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from . import backend
from .autograd import no_grad
from .creation import tensor
from .metrics import METRICS
from .tensor import Tensor

__all__ = ["fit", "evaluate", "predict", "History", "TrainingError"]


class TrainingError(FloatingPointError):
    """Training hit a non-finite loss; ``epoch`` and ``step`` say where (both from 1)."""

    def __init__(self, message: str, epoch: int, step: int, loss: float):
        super().__init__(message)
        self.epoch, self.step, self.loss = epoch, step, loss


class History(dict):
    """Per-epoch records of :func:`fit`: ``history["train_loss"][e]`` is epoch ``e + 1``'s.

    Keys: ``train_loss``, ``train_<metric>`` for each metric, ``val_loss`` and
    ``val_<metric>`` when there is a validation loader, ``lr`` (the rate the epoch used)
    and ``time`` (seconds). Every list has one entry per completed epoch. Keys also read
    as attributes (``history.train_loss``). ``interrupted`` is True when Ctrl-C stopped
    the run early. A History is a plain dict underneath, so ``md.save`` stores it.
    """

    interrupted = False

    def __getattr__(self, name: str):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"History has no record {name!r}; it has {list(self)}") from None

    @property
    def epochs(self) -> int:
        """The number of completed epochs."""
        return len(self.get("train_loss", []))

    def __repr__(self) -> str:
        latest = ", ".join(f"{k}={v[-1]:.4g}" for k, v in self.items() if v)
        return f"History(epochs={self.epochs}{', ' + latest if latest else ''})"


# ---------------------------------------------------------------------------- helpers
def _model_device_and_dtype(model) -> tuple[str, np.dtype | None]:
    for p in model.parameters():
        return p.device, p.dtype
    return "cpu", None


def _to_tensor(x, device: str, float_dtype) -> Tensor:
    """A batch element as a Tensor on ``device``; numpy floats take the model's dtype."""
    if isinstance(x, Tensor):
        return x if x.device == device else x.to(device)
    array = backend.as_numpy(x) if backend.is_cupy_array(x) else np.asarray(x)
    if array.dtype.kind == "f" and float_dtype is not None:
        return tensor(array, dtype=float_dtype, device=device)
    return tensor(array, device=device)


def _split_batch(batch, device: str, float_dtype) -> tuple[tuple, Tensor | None]:
    """``(inputs, targets)`` -> (tuple of input Tensors, target Tensor); a bare input
    (no targets) gives ``targets = None``."""
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        inputs, targets = batch
        targets = _to_tensor(targets, device, None)
    else:
        inputs, targets = batch, None
    return _input_tensors(inputs, device, float_dtype), targets


def _input_tensors(inputs, device: str, float_dtype) -> tuple:
    if isinstance(inputs, (tuple, list)):
        return tuple(_to_tensor(x, device, float_dtype) for x in inputs)
    return (_to_tensor(inputs, device, float_dtype),)


def _predicted_labels(output: Tensor) -> np.ndarray:
    """Class predictions from model outputs, on the host.

    ``(N, C, ...)`` scores with ``C > 1``: the arg-max over dim 1. ``(N,)`` or ``(N, 1)``
    outputs are binary logits: class 1 where the logit is positive.
    """
    scores = output.data
    xp = output.xp
    if scores.ndim >= 2 and scores.shape[1] > 1:
        labels = xp.argmax(scores, axis=1)
    else:
        labels = (scores.reshape(scores.shape[0], -1) > 0).astype(np.int64)
    return backend.as_numpy(labels).reshape(-1)


def _target_labels(targets: Tensor) -> np.ndarray:
    labels = targets.numpy().reshape(-1)
    return labels.astype(np.int64) if labels.dtype.kind == "f" else labels


def _metric_functions(metrics: Sequence[str]) -> dict[str, Callable]:
    if isinstance(metrics, str):
        metrics = (metrics,)
    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ValueError(f"unknown metric(s) {unknown}; available: {sorted(METRICS)}")
    return {m: METRICS[m] for m in metrics}


def _batch_size(inputs: tuple) -> int:
    return int(inputs[0].shape[0]) if inputs[0].ndim else 1


def _loader_length(loader) -> int | None:
    try:
        return len(loader)
    except TypeError:
        return None


def _finite_loss(value: float, epoch: int, step: int) -> None:
    if not math.isfinite(value):
        raise TrainingError(
            f"the loss is {value} at epoch {epoch}, step {step}: training stopped before "
            "that update (try a lower learning rate, clip_grad_norm=, or check the inputs "
            "for nan/inf)",
            epoch,
            step,
            value,
        )


# ---------------------------------------------------------------------------- training
def _train_epoch(
    model, loader, loss_fn, optimizer, device, float_dtype, metric_fns, clip, epoch, bar
) -> dict:
    model.train()
    if clip is not None:
        from .nn.utils import clip_grad_norm_

    total_loss, n_seen, n_correct, n_labels = 0.0, 0, 0, 0
    labels_true, labels_pred = [], []
    start = time.perf_counter()
    for step, batch in enumerate(loader, 1):
        inputs, targets = _split_batch(batch, device, float_dtype)
        output = model(*inputs)
        loss = loss_fn(output, targets)
        value = loss.item()
        _finite_loss(value, epoch, step)

        optimizer.zero_grad()
        loss.backward()
        if clip is not None:
            clip_grad_norm_(model.parameters(), clip)
        optimizer.step()

        n = _batch_size(inputs)
        total_loss += value * n
        n_seen += n
        postfix = {"loss": f"{total_loss / n_seen:.4f}"}
        if metric_fns:
            pred, true = _predicted_labels(output), _target_labels(targets)
            labels_pred.append(pred)
            labels_true.append(true)
            n_correct += int(np.sum(pred == true))
            n_labels += true.size
            postfix["acc"] = f"{n_correct / n_labels:.3f}"
        if bar is not None:
            postfix["samples/s"] = f"{n_seen / (time.perf_counter() - start):.0f}"
            bar.set_postfix(postfix, refresh=False)
            bar.update(1)

    if n_seen == 0:
        raise ValueError("the training loader produced no batches")
    record = {"loss": total_loss / n_seen, "samples/s": n_seen / (time.perf_counter() - start)}
    if metric_fns:
        y_true, y_pred = np.concatenate(labels_true), np.concatenate(labels_pred)
        record.update({name: fn(y_true, y_pred) for name, fn in metric_fns.items()})
    return record


def fit(
    model,
    train_loader: Iterable,
    loss_fn: Callable,
    optimizer,
    epochs: int,
    val_loader: Iterable | None = None,
    scheduler=None,
    device: str | None = None,
    metrics: Sequence[str] = ("accuracy",),
    progress: bool = True,
    clip_grad_norm: float | None = None,
) -> History:
    """Train ``model`` for ``epochs`` epochs and return the per-epoch :class:`History`.

    Args:
        model: a ``md.nn.Module``; it is moved to ``device`` and put in training mode
            for each epoch (``eval`` mode for validation), and left in the mode it had.
        train_loader, val_loader: iterables of ``(inputs, targets)`` batches. A loader
            must be re-iterable (a DataLoader or a list, not a one-shot generator) when
            ``epochs > 1``.
        loss_fn: ``loss_fn(output, targets)`` -> scalar Tensor, e.g.
            ``md.nn.functional.cross_entropy`` or ``md.nn.CrossEntropyLoss()``.
        optimizer: a ``md.optim`` optimiser over the model's parameters.
        scheduler: a ``md.optim.lr_scheduler`` scheduler, stepped once after each epoch.
        device: ``"cpu"`` or ``"cuda"``; ``None`` keeps the model where it is. Batches
            are moved there with ``.to(device)``; numpy float batches take the model's
            parameter dtype.
        metrics: names from ``minideep.metrics.METRICS`` (``"accuracy"``, ``"precision"``,
            ``"recall"``, ``"f1"``) computed over each whole epoch from the arg-max of the
            outputs (class 1 where the logit is positive for one-output models). Use
            ``metrics=()`` for regression.
        progress: show a tqdm bar per epoch with the running loss, accuracy and samples/s.
        clip_grad_norm: if given, rescale the gradients so that their global norm is at
            most this value before each step (``md.nn.utils.clip_grad_norm_``).

    Ctrl-C (``KeyboardInterrupt``) stops training cleanly: the epoch in progress is
    dropped and the history of the completed epochs is returned with
    ``history.interrupted = True``. A nan/inf loss raises :class:`TrainingError` naming
    the epoch and step, before that step updates the parameters.
    """
    metric_fns = _metric_functions(metrics)
    if device is not None:
        device = backend.check_device(device)
        model.to(device)
    device, float_dtype = _model_device_and_dtype(model)
    if device is None:
        device = "cpu"

    history = History(train_loss=[])
    for name in metric_fns:
        history[f"train_{name}"] = []
    if val_loader is not None:
        history["val_loss"] = []
        for name in metric_fns:
            history[f"val_{name}"] = []
    history["lr"] = []
    history["time"] = []

    was_training = model.training
    bar = None
    try:
        for epoch in range(1, epochs + 1):
            start = time.perf_counter()
            lr = optimizer.param_groups[0]["lr"]
            if progress:
                from tqdm import tqdm

                bar = tqdm(
                    total=_loader_length(train_loader),
                    desc=f"epoch {epoch}/{epochs}",
                    unit="batch",
                    dynamic_ncols=True,
                    file=sys.stderr,
                )
            train = _train_epoch(
                model,
                train_loader,
                loss_fn,
                optimizer,
                device,
                float_dtype,
                metric_fns,
                clip_grad_norm,
                epoch,
                bar,
            )
            val = None
            if val_loader is not None:
                val = evaluate(model, val_loader, loss_fn, device=device, metrics=tuple(metric_fns))
            if scheduler is not None:
                scheduler.step()

            history["train_loss"].append(train["loss"])
            for name in metric_fns:
                history[f"train_{name}"].append(train[name])
            if val is not None:
                history["val_loss"].append(val["loss"])
                for name in metric_fns:
                    history[f"val_{name}"].append(val[name])
            history["lr"].append(lr)
            history["time"].append(time.perf_counter() - start)

            if bar is not None:
                summary = {"loss": f"{train['loss']:.4f}"}
                if "accuracy" in train:
                    summary["acc"] = f"{train['accuracy']:.3f}"
                summary["samples/s"] = f"{train['samples/s']:.0f}"
                if val is not None:
                    summary["val_loss"] = f"{val['loss']:.4f}"
                    if "accuracy" in val:
                        summary["val_acc"] = f"{val['accuracy']:.3f}"
                bar.set_postfix(summary)
                bar.close()
                bar = None
    except KeyboardInterrupt:
        history.interrupted = True
        print(
            f"\ntraining interrupted: keeping the {history.epochs} completed epoch(s)",
            file=sys.stderr,
        )
    finally:
        if bar is not None:
            bar.close()
        model.train(was_training)
    return history


# ---------------------------------------------------------------------------- evaluation
def evaluate(
    model,
    loader: Iterable,
    loss_fn: Callable | None = None,
    device: str | None = None,
    metrics: Sequence[str] = ("accuracy",),
) -> dict:
    """Loss and metrics of ``model`` over a whole loader, in eval mode, without a graph.

    Returns ``{"loss": mean loss per sample (only with loss_fn), "<metric>": value, ...,
    "n_samples": N}``. The model is left in the mode it had.
    """
    metric_fns = _metric_functions(metrics)
    if device is not None:
        model.to(backend.check_device(device))
    device, float_dtype = _model_device_and_dtype(model)
    was_training = model.training
    model.eval()
    total_loss, n_seen = 0.0, 0
    labels_true, labels_pred = [], []
    try:
        with no_grad():
            for batch in loader:
                inputs, targets = _split_batch(batch, device, float_dtype)
                output = model(*inputs)
                n = _batch_size(inputs)
                n_seen += n
                if loss_fn is not None:
                    total_loss += loss_fn(output, targets).item() * n
                if metric_fns:
                    labels_pred.append(_predicted_labels(output))
                    labels_true.append(_target_labels(targets))
    finally:
        model.train(was_training)
    if n_seen == 0:
        raise ValueError("the loader produced no batches to evaluate")
    result = {}
    if loss_fn is not None:
        result["loss"] = total_loss / n_seen
    if metric_fns:
        y_true, y_pred = np.concatenate(labels_true), np.concatenate(labels_pred)
        result.update({name: fn(y_true, y_pred) for name, fn in metric_fns.items()})
    result["n_samples"] = n_seen
    return result


def predict(
    model,
    data,
    device: str | None = None,
    batch_size: int = 256,
    return_probs: bool = False,
):
    """Class predictions of ``model`` for ``data``, in eval mode, without a graph.

    ``data`` is a Tensor or numpy array of inputs (split into batches of ``batch_size``)
    or a loader (its batches may be ``(inputs, targets)`` pairs; targets are ignored).
    Returns a numpy int64 array of labels ``(N,)``; with ``return_probs`` also the
    probabilities as a numpy array ``(N, C)`` (softmax of the outputs; for one-output
    models, the sigmoid, shape ``(N,)``).
    """
    if device is not None:
        model.to(backend.check_device(device))
    device, float_dtype = _model_device_and_dtype(model)
    if isinstance(data, Tensor) or isinstance(data, np.ndarray) or backend.is_cupy_array(data):
        batches = (data[i : i + batch_size] for i in range(0, len(data), batch_size))
    else:
        batches = data
    was_training = model.training
    model.eval()
    labels, probs = [], []
    try:
        with no_grad():
            for batch in batches:
                if isinstance(batch, (tuple, list)) and len(batch) == 2:
                    batch = batch[0]
                output = model(*_input_tensors(batch, device, float_dtype))
                labels.append(_predicted_labels(output))
                if return_probs:
                    probs.append(_probabilities(output))
    finally:
        model.train(was_training)
    predictions = np.concatenate(labels) if labels else np.zeros(0, dtype=np.int64)
    if not return_probs:
        return predictions
    return predictions, (np.concatenate(probs) if probs else np.zeros(0))


def _probabilities(output: Tensor) -> np.ndarray:
    scores = output.data
    if scores.ndim >= 2 and scores.shape[1] > 1:
        return output.softmax(1).numpy()
    return output.sigmoid().numpy().reshape(-1)
