"""Transforms of video clips, applied by datasets to each sample.

Every transform takes a clip as a NumPy array ``(T, H, W, C)`` - the layout
:func:`~minideep.data.read_video` returns - and gives one back in the same layout.
A random transform draws once per clip and applies the same choice to every frame
(the same crop window, the same flip), so motion stays intact.

Datasets (``VideoFolder``, ``MovingShapes``) apply their ``transform`` and then
:func:`to_layout`: uint8 becomes float32 in [0, 1] and the axes are put in the order a
model expects - ``"TCHW"`` for a per-frame CNN followed by an LSTM, ``"CTHW"`` for
``Conv3d`` (PyTorch's video layout; a batch is then ``(N, C, T, H, W)``).

Random draws come from minideep's generator, so ``md.manual_seed`` makes them repeat.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from .. import backend

LAYOUTS = {"THWC": (0, 1, 2, 3), "TCHW": (0, 3, 1, 2), "CTHW": (3, 0, 1, 2)}


def to_layout(clip: np.ndarray, layout: str = "TCHW") -> np.ndarray:
    """A ``(T, H, W, C)`` clip as a model input: float32 in [0, 1] with axes ``layout``.

    ``layout`` is ``"TCHW"``, ``"CTHW"`` or ``"THWC"`` (no reordering). uint8 clips are
    divided by 255; float clips keep their values.
    """
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {sorted(LAYOUTS)}, got {layout!r}")
    if clip.ndim != 4:
        raise ValueError(f"a clip must be (T, H, W, C), got shape {clip.shape}")
    clip = ToFloat()(clip)
    return np.ascontiguousarray(clip.transpose(LAYOUTS[layout]))


def _pair(size) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    h, w = size
    return int(h), int(w)


def _check_clip(clip, name: str) -> None:
    if clip.ndim != 4:
        raise ValueError(f"{name} expects a clip (T, H, W, C), got shape {clip.shape}")


class Compose:
    """Apply transforms one after the other: ``Compose([RandomCrop(28), ToFloat()])``."""

    def __init__(self, transforms: Sequence[Callable]):
        self.transforms = list(transforms)

    def __call__(self, clip: np.ndarray) -> np.ndarray:
        for t in self.transforms:
            clip = t(clip)
        return clip

    def __repr__(self) -> str:
        inner = "".join(f"\n    {t!r}," for t in self.transforms)
        return f"Compose([{inner}\n])"


class ToFloat:
    """uint8 ``[0, 255]`` -> float32 ``[0, 1]``; float clips are cast to float32."""

    def __call__(self, clip: np.ndarray) -> np.ndarray:
        if clip.dtype == np.uint8:
            return clip.astype(np.float32) / np.float32(255.0)
        return clip.astype(np.float32, copy=False)

    def __repr__(self) -> str:
        return "ToFloat()"


class Normalize:
    """``(clip - mean) / std`` per channel (the last axis); uint8 is made float first.

    ``mean``, ``std``: one number or one per channel, in the [0, 1] scale of
    :class:`ToFloat`, e.g. ``Normalize((0.5,) * 3, (0.25,) * 3)``.
    """

    def __init__(self, mean, std):
        self.mean = np.asarray(mean, np.float32).reshape(-1)
        self.std = np.asarray(std, np.float32).reshape(-1)
        if np.any(self.std <= 0):
            raise ValueError(f"Normalize: std must be positive, got {self.std.tolist()}")

    def __call__(self, clip: np.ndarray) -> np.ndarray:
        clip = ToFloat()(clip)
        channels = clip.shape[-1]
        for name, v in (("mean", self.mean), ("std", self.std)):
            if v.size not in (1, channels):
                raise ValueError(
                    f"Normalize: {name} has {v.size} values but the clip has {channels} "
                    f"channels (shape {clip.shape}, channels last)"
                )
        return (clip - self.mean) / self.std

    def __repr__(self) -> str:
        return f"Normalize(mean={self.mean.tolist()}, std={self.std.tolist()})"


class RandomHorizontalFlip:
    """Mirror the whole clip left-right with probability ``p``.

    Careful with motion labels: a flip turns a shape moving right into one moving left.
    """

    def __init__(self, p: float = 0.5, generator: np.random.Generator | None = None):
        self.p = p
        self.generator = generator

    def __call__(self, clip: np.ndarray) -> np.ndarray:
        _check_clip(clip, "RandomHorizontalFlip")
        rng = self.generator or backend.numpy_rng()
        if rng.random() < self.p:
            return np.ascontiguousarray(clip[:, :, ::-1])
        return clip

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


class RandomCrop:
    """Cut a ``size`` window (``(h, w)`` or one int) at a random place, the same in every frame.

    ``padding`` pixels of zeros are added around each frame first (as in PyTorch), so
    a crop of the original size becomes a random shift.
    """

    def __init__(self, size, padding: int = 0, generator: np.random.Generator | None = None):
        self.size = _pair(size)
        self.padding = padding
        self.generator = generator

    def __call__(self, clip: np.ndarray) -> np.ndarray:
        _check_clip(clip, "RandomCrop")
        if self.padding:
            p = self.padding
            clip = np.pad(clip, ((0, 0), (p, p), (p, p), (0, 0)))
        (h, w), (H, W) = self.size, clip.shape[1:3]
        if h > H or w > W:
            raise ValueError(f"RandomCrop: crop size {(h, w)} is larger than the frames {(H, W)}")
        rng = self.generator or backend.numpy_rng()
        top = int(rng.integers(0, H - h + 1))
        left = int(rng.integers(0, W - w + 1))
        return clip[:, top : top + h, left : left + w]

    def __repr__(self) -> str:
        return f"RandomCrop(size={self.size}, padding={self.padding})"


class CenterCrop:
    """Cut the central ``size`` window (``(h, w)`` or one int) of every frame."""

    def __init__(self, size):
        self.size = _pair(size)

    def __call__(self, clip: np.ndarray) -> np.ndarray:
        _check_clip(clip, "CenterCrop")
        (h, w), (H, W) = self.size, clip.shape[1:3]
        if h > H or w > W:
            raise ValueError(f"CenterCrop: crop size {(h, w)} is larger than the frames {(H, W)}")
        top, left = (H - h) // 2, (W - w) // 2
        return clip[:, top : top + h, left : left + w]

    def __repr__(self) -> str:
        return f"CenterCrop(size={self.size})"


def _resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    """``(n_out, n_in)`` weights that resample one axis.

    Shrinking averages the input pixels each output pixel covers (area filter: no
    aliasing); enlarging interpolates linearly between pixel centres
    (``align_corners=False``). Each row sums to 1.
    """
    m = np.zeros((n_out, n_in), np.float64)
    if n_out <= n_in:
        scale = n_in / n_out
        for j in range(n_out):
            lo, hi = j * scale, (j + 1) * scale
            for i in range(int(lo), min(n_in, int(np.ceil(hi)))):
                m[j, i] = min(hi, i + 1) - max(lo, i)
        return m / scale
    centres = (np.arange(n_out) + 0.5) * n_in / n_out - 0.5
    centres = np.clip(centres, 0, n_in - 1)
    left = np.floor(centres).astype(int)
    right = np.minimum(left + 1, n_in - 1)
    frac = centres - left
    m[np.arange(n_out), left] += 1 - frac
    m[np.arange(n_out), right] += frac
    return m


class Resize:
    """Resample every frame to ``size`` (``(h, w)`` or one int) with area / bilinear weights.

    Separable: ``out[t] = A @ frame[t] @ B.T`` per channel, with ``A`` ``(h, H)`` and
    ``B`` ``(w, W)`` from :func:`_resize_matrix`. uint8 in, uint8 out (rounded).
    """

    def __init__(self, size):
        self.size = _pair(size)

    def __call__(self, clip: np.ndarray) -> np.ndarray:
        _check_clip(clip, "Resize")
        (h, w), (H, W) = self.size, clip.shape[1:3]
        if (h, w) == (H, W):
            return clip
        a = _resize_matrix(H, h).astype(np.float32)
        b = _resize_matrix(W, w).astype(np.float32)
        out = np.einsum("yh,thwc,xw->tyxc", a, clip.astype(np.float32), b, optimize=True)
        if clip.dtype == np.uint8:
            return np.clip(np.rint(out), 0, 255).astype(np.uint8)
        return out.astype(clip.dtype, copy=False)

    def __repr__(self) -> str:
        return f"Resize(size={self.size})"
