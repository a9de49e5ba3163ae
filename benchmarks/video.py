"""Video decoding: minideep's reader against imageio's, and what VideoFolder's cache saves.

1. Decode throughput (frames per second) of a 64x64 H.264 MP4 of 600 frames (moving
   shapes with pixel noise, so the codec has real work to do), read whole by
   ``md.data.read_video``, streamed by ``md.data.iter_frames``, and read by imageio's
   FFmpeg plugin through ``imageio.v2.mimread`` and ``imageio.v3.imread``.
2. The per-file cost on a short clip (16 frames, 32x32), the case of a dataset of many
   small clips, where starting FFmpeg dominates.
3. One epoch (batch 32) over a ``VideoFolder`` of MovingShapes clips written to disk:
   the first epoch decodes every file, later ones read the in-memory cache;
   ``preload()`` decodes with one FFmpeg process per core.
4. Decoding a 640x480 clip (10 s of FFmpeg's ``testsrc`` at 25 fps, 250 frames) as
   H.264 MP4 and as MPEG-4 AVI (read through the AVI timeline: FFmpeg's ``fps`` filter),
   whole, streamed, resampled (``fps=10``) and resized, against imageio.
5. A training epoch (a small 3D CNN counting the objects, batch 16) over ShapeWorld
   clips written by ``ShapeWorld.write`` (lossless FFV1 MKV) and decoded from disk on
   every access, with ``num_workers`` 0, 1 and 2; and the same epoch loading only (the
   better of two epochs each).

    python benchmarks/video.py            # everything, written to results/video.md
    python benchmarks/video.py --only 4 5  # some sections, printed only
"""

from __future__ import annotations

import argparse
import subprocess
import tempfile
import time
from pathlib import Path

from common import RESULTS, median_time

import minideep as md
import minideep.nn as nn
import minideep.nn.functional as F
from minideep.bench import format_table, save_results
from minideep.data import DataLoader, MovingShapes, VideoFolder, iter_frames, read_video
from minideep.data.video import _ffmpeg

LONG_FRAMES = 600
N_CLIPS = 240


def _readers(path: Path) -> dict:
    import imageio.v2 as iio2
    import imageio.v3 as iio3

    return {
        "md.data.read_video": lambda: read_video(path),
        "md.data.iter_frames": lambda: sum(1 for _ in iter_frames(path)),
        "imageio.v2.mimread (ffmpeg)": lambda: iio2.mimread(path, format="FFMPEG", memtest=False),
        "imageio.v3.imread (ffmpeg)": lambda: iio3.imread(path, plugin="FFMPEG", index=None),
    }


def decode_rows(folder: Path) -> list[dict]:
    long_clip = MovingShapes(1, frames=LONG_FRAMES, size=64, n_shapes=3, noise=0.05, seed=0)
    short_clip = MovingShapes(1, frames=16, size=32, seed=0)
    rows = []
    for name, ds, repeats in (("600 x 64x64", long_clip, 5), ("16 x 32x32", short_clip, 20)):
        path = folder / f"{name.split()[0]}.mp4"
        md.data.write_video(path, ds.videos[0], fps=25)
        n = ds.frames
        for reader, fn in _readers(path).items():
            seconds = median_time(fn, repeats=repeats, warmup=1)
            rows.append(
                {
                    "task": f"decode {name}",
                    "method": reader,
                    "ms": seconds * 1e3,
                    "frames/s": n / seconds,
                }
            )
    return rows


def _epoch(dataset) -> float:
    start = time.perf_counter()
    for _ in DataLoader(dataset, batch_size=32, shuffle=True):
        pass
    return time.perf_counter() - start


def folder_rows(folder: Path) -> list[dict]:
    root = folder / "shapes"
    start = time.perf_counter()
    MovingShapes(N_CLIPS, frames=16, size=32, seed=0).to_folder(root)
    write_s = time.perf_counter() - start
    rows = [{"task": f"VideoFolder, {N_CLIPS} clips 16x32x32", "method": "write (to_folder)"}]
    rows[0].update(ms=write_s * 1e3, **{"frames/s": N_CLIPS * 16 / write_s})

    def row(method, seconds):
        rows.append(
            {
                "task": f"VideoFolder, {N_CLIPS} clips 16x32x32",
                "method": method,
                "ms": seconds * 1e3,
                "frames/s": N_CLIPS * 16 / seconds,
            }
        )

    cached = VideoFolder(root, clip_len=16)
    row("epoch 1 (decodes every file)", _epoch(cached))
    row("epoch 2 (cached)", min(_epoch(cached) for _ in range(3)))
    uncached = VideoFolder(root, clip_len=16, cache=False)
    row("epoch, cache=False", _epoch(uncached))
    fresh = VideoFolder(root, clip_len=16)
    start = time.perf_counter()
    fresh.preload()
    row("preload() (a process per core)", time.perf_counter() - start)
    return rows


def _readers_640(path: Path) -> dict:
    readers = {
        "md.data.read_video": lambda: read_video(path),
        "md.data.iter_frames": lambda: sum(1 for _ in iter_frames(path)),
        "md.data.read_video(fps=10)": lambda: read_video(path, fps=10),
        "md.data.read_video(size=(240, 320))": lambda: read_video(path, size=(240, 320)),
    }
    if path.suffix == ".mp4":
        import imageio.v3 as iio3

        readers["imageio.v3.imread (ffmpeg)"] = lambda: iio3.imread(
            path, plugin="FFMPEG", index=None
        )
    return readers


def decode_640_rows(folder: Path) -> list[dict]:
    """Section 4: a 640x480 clip of 250 frames, MP4 and AVI (frames/s: decoded frames)."""
    rows = []
    src = ["-f", "lavfi", "-i", "testsrc=size=640x480:rate=25", "-t", "10"]
    codecs = {
        ".mp4": ["-c:v", "libx264", "-pix_fmt", "yuv420p"],
        ".avi": ["-c:v", "mpeg4", "-q:v", "3"],
    }
    for ext, codec in codecs.items():
        path = folder / f"testsrc640{ext}"
        cmd = [_ffmpeg(), "-y", "-loglevel", "error", *src, *codec, str(path)]
        subprocess.run(cmd, check=True)
        for method, fn in _readers_640(path).items():
            seconds = median_time(fn, repeats=3, warmup=1)
            rows.append(
                {
                    "task": f"decode 250 x 640x480 {ext[1:].upper()}",
                    "method": method,
                    "ms": seconds * 1e3,
                    "frames/s": 250 / seconds,
                }
            )
    return rows


def _small_3d_cnn(n_classes: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv3d(3, 8, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.Conv3d(8, 16, 3, stride=2, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool3d(1),
        nn.Flatten(),
        nn.Linear(16, n_classes),
    )


class _ShapeWorldFiles(md.data.Dataset):
    """Clips of a written ShapeWorld, decoded from their files on every access.

    The target is the number of objects in the clip (minus one, a class index): a task
    for which the whole clip must be seen.
    """

    def __init__(self, root: Path):
        import json

        self.root = root
        clips = json.loads((root / "annotations.json").read_text())["clips"]
        self.files = [c["video"] for c in clips]
        self.counts = [max(len(f["track_ids"]) for f in c["frames"]) for c in clips]

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int):
        clip = read_video(self.root / self.files[i])  # (T, H, W, 3) uint8
        x = clip.transpose(3, 0, 1, 2).astype("float32") / 255.0  # (C, T, H, W)
        return x, self.counts[i] - 1


def worker_rows(folder: Path, n_clips: int = 96, batch: int = 16) -> list[dict]:
    """Section 5: epochs over ShapeWorld videos with 0, 1 and 2 DataLoader workers,
    training and loading only."""
    root = folder / "shapeworld"
    md.data.ShapeWorld(n_clips, frames=16, size=64, n_objects=(1, 4), seed=0).write(root)
    dataset = _ShapeWorldFiles(root)
    task = f"epoch, {n_clips} ShapeWorld clips 16x64x64 decoded from disk, batch {batch}"
    rows = []
    md.manual_seed(0)
    model = _small_3d_cnn(4)
    opt = md.optim.SGD(model.parameters(), lr=0.01)

    def epoch(workers: int, train: bool) -> float:
        md.manual_seed(1)
        start = time.perf_counter()
        for x, y in DataLoader(dataset, batch_size=batch, shuffle=True, num_workers=workers):
            if train:
                loss = F.cross_entropy(model(x), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
        return time.perf_counter() - start

    epoch(0, False)  # warm the file cache
    for train in (False, True):
        for workers in (0, 1, 2):
            seconds = min(epoch(workers, train) for _ in range(2))
            what = "training (3D CNN)" if train else "loading only"
            rows.append(
                {
                    "task": task,
                    "method": f"{what}, num_workers={workers}",
                    "ms": seconds * 1e3,
                    "frames/s": n_clips * 16 / seconds,
                }
            )
    return rows


SECTIONS = {
    "1-3": ("Video decoding and VideoFolder caching", lambda d: decode_rows(d) + folder_rows(d)),
    "4": ("Decoding a 640x480 clip", decode_640_rows),
    "5": ("A training epoch with DataLoader workers", worker_rows),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", nargs="*", choices=["1-3", "4", "5"], help="sections to run")
    args = parser.parse_args()
    chosen = args.only or list(SECTIONS)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for key in chosen:
            title, run = SECTIONS[key]
            results[title] = run(Path(tmp))
            print(f"## {title}")
            print(format_table(results[title]))
    notes = (
        "Both readers run the FFmpeg binary of imageio-ffmpeg and receive raw RGB frames "
        "through a pipe; the decoding itself is the same. The short-clip rows measure the "
        "fixed cost of one FFmpeg process per file, which is what caching decoded clips "
        "in memory removes from every epoch after the first. The AVI rows read through its "
        "timeline (FFmpeg's fps filter at the header's rate, which repeats the frame before "
        "a null slot). Worker epochs: each worker is a forked process decoding its batches "
        "(one FFmpeg process per clip) while the main process trains. "
        "On 2 cores one worker gains nothing (decoding, one FFmpeg process per clip, is "
        "most of the epoch, and the worker's batches must be pickled back to the trainer); "
        "two workers decode two clips at once."
    )
    if args.only:
        return
    save_results("video", results, RESULTS, notes=notes)


if __name__ == "__main__":
    main()
