"""Gradient checks of the core tensor ops: arithmetic, reductions, shapes, indexing,
activations."""

import numpy as np

import minideep as md
from minideep.ops.index import IntoZeros
from minideep.ops.math import ToDevice

from . import Case, constant, mask, positive, randn

CASES = [
    # arithmetic, with broadcasting on either side
    Case("add", lambda a, b: a + b, [randn(3, 4), randn(4)]),
    Case("sub", lambda a, b: a - b, [randn(3, 1), randn(3, 4)]),
    Case("mul", lambda a, b: a * b, [randn(2, 3, 4), randn(3, 1)]),
    Case("div", lambda a, b: a / b, [randn(3, 4), positive(3, 4)]),
    Case("scalar ops", lambda a: (2.0 - a) * 3.0 / 4.0 + 1.0, [randn(5)]),
    Case("rdiv", lambda a: 1.0 / a, [positive(5)]),
    Case("neg", lambda a: -a, [randn(3, 2)]),
    Case("pow scalar", lambda a: a**3, [randn(4, 3)]),
    Case("pow tensor", lambda a, b: a**b, [positive(4), randn(4)]),
    Case("matmul 2d", lambda a, b: a @ b, [randn(3, 4), randn(4, 5)]),
    Case("matmul batched", lambda a, b: a @ b, [randn(2, 3, 4), randn(4, 2)]),
    Case("matmul vector", lambda a, b: a @ b, [randn(4), randn(4, 3)]),
    Case("matmul mat-vec", lambda a, b: a @ b, [randn(3, 4), randn(4)]),
    Case("exp", lambda a: a.exp(), [randn(3, 4)]),
    Case("log", lambda a: a.log(), [positive(3, 4)]),
    Case("log1p", lambda a: md.log1p(a), [positive(3, 4)]),
    Case("sqrt", lambda a: a.sqrt(), [positive(3, 4)]),
    Case("abs", lambda a: a.abs(), [randn(3, 4)]),
    Case("clamp", lambda a: a.clamp(-0.5, 0.5), [randn(4, 4)]),
    Case("clamp min", lambda a: a.clamp(min=0.1), [randn(4, 4)]),
    Case("where", lambda c, a, b: md.where(c, a, b), [mask(3, 4), randn(3, 4), randn(4)]),
    # float32 in the middle: a linear function and a wide finite-difference step
    Case("cast", lambda a: (a.float() * 3).double(), [randn(3)], atol=1e-4, eps=1e-2),
    # the copy between devices, exercised here on the CPU (the GPU suite runs it for real)
    Case("to device", lambda a: ToDevice.apply(a * 2, "cpu"), [randn(3)]),
    # reductions
    Case("sum all", lambda a: a.sum(), [randn(3, 4)]),
    Case("sum dim", lambda a: a.sum(dim=1), [randn(3, 4, 2)]),
    Case("sum dims keepdim", lambda a: a.sum(dim=(0, 2), keepdim=True), [randn(3, 4, 2)]),
    Case("mean all", lambda a: a.mean(), [randn(3, 4)]),
    Case("mean dim", lambda a: a.mean(dim=-1, keepdim=True), [randn(3, 4)]),
    Case("var", lambda a: a.var(dim=0), [randn(5, 3)]),
    Case("max all", lambda a: a.max(), [randn(3, 4)]),
    Case("max dim", lambda a: a.max(dim=1).values, [randn(3, 4, 2)]),
    Case("min dim keepdim", lambda a: a.min(dim=0, keepdim=True)[0], [randn(3, 4)]),
    Case("min all", lambda a: a.min(), [randn(6)]),
    # shapes
    Case("reshape", lambda a: a.reshape(4, 3) * a.reshape(4, 3), [randn(3, 4)]),
    Case("view -1", lambda a: a.view(-1), [randn(2, 3)]),
    Case("flatten", lambda a: a.flatten(1), [randn(2, 3, 2)]),
    Case("transpose", lambda a: a.transpose(0, 2), [randn(2, 3, 4)]),
    Case("permute", lambda a: a.permute(2, 0, 1), [randn(2, 3, 4)]),
    Case("T", lambda a: a.T, [randn(2, 3)]),
    Case("unsqueeze squeeze", lambda a: a.unsqueeze(1).squeeze(1), [randn(3, 4)]),
    Case("squeeze all", lambda a: a.squeeze(), [randn(3, 1, 4, 1)]),
    Case("expand", lambda a: a.expand(2, 3, 4), [randn(3, 1)]),
    Case("cat", lambda a, b: md.cat([a, b], dim=1), [randn(2, 3), randn(2, 2)]),
    Case("stack", lambda a, b: md.stack([a, b], dim=-1), [randn(2, 3), randn(2, 3)]),
    # indexing
    Case("getitem slice", lambda a: a[1:, ::2], [randn(4, 5)]),
    Case("getitem int None ellipsis", lambda a: a[1, None, ..., 2], [randn(3, 4, 5)]),
    Case(
        "getitem repeated integer array",
        lambda a: a[np.array([0, 2, 0, 0])],
        [randn(3, 4)],
    ),
    Case(
        "getitem pair of arrays",
        lambda a: a[np.array([0, 1, 1]), np.array([2, 0, 2])],
        [randn(3, 4)],
    ),
    Case("getitem mask", lambda a, m: a[m], [randn(3, 4), mask(3, 4)]),
    Case(  # getitem's backward, a scatter into zeros (its own backward is getitem)
        "into zeros, repeated rows",
        lambda g: IntoZeros.apply(g, (5, 4), (np.array([0, 2, 2]),)),
        [randn(3, 4)],
    ),
    # activations
    Case("relu", lambda a: a.relu(), [randn(4, 5)]),
    Case("leaky_relu", lambda a: md.nn.functional.leaky_relu(a, 0.2), [randn(4, 5)]),
    Case("tanh", lambda a: a.tanh(), [randn(4, 5)]),
    Case("sigmoid", lambda a: a.sigmoid(), [randn(4, 5)]),
    Case("softmax", lambda a: a.softmax(dim=1), [randn(3, 5)]),
    Case("log_softmax", lambda a: a.log_softmax(dim=-1), [randn(3, 5)]),
    Case("log_softmax dim 0", lambda a: a.log_softmax(dim=0), [randn(3, 5)]),
    # composition: a diamond through the same tensor and a target that is not checked
    Case("diamond", lambda a: (a.exp() * a.tanh() + a) / (1 + a * a), [randn(6)]),
    Case("mse by hand", lambda a, t: ((a - t) ** 2).mean(), [randn(4, 3), constant(4, 3)]),
]
