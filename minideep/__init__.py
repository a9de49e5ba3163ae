"""minideep: a deep-learning engine from scratch on NumPy, running on CuPy on the GPU.

It speaks PyTorch's language: ``md.tensor``, ``y.backward()``, ``md.nn.Conv2d``,
``md.optim.Adam`` behave like their PyTorch namesakes.
"""

from . import autograd, cuda, data, distributed, metrics, nn, optim, train, vision, viz
from . import backend as _backend
from .autograd import enable_grad, is_grad_enabled, no_grad
from .backend import get_array_module, manual_seed
from .creation import arange, full, ones, ones_like, rand, randn, tensor, zeros, zeros_like
from .fast import fast_paths
from .gradcheck import GradcheckError, gradcheck, gradgradcheck
from .ops import (
    abs,
    argmax,
    argmin,
    argsort,
    bmm,
    cat,
    chunk,
    clamp,
    cos,
    cumsum,
    einsum,
    exp,
    flatten,
    flip,
    gather,
    index_select,
    log,
    log1p,
    log_softmax,
    logsumexp,
    masked_fill,
    matmul,
    max,
    maximum,
    mean,
    min,
    minimum,
    permute,
    pow,
    relu,
    reshape,
    roll,
    scatter_add,
    sigmoid,
    sin,
    softmax,
    sort,
    split,
    sqrt,
    squeeze,
    stack,
    std,
    sum,
    tanh,
    topk,
    transpose,
    tril,
    triu,
    unbind,
    unsqueeze,
    var,
    where,
)
from .ops.reduce import norm  # (minideep.ops.norm is the module of the norm layers)
from .serialization import load, save
from .tensor import (  # Tensor first: the ops build on it
    Tensor,
    float32,
    float64,
    from_dlpack,
    int64,
)

__version__ = "0.1.0"
