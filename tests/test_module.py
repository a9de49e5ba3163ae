"""The Module system: registration, traversal, state dicts, modes, dtypes and repr."""

import numpy as np
import pytest

import minideep as md
from minideep import nn


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, padding=1)
        self.bn = nn.BatchNorm2d(3)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 2, bias=False))

    def forward(self, x):
        return self.head(self.bn(self.conv(x)).relu())


def test_named_parameters_use_dotted_paths_in_registration_order():
    names = [name for name, _ in Block().named_parameters()]
    assert names == ["conv.weight", "conv.bias", "bn.weight", "bn.bias", "head.1.weight"]


def test_state_dict_lists_parameters_then_buffers_per_module():
    assert list(Block().state_dict()) == [
        "conv.weight",
        "conv.bias",
        "bn.weight",
        "bn.bias",
        "bn.running_mean",
        "bn.running_var",
        "bn.num_batches_tracked",
        "head.1.weight",
    ]


def test_absent_bias_is_none_and_not_in_state_dict():
    layer = nn.Linear(3, 2, bias=False)
    assert layer.bias is None
    assert list(layer.state_dict()) == ["weight"]


def test_state_dict_holds_copies():
    layer = nn.Linear(2, 2)
    state = layer.state_dict()
    state["weight"][...] = 7
    assert not (layer.weight.numpy() == 7).any()


def test_load_state_dict_round_trip():
    a, b = Block(), Block()
    b.load_state_dict(a.state_dict())
    for key, value in a.state_dict().items():
        np.testing.assert_array_equal(b.state_dict()[key], value)


def test_load_state_dict_error_lists_missing_unexpected_and_mis_shaped_keys():
    state = Block().state_dict()
    del state["bn.bias"]
    state["extra.weight"] = np.zeros(3)
    state["conv.weight"] = np.zeros((3, 2, 5, 5))
    with pytest.raises(RuntimeError) as info:
        Block().load_state_dict(state)
    message = str(info.value)
    assert "missing keys: bn.bias" in message
    assert "unexpected keys: extra.weight" in message
    assert "conv.weight: expected (3, 2, 3, 3), got (3, 2, 5, 5)" in message


def test_load_state_dict_not_strict_reports_missing_and_unexpected():
    state = Block().state_dict()
    del state["conv.bias"]
    state["other"] = np.zeros(1)
    result = Block().load_state_dict(state, strict=False)
    assert result.missing_keys == ["conv.bias"]
    assert result.unexpected_keys == ["other"]


def test_load_state_dict_keeps_the_parameter_objects_and_dtypes():
    layer = nn.Linear(2, 3)
    weight = layer.weight
    layer.load_state_dict({"weight": np.ones((3, 2)), "bias": np.zeros(3)})
    assert layer.weight is weight
    assert layer.weight.dtype == np.float32
    np.testing.assert_array_equal(layer.weight.numpy(), np.ones((3, 2)))


def test_train_and_eval_reach_every_submodule():
    model = Block()
    model.eval()
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())


def test_double_and_float_cast_parameters_and_float_buffers_only():
    model = Block().double()
    assert all(p.dtype == np.float64 for p in model.parameters())
    assert model.bn.running_mean.dtype == np.float64
    assert model.bn.num_batches_tracked.dtype == np.int64
    assert model(md.randn(2, 2, 4, 4, dtype=md.float64)).dtype == np.float64
    model.float()
    assert all(p.dtype == np.float32 for p in model.parameters())


def test_zero_grad_forgets_every_gradient():
    model = Block()
    model(md.randn(2, 2, 4, 4)).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_parameter_keeps_float64_data():
    assert nn.Parameter(np.zeros(3)).dtype == np.float64
    assert nn.Parameter(md.zeros(3, dtype=md.float64)).dtype == np.float64
    assert nn.Parameter(md.zeros(3)).requires_grad


def test_assigning_a_plain_tensor_to_a_parameter_slot_is_refused():
    layer = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="'weight'"):
        layer.weight = md.zeros(2, 2)


def test_shared_parameters_are_listed_once():
    layer = nn.Linear(3, 3)
    model = nn.Sequential(layer, nn.ReLU(), layer)
    assert len(list(model.parameters())) == 2


def test_module_list_registers_its_modules():
    class Stack(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])

    assert len(list(Stack().parameters())) == 6
    assert "layers.2.bias" in Stack().state_dict()


def test_sequential_indexing_and_length():
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    assert len(model) == 3
    assert isinstance(model[-1], nn.Linear)
    assert len(model[:2]) == 2


def test_nested_repr_indents_children():
    assert repr(Block()) == (
        "Block(\n"
        "  (conv): Conv2d(2, 3, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))\n"
        "  (bn): BatchNorm2d(3, eps=1e-05, momentum=0.1, affine=True, bias=True, "
        "track_running_stats=True)\n"
        "  (head): Sequential(\n"
        "    (0): Flatten(start_dim=1, end_dim=-1)\n"
        "    (1): Linear(in_features=48, out_features=2, bias=False)\n"
        "  )\n"
        ")"
    )


def test_load_state_dict_accepts_pytorch_tensors():
    torch = pytest.importorskip("torch")
    theirs = torch.nn.Linear(3, 2)
    ours = nn.Linear(3, 2)
    ours.load_state_dict(theirs.state_dict())
    np.testing.assert_array_equal(ours.weight.numpy(), theirs.weight.detach().numpy())
