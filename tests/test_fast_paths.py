"""The fast paths beside the reference ops: the switch, the CPU memory they share, and
every fast path against its reference (``md.fast_paths(False)``).

Exactly equal where the arithmetic is the same (chunks, pooled memory, the tiled max
pool, ReLU), equal to rounding where the order of a sum changes (the bias folded into
the convolution's product, the padded grid) or a function is computed another way (the
LSTM's g gate through a sigmoid).
"""

import gc
import os
import subprocess
import sys

import numpy as np
import pytest

import minideep as md
from minideep.fast import memory
from minideep.nn import functional as F
from minideep.ops import recurrent

BIG = (512, 1024)  # 2 MB of float32: large enough to be pooled


@pytest.fixture(autouse=True)
def empty_pool():
    memory.empty_cache()
    yield
    memory.empty_cache()


def _address(a):
    return a.__array_interface__["data"][0]


def _t(a, requires_grad=False):
    return md.tensor(a, dtype=a.dtype, requires_grad=requires_grad)


def run_both(fn, arrays, upstream_seed=1):
    """Output and input gradients of ``fn`` with the fast paths on, then off."""
    results = []
    for enabled in (True, False):
        with md.fast_paths(enabled):
            inputs = [_t(a, requires_grad=a.dtype.kind == "f") for a in arrays]
            out = fn(*inputs)
            rng = np.random.default_rng(upstream_seed)
            out.backward(_t(rng.standard_normal(out.shape).astype(out.dtype)))
            results.append([out.numpy()] + [t.grad.numpy() for t in inputs if t.requires_grad])
    return results


# ------------------------------------------------------------------------- the switch


def test_fast_paths_is_on_by_default_and_restores_the_previous_setting():
    assert md.fast.enabled()
    with md.fast_paths(False):
        assert not md.fast.enabled()
        with md.fast_paths(True):
            assert md.fast.enabled()
        assert not md.fast.enabled()
    assert md.fast.enabled()


def test_fast_paths_called_without_with_switches_until_switched_back():
    try:
        md.fast_paths(False)
        assert not md.fast.enabled()
    finally:
        md.fast_paths(True)
    assert md.fast.enabled()


@pytest.mark.parametrize("value, expected", [("0", False), ("1", True)])
def test_the_environment_variable_sets_the_default_at_import(value, expected):
    env = dict(os.environ, MINIDEEP_FAST_PATHS=value)
    code = "import minideep as md; print(md.fast.enabled())"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == str(expected), out.stderr


def test_with_fast_paths_off_each_op_takes_its_reference():
    x = md.randn(4, 3, 8, 8, requires_grad=True)
    w = md.randn(5, 3, 3, 3)
    assert F.conv2d(x, w, padding=1)._ctx.fast is not None
    assert F.max_pool2d(x, 2)._ctx.fast is not None
    with md.fast_paths(False):
        assert F.conv2d(x, w, padding=1)._ctx.fast is None
        assert F.max_pool2d(x, 2)._ctx.fast is None


# ------------------------------------------------------------------ the CPU memory pool


def test_the_memory_of_a_dead_array_is_reused_and_a_small_one_is_not_pooled():
    a = memory.empty(BIG, np.float32)
    where = _address(a)
    del a
    assert memory.pool_idle_bytes() == 2**21
    b = memory.empty((1024, 256), np.float64)  # same size in bytes, other shape and dtype
    assert _address(b) == where and b.shape == (1024, 256) and b.dtype == np.float64
    assert memory.pool_idle_bytes() == 0
    del b
    memory.empty((4, 4), np.float32)
    assert memory.pool_idle_bytes() == 2**21  # untouched


def test_a_view_keeps_the_memory_of_its_array():
    a = memory.empty(BIG, np.float32)
    a[:] = 7
    row = a[3]
    del a
    gc.collect()
    assert memory.pool_idle_bytes() == 0
    b = memory.empty(BIG, np.float32)  # must be new memory
    b[:] = -1
    assert (row == 7).all()
    del row
    assert memory.pool_idle_bytes() == 2**21


FAULTS = r"""
import resource, numpy as np, minideep
def step():  # four 512 KB arrays made and freed together, as an op's forward+backward
    arrays = [np.ones(131072, np.float32) for _ in range(4)]
    del arrays
for _ in range(10):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(100):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


@pytest.mark.skipif(
    not sys.platform.startswith("linux") or __import__("platform").libc_ver()[0] != "glibc",
    reason="keeping freed memory is a glibc malloc setting",
)
def test_freed_memory_is_kept_so_repeated_arrays_make_no_page_faults():
    assert memory.keep_freed_memory()  # importing minideep already did it; again is harmless
    env = dict(os.environ, MINIDEEP_KEEP_FREED_MEMORY="1")
    faults = int(subprocess.check_output([sys.executable, "-c", FAULTS], env=env, text=True))
    assert faults < 40
    env = dict(os.environ, MINIDEEP_KEEP_FREED_MEMORY="0")  # glibc as it is: 480 per step here
    as_is = int(subprocess.check_output([sys.executable, "-c", FAULTS], env=env, text=True))
    assert as_is > faults


def test_pooled_arrays_behave_like_numpy_arrays():
    a = memory.zeros(BIG, np.float64)
    assert isinstance(a, np.ndarray) and a.flags.c_contiguous and a.flags.writeable
    assert a.shape == BIG and (a == 0).all()
    assert memory.empty_like(a).shape == BIG


def test_idle_memory_is_capped(monkeypatch):
    monkeypatch.setattr(memory, "_POOL_MAX_IDLE_BYTES", 3 * 2**20)
    arrays = [memory.empty(BIG, np.float32) for _ in range(2)]
    del arrays
    assert memory.pool_idle_bytes() == 2**21  # the second one did not fit


def test_chunks_cover_the_first_axis_once_in_order(monkeypatch):
    monkeypatch.setattr(memory, "_CHUNK_BYTES", 3 * 8 * 10)  # three rows of 10 float64
    a = np.zeros((8, 10))
    seen = []
    memory.for_each_chunk(seen.append, a)
    assert seen == [slice(0, 3), slice(3, 6), slice(6, 9)]
    assert memory.chunk_rows(a) == 3
    calls = []
    memory.for_each_chunk(calls.append, np.zeros(()))  # 0-d: one call on all of it
    assert calls == [...]


def test_zeros_to_read_are_shared_and_cannot_be_written():
    small = memory.zeros_to_read((2, 3), np.float32)
    big = memory.zeros_to_read((4, 5), np.float32)  # grows the shared block
    assert (small == 0).all() and (big == 0).all() and big.shape == (4, 5)
    assert memory.zeros_to_read((3,), np.float32).base is big.base
    with pytest.raises(ValueError):
        big[0, 0] = 1


@pytest.mark.parametrize("chunk_bytes", [1, 4096, 1 << 40])
def test_results_do_not_depend_on_the_chunks(monkeypatch, chunk_bytes):
    """Pools, ReLU and convolutions loop over chunks of the batch: any chunking gives
    the same values and gradients, to the bit."""
    rng = np.random.default_rng(2)
    x = np.maximum(rng.standard_normal((5, 3, 12, 10)), 0).round(1)  # ties in every pool
    w = rng.standard_normal((4, 3, 3, 3))
    u = rng.standard_normal((5, 4, 6, 5))

    def run():
        xt, wt = md.tensor(x, requires_grad=True), md.tensor(w, requires_grad=True)
        y = F.max_pool2d(F.relu(F.conv2d(F.relu(xt), wt, padding=1)), 2)
        (y * md.tensor(u)).sum().backward()
        return y.numpy(), xt.grad.numpy(), wt.grad.numpy()

    reference = run()
    monkeypatch.setattr(memory, "_CHUNK_BYTES", chunk_bytes)
    for a, b in zip(run(), reference):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("stride", [1, 2])
def test_one_conv_used_twice_before_backward_keeps_both_inputs(stride):
    """Two forwards hold two pooled im2col buffers at once; each backward reads its own."""
    rng = np.random.default_rng(0)
    x1, x2 = (rng.standard_normal((8, 8, 32, 32)).astype(np.float32) for _ in range(2))
    w = rng.standard_normal((8, 8, 3, 3)).astype(np.float32)
    u = rng.standard_normal(F.conv2d(md.tensor(x1), md.tensor(w), stride=stride, padding=1).shape)

    def grads(inputs):
        ts = [md.tensor(a, requires_grad=True) for a in inputs]
        wt = md.tensor(w, requires_grad=True)
        total = sum(
            (F.conv2d(t, wt, stride=stride, padding=1) * md.tensor(u.astype(np.float32))).sum()
            for t in ts
        )
        total.backward()
        return [t.grad.numpy() for t in ts], wt.grad.numpy()

    (g1, g2), gw = grads([x1, x2])
    (h1,), hw1 = grads([x1])
    (h2,), hw2 = grads([x2])
    np.testing.assert_allclose(g1, h1, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(g2, h2, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(gw, hw1 + hw2, rtol=1e-4, atol=1e-3)


# ------------------------------------------------- every fast path against its reference


CONV_GEOMETRIES = [
    dict(),
    dict(padding=1),
    dict(stride=2, padding=1),
    dict(stride=(2, 1), padding=(0, 2), dilation=(1, 2)),
    dict(padding=2, dilation=2),
]


@pytest.mark.parametrize("bias", [True, False], ids=["bias", "no bias"])
@pytest.mark.parametrize("geometry", CONV_GEOMETRIES, ids=str)
def test_conv2d_fast_path_equals_the_reference_to_rounding(geometry, bias):
    """The folded bias and the padded grid change the order of the sums only."""
    rng = np.random.default_rng(4)
    arrays = [rng.standard_normal((3, 4, 11, 9)), rng.standard_normal((5, 4, 3, 3))]
    if bias:
        arrays.append(rng.standard_normal(5))
    fast, reference = run_both(lambda *t: F.conv2d(*t, **geometry), arrays)
    for a, b in zip(fast, reference):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_conv3d_fast_path_equals_the_reference_to_rounding():
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal(s) for s in [(2, 3, 5, 7, 6), (4, 3, 3, 2, 3), (4,)]]
    geometry = dict(padding=(1, 0, 2), dilation=(1, 2, 1))
    fast, reference = run_both(lambda *t: F.conv3d(*t, **geometry), arrays)
    for a, b in zip(fast, reference):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("stride, padding, output_padding", [(1, 0, 0), (2, 1, 1), (3, 2, 0)])
def test_conv_transpose2d_is_the_same_with_fast_paths_on_and_off(stride, padding, output_padding):
    """On the CPU the transposed convolution has no fast path of its own: both runs
    take the reference."""
    rng = np.random.default_rng(5)
    arrays = [rng.standard_normal(s) for s in [(3, 4, 6, 5), (4, 2, 3, 3), (2,)]]
    kwargs = dict(stride=stride, padding=padding, output_padding=output_padding)
    fast, reference = run_both(lambda *t: F.conv_transpose2d(*t, **kwargs), arrays)
    for a, b in zip(fast, reference):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("kernel", [1, 2, 3, (2, 3)])
def test_tiled_max_pool_equals_the_reference_exactly_with_ties(kernel):
    """Windows that tile the input: the same maxima, and the gradient on the same
    (first) maximal element of each window."""
    rng = np.random.default_rng(6)
    x = rng.integers(0, 3, (3, 2, 12, 12)).astype(np.float64)  # many ties
    fast, reference = run_both(lambda t: F.max_pool2d(t, kernel), [x])
    for a, b in zip(fast, reference):
        np.testing.assert_array_equal(a, b)


def test_tiled_max_pool_3d_and_a_remainder_equal_the_reference_exactly():
    rng = np.random.default_rng(7)
    x = rng.integers(0, 4, (2, 3, 5, 7, 9)).astype(np.float32)  # sizes not multiples of 2
    fast, reference = run_both(lambda t: F.max_pool3d(t, 2), [x])
    for a, b in zip(fast, reference):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("shape", [(7,), (300, 1000), (4, 16, 33, 33)])
def test_relu_fast_path_equals_the_reference_exactly(shape):
    x = np.random.default_rng(8).standard_normal(shape).astype(np.float32)
    x.flat[::7] = 0  # the gradient at 0 is 0 on both paths
    fast, reference = run_both(F.relu, [x])
    for a, b in zip(fast, reference):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype, tol", [(np.float64, 1e-12), (np.float32, 2e-6)])
def test_one_sigmoid_lstm_equals_the_reference_steps_to_rounding(dtype, tol):
    rng = np.random.default_rng(9)
    T, N, H = 6, 3, 5
    gx = (3 * rng.standard_normal((T, N, 4 * H))).astype(dtype)
    h0, c0 = (rng.standard_normal((N, H)).astype(dtype) for _ in range(2))
    w_hh = rng.standard_normal((4 * H, H)).astype(dtype)
    reference = recurrent.lstm_steps(gx, h0, c0, w_hh)
    fast = md.fast.recurrent.OneSigmoidLSTM.forward(gx.copy(), h0, c0, w_hh)
    for a, b in zip(fast, reference):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)


def test_lstm_layer_fast_path_equals_the_reference_to_rounding():
    rng = np.random.default_rng(10)
    x = rng.standard_normal((4, 3, 6))
    results = []
    for enabled in (True, False):
        with md.fast_paths(enabled):
            md.manual_seed(0)
            lstm = md.nn.LSTM(6, 5, num_layers=2, bidirectional=True).double()
            xt = _t(x, requires_grad=True)
            out, (h, c) = lstm(xt)
            (out.sum() + (h * c).sum()).backward()
            results.append(
                [out.numpy(), xt.grad.numpy()] + [p.grad.numpy() for p in lstm.parameters()]
            )
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("affine", ["both", "weight only", "bias only", "none"])
@pytest.mark.parametrize("shape, normalized", [((4, 6, 10), (10,)), ((3, 4, 5, 6), (5, 6))])
def test_row_layer_norm_equals_the_reference_to_rounding(shape, normalized, affine):
    rng = np.random.default_rng(11)
    x = rng.standard_normal(shape) * 3 + 1
    w, b = rng.standard_normal(normalized), rng.standard_normal(normalized)
    upstream = rng.standard_normal(shape)
    results = []
    for enabled in (True, False):
        with md.fast_paths(enabled):
            xt = _t(x, requires_grad=True)
            wt = _t(w, requires_grad=True) if affine in ("both", "weight only") else None
            bt = _t(b, requires_grad=True) if affine in ("both", "bias only") else None
            y = F.layer_norm(xt, normalized, wt, bt)
            assert (y._ctx.fast is not None) == enabled
            y.backward(upstream)
            results.append(
                [y.numpy(), xt.grad.numpy()] + [t.grad.numpy() for t in (wt, bt) if t is not None]
            )
    for a, b_ in zip(*results):
        np.testing.assert_allclose(a, b_, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    "wants", [(False, True, False), (True, False, False), (False, False, True)]
)
def test_row_layer_norm_with_some_inputs_wanting_a_gradient(wants):
    rng = np.random.default_rng(12)
    arrays = [
        rng.standard_normal((5, 7, 16)) * 2 + 1,
        rng.standard_normal(16),
        rng.standard_normal(16),
    ]
    upstream = rng.standard_normal((5, 7, 16))
    results = []
    for enabled in (True, False):
        with md.fast_paths(enabled):
            x, w, b = (_t(a, requires_grad=want) for a, want in zip(arrays, wants))
            y = F.layer_norm(x, (16,), w, b)
            assert (y._ctx.fast is not None) == enabled
            y.backward(upstream)
            results.append(
                [y.numpy()] + [t.grad.numpy() for t, want in zip((x, w, b), wants) if want]
            )
    for a, b_ in zip(*results):
        np.testing.assert_allclose(a, b_, rtol=1e-10, atol=1e-12)


# ----------------------------------------- the same forward with and without a graph


def _forward_twice(fn, *arrays):
    """fn's output under no_grad and while recording, inputs float32 wanting grads."""
    with md.no_grad():
        plain = fn(*(md.tensor(a) for a in arrays)).numpy()
    recorded = fn(*(md.tensor(a, requires_grad=True) for a in arrays))
    assert recorded.requires_grad
    return plain, recorded.numpy()


def test_conv2d_forward_is_bitwise_the_same_without_a_graph():
    rng = np.random.default_rng(11)
    x = rng.standard_normal((4, 16, 20, 20)).astype(np.float32)
    w = rng.standard_normal((8, 16, 3, 3)).astype(np.float32)
    b = rng.standard_normal(8).astype(np.float32)
    plain, recorded = _forward_twice(lambda *t: F.conv2d(*t, padding=1), x, w, b)
    np.testing.assert_array_equal(plain, recorded)


def test_lstm_forward_is_bitwise_the_same_without_a_graph():
    x = np.random.default_rng(12).standard_normal((7, 4, 10)).astype(np.float32)
    md.manual_seed(0)
    lstm = md.nn.LSTM(10, 16)
    plain, recorded = _forward_twice(lambda t: lstm(t)[0], x)
    np.testing.assert_array_equal(plain, recorded)


@pytest.mark.parametrize("kernel, stride, padding", [(2, None, 0), (3, 2, 1)])
def test_max_pool_forward_is_bitwise_the_same_without_a_graph(kernel, stride, padding):
    x = np.random.default_rng(13).standard_normal((4, 8, 16, 16)).astype(np.float32)
    plain, recorded = _forward_twice(lambda t: F.max_pool2d(t, kernel, stride, padding), x)
    np.testing.assert_array_equal(plain, recorded)


@pytest.mark.parametrize("length, inside", [(3072, 3072), (1000, 992), (100, None), (9000, None)])
def test_rows_unbuffered_sets_numpys_buffer_size_only_inside(length, inside):
    """Where the rows are long enough (and shorter than NumPy's buffer) the buffer size
    is the row length rounded down to a multiple of 16 inside the context, else it is
    left alone; after the context (even one left by an error) it is what it was."""
    from minideep.fast.memory import rows_unbuffered

    before = np.getbufsize()
    with pytest.raises(RuntimeError, match="left by an error"):
        with rows_unbuffered(length):
            assert np.getbufsize() == (inside if inside is not None else before)
            raise RuntimeError("left by an error")
    assert np.getbufsize() == before
