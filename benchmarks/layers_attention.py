"""Transformer building blocks: minideep against PyTorch's CPU kernels, forward+backward.

LayerNorm (batch 16 x 64 tokens x 128 features), scaled_dot_product_attention (batch 16,
4 heads, 64 tokens, head dim 32) and MultiheadAttention (E = 128, 4 heads, 16 sequences
of 64 tokens, self-attention), float32, one fixed upstream gradient, the gradients of
every input and parameter. PyTorch gets the same number of threads as NumPy's BLAS; the
target is a ratio (minideep time / PyTorch time) of at most 2.

    python benchmarks/layers_attention.py
"""

from __future__ import annotations

import os

import numpy as np
from common import median_time, write_results

import minideep as md
from minideep import nn
from minideep.bench import blas_threads
from minideep.nn import functional as F

REPEATS = 20
TARGET = 2.0


def _arrays(*shapes):
    rng = np.random.default_rng(0)
    return [rng.standard_normal(s).astype(np.float32) for s in shapes]


def _cases(torch):
    """(name, minideep fn, torch fn, input arrays, minideep params, torch params)."""
    md.manual_seed(0)
    torch.manual_seed(0)
    md_ln, torch_ln = nn.LayerNorm(128), torch.nn.LayerNorm(128)
    md_mha = nn.MultiheadAttention(128, 4, batch_first=True)
    torch_mha = torch.nn.MultiheadAttention(128, 4, batch_first=True)
    qkv = _arrays((16, 4, 64, 32), (16, 4, 64, 32), (16, 4, 64, 32))
    return [
        (
            "LayerNorm(128), 16 x 64 tokens",
            md_ln,
            torch_ln,
            _arrays((16, 64, 128)),
            list(md_ln.parameters()),
            list(torch_ln.parameters()),
        ),
        (
            "scaled_dot_product_attention 16 x 4 heads x 64 x 32",
            F.scaled_dot_product_attention,
            torch.nn.functional.scaled_dot_product_attention,
            qkv,
            [],
            [],
        ),
        (
            "MultiheadAttention(128, 4), 16 x 64 tokens, self-attention",
            lambda x: md_mha(x, x, x, need_weights=False)[0],
            lambda x: torch_mha(x, x, x, need_weights=False)[0],
            _arrays((16, 64, 128)),
            list(md_mha.parameters()),
            list(torch_mha.parameters()),
        ),
    ]


def _step(fn, leaves, params, make_upstream):
    upstream = None

    def run():
        nonlocal upstream
        for t in leaves + params:
            t.grad = None
        out = fn(*leaves)
        if upstream is None:
            upstream = make_upstream(out)
        out.backward(upstream)

    return run


def main() -> None:
    import torch

    torch.set_num_threads(blas_threads())
    load_before = os.getloadavg()[0]
    rows = []
    for name, ours, theirs, arrays, md_params, torch_params in _cases(torch):
        md_leaves = [md.tensor(a, requires_grad=True) for a in arrays]
        torch_leaves = [torch.tensor(a, requires_grad=True) for a in arrays]
        md_run = _step(ours, md_leaves, md_params, lambda o: md.ones_like(o))
        torch_run = _step(theirs, torch_leaves, torch_params, lambda o: torch.ones_like(o))
        t_ours = median_time(md_run, repeats=REPEATS)
        t_theirs = median_time(torch_run, repeats=REPEATS)
        rows.append(
            {
                "case (float32, forward+backward)": name,
                "minideep ms": round(t_ours * 1e3, 2),
                "torch ms": round(t_theirs * 1e3, 2),
                "ratio": round(t_ours / t_theirs, 2),
            }
        )
    load_after = os.getloadavg()[0]
    notes = (
        f"Written by benchmarks/layers_attention.py. Threads: NumPy BLAS {blas_threads()}, "
        f"PyTorch {torch.get_num_threads()}. ratio = minideep time / PyTorch time; target "
        f"<= {TARGET}. Medians of {REPEATS} repeats after 3 warm-up calls. 1-minute load "
        f"average {load_before:.1f} before and {load_after:.1f} after the run"
        + (
            " (above the core count: other processes shared the CPU, so every time is inflated)."
            if max(load_before, load_after) > (os.cpu_count() or 1)
            else " (below the core count: a quiet machine)."
        )
    )
    write_results("layers_attention", rows, "Transformer layers, float32, CPU", notes)
    print(notes)


if __name__ == "__main__":
    main()
