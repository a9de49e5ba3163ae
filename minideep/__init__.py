"""minideep: a deep-learning engine from scratch on NumPy, running on CuPy on the GPU.

It speaks PyTorch's language: ``md.tensor``, ``y.backward()``, ``md.nn.Conv2d``,
``md.optim.Adam`` behave like their PyTorch namesakes.
"""

from . import autograd, cuda, data, metrics, nn, optim, train, viz
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
    cat,
    clamp,
    exp,
    flatten,
    log,
    log1p,
    log_softmax,
    matmul,
    max,
    mean,
    min,
    permute,
    relu,
    reshape,
    sigmoid,
    softmax,
    sqrt,
    squeeze,
    stack,
    sum,
    tanh,
    transpose,
    unsqueeze,
    var,
    where,
)
from .serialization import load, save
from .tensor import Tensor, float32, float64, int64  # Tensor first: the ops build on it

__version__ = "0.1.0"
