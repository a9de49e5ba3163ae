"""Forward + backward of every layer type the lessons use, minideep beside PyTorch CPU.

Each case builds the same layer in both libraries (PyTorch's weights copied from
minideep's through ``state_dict``), feeds the same float32 input at a lessons' shape
(mostly batch 16 at 48x64) and times ``out.backward(upstream)`` including the forward.
``minideep bench --what layers`` prints the table; ``benchmarks/layers.py`` records it.
"""

from __future__ import annotations

import math
import time

import numpy as np

B, H, W = 16, 48, 64  # the lessons' frames: batch 16 at 48x64


def _specs():
    """(name, build(lib) -> callable of the inputs, input shapes, extra kind)."""

    def module(factory):
        return lambda lib: factory(lib.nn)

    def fn(f):
        return lambda lib: lambda *xs: f(lib, *xs)

    def interp(lib, x):
        return lib.nn.functional.interpolate(x, scale_factor=2, mode="bilinear")

    def sample(lib, x, g):
        return lib.nn.functional.grid_sample(x, g, align_corners=False)

    def sdpa(lib, q, k, v):
        return lib.nn.functional.scaled_dot_product_attention(q, k, v)

    def mha(nn):
        m = nn.MultiheadAttention(128, 4, batch_first=True)
        return lambda x: m(x, x, x, need_weights=False)[0]

    def lstm(nn):
        m = nn.LSTM(64, 128, batch_first=True)
        return lambda x: m(x)[0]

    def encoder_layer(nn):
        return nn.TransformerEncoderLayer(
            128, 4, dim_feedforward=256, dropout=0.0, batch_first=True
        )

    def nearest(lib, x):
        return lib.nn.functional.interpolate(x, scale_factor=2, mode="nearest")

    def gru(nn):
        m = nn.GRU(64, 128, batch_first=True)
        return lambda x: m(x)[0]

    return [
        ("Conv2d 3->16 k3 p1", module(lambda nn: nn.Conv2d(3, 16, 3, padding=1)), [(B, 3, H, W)]),
        (
            "Conv2d 16->32 k3 s2 p1",
            module(lambda nn: nn.Conv2d(16, 32, 3, stride=2, padding=1)),
            [(B, 16, H, W)],
        ),
        ("Conv2d 16->1 k3 p1", module(lambda nn: nn.Conv2d(16, 1, 3, padding=1)), [(B, 16, H, W)]),
        (
            "Conv2d depthwise 32 k3 p1",
            module(lambda nn: nn.Conv2d(32, 32, 3, padding=1, groups=32)),
            [(B, 32, H, W)],
        ),
        (
            "ConvTranspose2d 32->16 k4 s2 p1",
            module(lambda nn: nn.ConvTranspose2d(32, 16, 4, stride=2, padding=1)),
            [(B, 32, H // 2, W // 2)],
        ),
        (
            "Conv3d 3->8 k3 p1",
            module(lambda nn: nn.Conv3d(3, 8, 3, padding=1)),
            [(8, 3, 8, 32, 32)],
        ),
        ("Conv2d 32->8 k1", module(lambda nn: nn.Conv2d(32, 8, 1)), [(B, 32, H, W)]),
        (
            "Conv3d 8->16 k3 s2 p1",
            module(lambda nn: nn.Conv3d(8, 16, 3, stride=2, padding=1)),
            [(8, 8, 8, 32, 32)],
        ),
        ("Conv1d 64->64 k3 p1", module(lambda nn: nn.Conv1d(64, 64, 3, padding=1)), [(B, 64, 128)]),
        ("MaxPool2d 2", module(lambda nn: nn.MaxPool2d(2)), [(B, 16, H, W)]),
        ("MaxPool2d 3 s2 p1", module(lambda nn: nn.MaxPool2d(3, 2, 1)), [(B, 16, H, W)]),
        ("MaxPool3d 2", module(lambda nn: nn.MaxPool3d(2)), [(8, 16, 8, 32, 32)]),
        ("AvgPool2d 2", module(lambda nn: nn.AvgPool2d(2)), [(B, 16, H, W)]),
        ("AdaptiveAvgPool2d 1", module(lambda nn: nn.AdaptiveAvgPool2d(1)), [(B, 32, 24, 32)]),
        ("BatchNorm2d (training)", module(lambda nn: nn.BatchNorm2d(16)), [(B, 16, H, W)]),
        ("LayerNorm 128", module(lambda nn: nn.LayerNorm(128)), [(B, 64, 128)]),
        ("GroupNorm 4 groups", module(lambda nn: nn.GroupNorm(4, 16)), [(B, 16, H, W)]),
        ("ReLU", module(lambda nn: nn.ReLU()), [(B, 16, H, W)]),
        ("GELU", module(lambda nn: nn.GELU()), [(B, 16, H, W)]),
        ("Sigmoid", module(lambda nn: nn.Sigmoid()), [(B, 16, H, W)]),
        ("Linear 512->128", module(lambda nn: nn.Linear(512, 128)), [(256, 512)]),
        ("LSTM 64->128, 16 steps", module(lstm), [(B, 16, 64)]),
        ("GRU 64->128, 16 steps", module(gru), [(B, 16, 64)]),
        ("MultiheadAttention 128, 4 heads", module(mha), [(B, 64, 128)]),
        ("TransformerEncoderLayer 128, 4 heads", module(encoder_layer), [(B, 64, 128)]),
        ("scaled_dot_product_attention", fn(sdpa), [(B, 4, 64, 32)] * 3),
        ("interpolate bilinear x2", fn(interp), [(B, 16, H // 2, W // 2)]),
        ("interpolate nearest x2", fn(nearest), [(B, 16, H // 2, W // 2)]),
        ("grid_sample bilinear", fn(sample), [(B, 16, H, W), (B, H, W, 2)]),
    ]


def _modules_of(f):
    """The nn.Module objects a case's callable closes over (to copy weights)."""
    found = []
    if hasattr(f, "state_dict"):
        return [f]
    for cell in getattr(f, "__closure__", None) or ():
        if hasattr(cell.cell_contents, "state_dict"):
            found.append(cell.cell_contents)
    return found


def _warm_up(run, calls: int = 25, seconds: float = 1.5) -> None:
    """Run a case ``calls`` times (at most ``seconds``) before timing it: PyTorch's
    depthwise convolution took about 20 calls to reach its speed (12 ms, then 4.5)."""
    start = time.perf_counter()
    for _ in range(calls):
        run()
        if time.perf_counter() - start > seconds:
            break


def layer_rows(
    repeats: int = 10, quick: bool = False, filter: str = "", rounds: int = 5
) -> list[dict]:
    """One row per case: minideep and PyTorch forward+backward times (the best of
    ``rounds`` medians of ``repeats`` runs, the two libraries alternating) and their
    ratio, then the geometric mean of the ratios."""
    import minideep as md

    from .bench import _torch, time_cpu

    torch = _torch()
    rows, ratios = [], []
    for name, build, shapes in _specs():
        if filter and filter not in name:
            continue
        rng = np.random.default_rng(0)
        md.manual_seed(0)
        ours = build(md)
        arrays = [rng.standard_normal(s).astype(np.float32) for s in shapes]
        if "grid_sample" in name:
            arrays[1] = np.tanh(arrays[1])  # sampling positions inside the frame
        if quick:
            arrays = [a[:2] for a in arrays]
        xs = [md.tensor(a, requires_grad=True) for a in arrays]
        out = ours(*xs)
        upstream = rng.standard_normal(out.shape).astype(np.float32)

        def run_ours(f=ours, xs=xs, upstream=upstream):
            for x in xs:
                x.grad = None
            f(*xs).backward(upstream)

        row = {"layer": name, "input": " ".join("x".join(map(str, a.shape)) for a in arrays)}
        reps = 1 if quick else repeats
        runs = {"minideep ms": run_ours}
        if torch is not None:
            theirs = build(torch)
            for m_ours, m_theirs in zip(_modules_of(ours), _modules_of(theirs)):
                state = {k: torch.from_numpy(np.array(v)) for k, v in m_ours.state_dict().items()}
                m_theirs.load_state_dict(state)
            ts = [torch.tensor(a, requires_grad=True) for a in arrays]
            tu = torch.tensor(upstream)

            def run_theirs(f=theirs, ts=ts, tu=tu):
                for t in ts:
                    t.grad = None
                f(*ts).backward(tu)

            runs["PyTorch ms"] = run_theirs
        if not quick:
            for run in runs.values():
                _warm_up(run)
            if time_cpu(run_ours, repeats=3, warmup=0) < 2e-3:
                reps = 5 * repeats  # a short case: more repeats against the machine's jitter
        best = {}
        for _ in range(1 if quick else rounds):  # alternate: a drift of the machine hits both
            for key, run in runs.items():
                seconds = time_cpu(run, repeats=reps, warmup=1)
                best[key] = min(best.get(key, seconds), seconds)
        row.update({key: round(1e3 * seconds, 3) for key, seconds in best.items()})
        if torch is not None:
            row["minideep / PyTorch"] = round(best["minideep ms"] / best["PyTorch ms"], 2)
            ratios.append(row["minideep / PyTorch"])
        rows.append(row)
    if ratios:
        gm = math.exp(sum(math.log(r) for r in ratios) / len(ratios))
        rows.append({"layer": "geometric mean", "minideep / PyTorch": round(gm, 2)})
    return rows
