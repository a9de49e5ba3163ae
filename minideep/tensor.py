"""The Tensor: an array, its gradient, and the node of the graph that created it.

A Tensor holds

* ``data`` - a ``numpy.ndarray`` (CPU) or ``cupy.ndarray`` (GPU);
* ``requires_grad`` - whether gradients flow back to it;
* ``grad`` - after ``backward()``, a Tensor with dLoss/dself (leaves only, unless
  ``retain_grad()`` was called);
* ``register_hook(fn)`` - ``fn(grad)`` sees (and may replace) the gradient that backward
  computes for this tensor;
* ``_ctx`` - the :class:`~minideep.autograd.Function` node that produced it (``None``
  for a leaf, a tensor made by the user).

Arithmetic operators and methods do no maths here: each one calls an op from
``minideep.ops``, where the forward and backward of every operation live side by side.
"""

from __future__ import annotations

import numpy as np

from . import backend

float32 = np.float32
float64 = np.float64
int64 = np.int64


def _as_array(data, dtype=None, device: str = "cpu"):
    """Convert Python data or an array into an array following PyTorch's dtype rules.

    Floats become float32 unless ``dtype`` says otherwise; integers stay int64; bools stay bool.
    """
    if isinstance(data, Tensor):
        data = data.data
    xp = backend.xp_for(device)
    if device == "cpu" and backend.is_cupy_array(data):
        data = data.get()
    array = xp.asarray(data)
    if dtype is None:
        kind = array.dtype.kind
        if kind == "f":
            dtype = np.float32
        elif kind in "iu":
            dtype = np.int64
    if dtype is not None and array.dtype != dtype:
        array = array.astype(dtype)
    return array


class Tensor:
    """An n-dimensional array that records the operations applied to it."""

    __slots__ = (
        "data",
        "grad",
        "requires_grad",
        "_ctx",
        "_out_index",
        "_hooks",
        "__weakref__",
    )
    __array_ufunc__ = None  # `ndarray + Tensor` calls Tensor.__radd__ instead of numpy's add

    def __init__(self, data, requires_grad: bool = False, dtype=None, device: str | None = None):
        if (
            dtype is None
            and device is None
            and (isinstance(data, np.ndarray) or backend.is_cupy_array(data))
        ):
            self.data = data  # an array is wrapped as it is: float64 stays float64 on both
        else:
            if device is None:
                device = backend.device_of(data)
            self.data = _as_array(data, dtype, device)
        if requires_grad and self.data.dtype.kind != "f":
            raise RuntimeError(
                f"only floating-point tensors can require gradients, got dtype {self.data.dtype}"
            )
        self.requires_grad = requires_grad
        self.grad = None
        self._ctx = None
        self._hooks = None  # gradient hooks of a leaf (a non-leaf's live on its node)

    # ----------------------------------------------------------------- attributes
    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def device(self) -> str:
        return "cpu" if isinstance(self.data, np.ndarray) else "cuda"

    @property
    def xp(self):
        """The array module of this tensor: ``numpy`` or ``cupy``."""
        return np if isinstance(self.data, np.ndarray) else backend.get_array_module(self.data)

    @property
    def is_leaf(self) -> bool:
        return self._ctx is None

    @property
    def grad_fn(self):
        """The node (a ``Function`` instance) that made this tensor, None for a leaf."""
        return self._ctx

    @property
    def T(self) -> Tensor:
        return self.permute(*reversed(range(self.ndim)))

    def size(self, dim: int | None = None):
        return self.data.shape if dim is None else self.data.shape[dim]

    def dim(self) -> int:
        return self.data.ndim

    def numel(self) -> int:
        return int(self.data.size)

    def __len__(self) -> int:
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.data.shape[0]

    def __repr__(self) -> str:
        body = np.array2string(
            backend.as_numpy(self.data), separator=", ", prefix="tensor(", precision=4
        )
        extras = []
        if self.device != "cpu":
            extras.append(f"device='{self.device}'")
        if self.data.dtype not in (np.float32, np.int64, np.bool_):
            extras.append(f"dtype={self.data.dtype}")
        if self._ctx is not None:
            extras.append(f"grad_fn=<{type(self._ctx).__name__}>")
        elif self.requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + ", ".join([body, *extras]) + ")"

    __hash__ = object.__hash__

    # ----------------------------------------------------------------- conversion
    def numpy(self) -> np.ndarray:
        """The data as a host numpy array (copied from the GPU when needed)."""
        return backend.as_numpy(self.data)

    def item(self):
        if self.data.size != 1:
            raise ValueError(f"item() needs a one-element tensor, got shape {tuple(self.shape)}")
        return self.data.item()

    def tolist(self):
        return self.numpy().tolist()

    def detach(self) -> Tensor:
        """A tensor sharing the same data, cut from the graph."""
        return Tensor(self.data)

    def to(self, target) -> Tensor:
        """``to("cuda")``/``to("cpu")`` moves; ``to(md.float64)`` casts (both differentiable)."""
        if isinstance(target, str):
            return _ops.to_device(self, backend.check_device(target))
        return _ops.cast(self, np.dtype(target))

    def cpu(self) -> Tensor:
        return self.to("cpu")

    def cuda(self) -> Tensor:
        return self.to("cuda")

    def float(self) -> Tensor:
        return _ops.cast(self, np.dtype(np.float32))

    def double(self) -> Tensor:
        return _ops.cast(self, np.dtype(np.float64))

    def long(self) -> Tensor:
        return _ops.cast(self, np.dtype(np.int64))

    # ----------------------------------------------------------------- autograd
    def backward(self, gradient=None, retain_graph=None, create_graph=False, inputs=None):
        """Accumulate dself/dleaf into ``.grad`` of every leaf that requires grad.

        ``create_graph=True`` makes those gradients Tensors of a graph themselves (to
        differentiate again); ``retain_graph`` (default ``create_graph``) keeps the saved
        arrays for another backward; ``inputs`` limits which tensors accumulate.
        """
        if inputs is None:  # the usual call: straight to the walk
            _autograd._run((self,), (gradient,), retain_graph, create_graph)
        else:
            _autograd.backward(self, gradient, retain_graph, create_graph, inputs)

    def register_hook(self, hook):
        """Call ``hook(grad)`` with this tensor's gradient whenever backward computes it;
        a Tensor it returns replaces the gradient. Returns a handle with ``.remove()``."""
        if not self.requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that does not require grad")
        if self._ctx is None:
            if self._hooks is None:
                self._hooks = []
            hooks = self._hooks
        else:
            node = self._ctx
            if node.output_hooks is None:
                node.output_hooks = {}
            hooks = node.output_hooks.setdefault(self._out_index, [])
        hooks.append(hook)
        return RemovableHandle(hooks, hook)

    def retain_grad(self) -> None:
        """Keep ``.grad`` on this non-leaf tensor after backward (for inspection)."""
        if self._ctx is None or self.retains_grad:
            return
        self.register_hook(_Retain(self))

    @property
    def retains_grad(self) -> bool:
        """Whether ``retain_grad()`` was called on this non-leaf tensor."""
        hooks = self._ctx.output_hooks if self._ctx is not None else None
        return bool(hooks) and any(isinstance(h, _Retain) for h in hooks.get(self._out_index, ()))

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if requires_grad and self.data.dtype.kind != "f":
            raise RuntimeError(
                f"only floating-point tensors can require gradients, got dtype {self.data.dtype}"
            )
        self.requires_grad = requires_grad
        return self

    def zero_(self) -> Tensor:
        """Set every element to zero in place (outside autograd)."""
        self.data[...] = 0
        return self

    # ----------------------------------------------------------------- operators
    def __add__(self, other):
        return _ops.add(self, other)

    def __radd__(self, other):
        return _ops.add(other, self)

    def __sub__(self, other):
        return _ops.sub(self, other)

    def __rsub__(self, other):
        return _ops.sub(other, self)

    def __mul__(self, other):
        return _ops.mul(self, other)

    def __rmul__(self, other):
        return _ops.mul(other, self)

    def __truediv__(self, other):
        return _ops.div(self, other)

    def __rtruediv__(self, other):
        return _ops.div(other, self)

    def __pow__(self, exponent):
        return _ops.pow(self, exponent)

    def __rpow__(self, base):
        return _ops.pow(base, self)

    def __matmul__(self, other):
        return _ops.matmul(self, other)

    def __rmatmul__(self, other):
        return _ops.matmul(other, self)

    def __neg__(self):
        return _ops.neg(self)

    def __getitem__(self, index):
        return _ops.getitem(self, index)

    # Comparisons give tensors without gradient, like PyTorch.
    def __eq__(self, other):
        return _compare("equal", self, other)

    def __ne__(self, other):
        return _compare("not_equal", self, other)

    def __lt__(self, other):
        return _compare("less", self, other)

    def __le__(self, other):
        return _compare("less_equal", self, other)

    def __gt__(self, other):
        return _compare("greater", self, other)

    def __ge__(self, other):
        return _compare("greater_equal", self, other)

    def __bool__(self) -> bool:
        if self.data.size != 1:
            raise RuntimeError(
                f"the truth value of a tensor with {self.data.size} elements is ambiguous"
            )
        return bool(self.data)

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        return int(self.item())

    # ----------------------------------------------------------------- methods
    def sum(self, dim=None, keepdim: bool = False, *, axis=None, keepdims=None):
        """(``axis``/``keepdims``: NumPy's names, accepted as PyTorch accepts them; they let
        a backward formula written for arrays run on Tensors.)"""
        if axis is not None:
            dim = axis
        return _ops.sum(self, dim, keepdim if keepdims is None else keepdims)

    def mean(self, dim=None, keepdim: bool = False, *, axis=None, keepdims=None):
        if axis is not None:
            dim = axis
        return _ops.mean(self, dim, keepdim if keepdims is None else keepdims)

    def var(self, dim=None, unbiased=None, keepdim: bool = False, *, correction=None):
        return _ops.var(self, dim, unbiased, keepdim, correction=correction)

    def std(self, dim=None, unbiased=None, keepdim: bool = False, *, correction=None):
        return _ops.std(self, dim, unbiased, keepdim, correction=correction)

    def norm(self, p=2, dim=None, keepdim: bool = False):
        return _ops.reduce.norm(self, p, dim, keepdim)  # (ops.norm: the norm layers' module)

    def logsumexp(self, dim, keepdim: bool = False):
        return _ops.logsumexp(self, dim, keepdim)

    def cumsum(self, dim: int):
        return _ops.cumsum(self, dim)

    def max(self, dim=None, keepdim: bool = False):
        return _ops.max(self, dim, keepdim)

    def min(self, dim=None, keepdim: bool = False):
        return _ops.min(self, dim, keepdim)

    def argmax(self, dim=None, keepdim: bool = False):
        return _ops.argmax(self, dim, keepdim)

    def argmin(self, dim=None, keepdim: bool = False):
        return _ops.argmin(self, dim, keepdim)

    def exp(self):
        return _ops.exp(self)

    def log(self):
        return _ops.log(self)

    def log1p(self):
        return _ops.log1p(self)

    def sin(self):
        return _ops.sin(self)

    def cos(self):
        return _ops.cos(self)

    def maximum(self, other):
        return _ops.maximum(self, other)

    def minimum(self, other):
        return _ops.minimum(self, other)

    def sqrt(self):
        return _ops.sqrt(self)

    def abs(self):
        return _ops.abs(self)

    def tanh(self):
        return _ops.tanh(self)

    def sigmoid(self):
        return _ops.sigmoid(self)

    def relu(self):
        return _ops.relu(self)

    def clamp(self, min=None, max=None):
        return _ops.clamp(self, min, max)

    def pow(self, exponent):
        return _ops.pow(self, exponent)

    def matmul(self, other):
        return _ops.matmul(self, other)

    def softmax(self, dim: int):
        return _ops.softmax(self, dim)

    def log_softmax(self, dim: int):
        return _ops.log_softmax(self, dim)

    def reshape(self, *shape):
        return _ops.reshape(self, *shape)

    def view(self, *shape):
        return _ops.reshape(self, *shape)

    def flatten(self, start_dim: int = 0, end_dim: int = -1):
        return _ops.flatten(self, start_dim, end_dim)

    def transpose(self, dim0: int, dim1: int):
        return _ops.transpose(self, dim0, dim1)

    def permute(self, *dims):
        return _ops.permute(self, *dims)

    def swapaxes(self, axis0: int, axis1: int):
        return _ops.transpose(self, axis0, axis1)

    def astype(self, dtype):
        """NumPy's name for ``to(dtype)``; backward formulas call it on arrays and Tensors."""
        return _ops.cast(self, np.dtype(dtype))

    def unsqueeze(self, dim: int):
        return _ops.unsqueeze(self, dim)

    def squeeze(self, dim=None):
        return _ops.squeeze(self, dim)

    def expand(self, *shape):
        return _ops.expand(self, *shape)

    def repeat(self, *sizes):
        return _ops.repeat(self, *sizes)

    def flip(self, dims, *more):
        """``flip(0, 2)``, ``flip((0, 2))`` or ``flip(dims=(0, 2))``, as PyTorch."""
        return _ops.flip(self, (dims, *more) if more else dims)

    def roll(self, shifts, dims=None):
        return _ops.roll(self, shifts, dims)

    def chunk(self, chunks: int, dim: int = 0):
        return _ops.chunk(self, chunks, dim)

    def split(self, split_size_or_sections, dim: int = 0):
        return _ops.split(self, split_size_or_sections, dim)

    def unbind(self, dim: int = 0):
        return _ops.unbind(self, dim)

    def gather(self, dim: int, index):
        return _ops.gather(self, dim, index)

    def scatter_add(self, dim: int, index, src):
        return _ops.scatter_add(self, dim, index, src)

    def index_select(self, dim: int, index):
        return _ops.index_select(self, dim, index)

    def masked_fill(self, mask, value):
        return _ops.masked_fill(self, mask, value)

    def sort(self, dim: int = -1, descending: bool = False, stable: bool = False):
        return _ops.sort(self, dim, descending, stable)

    def argsort(self, dim: int = -1, descending: bool = False, stable: bool = False):
        return _ops.argsort(self, dim, descending, stable)

    def topk(self, k: int, dim: int = -1, largest: bool = True, sorted: bool = True):
        return _ops.topk(self, k, dim, largest, sorted)

    def triu(self, diagonal: int = 0):
        return _ops.triu(self, diagonal)

    def tril(self, diagonal: int = 0):
        return _ops.tril(self, diagonal)

    def bmm(self, other):
        return _ops.bmm(self, other)

    # DLPack: zero-copy exchange with NumPy, CuPy and PyTorch (torch.from_dlpack(t),
    # np.from_dlpack(t)); the array underneath exports itself.
    def __dlpack__(self, *args, **kwargs):
        return self.data.__dlpack__(*args, **kwargs)

    def __dlpack_device__(self):
        return self.data.__dlpack_device__()


class RemovableHandle:
    """Returned by ``register_hook``: ``handle.remove()`` takes the hook out again."""

    def __init__(self, hooks: list, hook):
        self._hooks, self._hook = hooks, hook

    def remove(self) -> None:
        if self._hook in self._hooks:
            self._hooks.remove(self._hook)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


class _Retain:
    """The hook ``retain_grad`` adds: it stores the final gradient in ``tensor.grad``."""

    retains = True  # run after the user's hooks

    def __init__(self, tensor: Tensor):
        self.tensor = tensor

    def __call__(self, grad: Tensor):
        t = self.tensor
        t.grad = grad if t.grad is None else t.grad + grad
        return None


def from_dlpack(x) -> Tensor:
    """A Tensor sharing memory with ``x``: any object with ``__dlpack__`` (a PyTorch
    tensor, a NumPy or CuPy array); on the GPU when ``x`` is (then through CuPy)."""
    if isinstance(x, Tensor):
        return x
    if not hasattr(x, "__dlpack__"):
        raise TypeError(f"from_dlpack: {type(x).__name__} does not implement __dlpack__")
    device_type = x.__dlpack_device__()[0]
    if device_type == 1:  # kDLCPU
        return Tensor(np.from_dlpack(x))
    if device_type in (2, 3, 13):  # kDLCUDA, kDLCUDAHost, kDLCUDAManaged
        backend.check_device("cuda")
        return Tensor(backend.xp_for("cuda").from_dlpack(x))
    raise ValueError(
        f"from_dlpack: device type {device_type} of {type(x).__name__} is neither the CPU (1) "
        f"nor CUDA (2)"
    )


def _compare(ufunc_name: str, a: Tensor, b):
    b = b.data if isinstance(b, Tensor) else b
    return Tensor(getattr(a.xp, ufunc_name)(a.data, b))


# Why these imports come last: Tensor's operators and methods call the ops, and the ops
# (through autograd.Function) make Tensors, so tensor.py, autograd.py and ops/ need one
# another. Importing them once Tensor exists lets any of them be imported first. The
# other way out, attaching the operators to Tensor from ops/ as DeZero's setup_variable
# does, would take Tensor's interface out of this file, which is where a learner looks
# for it; so the circle stays, closed here and at the end of autograd.py.
from . import autograd as _autograd  # noqa: E402
from . import ops as _ops  # noqa: E402
