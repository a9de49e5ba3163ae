"""Convolutions as one matrix product: im2col, a GEMM, and col2im for the backward.

A convolution with kernel ``k`` slides a window over the (zero-padded) input and takes a
dot product of each window with each filter. Writing every window as one column of a
matrix (*im2col*) turns the whole layer into a single matrix product::

    cols[n, (c, *kk), p] = x_pad[n, c, *(p * stride + kk * dilation)]   (N, C*K, L)
    y[n]                 = W2 @ cols[n]                                 (N, C_out, L)

with ``W2 = w.reshape(C_out, C*K)``, ``K`` the kernel volume and ``L`` the number of
output positions. The windows are read through a strided *view* of the padded input (no
copying, ``geometry.windows``); one contiguous copy of that view is ``cols``.

Backward is the same picture read the other way:

* ``dW2 = sum_n dy[n] @ cols[n].T``  (one batched matrix product);
* ``dcols = W2.T @ dy``, and ``dx = col2im(dcols)``: every window adds its column back
  where it came from. ``geometry.col2im`` loops over the kernel offsets (``K``
  iterations), each adding one strided slab, so overlapping windows sum without
  ``np.add.at``.

A transposed convolution is the adjoint of a convolution: its forward is the input
gradient of a convolution and its backward is a convolution's forward.

With ``groups=g`` the channels split into ``g`` independent convolutions (``g = C_in``
is a *depthwise* convolution): the rows of ``cols`` split the same way, so the layer is
one *batched* product over the groups, ``(g, C_out/g, C_in/g*K) @ (N, g, C_in/g*K, L)``
(:class:`GroupedConvolution`, :class:`GroupedTransposedConvolution`).

Everything is written for any number of spatial dimensions, so ``conv2d`` (images) and
``conv3d`` (video clips ``(N, C, T, H, W)``) share the code, and so does pooling
(``ops/pool.py``). The patch geometry (im2col, col2im, output sizes, padding) lives in
``minideep/geometry.py``; the fast paths (chunks, a folded bias, the padded grid, CUDA
kernels) in ``minideep/fast/conv.py``.
"""

from __future__ import annotations

from .. import fast, geometry
from ..autograd import Function
from ..geometry import ntuple, transposed_output_shape
from ..tensor import Tensor
from .shape import on_no_samples


class Convolution(Function):
    """y[n, o, *p] = b[o] + sum_{c, kk} w[o, c, *kk] * x_pad[n, c, *(p * s + kk * d)].

    x: (N, C_in, *S), w: (C_out, C_in, *kernel), b: (C_out,) or None
    -> y: (N, C_out, *out).  With cols = im2col(x) and W2 = w.reshape(C_out, -1):
    y = W2 @ cols + b;  dW2 = sum_n dy[n] @ cols[n].T;  dx = col2im(W2.T @ dy);
    db = dy summed over the batch and every output position.

    The backward is written with :class:`Im2Col` and :class:`Col2Im`, a pair of ops each
    the other's adjoint, so with ``create_graph=True`` it builds the graph of the
    gradient (rebuilding ``cols`` from x as a node of it) and is differentiable again.
    """

    patches = geometry  # where im2col/col2im come from (CUDA kernels on the GPU)

    @staticmethod
    def forward(ctx, x, w, b, stride, padding, dilation):
        ctx.fast = fast.conv.convolution(x, w, stride)  # CPU: fast/conv.py
        if ctx.fast:
            return ctx.fast.forward(ctx, x, w, b, stride, padding, dilation)
        patches = fast.conv.patches(x, w.shape[2:]) or geometry  # GPU: CUDA im2col
        kernel = w.shape[2:]
        cols, out = patches.im2col(x, kernel, stride, padding, dilation)  # (N, C*K, L)
        w2 = w.reshape(w.shape[0], -1)  # (C_out, C*K)
        y = (w2 @ cols).reshape((x.shape[0], w.shape[0]) + out)
        if b is not None:
            y += b.reshape((-1,) + (1,) * len(out))
        ctx.save_for_backward(cols, w)
        ctx.x_shape, ctx.patches = x.shape, patches
        ctx.geometry = (kernel, stride, padding, dilation)
        return y

    @staticmethod
    def backward(ctx, grad):
        if ctx.fast and not ctx.create_graph:
            return ctx.fast.backward(ctx, grad)
        if ctx.create_graph:  # cols depends on x: rebuilt as a node of the new graph
            x, w = ctx.inputs[:2]
            cols = Im2Col.run(x, ctx.patches, *ctx.geometry)
        else:
            cols, w = ctx.saved_tensors
        w2 = w.reshape(w.shape[0], -1)
        dy = grad.reshape(grad.shape[0], grad.shape[1], -1)  # (N, C_out, L)
        dx = dw = db = None
        if ctx.needs_input_grad[0]:
            dx = Col2Im.run(w2.T @ dy, ctx.patches, ctx.x_shape, *ctx.geometry)
        if ctx.needs_input_grad[1]:
            dw = (dy @ cols.swapaxes(1, 2)).sum(axis=0).reshape(w.shape)
        if ctx.needs_input_grad[2]:
            db = dy.sum(axis=2).sum(axis=0)  # over positions, then the batch
        return dx, dw, db, None, None, None


class TransposedConvolution(Function):
    """The adjoint of :class:`Convolution` with respect to its input.

    x: (N, C_in, *S), w: (C_in, C_out, *kernel) -> y: (N, C_out, *out) with
    out = (S - 1) * s - 2p + d(k - 1) + output_padding + 1.
    y = col2im(W2.T @ x) + b, W2 = w.reshape(C_in, -1);  so, as for any adjoint,
    dx = W2 @ im2col(dy) (a convolution of dy),  dW2 = sum_n x[n] @ im2col(dy)[n].T.
    When output_padding >= stride (PyTorch allows it below the dilation), y has windows
    past x's last position: x gets zeros there for col2im, and im2col(dy) loses those
    columns again (``geometry.windows_past_the_end``).
    """

    @staticmethod
    def forward(ctx, x, w, b, stride, padding, output_padding, dilation):
        fast_path = fast.conv.transposed_convolution(
            x, w, stride, padding, output_padding, dilation
        )
        ctx.fast = fast_path  # CPU: fast/conv.py
        if ctx.fast:
            return ctx.fast.forward(ctx, x, w, b, stride, padding, output_padding, dilation)
        kernel = w.shape[2:]
        out = transposed_output_shape(
            x.shape[2:], kernel, stride, padding, output_padding, dilation
        )
        patches = fast.conv.patches(x, kernel) or geometry  # GPU: CUDA im2col/col2im
        extra = geometry.windows_past_the_end(stride, output_padding)  # usually none
        w2 = w.reshape(w.shape[0], -1)
        x3 = x.reshape(x.shape[0], x.shape[1], -1)  # (N, C_in, L)
        x3_all = geometry.pad_end(x, extra).reshape(x.shape[0], x.shape[1], -1)
        y_shape = (x.shape[0], w.shape[1]) + out
        y = patches.col2im(w2.T @ x3_all, y_shape, kernel, stride, padding, dilation)
        if b is not None:
            y += b.reshape((-1,) + (1,) * len(out))
        ctx.save_for_backward(x3, w)
        ctx.x_shape, ctx.patches, ctx.extra = x.shape, patches, extra
        ctx.geometry = (kernel, stride, padding, dilation)
        return y

    @staticmethod
    def backward(ctx, grad):
        if ctx.fast and not ctx.create_graph:
            return ctx.fast.backward(ctx, grad)
        if ctx.create_graph:
            x, w = ctx.inputs[:2]
            x3 = x.reshape(x.shape[0], x.shape[1], -1)
        else:
            x3, w = ctx.saved_tensors
        w2 = w.reshape(w.shape[0], -1)
        cols = Im2Col.run(grad, ctx.patches, *ctx.geometry)  # (N, C_out*K, L)
        cols = geometry.crop_windows(cols, ctx.x_shape[2:], ctx.extra)
        dx = dw = db = None
        if ctx.needs_input_grad[0]:
            dx = (w2 @ cols).reshape(ctx.x_shape)
        if ctx.needs_input_grad[1]:
            dw = (x3 @ cols.swapaxes(1, 2)).sum(axis=0).reshape(w.shape)
        if ctx.needs_input_grad[2]:
            db = geometry.bias_grad(grad)
        return dx, dw, db, None, None, None, None


class GroupedConvolution(Function):
    """:class:`Convolution` with the channels in ``groups`` independent groups.

    x: (N, C_in, *S), w: (C_out, C_in/g, *kernel), b: (C_out,) or None -> (N, C_out, *out).
    Group j sees input channels [j C_in/g, (j+1) C_in/g) and makes output channels
    [j C_out/g, (j+1) C_out/g). With cols = im2col(x) split as (N, g, C_in/g*K, L) and
    Wg = w.reshape(g, C_out/g, C_in/g*K):  y = Wg @ cols + b (one product batched over
    N and g);  dWg = sum_n dy[n] @ cols[n]^T;  dx = col2im(Wg^T @ dy).
    """

    @staticmethod
    def forward(ctx, x, w, b, stride, padding, dilation, groups):
        ctx.fast = fast.conv.grouped_convolution(x, w, groups)  # CPU depthwise: fast/conv.py
        if ctx.fast:
            return ctx.fast.forward(ctx, x, w, b, stride, padding, dilation, groups)
        patches = fast.conv.patches(x, w.shape[2:]) or geometry  # GPU: CUDA im2col
        kernel = w.shape[2:]
        cols, out = patches.im2col(x, kernel, stride, padding, dilation)  # (N, C*K, L)
        n, length = x.shape[0], cols.shape[2]
        wg = w.reshape(groups, w.shape[0] // groups, -1)  # (g, C_out/g, C_in/g*K)
        y = (wg @ cols.reshape(n, groups, -1, length)).reshape((n, w.shape[0]) + out)
        if b is not None:
            y += b.reshape((-1,) + (1,) * len(out))
        ctx.save_for_backward(cols, w)
        ctx.x_shape, ctx.patches, ctx.groups = x.shape, patches, groups
        ctx.geometry = (kernel, stride, padding, dilation)
        return y

    @staticmethod
    def backward(ctx, grad):
        if ctx.fast and not ctx.create_graph:
            return ctx.fast.backward(ctx, grad)
        if ctx.create_graph:  # cols depends on x: rebuilt as a node of the new graph
            x, w = ctx.inputs[:2]
            cols = Im2Col.run(x, ctx.patches, *ctx.geometry)
        else:
            cols, w = ctx.saved_tensors
        g, n = ctx.groups, grad.shape[0]
        wg = w.reshape(g, w.shape[0] // g, -1)
        dy = grad.reshape(n, g, grad.shape[1] // g, -1)  # (N, g, C_out/g, L)
        dx = dw = db = None
        if ctx.needs_input_grad[0]:
            dcols = (wg.swapaxes(1, 2) @ dy).reshape(n, cols.shape[1], -1)
            dx = Col2Im.run(dcols, ctx.patches, ctx.x_shape, *ctx.geometry)
        if ctx.needs_input_grad[1]:
            cols_g = cols.reshape(n, g, -1, cols.shape[2])
            dw = (dy @ cols_g.swapaxes(2, 3)).sum(axis=0).reshape(w.shape)
        if ctx.needs_input_grad[2]:
            db = geometry.bias_grad(grad)
        return dx, dw, db, None, None, None, None


class GroupedTransposedConvolution(Function):
    """:class:`TransposedConvolution` with the channels in ``groups`` groups: the adjoint
    of :class:`GroupedConvolution` with respect to its input.

    x: (N, C_in, *S), w: (C_in, C_out/g, *kernel) -> y: (N, C_out, *out).
    With Wg = w.reshape(g, C_in/g, C_out/g*K) and x split as (N, g, C_in/g, L):
    y = col2im(Wg^T @ x) + b;  dx = Wg @ im2col(dy);  dWg = sum_n x[n] @ im2col(dy)[n]^T.
    """

    @staticmethod
    def forward(ctx, x, w, b, stride, padding, output_padding, dilation, groups):
        kernel = w.shape[2:]
        out = transposed_output_shape(
            x.shape[2:], kernel, stride, padding, output_padding, dilation
        )
        patches = fast.conv.patches(x, kernel) or geometry  # GPU: CUDA im2col/col2im
        extra = geometry.windows_past_the_end(stride, output_padding)  # usually none
        n, c_out = x.shape[0], w.shape[1] * groups
        wg = w.reshape(groups, w.shape[0] // groups, -1)  # (g, C_in/g, C_out/g*K)
        xg = x.reshape(n, groups, x.shape[1] // groups, -1)  # (N, g, C_in/g, L)
        xg_all = geometry.pad_end(x, extra).reshape(n, groups, x.shape[1] // groups, -1)
        cols = (wg.swapaxes(1, 2) @ xg_all).reshape(n, wg.shape[2] * groups, -1)
        y = patches.col2im(cols, (n, c_out) + out, kernel, stride, padding, dilation)
        if b is not None:
            y += b.reshape((-1,) + (1,) * len(out))
        ctx.save_for_backward(xg, w)
        ctx.x_shape, ctx.patches, ctx.groups, ctx.extra = x.shape, patches, groups, extra
        ctx.geometry = (kernel, stride, padding, dilation)
        return y

    @staticmethod
    def backward(ctx, grad):
        g = ctx.groups
        if ctx.create_graph:
            x, w = ctx.inputs[:2]
            xg = x.reshape(x.shape[0], g, x.shape[1] // g, -1)
        else:
            xg, w = ctx.saved_tensors
        n = grad.shape[0]
        wg = w.reshape(g, w.shape[0] // g, -1)
        cols = Im2Col.run(grad, ctx.patches, *ctx.geometry)  # (N, C_out*K, L)
        cols = geometry.crop_windows(cols, ctx.x_shape[2:], ctx.extra)
        cols_g = cols.reshape(n, g, -1, cols.shape[2])  # (N, g, C_out/g*K, L)
        dx = dw = db = None
        if ctx.needs_input_grad[0]:
            dx = (wg @ cols_g).reshape(ctx.x_shape)
        if ctx.needs_input_grad[1]:
            dw = (xg @ cols_g.swapaxes(2, 3)).sum(axis=0).reshape(w.shape)
        if ctx.needs_input_grad[2]:
            db = geometry.bias_grad(grad)
        return dx, dw, db, None, None, None, None, None


class Im2Col(Function):
    """cols = im2col(x) (N, C*K, L): every window of x as a column. It is linear, and
    its adjoint is col2im: dL/dx = col2im(dL/dcols)."""

    @staticmethod
    def forward(ctx, x, patches, kernel, stride, padding, dilation):
        ctx.x_shape, ctx.patches = x.shape, patches
        ctx.geometry = (kernel, stride, padding, dilation)
        return patches.im2col(x, kernel, stride, padding, dilation)[0]

    @staticmethod
    def backward(ctx, grad):
        dx = Col2Im.run(grad, ctx.patches, ctx.x_shape, *ctx.geometry)
        return dx, None, None, None, None, None


class Col2Im(Function):
    """x = col2im(cols): each column added back at its window. Linear; its adjoint is
    im2col: dL/dcols = im2col(dL/dx)."""

    @staticmethod
    def forward(ctx, cols, patches, x_shape, kernel, stride, padding, dilation):
        ctx.patches, ctx.geometry = patches, (kernel, stride, padding, dilation)
        return patches.col2im(cols, x_shape, kernel, stride, padding, dilation)

    @staticmethod
    def backward(ctx, grad):
        return Im2Col.run(grad, ctx.patches, *ctx.geometry), None, None, None, None, None, None


# ---------------------------------------------------------------------------


def _check(name: str, x: Tensor, weight: Tensor, spatial: int, groups: int, transposed: bool):
    """PyTorch's checks: ranks, ``groups`` dividing the channels, and the input's channels
    matching the weight's (C_out, C_in/g, *k), or (C_in, C_out/g, *k) when transposed."""
    if x.ndim != spatial + 2 or weight.ndim != spatial + 2:
        raise ValueError(
            f"{name}: expected input and weight with {spatial + 2} dims, got input "
            f"{tuple(x.shape)} and weight {tuple(weight.shape)}"
        )
    if not isinstance(groups, int) or groups < 1:
        raise ValueError(f"{name}: groups must be a positive integer, got {groups!r}")
    if weight.shape[0] % groups:
        raise ValueError(
            f"{name}: weight {tuple(weight.shape)} has {weight.shape[0]} "
            f"{'input' if transposed else 'output'} channels, not divisible by groups={groups}"
        )
    expected = weight.shape[0] if transposed else weight.shape[1] * groups
    if x.shape[1] != expected:
        grouped = f" x groups={groups}" if groups > 1 and not transposed else ""
        raise ValueError(
            f"{name}: input {tuple(x.shape)} has {x.shape[1]} channels but weight "
            f"{tuple(weight.shape)}{grouped} expects {expected}"
        )


def _conv(name, x, weight, bias, stride, padding, dilation, groups, spatial):
    _check(name, x, weight, spatial, groups, transposed=False)
    args = (
        ntuple(stride, spatial, "stride"),
        ntuple(padding, spatial, "padding"),
        ntuple(dilation, spatial, "dilation"),
    )
    if x.shape[0] == 0:
        return on_no_samples(
            lambda x1: _conv(name, x1, weight, bias, stride, padding, dilation, groups, spatial), x
        )
    if groups == 1:
        return Convolution.apply(x, weight, bias, *args)
    return GroupedConvolution.apply(x, weight, bias, *args, groups)


def conv1d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride=1,
    padding=0,
    dilation=1,
    groups: int = 1,
) -> Tensor:
    """1-d convolution over sequences (audio, a signal over time).

    x: (N, C_in, L), weight: (C_out, C_in/groups, k) -> (N, C_out, L_out),
    L_out = floor((L + 2p - d(k - 1) - 1) / s) + 1.
    """
    return _conv("conv1d", x, weight, bias, stride, padding, dilation, groups, 1)


def conv2d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride=1,
    padding=0,
    dilation=1,
    groups: int = 1,
) -> Tensor:
    """2-d convolution (cross-correlation, as in PyTorch).

    x: (N, C_in, H, W), weight: (C_out, C_in/groups, kH, kW), bias: (C_out,)
    -> (N, C_out, H_out, W_out), H_out = floor((H + 2p - d(kH - 1) - 1) / s) + 1.
    ``stride``, ``padding`` and ``dilation`` are ints or pairs. ``groups`` splits the
    channels into independent convolutions (``groups = C_in``: depthwise).
    """
    return _conv("conv2d", x, weight, bias, stride, padding, dilation, groups, 2)


def conv3d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride=1,
    padding=0,
    dilation=1,
    groups: int = 1,
) -> Tensor:
    """3-d convolution over video clips.

    x: (N, C_in, T, H, W), weight: (C_out, C_in/groups, kT, kH, kW)
    -> (N, C_out, T_out, H_out, W_out).
    """
    return _conv("conv3d", x, weight, bias, stride, padding, dilation, groups, 3)


def _conv_transpose(name, x, weight, bias, stride, padding, output_padding, groups, dilation, n):
    _check(name, x, weight, n, groups, transposed=True)
    stride = ntuple(stride, n, "stride")
    dilation = ntuple(dilation, n, "dilation")
    output_padding = ntuple(output_padding, n, "output_padding")
    if any(op >= s and op >= d for op, s, d in zip(output_padding, stride, dilation)):
        raise ValueError(
            f"{name}: output_padding {output_padding} must be smaller than either stride "
            f"{stride} or dilation {dilation}"
        )
    args = (stride, ntuple(padding, n, "padding"), output_padding, dilation)
    if x.shape[0] == 0:
        return on_no_samples(
            lambda x1: _conv_transpose(
                name, x1, weight, bias, stride, padding, output_padding, groups, dilation, n
            ),
            x,
        )
    if groups == 1:
        return TransposedConvolution.apply(x, weight, bias, *args)
    return GroupedTransposedConvolution.apply(x, weight, bias, *args, groups)


def conv_transpose1d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride=1,
    padding=0,
    output_padding=0,
    groups: int = 1,
    dilation=1,
) -> Tensor:
    """Transposed 1-d convolution: the gradient of ``conv1d`` with respect to its input.

    x: (N, C_in, L), weight: (C_in, C_out/groups, k) -> (N, C_out, L_out),
    L_out = (L - 1) s - 2p + d(k - 1) + output_padding + 1.
    """
    return _conv_transpose(
        "conv_transpose1d", x, weight, bias, stride, padding, output_padding, groups, dilation, 1
    )


def conv_transpose2d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride=1,
    padding=0,
    output_padding=0,
    groups: int = 1,
    dilation=1,
) -> Tensor:
    """Transposed 2-d convolution: the gradient of ``conv2d`` with respect to its input.

    x: (N, C_in, H, W), weight: (C_in, C_out/groups, kH, kW) -> (N, C_out, H_out, W_out),
    H_out = (H - 1) s - 2p + d(kH - 1) + output_padding + 1.
    """
    return _conv_transpose(
        "conv_transpose2d", x, weight, bias, stride, padding, output_padding, groups, dilation, 2
    )


def conv_transpose3d(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride=1,
    padding=0,
    output_padding=0,
    groups: int = 1,
    dilation=1,
) -> Tensor:
    """Transposed 3-d convolution over clips (a video decoder's upsampling).

    x: (N, C_in, T, H, W), weight: (C_in, C_out/groups, kT, kH, kW)
    -> (N, C_out, T_out, H_out, W_out), each size as in :func:`conv_transpose2d`.
    """
    return _conv_transpose(
        "conv_transpose3d", x, weight, bias, stride, padding, output_padding, groups, dilation, 3
    )
