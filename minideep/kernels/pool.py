"""2-d max pooling on the GPU: forward with the argmax, backward without atomics."""

from __future__ import annotations

import functools


@functools.cache
def _forward_kernel():
    import cupy

    # Ties: the first maximal element in row-major order wins (strict >), as on the CPU.
    return cupy.ElementwiseKernel(
        "raw T x, int32 h, int32 w, int32 out_h, int32 out_w, int32 kh, int32 kw, "
        "int32 sy, int32 sx, int32 ph, int32 pw",
        "T y, int32 arg",
        """
        const int e = i;  // 32-bit index arithmetic: 64-bit division is several times slower
        int nc = e / (out_h * out_w);
        int oy = e / out_w % out_h;
        int ox = e % out_w;
        int y0 = oy * sy - ph, x0 = ox * sx - pw;
        T best = 0;
        int best_k = -1;
        for (int ky = 0; ky < kh; ++ky) {
            int yy = y0 + ky;
            if (yy < 0 || yy >= h) continue;
            for (int kx = 0; kx < kw; ++kx) {
                int xx = x0 + kx;
                if (xx < 0 || xx >= w) continue;
                T v = x[xx + w * (yy + h * nc)];
                if (best_k < 0 || v > best) { best = v; best_k = ky * kw + kx; }
            }
        }
        y = best;
        arg = best_k;
        """,
        "minideep_max_pool_2d_fwd",
    )


@functools.cache
def _backward_kernel():
    import cupy

    return cupy.ElementwiseKernel(
        "raw T gy, raw int32 arg, int32 h, int32 w, int32 out_h, int32 out_w, "
        "int32 kh, int32 kw, int32 sy, int32 sx, int32 ph, int32 pw",
        "T gx",
        """
        const int e = i;  // 32-bit index arithmetic (see the forward)
        int nc = e / (h * w);
        int y = e / w % h + ph;
        int x = e % w + pw;
        int oy0 = max(0, (y - kh + sy) / sy), oy1 = min(out_h, y / sy + 1);
        int ox0 = max(0, (x - kw + sx) / sx), ox1 = min(out_w, x / sx + 1);
        T val = 0;
        for (int oy = oy0; oy < oy1; ++oy) {
            int ky = y - oy * sy;
            if (ky >= kh) continue;
            for (int ox = ox0; ox < ox1; ++ox) {
                int kx = x - ox * sx;
                if (kx >= kw) continue;
                int o = ox + out_w * (oy + out_h * nc);
                if (arg[o] == ky * kw + kx) val += gy[o];
            }
        }
        gx = val;
        """,
        "minideep_max_pool_2d_bwd",
    )


def max_pool_2d_forward(x, kernel, stride, padding, out):
    """``x (N, C, H, W) -> (y (N, C, out_h, out_w), argmax offset in the window (int32))``."""
    import cupy

    n, c, h, w = x.shape
    (kh, kw), (sy, sx), (ph, pw), (oh, ow) = kernel, stride, padding, out
    y = cupy.empty((n, c, oh, ow), dtype=x.dtype)
    arg = cupy.empty((n, c, oh, ow), dtype=cupy.int32)
    _forward_kernel()(cupy.ascontiguousarray(x), h, w, oh, ow, kh, kw, sy, sx, ph, pw, y, arg)
    return y, arg


def max_pool_2d_backward(gy, arg, x_shape, kernel, stride, padding, out):
    """Each input element sums the gradients of the windows whose maximum it was."""
    import cupy

    n, c, h, w = x_shape
    (kh, kw), (sy, sx), (ph, pw), (oh, ow) = kernel, stride, padding, out
    gx = cupy.empty(x_shape, dtype=gy.dtype)
    _backward_kernel()(cupy.ascontiguousarray(gy), arg, h, w, oh, ow, kh, kw, sy, sx, ph, pw, gx)
    return gx
