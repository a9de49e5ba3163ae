"""``DistributedDataParallel``: one model, N processes, each on its share of the batch.

Every process holds a full copy of the model and runs forward and backward on its own
B/N examples. If the loss is a mean over the batch, the gradient of the whole batch is
the mean of the N processes' gradients,

    dL/dw = 1/B sum_i dl_i/dw = 1/N sum_r [ 1/(B/N) sum_{i in share r} dl_i/dw ],

so averaging the gradients with one all-reduce and then taking the same optimiser step
everywhere keeps the N copies identical, and equal to one process training on batches
of B (to float rounding). DDP does exactly that, and no more:

* at construction, rank 0's parameters and buffers are broadcast, so all copies start
  equal;
* during ``backward()``, the gradients are averaged over the processes. They are packed
  into *buckets* of about ``bucket_cap_mb`` (25 MB): each bucket is one contiguous
  buffer, so a step is a few large all-reduces instead of one small one per parameter.
  Buckets hold the parameters in reverse order, the order backward produces their
  gradients; a gradient hook on each parameter (``Tensor.register_hook``) tells when its
  gradient is complete, and a bucket is all-reduced (non-blocking) as soon as all of its
  gradients are, while backward goes on with the layers below. The last gradient waits
  for them all and writes the averages into ``.grad``.

This engine calls a leaf's hook once per use of the leaf in the graph (a weight shared by
two layers has two contributions), so after each forward DDP counts, by walking the
graph back from the output, how many contributions each parameter will receive
(PyTorch walks the graph the same way for ``find_unused_parameters=True``).
"""

from __future__ import annotations

import contextlib

from .. import autograd, backend
from .. import distributed as dist
from ..tensor import Tensor
from .module import Module

__all__ = ["DistributedDataParallel"]


class _Bucket:
    """Parameters whose gradients travel in one all-reduce."""

    def __init__(self, params):
        self.params = params
        self.sizes = [p.data.size for p in params]
        self.numel = sum(self.sizes)
        self.reset()

    def reset(self):
        self.local = [None] * len(self.params)  # each parameter's complete local gradient
        self.remaining = len(self.params)
        self.flat = self.work = None


class DistributedDataParallel(Module):
    """Data parallelism across processes: wrap the model, train as usual.

    >>> md.distributed.init_process_group("mpi")
    >>> model = DistributedDataParallel(model)       # rank 0's weights everywhere
    >>> loss = F.cross_entropy(model(x_share), y_share)
    >>> loss.backward()                              # .grad: the mean over all processes
    >>> optimizer.step()

    Args:
        module: the model; ``ddp.module`` is it, and ``ddp.state_dict()`` has its keys
            prefixed with ``module.`` (as PyTorch's).
        device_ids, output_device: accepted for PyTorch's signature; the device is where
            the module's parameters are.
        broadcast_buffers: broadcast rank 0's buffers (batch-norm statistics) at every
            forward in training mode.
        bucket_cap_mb: bucket size in megabytes (default 25).
        find_unused_parameters: allow parameters that the output does not depend on (they
            take part in the all-reduce with a zero gradient); otherwise such a parameter
            is an error, named at the forward that left it out.

    Gradient accumulation: backward inside ``with ddp.no_sync():`` keeps gradients local;
    the next synchronised backward averages everything accumulated. Only ``backward()``
    synchronises (not ``md.autograd.grad``), and not with ``create_graph=True``.
    """

    def __init__(
        self,
        module: Module,
        device_ids=None,
        output_device=None,
        broadcast_buffers: bool = True,
        bucket_cap_mb: float | None = None,
        find_unused_parameters: bool = False,
    ):
        super().__init__()
        dist._require("DistributedDataParallel")
        self.module = module
        self.broadcast_buffers = broadcast_buffers
        self.find_unused_parameters = find_unused_parameters
        self.bucket_cap_mb = 25.0 if bucket_cap_mb is None else float(bucket_cap_mb)
        self.require_backward_grad_sync = True
        self._names = {id(p): name for name, p in module.named_parameters()}
        params = [p for p in module.parameters() if p.requires_grad]
        self._sync_module_states()
        self._buckets = _make_buckets(params[::-1], self.bucket_cap_mb * 2**20)
        self._slot = {}  # id(param) -> (bucket, position in it)
        for bucket in self._buckets:
            for i, p in enumerate(bucket.params):
                self._slot[id(p)] = (bucket, i)
        self._expected: dict[int, int] = {}  # id(param) -> contributions still to come
        self._armed = False  # True between a synchronised forward and the end of its backward
        self._next_bucket = 0
        for p in params:
            p.register_hook(self._make_hook(p))

    # ---------------------------------------------------------------- set-up
    def _sync_module_states(self) -> None:
        """Broadcast rank 0's parameters and buffers, one buffer per dtype and device."""
        _broadcast_coalesced([p.data for p in self.module.parameters()])
        _broadcast_coalesced([b.data for b in self.module.buffers()])

    # ---------------------------------------------------------------- forward
    def forward(self, *inputs, **kwargs):
        if self._armed and any(b.remaining < len(b.params) for b in self._buckets):
            raise RuntimeError(
                "DistributedDataParallel: expected to have finished reduction in the prior "
                "iteration before starting a new one: some parameters received a gradient "
                "and others did not ("
                + ", ".join(self._pending_names())
                + "). Does backward reach every parameter the forward used?"
            )
        if self.broadcast_buffers and self.module.training:
            _broadcast_coalesced([b.data for b in self.module.buffers()])
        output = self.module(*inputs, **kwargs)
        if autograd.is_grad_enabled() and self.require_backward_grad_sync:
            self._prepare_for_backward(output)
        else:
            self._armed = False
        return output

    def _prepare_for_backward(self, output) -> None:
        """Count the contributions each parameter's gradient will receive (see the module
        docstring) and reset the buckets."""
        counts = dict.fromkeys(self._slot, 0)
        nodes = [t._ctx for t in _find_tensors(output) if t._ctx is not None]
        seen = set(nodes)
        while nodes:
            node = nodes.pop()
            for t, needed in zip(node.inputs, node.needs_input_grad):
                if not needed or not isinstance(t, Tensor):
                    continue
                if t._ctx is None:
                    if id(t) in counts:
                        counts[id(t)] += 1
                elif t._ctx not in seen:
                    seen.add(t._ctx)
                    nodes.append(t._ctx)
        unused = [i for i, n in counts.items() if n == 0]
        if unused and not self.find_unused_parameters:
            raise RuntimeError(
                "DistributedDataParallel: the output does not depend on parameters "
                + ", ".join(self._names.get(i, "?") for i in unused)
                + ". Pass find_unused_parameters=True to DistributedDataParallel to let them "
                "take part with a zero gradient."
            )
        for bucket in self._buckets:
            bucket.reset()
        self._expected = counts
        self._next_bucket = 0
        self._armed = True
        for i in unused:  # ready now: their local gradient is what they hold (or zero)
            bucket, k = self._slot[i]
            p = bucket.params[k]
            bucket.local[k] = p.grad.data if p.grad is not None else p.xp.zeros_like(p.data)
            bucket.remaining -= 1

    # ---------------------------------------------------------------- backward
    def _make_hook(self, param):
        key = id(param)

        def hook(grad: Tensor):
            if not self._armed or key not in self._expected:
                return None
            if grad.requires_grad:
                raise RuntimeError(
                    "DistributedDataParallel does not support backward with create_graph=True"
                )
            self._expected[key] -= 1
            if self._expected[key] > 0:
                return None  # more contributions to come: let the engine add this one up
            bucket, k = self._slot[key]
            # This is the last contribution: the engine adds it to .grad after the hook, so
            # the complete local gradient is what .grad holds plus this one.
            bucket.local[k] = grad.data if param.grad is None else param.grad.data + grad.data
            bucket.remaining -= 1
            self._launch_ready_buckets()
            if self._next_bucket < len(self._buckets):
                return None
            self._finish_reduction()
            averaged, param.grad = param.grad, None  # the engine stores the hook's result
            return averaged

        return hook

    def _launch_ready_buckets(self) -> None:
        """All-reduce (non-blocking) every complete bucket, in bucket order: all processes
        must start the same collectives in the same order."""
        while self._next_bucket < len(self._buckets):
            bucket = self._buckets[self._next_bucket]
            if bucket.remaining:
                return
            xp = bucket.params[0].xp
            bucket.flat = xp.concatenate([g.reshape(-1) for g in bucket.local])
            bucket.work = dist._all_reduce_array(
                bucket.flat, "avg", async_op=True, name="DistributedDataParallel all_reduce"
            )
            bucket.local = None
            self._next_bucket += 1

    def _finish_reduction(self) -> None:
        """Wait for every bucket and make the averages the parameters' gradients (views of
        the bucket's buffer, as PyTorch's ``gradient_as_bucket_view``)."""
        for bucket in self._buckets:
            bucket.work.wait()
            start = 0
            for p, n in zip(bucket.params, bucket.sizes):
                p.grad = Tensor(bucket.flat[start : start + n].reshape(p.data.shape))
                start += n
            bucket.flat = bucket.work = None
        self._armed = False

    def _pending_names(self) -> list[str]:
        return [self._names.get(i, "?") for i, n in self._expected.items() if n > 0]

    # ---------------------------------------------------------------- the rest
    @contextlib.contextmanager
    def no_sync(self):
        """Backward passes inside keep their gradients local (accumulate, no all-reduce)."""
        before = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = before

    def extra_repr(self) -> str:
        sizes = ", ".join(str(b.numel) for b in self._buckets)
        return f"buckets of [{sizes}] numbers, bucket_cap_mb={self.bucket_cap_mb:g}"


def _make_buckets(params, cap_bytes: float) -> list[_Bucket]:
    """Consecutive parameters of one dtype and device, up to ``cap_bytes`` per bucket."""
    buckets, current, size = [], [], 0
    for p in params:
        if current and (
            size + p.data.nbytes > cap_bytes
            or p.dtype != current[0].dtype
            or p.device != current[0].device
        ):
            buckets.append(_Bucket(current))
            current, size = [], 0
        current.append(p)
        size += p.data.nbytes
    if current:
        buckets.append(_Bucket(current))
    return buckets


def _broadcast_coalesced(arrays, src: int = 0) -> None:
    """Broadcast ``arrays`` from ``src`` in place, one flat message per dtype and device."""
    groups: dict = {}
    for a in arrays:
        groups.setdefault((type(a), a.dtype), []).append(a)
    for group in groups.values():
        xp = backend.get_array_module(group[0])
        flat = xp.concatenate([a.reshape(-1) for a in group])
        dist._broadcast_array(flat, src, name="DistributedDataParallel broadcast")
        if dist.get_rank() != src:
            start = 0
            for a in group:
                a[...] = flat[start : start + a.size].reshape(a.shape)
                start += a.size


def _find_tensors(obj):
    """The Tensors inside an output: a Tensor, or tuples, lists and dicts of them."""
    if isinstance(obj, Tensor):
        return [obj]
    if isinstance(obj, (list, tuple)):
        return [t for item in obj for t in _find_tensors(item)]
    if isinstance(obj, dict):
        return [t for item in obj.values() for t in _find_tensors(item)]
    return []
