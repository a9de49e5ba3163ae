"""im2col / col2im for 2-d convolution on the GPU (one thread per output element)."""

from __future__ import annotations

import functools


@functools.cache
def _im2col_kernel():
    import cupy

    return cupy.ElementwiseKernel(
        "raw T img, int32 h, int32 w, int32 out_h, int32 out_w, int32 kh, int32 kw, "
        "int32 sy, int32 sx, int32 ph, int32 pw, int32 dy, int32 dx",
        "T col",
        """
        const int e = i;  // 32-bit index arithmetic: 64-bit division is several times slower
        int nc = e / (kh * kw * out_h * out_w);
        int ky = e / (kw * out_h * out_w) % kh;
        int kx = e / (out_h * out_w) % kw;
        int oy = e / out_w % out_h;
        int ox = e % out_w;
        int y = ky * dy + oy * sy - ph;
        int x = kx * dx + ox * sx - pw;
        col = (y >= 0 && y < h && x >= 0 && x < w) ? img[x + w * (y + h * nc)] : (T)0;
        """,
        "minideep_im2col_2d",
    )


@functools.cache
def _col2im_kernel():
    import cupy

    # Each input pixel sums the columns of the windows that contain it: a gather, so
    # no two threads write the same element and no atomics are needed.
    return cupy.ElementwiseKernel(
        "raw T col, int32 h, int32 w, int32 out_h, int32 out_w, int32 kh, int32 kw, "
        "int32 sy, int32 sx, int32 ph, int32 pw, int32 dy, int32 dx",
        "T img",
        """
        const int e = i;  // 32-bit index arithmetic (see im2col)
        int nc = e / (h * w);
        int y = e / w % h;
        int x = e % w;
        T val = 0;
        for (int ky = 0; ky < kh; ++ky) {
            int oy = y + ph - ky * dy;
            if (oy < 0 || oy % sy != 0) continue;
            oy /= sy;
            if (oy >= out_h) continue;
            for (int kx = 0; kx < kw; ++kx) {
                int ox = x + pw - kx * dx;
                if (ox < 0 || ox % sx != 0) continue;
                ox /= sx;
                if (ox >= out_w) continue;
                val += col[ox + out_w * (oy + out_h * (kx + kw * (ky + kh * nc)))];
            }
        }
        img = val;
        """,
        "minideep_col2im_2d",
    )


def im2col_2d(x, kernel, stride, padding, dilation, out):
    """``x (N, C, H, W) -> cols (N, C*kh*kw, out_h*out_w)`` (same layout as the CPU path)."""
    import cupy

    n, c, h, w = x.shape
    (kh, kw), (sy, sx), (ph, pw), (dy, dx), (oh, ow) = kernel, stride, padding, dilation, out
    cols = cupy.empty((n, c, kh, kw, oh, ow), dtype=x.dtype)
    _im2col_kernel()(cupy.ascontiguousarray(x), h, w, oh, ow, kh, kw, sy, sx, ph, pw, dy, dx, cols)
    return cols.reshape(n, c * kh * kw, oh * ow)


def col2im_2d(cols, x_shape, kernel, stride, padding, dilation, out):
    """The adjoint of :func:`im2col_2d`: ``cols (N, C*K, L) -> (N, C, H, W)``."""
    import cupy

    n, c, h, w = x_shape
    (kh, kw), (sy, sx), (ph, pw), (dy, dx), (oh, ow) = kernel, stride, padding, dilation, out
    img = cupy.empty((n, c, h, w), dtype=cols.dtype)
    _col2im_kernel()(
        cupy.ascontiguousarray(cols), h, w, oh, ow, kh, kw, sy, sx, ph, pw, dy, dx, img
    )
    return img
