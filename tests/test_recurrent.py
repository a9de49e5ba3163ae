"""Recurrent cells and layers: PyTorch's parameters, shapes and results, one graph node per
layer, truncated backpropagation through time, clear errors."""

import math

import numpy as np
import pytest

import minideep as md
from minideep.nn import functional as F

I, H, N = 5, 4, 3  # input size, hidden size, batch

LAYERS = {  # name -> (class name, extra constructor arguments)
    "rnn_tanh": ("RNN", {}),
    "rnn_relu": ("RNN", {"nonlinearity": "relu"}),
    "lstm": ("LSTM", {}),
    "gru": ("GRU", {}),
}
CELLS = {
    "rnn_tanh": ("RNNCell", {}),
    "rnn_relu": ("RNNCell", {"nonlinearity": "relu"}),
    "lstm": ("LSTMCell", {}),
    "gru": ("GRUCell", {}),
}


def _torch_and_md(torch, class_name, *args, **kwargs):
    """The same layer in PyTorch and minideep, float64, minideep holding torch's weights."""
    torch.manual_seed(0)
    t = getattr(torch.nn, class_name)(*args, **kwargs).double()
    m = getattr(md.nn, class_name)(*args, **kwargs).double()
    m.load_state_dict({k: v.numpy() for k, v in t.state_dict().items()})
    return t, m


def _flat(out):
    """Output structures -> flat list: (out, h) or (out, (h, c)) or h or (h, c)."""
    if isinstance(out, (tuple, list)):
        return [leaf for o in out for leaf in _flat(o)]
    return [out]


def _backward_with_random_weights(outputs, rng, to_tensor):
    weights = [rng.standard_normal(tuple(o.shape)) for o in outputs]
    loss = sum((o * to_tensor(w)).sum() for o, w in zip(outputs, weights))
    loss.backward()


def _assert_same_results(torch, t_module, m_module, t_out, m_out, pairs_of_inputs):
    t_flat, m_flat = _flat(t_out), _flat(m_out)
    assert len(t_flat) == len(m_flat)
    for a, b in zip(t_flat, m_flat):
        assert tuple(a.shape) == tuple(b.shape)
        np.testing.assert_allclose(b.numpy(), a.detach().numpy(), rtol=1e-9, atol=1e-12)
    _backward_with_random_weights(t_flat, np.random.default_rng(1), torch.tensor)
    _backward_with_random_weights(
        m_flat, np.random.default_rng(1), lambda w: md.tensor(w, dtype=md.float64)
    )
    for t_in, m_in in pairs_of_inputs:
        np.testing.assert_allclose(m_in.grad.numpy(), t_in.grad.numpy(), rtol=1e-8, atol=1e-11)
    m_params = dict(m_module.named_parameters())
    for name, p in t_module.named_parameters():
        np.testing.assert_allclose(
            m_params[name].grad.numpy(), p.grad.numpy(), rtol=1e-8, atol=1e-11, err_msg=name
        )


def _input_pair(torch, shape, seed=0):
    x = np.random.default_rng(seed).standard_normal(shape)
    return (
        torch.tensor(x, requires_grad=True),
        md.tensor(x, dtype=md.float64, requires_grad=True),
    )


# ---------------------------------------------------------------------------- parameters


@pytest.mark.parametrize("layer", LAYERS)
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_layer_state_dict_has_torchs_keys_and_shapes(layer, num_layers, bias, bidirectional):
    torch = pytest.importorskip("torch")
    name, kwargs = LAYERS[layer]
    args = (I, H, num_layers)
    kwargs = dict(kwargs, bias=bias, bidirectional=bidirectional)
    t_sd = getattr(torch.nn, name)(*args, **kwargs).state_dict()
    m_sd = getattr(md.nn, name)(*args, **kwargs).state_dict()
    assert [(k, tuple(v.shape)) for k, v in t_sd.items()] == [(k, v.shape) for k, v in m_sd.items()]


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("bias", [True, False])
def test_cell_state_dict_has_torchs_keys_and_shapes(cell, bias):
    torch = pytest.importorskip("torch")
    name, kwargs = CELLS[cell]
    t_sd = getattr(torch.nn, name)(I, H, bias=bias, **kwargs).state_dict()
    m_sd = getattr(md.nn, name)(I, H, bias=bias, **kwargs).state_dict()
    assert [(k, tuple(v.shape)) for k, v in t_sd.items()] == [(k, v.shape) for k, v in m_sd.items()]


@pytest.mark.parametrize("name", ["RNNCell", "LSTMCell", "GRUCell", "RNN", "LSTM", "GRU"])
def test_parameters_are_uniform_within_one_over_sqrt_hidden(name):
    module = getattr(md.nn, name)(7, 16)
    bound = 1 / math.sqrt(16)
    for p in module.parameters():
        assert p.dtype == md.float32
        assert np.abs(p.numpy()).max() <= bound
        assert p.numpy().std() > bound / 3  # spread over the interval, not constant


def test_initialisation_is_reproducible_with_manual_seed():
    md.manual_seed(3)
    a = md.nn.LSTM(4, 6, num_layers=2).state_dict()
    md.manual_seed(3)
    b = md.nn.LSTM(4, 6, num_layers=2).state_dict()
    assert all(np.array_equal(a[k], b[k]) for k in a)


# ---------------------------------------------------------------------------- PyTorch parity


@pytest.mark.parametrize("layer", LAYERS)
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("batch_first", [False, True])
@pytest.mark.parametrize("steps", [1, 60])
def test_layer_matches_torch_outputs_states_and_gradients(layer, num_layers, batch_first, steps):
    torch = pytest.importorskip("torch")
    name, kwargs = LAYERS[layer]
    t, m = _torch_and_md(torch, name, I, H, num_layers, batch_first=batch_first, **kwargs)
    shape = (N, steps, I) if batch_first else (steps, N, I)
    tx, mx = _input_pair(torch, shape)
    _assert_same_results(torch, t, m, t(tx), m(mx), [(tx, mx)])


@pytest.mark.parametrize("layer", LAYERS)
@pytest.mark.parametrize("bidirectional", [False, True])
def test_layer_with_initial_state_and_no_bias_matches_torch(layer, bidirectional):
    torch = pytest.importorskip("torch")
    name, kwargs = LAYERS[layer]
    t, m = _torch_and_md(torch, name, I, H, 2, bias=False, bidirectional=bidirectional, **kwargs)
    states = 2 * (2 if bidirectional else 1)
    tx, mx = _input_pair(torch, (6, N, I))
    th, mh = _input_pair(torch, (states, N, H), seed=1)
    pairs = [(tx, mx), (th, mh)]
    if name == "LSTM":
        tc, mc = _input_pair(torch, (states, N, H), seed=2)
        pairs.append((tc, mc))
        t_out, m_out = t(tx, (th, tc)), m(mx, (mh, mc))
    else:
        t_out, m_out = t(tx, th), m(mx, mh)
    _assert_same_results(torch, t, m, t_out, m_out, pairs)


@pytest.mark.parametrize("layer", LAYERS)
def test_bidirectional_batch_first_layer_matches_torch(layer):
    torch = pytest.importorskip("torch")
    name, kwargs = LAYERS[layer]
    t, m = _torch_and_md(torch, name, I, H, 2, batch_first=True, bidirectional=True, **kwargs)
    tx, mx = _input_pair(torch, (N, 7, I))
    _assert_same_results(torch, t, m, t(tx), m(mx), [(tx, mx)])


@pytest.mark.parametrize("layer", LAYERS)
def test_unbatched_sequence_matches_torch(layer):
    torch = pytest.importorskip("torch")
    name, kwargs = LAYERS[layer]
    t, m = _torch_and_md(torch, name, I, H, 2, **kwargs)
    tx, mx = _input_pair(torch, (5, I))
    _assert_same_results(torch, t, m, t(tx), m(mx), [(tx, mx)])


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("with_state", [False, True])
def test_cell_matches_torch(cell, bias, with_state):
    torch = pytest.importorskip("torch")
    name, kwargs = CELLS[cell]
    t, m = _torch_and_md(torch, name, I, H, bias=bias, **kwargs)
    tx, mx = _input_pair(torch, (N, I))
    pairs = [(tx, mx)]
    if not with_state:
        t_out, m_out = t(tx), m(mx)
    elif name == "LSTMCell":
        th, mh = _input_pair(torch, (N, H), seed=1)
        tc, mc = _input_pair(torch, (N, H), seed=2)
        pairs += [(th, mh), (tc, mc)]
        t_out, m_out = t(tx, (th, tc)), m(mx, (mh, mc))
    else:
        th, mh = _input_pair(torch, (N, H), seed=1)
        pairs.append((th, mh))
        t_out, m_out = t(tx, th), m(mx, mh)
    _assert_same_results(torch, t, m, t_out, m_out, pairs)


@pytest.mark.parametrize("cell", CELLS)
def test_unbatched_cell_matches_torch(cell):
    torch = pytest.importorskip("torch")
    name, kwargs = CELLS[cell]
    t, m = _torch_and_md(torch, name, I, H, **kwargs)
    tx, mx = _input_pair(torch, (I,))
    _assert_same_results(torch, t, m, t(tx), m(mx), [(tx, mx)])


# ---------------------------------------------------------------------------- behaviour


@pytest.mark.parametrize("layer", ["lstm", "gru", "rnn_tanh"])
def test_cell_stepped_by_hand_equals_the_layer(layer):
    name, kwargs = LAYERS[layer]
    seq = getattr(md.nn, name)(I, H, **kwargs).double()
    cell = getattr(md.nn, CELLS[layer][0])(I, H, **kwargs).double()
    cell.load_state_dict({k[: -len("_l0")]: v for k, v in seq.state_dict().items()})
    x = md.randn(6, N, I, dtype=md.float64)
    out, final = seq(x)
    state = None
    for t in range(6):
        state = cell(x[t], state)
        h = state[0] if name == "LSTM" else state
        np.testing.assert_allclose(h.numpy(), out[t].numpy(), rtol=1e-12, atol=1e-14)
    h_n = final[0] if name == "LSTM" else final
    np.testing.assert_allclose(h_n[0].numpy(), h.numpy(), rtol=1e-12, atol=1e-14)


def _graph_size(tensor) -> int:
    seen, stack = set(), [tensor._ctx]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        stack.extend(t._ctx for t in node.inputs if isinstance(t, md.Tensor))
    return len(seen)


@pytest.mark.parametrize("name", ["RNN", "LSTM", "GRU"])
def test_a_long_sequence_is_one_graph_node_per_layer(name):
    layer = getattr(md.nn, name)(I, H, num_layers=2)
    out, _ = layer(md.randn(100, N, I))
    assert _graph_size(out) == 2


def test_a_cell_step_is_at_most_two_graph_nodes():
    cell = md.nn.LSTMCell(I, H)
    state = None
    for _ in range(10):
        state = cell(md.randn(N, I), state)
    assert _graph_size(state[0]) <= 2 * 10


def train_truncated_bptt(model, x, y, chunk: int, lr: float = 0.1) -> list[float]:
    """Truncated backpropagation through time: the example the lessons follow.

    x, y: (N, T, *) batch-first sequences, cut into chunks of ``chunk`` steps. The state
    carries on from chunk to chunk, detached, so each backward covers one chunk only.
    """
    losses, state = [], None
    for start in range(0, x.shape[1], chunk):
        out, state = model(x[:, start : start + chunk], state)
        loss = ((out - y[:, start : start + chunk]) ** 2).mean()
        model.zero_grad()
        loss.backward()
        for p in model.parameters():
            p.data = p.data - lr * p.grad.data
        state = tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()
        losses.append(loss.item())
    return losses


@pytest.mark.parametrize("name", ["LSTM", "GRU"])
def test_truncated_bptt_trains_chunk_by_chunk(name):
    md.manual_seed(0)
    model = getattr(md.nn, name)(2, 8, batch_first=True)
    head_free_target = md.randn(4, 40, 8) * 0.1
    x = md.randn(4, 40, 2)
    first = train_truncated_bptt(model, x, head_free_target, chunk=10)
    for _ in range(20):
        last = train_truncated_bptt(model, x, head_free_target, chunk=10)
    assert len(first) == 4
    assert sum(last) < sum(first)


def test_detached_state_stops_the_gradient_at_the_chunk_boundary():
    lstm = md.nn.LSTM(I, H).double()
    x1 = md.randn(5, N, I, dtype=md.float64, requires_grad=True)
    x2 = md.randn(5, N, I, dtype=md.float64)
    _, (h, c) = lstm(x1)
    out, _ = lstm(x2, (h.detach(), c.detach()))
    out.sum().backward()
    assert x1.grad is None
    truncated = lstm.weight_hh_l0.grad.numpy()

    lstm.zero_grad()
    _, state = lstm(x1)
    out, _ = lstm(x2, state)
    out.sum().backward()
    assert x1.grad is not None
    assert not np.allclose(lstm.weight_hh_l0.grad.numpy(), truncated)


def test_dropout_between_layers_only_in_training():
    if not hasattr(F, "dropout"):
        pytest.skip("nn.functional.dropout is not available yet")
    md.manual_seed(0)
    lstm = md.nn.LSTM(I, H, num_layers=2, dropout=0.5)
    x = md.randn(4, N, I)
    lstm.eval()
    a, _ = lstm(x)
    b, _ = lstm(x)
    assert np.array_equal(a.numpy(), b.numpy())
    lstm.train()
    c, _ = lstm(x)
    assert not np.allclose(a.numpy(), c.numpy())
    c.sum().backward()
    assert all(p.grad is not None for p in lstm.parameters())


def test_dropout_masks_follow_manual_seed():
    if not hasattr(F, "dropout"):
        pytest.skip("nn.functional.dropout is not available yet")
    outputs = []
    for _ in range(2):
        md.manual_seed(1)
        gru = md.nn.GRU(I, H, num_layers=3, dropout=0.3)
        outputs.append(gru(md.randn(4, N, I))[0].numpy())
    assert np.array_equal(*outputs)


def test_dropout_with_a_single_layer_warns():
    with pytest.warns(UserWarning, match="num_layers=1"):
        md.nn.GRU(I, H, dropout=0.3)


@pytest.mark.parametrize("name", ["RNN", "LSTM", "GRU"])
def test_batch_first_output_and_state_shapes(name):
    layer = getattr(md.nn, name)(I, H, num_layers=3, batch_first=True, bidirectional=True)
    out, state = layer(md.randn(N, 7, I))
    assert out.shape == (N, 7, 2 * H)
    h_n = state[0] if name == "LSTM" else state
    assert h_n.shape == (6, N, H)


# ---------------------------------------------------------------------------- errors


def test_wrong_input_size_names_the_shapes():
    with pytest.raises(RuntimeError, match=r"\(T, N, 5\).*\(4, 3, 6\)"):
        md.nn.LSTM(5, 4)(md.randn(4, 3, 6))


def test_wrong_initial_state_shape_names_the_shapes():
    with pytest.raises(RuntimeError, match=r"h_0 of shape \(2, 3, 4\), got \(1, 3, 4\)"):
        md.nn.GRU(5, 4, num_layers=2)(md.randn(6, 3, 5), md.zeros(1, 3, 4))


def test_lstm_initial_state_must_be_a_pair():
    with pytest.raises(TypeError, match=r"\(h_0, c_0\)"):
        md.nn.LSTM(5, 4)(md.randn(6, 3, 5), md.zeros(1, 3, 4))


def test_wrong_cell_input_names_the_shapes():
    with pytest.raises(RuntimeError, match=r"\(N, 5\).*\(3, 2\)"):
        md.nn.GRUCell(5, 4)(md.randn(3, 2))


def test_dtype_mismatch_is_explained():
    with pytest.raises(TypeError, match="float64.*float32"):
        md.nn.RNN(5, 4)(md.randn(6, 3, 5, dtype=md.float64))


@pytest.mark.parametrize("cls", [md.nn.RNN, md.nn.RNNCell])
def test_unknown_nonlinearity_is_refused(cls):
    with pytest.raises(ValueError, match="sigmoid"):
        cls(5, 4, nonlinearity="sigmoid")


def test_repr_shows_the_configuration():
    text = repr(md.nn.LSTM(5, 4, num_layers=2, batch_first=True))
    assert text == "LSTM(5, 4, num_layers=2, batch_first=True)"
    assert repr(md.nn.RNNCell(5, 4, nonlinearity="relu")) == "RNNCell(5, 4, nonlinearity=relu)"
