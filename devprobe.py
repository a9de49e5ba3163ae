import numpy as np, cupy
from cupyx.profiler import benchmark
import minideep as md
from minideep.ops import conv as C
from minideep.kernels.conv import im2col_2d
def bt(f): return benchmark(f, n_repeat=50, n_warmup=5).gpu_times.mean()*1e3
rng = np.random.default_rng(0)
for (n, c, o, h) in [(256, 16, 32, 32), (256, 3, 16, 64)]:
    x = cupy.asarray(rng.standard_normal((n, c, h, h)).astype(np.float32))
    w2 = cupy.asarray(rng.standard_normal((o, c * 9)).astype(np.float32))
    b = cupy.asarray(rng.standard_normal(o).astype(np.float32))
    k = (3, 3); s = (1, 1); p = (1, 1); d = (1, 1); out = (h, h)
    cols = im2col_2d(x, k, s, p, d, out)
    print(n, c, o, h, "cols", cols.shape, cols.flags.c_contiguous)
    print(" im2col", bt(lambda: im2col_2d(x, k, s, p, d, out)))
    print(" matmul 2d@3d", bt(lambda: w2 @ cols))
    wb = cupy.broadcast_to(w2, (n,) + w2.shape)
    print(" matmul bcast3d@3d", bt(lambda: cupy.matmul(wb, cols)))
    c2 = cupy.ascontiguousarray(cols.transpose(1, 0, 2)).reshape(c * 9, -1)
    print(" single gemm (CK, N*L)", bt(lambda: w2 @ c2))
    y = w2 @ cols
    print(" bias add", bt(lambda: y + b.reshape(-1, 1)))
    print(" bias add inplace", bt(lambda: y.__iadd__(b.reshape(-1, 1))))
    dy = cupy.asarray(rng.standard_normal(y.shape).astype(np.float32))
    print(" dW matmul.sum", bt(lambda: cupy.matmul(dy, cols.transpose(0, 2, 1)).sum(0)))
    print(" dW tensordot", bt(lambda: cupy.tensordot(dy, cols, axes=([0, 2], [0, 2]))))
    print(" dcols w2.T@dy", bt(lambda: w2.T @ dy))
    print(" db sum", bt(lambda: dy.sum(axis=(0, 2))))
