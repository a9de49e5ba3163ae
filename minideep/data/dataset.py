"""Datasets: indexable collections of samples, as in ``torch.utils.data``.

A dataset is anything with ``len(ds)`` and ``ds[i]`` returning one sample, usually
``(input, target)``. :class:`~minideep.data.DataLoader` turns a dataset into batches.

* :class:`TensorDataset` - rows of arrays or tensors that share their first dimension;
* :class:`Subset` and :func:`random_split` - a view on some indices of a dataset;
* :class:`VideoFolder` - video files sorted into one sub-folder per class, like
  torchvision's ``ImageFolder``: ``root/<class>/<video>``.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from .. import backend
from .transforms import LAYOUTS, to_layout
from .video import VIDEO_EXTENSIONS, read_video


class Dataset:
    """Base class: subclasses define ``__len__`` and ``__getitem__(index) -> sample``."""

    def __getitem__(self, index: int):
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def __len__(self) -> int:
        raise NotImplementedError(f"{type(self).__name__} must define __len__")


class TensorDataset(Dataset):
    """Sample ``i`` is ``tuple(t[i] for t in tensors)``; all share their first dimension.

    Accepts Tensors or arrays (NumPy/CuPy); rows come back as the same kind.
    """

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("TensorDataset needs at least one tensor")
        lengths = [len(t) for t in tensors]
        if len(set(lengths)) != 1:
            shapes = [tuple(t.shape) for t in tensors]
            raise ValueError(f"TensorDataset: first dimensions differ, shapes {shapes}")
        self.tensors = tensors

    def __getitem__(self, index: int) -> tuple:
        return tuple(t[index] for t in self.tensors)

    def __len__(self) -> int:
        return len(self.tensors[0])


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order."""

    def __init__(self, dataset, indices: Sequence[int]):
        self.dataset = dataset
        self.indices = [int(i) for i in indices]

    def __getitem__(self, index: int):
        return self.dataset[self.indices[index]]

    def __len__(self) -> int:
        return len(self.indices)


def random_split(
    dataset, lengths: Sequence[float], generator: np.random.Generator | None = None
) -> list[Subset]:
    """Split ``dataset`` into non-overlapping random subsets of the given ``lengths``.

    ``lengths`` are counts summing to ``len(dataset)``, or fractions summing to 1 (the
    remainder of the rounding goes to the first subsets, as in PyTorch). The
    permutation comes from ``generator`` or minideep's generator (``md.manual_seed``).
    """
    n = len(dataset)
    if math.isclose(sum(lengths), 1) and sum(lengths) <= n:  # fractions (PyTorch's rule)
        counts = [int(np.floor(n * f)) for f in lengths]
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
        lengths = counts
    if sum(lengths) != n:
        raise ValueError(f"random_split: lengths {list(lengths)} do not add up to {n} samples")
    order = (generator or backend.numpy_rng()).permutation(n)
    bounds = np.cumsum([0, *(int(k) for k in lengths)])
    return [Subset(dataset, order[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]


class VideoFolder(Dataset):
    """Videos in class sub-folders, ``root/<class>/<file>``, sampled as fixed-length clips.

    Args:
        root: the folder holding one sub-folder per class.
        clip_len: frames per clip ``T``.
        step: keep every ``step``-th frame (temporal stride) inside a clip.
        sampling: where the clip starts in a longer video: ``"center"`` (the middle;
            deterministic, for evaluation), ``"random"`` (anywhere, a new draw each time;
            for training) or ``"start"``. A video shorter than the clip is padded by
            repeating its last frame.
        size: ``(H, W)`` or one int: frames are resized while decoding.
        grayscale: decode one channel instead of RGB.
        transform: applied to the uint8 ``(T, H, W, C)`` clip before the layout.
        layout: axes of the clips returned: ``"TCHW"``, ``"CTHW"`` or ``"THWC"``
            (see :func:`~minideep.data.transforms.to_layout`).
        classes: the class folders to use, in the order of their indices (default: all
            sub-folders, sorted by name, like torchvision).
        extensions: file endings counted as videos (case-insensitive).
        cache: keep every decoded video in memory, so later epochs decode nothing.

    ``ds[i]`` is ``(clip, class_index)``: ``clip`` float32 in [0, 1]. Attributes:
    ``classes``, ``class_to_idx``, ``samples`` (list of ``(path, class_index)``),
    ``targets``.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        clip_len: int,
        step: int = 1,
        sampling: str = "center",
        size: int | tuple[int, int] | None = None,
        grayscale: bool = False,
        transform: Callable | None = None,
        layout: str = "TCHW",
        classes: Sequence[str] | None = None,
        extensions: Sequence[str] = VIDEO_EXTENSIONS,
        cache: bool = True,
    ):
        root = Path(root)
        if not root.is_dir():
            raise FileNotFoundError(f"VideoFolder: '{root}' is not a directory")
        if sampling not in ("center", "random", "start"):
            raise ValueError(f"sampling must be 'center', 'random' or 'start', got {sampling!r}")
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {sorted(LAYOUTS)}, got {layout!r}")
        if clip_len < 1 or step < 1:
            raise ValueError(f"need clip_len >= 1 and step >= 1, got {clip_len}, {step}")
        if classes is None:
            classes = sorted(d.name for d in root.iterdir() if d.is_dir())
        missing = [c for c in classes if not (root / c).is_dir()]
        if missing or not classes:
            raise FileNotFoundError(f"VideoFolder: no class folders {missing or ''} in '{root}'")
        exts = tuple(e.lower() for e in extensions)
        self.root, self.clip_len, self.step, self.sampling = root, clip_len, step, sampling
        self.size, self.grayscale, self.transform, self.layout = size, grayscale, transform, layout
        self.classes = list(classes)
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}
        self.samples = [
            (str(f), idx)
            for c, idx in self.class_to_idx.items()
            for f in sorted((root / c).iterdir())
            if f.is_file() and f.suffix.lower() in exts and not f.name.startswith(".")
        ]
        if not self.samples:
            raise FileNotFoundError(
                f"VideoFolder: no video files ({', '.join(exts)}) in the class folders of '{root}'"
            )
        self.targets = [idx for _, idx in self.samples]
        self.cache = cache
        self._cache: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.samples)

    def _frames(self, index: int) -> np.ndarray:
        """All frames of video ``index``, uint8 ``(T, H, W, C)``, decoded once if caching."""
        frames = self._cache.get(index)
        if frames is None:
            path = self.samples[index][0]
            frames = read_video(path, size=self.size, grayscale=self.grayscale)
            if len(frames) == 0:
                raise ValueError(f"VideoFolder: '{path}' has no frames")
            if self.cache:
                self._cache[index] = frames
        return frames

    def preload(self, workers: int | None = None) -> None:
        """Decode every video into the cache now, ``workers`` FFmpeg processes at a time."""
        todo = [i for i in range(len(self)) if i not in self._cache]
        with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
            for i, frames in zip(todo, pool.map(self._frames, todo)):
                self._cache[i] = frames

    def _clip_indices(self, n_frames: int) -> np.ndarray:
        """Frame indices of one clip: ``clip_len`` of them, ``step`` apart."""
        span = (self.clip_len - 1) * self.step + 1
        room = max(0, n_frames - span)
        if self.sampling == "random":
            start = int(backend.numpy_rng().integers(0, room + 1))
        elif self.sampling == "center":
            start = room // 2
        else:
            start = 0
        return np.minimum(start + self.step * np.arange(self.clip_len), n_frames - 1)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        frames = self._frames(index)
        clip = frames[self._clip_indices(len(frames))]
        if self.transform is not None:
            clip = self.transform(clip)
        return to_layout(clip, self.layout), self.samples[index][1]

    def __repr__(self) -> str:
        return (
            f"VideoFolder(root='{self.root}', clip_len={self.clip_len}, videos={len(self)}, "
            f"classes={self.classes})"
        )
