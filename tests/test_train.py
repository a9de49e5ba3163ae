"""fit / evaluate / predict: the training loop and its bookkeeping."""

import math

import numpy as np
import pytest

import minideep as md
from minideep.nn import Module, Parameter
from minideep.train import History, TrainingError, evaluate, fit, predict


class Linear2(Module):
    """A 2-feature linear classifier with ``n_out`` outputs, from core ops only."""

    def __init__(self, n_out=2):
        super().__init__()
        self.w = Parameter(md.tensor(np.zeros((n_out, 2))))
        self.b = Parameter(md.tensor(np.zeros(n_out)))
        self.modes = []

    def forward(self, x):
        self.modes.append((self.training, md.is_grad_enabled()))
        return x @ self.w.T + self.b


def cross_entropy(logits, target):
    logp = logits.log_softmax(1)
    return -logp[np.arange(len(target)), target.data].mean()


def _blobs(n=64, seed=0):
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = rng.normal(size=(n, 2)) * 0.3 + np.where(y[:, None] == 1, 2.0, -2.0)
    return x.astype(np.float32), y


def _loader(n=64, batch=16, seed=0, as_tensors=True):
    x, y = _blobs(n, seed)
    batches = [(x[i : i + batch], y[i : i + batch]) for i in range(0, n, batch)]
    if as_tensors:
        batches = [(md.tensor(a), md.tensor(b)) for a, b in batches]
    return batches


def _fit(model=None, epochs=3, **kwargs):
    model = model or Linear2()
    opt = md.optim.SGD(model.parameters(), lr=0.5)
    kwargs.setdefault("progress", False)
    return model, fit(model, _loader(), cross_entropy, opt, epochs, **kwargs)


def test_fit_reaches_full_accuracy_on_a_separable_problem():
    _, history = _fit(epochs=5)
    assert isinstance(history, History)
    assert history["train_accuracy"][-1] == 1.0
    assert history["train_loss"][-1] < history["train_loss"][0]


def test_history_has_one_entry_per_epoch_for_every_record():
    _, history = _fit(epochs=4, val_loader=_loader(seed=1))
    assert set(history) == {
        "train_loss",
        "train_accuracy",
        "val_loss",
        "val_accuracy",
        "lr",
        "time",
    }
    assert all(len(v) == 4 for v in history.values()) and history.epochs == 4
    assert history.val_accuracy[-1] == 1.0
    assert not history.interrupted


def test_fit_accepts_numpy_batches():
    model = Linear2()
    opt = md.optim.SGD(model.parameters(), lr=0.5)
    history = fit(model, _loader(as_tensors=False), cross_entropy, opt, 3, progress=False)
    assert history.train_accuracy[-1] == 1.0


def test_extra_metrics_are_recorded():
    _, history = _fit(metrics=("accuracy", "f1", "precision", "recall"))
    assert {"train_f1", "train_precision", "train_recall"} <= set(history)
    assert history.train_f1[-1] == 1.0


def test_no_metrics_for_regression():
    _, history = _fit(metrics=())
    assert set(history) == {"train_loss", "lr", "time"}


def test_unknown_metric_raises():
    with pytest.raises(ValueError, match="unknown metric"):
        _fit(metrics=("auc",))


def test_scheduler_steps_once_per_epoch_and_history_keeps_the_rate_used():
    model = Linear2()
    opt = md.optim.SGD(model.parameters(), lr=0.8)
    scheduler = md.optim.lr_scheduler.StepLR(opt, step_size=1, gamma=0.5)
    history = fit(model, _loader(), cross_entropy, opt, 3, scheduler=scheduler, progress=False)
    assert history.lr == pytest.approx([0.8, 0.4, 0.2])
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1)


def test_modes_train_during_fit_eval_without_grad_in_validation():
    model = Linear2()
    model.eval()
    _fit(model, epochs=1, val_loader=_loader(n=16, seed=1))
    train_calls, val_calls = model.modes[:4], model.modes[4:]
    assert all(mode == (True, True) for mode in train_calls)
    assert val_calls and all(mode == (False, False) for mode in val_calls)
    assert model.training is False  # restored


def test_progress_bar_shows_loss_accuracy_and_throughput(capsys):
    _fit(epochs=1, progress=True)
    err = capsys.readouterr().err
    assert "epoch 1/1" in err and "loss=" in err and "acc=" in err


class Interrupting:
    """A loader that raises KeyboardInterrupt on its n-th pass, midway through."""

    def __init__(self, batches, interrupt_on_pass):
        self.batches, self.interrupt_on_pass, self.passes = batches, interrupt_on_pass, 0

    def __iter__(self):
        self.passes += 1
        for i, batch in enumerate(self.batches):
            if self.passes == self.interrupt_on_pass and i == 2:
                raise KeyboardInterrupt
            yield batch

    def __len__(self):
        return len(self.batches)


def test_keyboard_interrupt_returns_the_completed_epochs(capsys):
    model = Linear2()
    model.eval()
    opt = md.optim.SGD(model.parameters(), lr=0.5)
    loader = Interrupting(_loader(), interrupt_on_pass=3)
    history = fit(model, loader, cross_entropy, opt, 10, progress=True)
    assert history.interrupted
    assert history.epochs == 2 and all(len(v) == 2 for v in history.values())
    assert "interrupted" in capsys.readouterr().err
    assert model.training is False


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_loss_raises_naming_epoch_and_step(bad):
    model = Linear2()
    opt = md.optim.SGD(model.parameters(), lr=0.5)
    calls = []

    def loss_fn(output, target):
        calls.append(1)
        loss = cross_entropy(output, target)
        return loss * bad if len(calls) == 7 else loss  # epoch 2, step 3

    with pytest.raises(TrainingError, match="epoch 2, step 3") as info:
        fit(model, _loader(), loss_fn, opt, 3, progress=False)
    assert isinstance(info.value, FloatingPointError)
    assert (info.value.epoch, info.value.step) == (2, 3)
    assert np.all(np.isfinite(model.w.data))


def test_clip_grad_norm_bounds_the_gradient_norm():
    model = Linear2()
    norms = []

    class Spy(md.optim.SGD):
        def step(self, closure=None):
            norms.append(math.sqrt(sum(float((p.grad.data**2).sum()) for p in model.parameters())))
            return super().step(closure)

    opt = Spy(model.parameters(), lr=0.5)
    fit(model, _loader(), cross_entropy, opt, 1, progress=False, clip_grad_norm=0.01)
    assert max(norms) <= 0.01 * (1 + 1e-5)


def test_evaluate_returns_loss_metrics_and_sample_count():
    model, _ = _fit(epochs=5)
    result = evaluate(model, _loader(seed=2), cross_entropy, metrics=("accuracy", "f1"))
    assert set(result) == {"loss", "accuracy", "f1", "n_samples"}
    assert result["accuracy"] == 1.0 and result["n_samples"] == 64
    assert model.modes[-1] == (False, False) and model.training


def test_evaluate_without_loss_fn_reports_metrics_only():
    model, _ = _fit()
    assert set(evaluate(model, _loader())) == {"accuracy", "n_samples"}


def test_predict_on_an_array_returns_labels_and_probabilities():
    model, _ = _fit(epochs=5)
    x, y = _blobs(50, seed=3)
    labels, probs = predict(model, x, batch_size=16, return_probs=True)
    np.testing.assert_array_equal(labels, y)
    assert probs.shape == (50, 2)
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(predict(model, md.tensor(x)), y)


def test_predict_on_a_loader_ignores_targets():
    model, _ = _fit(epochs=5)
    x, y = _blobs()
    np.testing.assert_array_equal(predict(model, _loader()), y)


def test_single_logit_outputs_are_binary_predictions():
    model = Linear2(n_out=1)
    model.w.data[...] = [[1.0, 1.0]]
    x, y = _blobs(20)
    labels, probs = predict(model, x, return_probs=True)
    np.testing.assert_array_equal(labels, y)
    assert probs.shape == (20,) and np.all((probs > 0.5) == (y == 1))


def test_fit_uses_nn_layers_when_available():
    nn = md.nn
    if not hasattr(nn, "Linear") or not hasattr(nn.functional, "cross_entropy"):
        pytest.skip("needs nn.Linear and functional.cross_entropy")
    md.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 2))
    opt = md.optim.Adam(model.parameters(), lr=0.05)
    history = fit(model, _loader(), nn.functional.cross_entropy, opt, 5, progress=False)
    assert history.train_accuracy[-1] == 1.0


# ------------------------------------------------------------------ plots
def test_plot_history_returns_a_figure_and_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    from minideep.viz import plot_history

    history = {
        "train_loss": [1.0, 0.5, 0.3],
        "train_accuracy": [0.5, 0.8, 0.9],
        "val_loss": [1.1, 0.6, 0.4],
        "val_accuracy": [0.4, 0.7, 0.85],
        "lr": [0.1, 0.05, 0.025],
        "time": [1.0, 1.0, 1.0],
    }
    fig = plot_history(history, path=tmp_path / "history.png")
    assert len(fig.axes) == 3  # loss, accuracy, learning rate
    assert (tmp_path / "history.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_confusion_matrix_returns_a_figure_and_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    from minideep.viz import plot_confusion_matrix

    cm = np.array([[5, 1, 0], [0, 4, 2], [1, 0, 6]])
    fig = plot_confusion_matrix(cm, ["circle", "square", "triangle"], path=tmp_path / "cm.png")
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts[:3] == ["5", "1", "0"]
    assert (tmp_path / "cm.png").stat().st_size > 0
    normalized = plot_confusion_matrix(cm, normalize=True)
    assert normalized.axes[0].texts[0].get_text() == "0.83"


def test_plot_confusion_matrix_checks_class_names():
    pytest.importorskip("matplotlib")
    from minideep.viz import plot_confusion_matrix

    with pytest.raises(ValueError, match="2 class names"):
        plot_confusion_matrix(np.eye(3), ["a", "b"])


@pytest.mark.gpu
def test_fit_evaluate_predict_on_cuda():
    if not md.cuda.is_available():
        pytest.skip("needs CUDA")
    model = Linear2()
    opt = md.optim.Adam(model.parameters(), lr=0.1)
    history = fit(
        model, _loader(as_tensors=False), cross_entropy, opt, 5, device="cuda", progress=False
    )
    assert model.w.device == "cuda" and history.train_accuracy[-1] == 1.0
    assert md.backend.device_of(opt.state[model.w]["exp_avg"]) == "cuda"
    assert evaluate(model, _loader(seed=1), cross_entropy)["accuracy"] == 1.0
    x, y = _blobs(seed=2)
    np.testing.assert_array_equal(predict(model, x), y)
