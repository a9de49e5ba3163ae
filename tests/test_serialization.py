"""md.save / md.load: round trips, atomic writes, refusing pickles, exact resumption."""

import os
import pickle
from collections import OrderedDict

import numpy as np
import pytest

import minideep as md
from minideep.nn import Module, Parameter
from minideep.serialization import CheckpointError


class TinyNet(Module):
    """2 -> 8 -> 3 MLP built from core ops only."""

    def __init__(self, seed=0):
        super().__init__()
        rng = np.random.default_rng(seed)
        self.w1 = Parameter(md.tensor(rng.normal(size=(8, 2)) * 0.5, dtype=md.float64))
        self.b1 = Parameter(md.tensor(np.zeros(8), dtype=md.float64))
        self.w2 = Parameter(md.tensor(rng.normal(size=(3, 8)) * 0.5, dtype=md.float64))
        self.b2 = Parameter(md.tensor(np.zeros(3), dtype=md.float64))

    def forward(self, x):
        h = (x @ self.w1.T + self.b1).tanh()
        return h @ self.w2.T + self.b2


def _batches(n_batches, seed=1):
    rng = np.random.default_rng(seed)
    for _ in range(n_batches):
        x = rng.normal(size=(16, 2))
        y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 1).astype(np.int64)
        yield md.tensor(x, dtype=md.float64), y


def _train(model, opt, scheduler, batches):
    for x, y in batches:
        logp = model(x).log_softmax(1)
        loss = -logp[np.arange(len(y)), y].mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        scheduler.step()


def _setup():
    model = TinyNet()
    opt = md.optim.Adam(model.parameters(), lr=0.05, weight_decay=1e-3)
    scheduler = md.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=5)
    return model, opt, scheduler


# ------------------------------------------------------------------ round trips
def test_nested_structure_round_trips(tmp_path):
    obj = {
        "array": np.arange(6, dtype=np.float32).reshape(2, 3),
        "ints": np.array([1, 2], dtype=np.int64),
        "empty": np.zeros((0, 4)),
        "tensor": md.tensor([1.5, 2.5]),
        "numbers": [1, 2.5, -3, float("inf")],
        "misc": ("text", None, True, False),
        "int_keys": {0: {"step": 7}, 1: {}},
        "scalar": np.float64(0.125),
        "ordered": OrderedDict([("b", 1), ("a", 2)]),
    }
    md.save(obj, tmp_path / "c.npz")
    back = md.load(tmp_path / "c.npz")
    assert set(back) == set(obj)
    np.testing.assert_array_equal(back["array"], obj["array"])
    assert back["array"].dtype == np.float32 and back["ints"].dtype == np.int64
    assert back["empty"].shape == (0, 4)
    assert isinstance(back["tensor"], md.Tensor)
    np.testing.assert_array_equal(back["tensor"].numpy(), [1.5, 2.5])
    assert back["numbers"] == obj["numbers"]
    assert back["misc"] == obj["misc"] and isinstance(back["misc"], tuple)
    assert back["int_keys"] == {0: {"step": 7}, 1: {}}
    assert back["scalar"] == 0.125 and isinstance(back["scalar"], np.float64)
    assert isinstance(back["ordered"], OrderedDict) and list(back["ordered"]) == ["b", "a"]


def test_model_state_dict_round_trips(tmp_path):
    model = TinyNet(seed=3)
    md.save(model.state_dict(), tmp_path / "model.npz")
    other = TinyNet(seed=4)
    other.load_state_dict(md.load(tmp_path / "model.npz"))
    for (k, a), (_, b) in zip(model.state_dict().items(), other.state_dict().items()):
        np.testing.assert_array_equal(a, b, err_msg=k)


def test_save_writes_exactly_the_given_path(tmp_path):
    md.save({"a": 1}, tmp_path / "checkpoint.pt")
    assert os.listdir(tmp_path) == ["checkpoint.pt"]


@pytest.mark.parametrize("bad", [lambda x: x, object(), {("tuple", "key"): 1}])
def test_unsupported_values_raise_before_writing(tmp_path, bad):
    with pytest.raises(TypeError, match="md.save"):
        md.save({"model": {"fn": bad}}, tmp_path / "c.npz")
    assert os.listdir(tmp_path) == []


def test_object_arrays_are_refused(tmp_path):
    with pytest.raises(TypeError, match="pickle"):
        md.save({"a": np.array([{}, 1], dtype=object)}, tmp_path / "c.npz")


# ------------------------------------------------------------------ exact resumption
def test_resume_from_checkpoint_equals_uninterrupted_training(tmp_path):
    batches = list(_batches(10))
    model, opt, scheduler = _setup()
    _train(model, opt, scheduler, batches)

    model_a, opt_a, sched_a = _setup()
    _train(model_a, opt_a, sched_a, batches[:4])
    checkpoint = {
        "model": model_a.state_dict(),
        "optimizer": opt_a.state_dict(),
        "scheduler": sched_a.state_dict(),
        "step": 4,
    }
    md.save(checkpoint, tmp_path / "ckpt.npz")
    del model_a, opt_a, sched_a

    model_b, opt_b, sched_b = _setup()
    loaded = md.load(tmp_path / "ckpt.npz")
    model_b.load_state_dict(loaded["model"])
    opt_b.load_state_dict(loaded["optimizer"])
    sched_b.load_state_dict(loaded["scheduler"])
    _train(model_b, opt_b, sched_b, batches[loaded["step"] :])

    for (k, a), (_, b) in zip(model.state_dict().items(), model_b.state_dict().items()):
        np.testing.assert_array_equal(a, b, err_msg=k)
    assert opt.param_groups[0]["lr"] == opt_b.param_groups[0]["lr"]


# ------------------------------------------------------------------ atomic writes
def _fail(*args, **kwargs):
    raise OSError("disk full (simulated)")


@pytest.mark.parametrize(
    "target",
    ["numpy.lib.format.write_array", "os.fsync", "os.replace"],
)
def test_failed_save_keeps_old_file_and_leaves_no_stray_files(tmp_path, monkeypatch, target):
    path = tmp_path / "ckpt.npz"
    md.save({"version": 1, "w": np.ones(3)}, path)
    old_bytes = path.read_bytes()

    if target == "numpy.lib.format.write_array":
        real = np.lib.format.write_array
        calls = []

        def write_then_fail(fp, array, *args, **kwargs):
            calls.append(1)
            if len(calls) == 2:  # the first array is written, the second fails halfway
                fp.write(b"partial")
                raise OSError("disk full (simulated)")
            return real(fp, array, *args, **kwargs)

        monkeypatch.setattr(np.lib.format, "write_array", write_then_fail)
    else:
        module, name = target.split(".")
        monkeypatch.setattr(os, name, _fail)

    with pytest.raises(OSError, match="simulated"):
        md.save({"version": 2, "w": np.zeros(3), "b": np.zeros(2)}, path)
    monkeypatch.undo()
    assert os.listdir(tmp_path) == ["ckpt.npz"]
    assert path.read_bytes() == old_bytes
    assert md.load(path)["version"] == 1


def test_keyboard_interrupt_during_save_leaves_no_stray_files(tmp_path, monkeypatch):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupt)
    with pytest.raises(KeyboardInterrupt):
        md.save({"w": np.ones(2)}, tmp_path / "ckpt.npz")
    monkeypatch.undo()
    assert os.listdir(tmp_path) == []


def test_save_overwrites_an_existing_checkpoint(tmp_path):
    md.save({"v": 1}, tmp_path / "c.npz")
    md.save({"v": 2}, tmp_path / "c.npz")
    assert md.load(tmp_path / "c.npz") == {"v": 2}
    assert os.listdir(tmp_path) == ["c.npz"]


# ------------------------------------------------------------------ bad files
def test_missing_file_error_names_the_path(tmp_path):
    path = tmp_path / "nope.npz"
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        md.load(path)


def test_pickled_file_is_refused(tmp_path):
    path = tmp_path / "evil.pkl"
    with open(path, "wb") as f:
        pickle.dump({"w": np.ones(2)}, f)
    with pytest.raises(CheckpointError, match="pickle"):
        md.load(path)


def test_npz_with_pickled_object_array_is_refused(tmp_path):
    path = tmp_path / "objects.npz"
    md.save({"w": np.ones(2)}, path)
    with np.load(path) as archive:
        entries = dict(archive)
    entries["0"] = np.array([{"x": 1}, None], dtype=object)
    np.savez(path, **entries)
    with pytest.raises(CheckpointError, match="pickle"):
        md.load(path)


@pytest.mark.parametrize(
    "content",
    [b"", b"this is not a checkpoint", "truncated"],
    ids=["empty", "text", "truncated"],
)
def test_corrupt_file_error_names_the_path(tmp_path, content):
    path = tmp_path / "bad.npz"
    if content == "truncated":
        md.save({"w": np.ones(1000)}, path)
        content = path.read_bytes()[:500]
    path.write_bytes(content)
    with pytest.raises(CheckpointError, match="bad.npz"):
        md.load(path)


def test_foreign_npz_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "plain.npz"
    np.savez(path, w=np.ones(2))
    with pytest.raises(CheckpointError, match="not a minideep checkpoint"):
        md.load(path)


@pytest.mark.gpu
def test_gpu_arrays_are_saved_as_host_copies(tmp_path):
    if not md.cuda.is_available():
        pytest.skip("needs CUDA")
    t = md.tensor([1.0, 2.0], device="cuda")
    md.save({"t": t, "a": t.data}, tmp_path / "c.npz")
    back = md.load(tmp_path / "c.npz")
    assert isinstance(back["a"], np.ndarray) and back["t"].device == "cpu"
    np.testing.assert_array_equal(back["a"], [1.0, 2.0])
