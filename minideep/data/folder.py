"""Action-recognition datasets on disk: class folders of videos, plus their split files.

The classic action datasets come as one folder per class::

    UCF-101/ApplyEyeMakeup/v_ApplyEyeMakeup_g01_c01.avi
    UCF-101/Archery/v_Archery_g01_c01.avi
    KTH/boxing/person01_boxing_d1_uncomp.avi
    KTH/walking/person25_walking_d4_uncomp.avi

which is the layout :class:`minideep.data.dataset.VideoFolder` reads, and each fixes
its train/test split in its own way, which is what this module adds:

* UCF101 (and its ``ucfTrainTestlist`` folder) lists the files of each split in text
  files, one path relative to the root per line, ``trainlist01.txt`` with the class
  number after it (``ApplyEyeMakeup/v_ApplyEyeMakeup_g08_c01.avi 1``), ``testlist01.txt``
  without; ``classInd.txt`` numbers the classes from 1 (``1 ApplyEyeMakeup``). Three
  splits, so that the 25 groups ``gNN`` (clips cut from the same long video) never
  cross between train and test. ``split_file=`` reads such a list (and the
  ``classInd.txt`` next to it for the class order).
* KTH splits by person: the 25 actors' clips (``personNN_<action>_dK_uncomp.avi``) go
  to train, validation or test by who is filmed (:data:`KTH_PERSONS`, the split of
  Schuldt et al., 2004). ``is_valid_file=kth_split("train")`` keeps one of them.

In both the point is the same: clips of the same person or scene in train and test
would let a model recognise the scene instead of the action.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path

from . import dataset as _dataset
from .video import VIDEO_EXTENSIONS

# KTH's split by actor (Schuldt, Laptev and Caputo, ICPR 2004; the dataset's web page).
KTH_PERSONS = {
    "train": (11, 12, 13, 14, 15, 16, 17, 18),
    "val": (19, 20, 21, 23, 24, 25, 1, 4),
    "test": (22, 2, 3, 5, 6, 7, 8, 9, 10),
}

_PERSON = re.compile(r"person(\d+)", re.IGNORECASE)


def kth_split(split: str) -> Callable[[str], bool]:
    """``is_valid_file`` for :class:`VideoFolder` keeping KTH's ``"train"``, ``"val"`` or
    ``"test"`` persons (by the ``personNN`` in each file name)."""
    if split not in KTH_PERSONS:
        raise ValueError(f"KTH's splits are {sorted(KTH_PERSONS)}, got {split!r}")
    persons = set(KTH_PERSONS[split])

    def keep(path: str) -> bool:
        m = _PERSON.search(Path(path).name)
        return m is not None and int(m.group(1)) in persons

    return keep


def read_split_file(path: str | os.PathLike) -> list[str]:
    """The video paths listed in a UCF101-style split file, one per non-empty line.

    Only the first field counts (``trainlist01.txt`` has the class number after it);
    backslashes become slashes.
    """
    with open(path, encoding="utf-8") as f:
        return [line.split()[0].replace("\\", "/") for line in f if line.strip()]


def read_class_index(path: str | os.PathLike) -> list[str]:
    """The class names of a ``classInd.txt`` (``<number> <name>`` lines), by number."""
    entries = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) != 2 or not fields[0].isdigit():
                raise ValueError(f"{path}, line {n}: expected '<number> <class>', got {line!r}")
            entries.append((int(fields[0]), fields[1]))
    return [name for _, name in sorted(entries)]


class VideoFolder(_dataset.VideoFolder):
    """Videos in class folders ``root/<class>/<file>``, optionally one split of them.

    All the arguments of :class:`minideep.data.dataset.VideoFolder` (``clip_len`` frames
    per clip, ``step``, ``sampling``, ``size``, ``grayscale``, ``transform``, ``layout``,
    ``classes``, ``extensions``, ``cache``), and:

    Args:
        split_file: a UCF101-style list of the videos to keep, paths relative to
            ``root`` (e.g. ``ucfTrainTestlist/testlist01.txt``); relative to the current
            folder or to ``root``. Matching ignores case (UCF101 writes
            ``HandstandPushups/v_HandStandPushups_...``). Every listed file must exist.
        class_index_file: a ``classInd.txt`` giving the classes and their order (index
            = number - 1); by default the ``classInd.txt`` next to ``split_file``, if
            any; else the class folders sorted by name.
        is_valid_file: ``path -> bool``, keep only the videos it accepts (as in
            torchvision's DatasetFolder), e.g. :func:`kth_split`.

    ``ds[i]`` is ``(clip, class_index)``, with ``classes``, ``class_to_idx``,
    ``samples`` (``(path, class_index)`` pairs) and ``targets`` as in torchvision.
    """

    def __init__(
        self,
        root: str | os.PathLike,
        clip_len: int = 16,
        step: int = 1,
        sampling: str = "center",
        size: int | tuple[int, int] | None = None,
        grayscale: bool = False,
        transform: Callable | None = None,
        layout: str = "TCHW",
        classes: Sequence[str] | None = None,
        extensions: Sequence[str] = VIDEO_EXTENSIONS,
        cache: bool = True,
        *,
        split_file: str | os.PathLike | None = None,
        class_index_file: str | os.PathLike | None = None,
        is_valid_file: Callable[[str], bool] | None = None,
    ):
        root = Path(root)
        split_path = None if split_file is None else _resolve(split_file, root)
        if class_index_file is None and split_path is not None:
            beside = split_path.parent / "classInd.txt"
            class_index_file = beside if beside.is_file() else None
        if class_index_file is not None and classes is None:
            classes = read_class_index(_resolve(class_index_file, root))
        super().__init__(
            root, clip_len, step, sampling, size, grayscale, transform, layout, classes,
            extensions, cache,
        )  # fmt: skip
        samples = self.samples
        if split_path is not None:
            samples = self._in_split(samples, split_path)
        if is_valid_file is not None:
            samples = [s for s in samples if is_valid_file(s[0])]
        if not samples:
            raise FileNotFoundError(f"VideoFolder: no videos of '{root}' are in the split")
        self.samples = samples
        self.targets = [idx for _, idx in samples]
        self.split_file = None if split_path is None else str(split_path)

    def _in_split(self, samples: list, split_path: Path) -> list:
        listed = read_split_file(split_path)
        on_disk = {Path(path).relative_to(self.root).as_posix().lower(): (path, idx)
                   for path, idx in samples}  # fmt: skip
        missing = [entry for entry in listed if entry.lower() not in on_disk]
        if missing:
            raise FileNotFoundError(
                f"VideoFolder: {len(missing)} of the {len(listed)} videos listed in "
                f"'{split_path}' are not under '{self.root}' (or not in its classes), e.g. "
                f"{', '.join(missing[:3])}"
            )
        keep = {entry.lower() for entry in listed}
        return [s for key, s in on_disk.items() if key in keep]


def _resolve(path: str | os.PathLike, root: Path) -> Path:
    """``path`` as given if it exists, else relative to ``root``."""
    path = Path(path)
    if not path.exists() and not path.is_absolute() and (root / path).exists():
        return root / path
    if not path.exists():
        raise FileNotFoundError(f"VideoFolder: no file '{path}' (nor '{root / path}')")
    return path
