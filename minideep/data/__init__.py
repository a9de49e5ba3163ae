"""Video data: reading and writing video, synthetic sets, datasets and loaders.

* :mod:`~minideep.data.video` - ``read_video``, ``iter_frames``, ``video_info``,
  ``write_video`` through FFmpeg, and ``VideoReadError`` for files that cannot be read;
* :mod:`~minideep.data.synthetic` - ``MovingShapes``, shapes moving in a frame;
* :mod:`~minideep.data.dataset` - ``Dataset``, ``TensorDataset``, ``Subset``,
  ``random_split``, ``VideoFolder``;
* :mod:`~minideep.data.loader` - ``DataLoader``, ``default_collate``;
* :mod:`~minideep.data.transforms` - clip transforms and ``to_layout``.

Nothing here imports imageio or FFmpeg until a video is actually read or written.
"""

from . import transforms
from .dataset import Dataset, Subset, TensorDataset, VideoFolder, random_split
from .loader import DataLoader, default_collate
from .synthetic import MovingShapes
from .transforms import (
    CenterCrop,
    Compose,
    Normalize,
    RandomCrop,
    RandomHorizontalFlip,
    Resize,
    ToFloat,
    to_layout,
)
from .video import (
    VIDEO_EXTENSIONS,
    VideoReadError,
    VideoWriteError,
    iter_frames,
    read_video,
    video_info,
    write_video,
)

__all__ = [
    "CenterCrop",
    "Compose",
    "DataLoader",
    "Dataset",
    "MovingShapes",
    "Normalize",
    "RandomCrop",
    "RandomHorizontalFlip",
    "Resize",
    "Subset",
    "TensorDataset",
    "ToFloat",
    "VIDEO_EXTENSIONS",
    "VideoFolder",
    "VideoReadError",
    "VideoWriteError",
    "default_collate",
    "iter_frames",
    "random_split",
    "read_video",
    "to_layout",
    "transforms",
    "video_info",
    "write_video",
]
