"""Core ops give PyTorch's values and gradients (float64). Skipped without PyTorch."""

import numpy as np
import pytest

import minideep as md

torch = pytest.importorskip("torch")

RNG = np.random.default_rng(7)

# (name, minideep fn, torch fn, input arrays); both fns take the library's module first.
CASES = [
    ("add broadcast", lambda L, a, b: a + b, [(3, 4), (4,)]),
    ("mul div", lambda L, a, b: a * b / (b * b + 1), [(3, 4), (3, 4)]),
    ("pow", lambda L, a, b: (a * a + 1) ** 1.5 - b**2, [(5,), (5,)]),
    ("matmul batched", lambda L, a, b: a @ b, [(2, 3, 4), (4, 5)]),
    ("exp log sqrt", lambda L, a, b: (a.exp() + b.abs()).log() + (b * b + 1).sqrt(), [(4,), (4,)]),
    ("tanh sigmoid relu", lambda L, a, b: a.tanh() * b.sigmoid() + a.relu(), [(3, 5), (3, 5)]),
    ("softmax", lambda L, a, b: a.softmax(dim=1) * b, [(3, 5), (3, 5)]),
    ("log_softmax", lambda L, a, b: a.log_softmax(dim=0) * b, [(3, 5), (3, 5)]),
    ("sum mean", lambda L, a, b: a.sum(dim=1, keepdim=True) * b.mean(dim=0), [(3, 4), (3, 4)]),
    ("var", lambda L, a, b: a.var(dim=1) + b.var(), [(3, 4), (3, 4)]),
    ("max dim", lambda L, a, b: a.max(dim=1)[0] + b.min(dim=1)[0], [(3, 4), (3, 4)]),
    ("max all", lambda L, a, b: a.max() * b, [(3, 4), (3, 4)]),
    ("clamp", lambda L, a, b: a.clamp(-0.3, 0.4) + b.clamp(min=0.1), [(6,), (6,)]),
    (
        "shapes",
        lambda L, a, b: a.reshape(4, 3).transpose(0, 1).permute(1, 0).flatten() * b.view(-1),
        [(3, 4), (3, 4)],
    ),
    ("unsqueeze squeeze", lambda L, a, b: a.unsqueeze(0).squeeze(0) + b, [(3, 4), (3, 4)]),
    ("index", lambda L, a, b: a[1:, ::2] * b[[0, 0], :2], [(3, 4), (3, 4)]),
    (
        "cat stack",
        lambda L, a, b: L.cat([a, b], 1).sum() + L.stack([a, b], 0).mean(),
        [(3, 4), (3, 4)],
    ),
    ("where", lambda L, a, b: L.where(a > 0, a, b * 2), [(3, 4), (3, 4)]),
]


@pytest.mark.parametrize("name, fn, shapes", CASES, ids=[c[0] for c in CASES])
def test_values_and_gradients_match_pytorch(name, fn, shapes):
    arrays = [RNG.standard_normal(s) for s in shapes]
    ours = [md.tensor(a, dtype=md.float64, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, dtype=torch.float64, requires_grad=True) for a in arrays]
    out_md, out_t = fn(md, *ours), fn(torch, *theirs)
    np.testing.assert_allclose(out_md.numpy(), out_t.detach().numpy(), rtol=1e-12, atol=1e-12)
    upstream = RNG.standard_normal(out_t.shape)
    out_md.backward(upstream)
    out_t.backward(torch.tensor(upstream))
    for m, t in zip(ours, theirs):
        np.testing.assert_allclose(m.grad.numpy(), t.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_dtype_promotion_matches_pytorch():
    for data in ([1.0, 2.0], [1, 2]):
        for scalar in (2, 2.5):
            ours = (md.tensor(data) * scalar).dtype
            theirs = (torch.tensor(data) * scalar).dtype
            assert str(theirs).endswith(np.dtype(ours).name), (data, scalar)
