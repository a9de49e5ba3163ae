"""The GPU path (CuPy): every op gives the CPU's results and passes its gradient check there.

Marked ``gpu``; skipped when CuPy or a CUDA device is missing.
"""

import numpy as np
import pytest

import minideep as md
from minideep.checks import all_cases, run_case

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not md.cuda.is_available(), reason="needs CUDA and CuPy"),
]

CASES = all_cases()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_gradient_check_on_the_gpu(case):
    run_case(case, device="cuda")


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_gpu_forward_and_backward_match_the_cpu(case):
    cpu_inputs = case.inputs(seed=3)
    gpu_inputs = case.inputs(seed=3, device="cuda")
    outs = []
    for inputs in (cpu_inputs, gpu_inputs):
        out = case.fn(*inputs)
        out = out if isinstance(out, (tuple, list)) else (out,)
        differentiable = [o for o in out if o.requires_grad]
        rng = np.random.default_rng(0)
        ups = [o.xp.asarray(rng.standard_normal(o.shape)) for o in differentiable]
        if differentiable:
            md.autograd.backward(differentiable, ups)
        outs.append(
            ([o.numpy() for o in out], [t.grad.numpy() for t in inputs if t.grad is not None])
        )
    (cpu_out, cpu_grads), (gpu_out, gpu_grads) = outs
    for c, g in zip(cpu_out + cpu_grads, gpu_out + gpu_grads):
        np.testing.assert_allclose(g, c, rtol=1e-9, atol=1e-10)


def test_tensor_moves_between_devices():
    x = md.randn(3, 4)
    g = x.to("cuda")
    assert g.device == "cuda" and type(g.data).__module__.startswith("cupy")
    np.testing.assert_array_equal(g.cpu().numpy(), x.numpy())
    assert md.tensor([1.0], device="cuda").device == "cuda"


def test_gradient_flows_back_across_devices():
    x = md.randn(3, requires_grad=True)
    (x.cuda() * 2).sum().backward()
    assert x.grad.device == "cpu" and x.grad.tolist() == [2.0, 2.0, 2.0]


def test_mixing_devices_names_both():
    with pytest.raises(RuntimeError, match="cpu.*cuda|cuda.*cpu"):
        md.randn(3) + md.randn(3).cuda()


def test_float32_elementwise_and_gemm_agree_with_the_cpu():
    a = md.randn(64, 128)
    b = md.randn(128, 32)
    for fn, rtol in ((lambda x, y: (x.tanh() * 2).exp(), 1e-5), (lambda x, y: x @ y, 1e-4)):
        cpu = fn(a, b).numpy()
        gpu = fn(a.cuda(), b.cuda()).numpy()
        np.testing.assert_allclose(gpu, cpu, rtol=rtol, atol=rtol)


def test_random_draws_are_seeded_on_the_gpu():
    md.manual_seed(5)
    a = md.randn(4, device="cuda").numpy()
    md.manual_seed(5)
    b = md.randn(4, device="cuda").numpy()
    np.testing.assert_array_equal(a, b)
