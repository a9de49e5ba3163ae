"""MovingShapes: a seeded synthetic video dataset of shapes moving across a frame.

Each clip shows ``n_shapes`` shapes of one class (circle, square or triangle) moving in
one direction (left, right, up, down, or a diagonal). Two labels per clip - the shape
class and the motion direction - and per frame the bounding box, centre and velocity
of every shape and an event code (a bounce off a wall, a wrap around an edge).

Why direction needs a sequence model
------------------------------------
With ``motion="wrap"`` (the default) a shape leaving the frame on one side comes back
on the other, as in Asteroids. Start positions are uniform, and a translation around
a torus keeps them uniform, so in *every* frame the position is uniformly distributed
whatever the direction: one frame says nothing about the direction, only the order
of frames does. (The shape class, on the other hand, is visible in any frame.)
Besides the labelled motion, each shape drifts slowly along the other axis and
bounces off those walls; the drift's sign is random, which keeps that axis uniform too.

With ``motion="bounce"`` shapes bounce off all four walls (the direction label is the
direction at frame 0). Bouncing bunches shapes up against the wall they head for, so
there single frames do leak the direction; use it for bounce events, not for the
"only a sequence model can tell" lesson.

Everything is drawn at once with NumPy broadcasting: for each pixel we compute its
offset ``(dx, dy)`` from the centre of each shape in each frame, and a shape is the
set of pixels where an inequality in ``(dx, dy)`` holds (``dx^2 + dy^2 <= r^2`` for a
circle). A few hundred 16-frame 32x32 clips take a fraction of a second.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from .. import backend
from .dataset import Dataset
from .transforms import LAYOUTS, to_layout

SHAPES = ("circle", "square", "triangle")
DIRECTION_VECTORS = {
    "left": (-1, 0),
    "right": (1, 0),
    "up": (0, -1),  # image rows grow downwards
    "down": (0, 1),
    "up-left": (-1, -1),
    "up-right": (1, -1),
    "down-left": (-1, 1),
    "down-right": (1, 1),
}
DIRECTIONS = ("left", "right", "up", "down")
EVENTS = ("none", "bounce", "wrap")

# Half-extent of each shape (x, y) as a multiple of its radius r. All three shapes have
# the area of a circle of radius r, so size does not give the class away.
_SQUARE_HALF = np.sqrt(np.pi) / 2  # side sqrt(pi) r
_TRIANGLE_HALF = np.sqrt(2 * np.pi) / 2  # base = height = sqrt(2 pi) r
_HALF_EXTENT = {"circle": 1.0, "square": _SQUARE_HALF, "triangle": _TRIANGLE_HALF}


def _move(p0, v, t, extent, length, wrap):
    """Positions along one axis over time, with the frame crossings.

    p0, v, extent: (N, S) start, velocity (pixels per frame) and half-extent;
    t: (T,) frame indices; length: frame size along the axis; wrap: (N, S) bool.
    Returns position (N, T, S), velocity sign (N, T, S) and crossed (N, T, S) bool,
    True where a bounce or wrap happened between frame t-1 and t.

    Bouncing inside [lo, lo + L] with lo = extent, L = length - 2 extent: unfold the
    walls, travel u = p0 - lo + v t in a straight line, then fold u back with the
    triangle wave ``L - |u mod 2L - L|``; each multiple of L crossed is one bounce.
    """
    t = t[None, :, None]
    p0, v, extent, wrap = p0[:, None], v[:, None], extent[:, None], wrap[:, None]
    lo = np.where(wrap, 0.0, extent)
    span = np.where(wrap, length, length - 2 * extent)
    u = p0 - lo + v * t
    m = np.mod(u, 2 * span)
    bounced = lo + span - np.abs(m - span)
    pos = np.where(wrap, np.mod(u, span), bounced)
    sign = np.where(wrap | (m < span), 1.0, -1.0)
    lap = np.floor(u / span)
    crossed = np.zeros(pos.shape, bool)
    crossed[:, 1:] = lap[:, 1:] != lap[:, :-1]
    return pos, sign, crossed


def _inside(shape: str, dx, dy, r):
    """Which pixels, at offsets ``(dx, dy)`` from the centre, belong to a shape of radius r.

    All three have the area of the circle: a square of side sqrt(pi) r, and an isosceles
    triangle, apex up, whose base and height are both sqrt(2 pi) r.
    """
    if shape == "circle":
        return dx * dx + dy * dy <= r * r
    if shape == "square":
        return np.maximum(np.abs(dx), np.abs(dy)) <= _SQUARE_HALF * r
    h = _TRIANGLE_HALF * r  # half the height, half the base
    return (dy <= h) & (np.abs(dx) <= (dy + h) / 2)


class MovingShapes(Dataset):
    """A seeded synthetic video dataset: shapes moving in a frame.

    Args:
        n_clips: number of clips; both labels are balanced (each class about equally often).
        frames: frames per clip ``T``.
        size: frame size, one int (square) or ``(H, W)``.
        shapes: shape classes to use, from ``("circle", "square", "triangle")``.
        directions: motion directions, from ``left right up down`` and the diagonals
            ``up-left up-right down-left down-right``.
        label: which label ``ds[i]`` returns and ``.labels`` / ``.classes`` describe:
            ``"direction"`` or ``"shape"``.
        n_shapes: shapes per clip ``S``; all of the clip's class, moving its direction
            (each with its own size, speed, colour and start).
        shape_size: ``(min, max)`` diameter in pixels (default ``(min(H, W) / 5, min(H, W) / 3)``).
        speed: ``(min, max)`` pixels per frame along the direction.
        drift: ``(min, max)`` pixels per frame along the other axis, random sign, bouncing
            off the walls; ``(0, 0)`` moves in straight lines only.
        motion: ``"wrap"`` (exits one side, re-enters on the other; single frames carry
            no direction information) or ``"bounce"`` (reflects off every wall).
        noise: standard deviation of Gaussian pixel noise, in [0, 1] intensity units.
        channels: 3 (a random bright colour per shape) or 1 (grayscale).
        layout: axes of the clips ``ds[i]`` returns: ``"TCHW"`` (CNN + LSTM; a batch is
            ``(N, T, C, H, W)``), ``"CTHW"`` (``Conv3d``; a batch is ``(N, C, T, H, W)``)
            or ``"THWC"``.
        transform: applied to the uint8 ``(T, H, W, C)`` clip before the layout.
        fps: frame rate given to the clips written by :meth:`to_folder`.
        seed: seed of this dataset's own generator (``None``: minideep's generator,
            seeded by ``md.manual_seed``).

    ``ds[i]`` is ``(clip, label)``: ``clip`` float32 in [0, 1] with axes ``layout``,
    ``label`` an int indexing ``ds.classes``. Attributes, all NumPy arrays
    (N clips, T frames, S shapes):

    * ``videos`` - uint8 ``(N, T, H, W, C)``, the clips as drawn;
    * ``labels`` - int64 ``(N,)``, the ``label`` chosen; ``classes``, ``class_to_idx``;
    * ``shape_labels``, ``direction_labels`` - int64 ``(N,)`` indexing ``shapes`` and
      ``directions``;
    * ``boxes`` - int64 ``(N, T, S, 4)``: ``(x0, y0, x1, y1)`` in pixels, x along the
      width, y down the rows, ``x1``/``y1`` exclusive: the shape's pixels are
      ``frame[y0:y1, x0:x1]``. The box is tight around the drawn pixels. While a shape
      wraps around an edge its box extends past the frame (e.g. ``x0 < 0``): the part
      outside is drawn on the opposite side, at ``x mod W``;
    * ``centers`` - float32 ``(N, T, S, 2)`` shape centres ``(x, y)`` in pixels;
    * ``velocities`` - float32 ``(N, T, S, 2)`` motion ``(vx, vy)`` from frame t to t+1;
    * ``events`` - int64 ``(N, T)``: 0 ``"none"``, 1 ``"bounce"`` (a shape hit a wall
      between frames t-1 and t and now moves the other way), 2 ``"wrap"`` (a shape
      crossed an edge); names in ``EVENTS``.
    """

    EVENTS = EVENTS

    def __init__(
        self,
        n_clips: int = 300,
        frames: int = 16,
        size: int | tuple[int, int] = 32,
        shapes: Sequence[str] = SHAPES,
        directions: Sequence[str] = DIRECTIONS,
        label: str = "direction",
        n_shapes: int = 1,
        shape_size: tuple[float, float] | None = None,
        speed: tuple[float, float] = (1.0, 2.0),
        drift: tuple[float, float] = (0.0, 0.5),
        motion: str = "wrap",
        noise: float = 0.0,
        channels: int = 3,
        layout: str = "TCHW",
        transform: Callable | None = None,
        fps: float = 8.0,
        seed: int | None = 0,
    ):
        height, width = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
        unknown = [s for s in shapes if s not in _HALF_EXTENT]
        unknown += [d for d in directions if d not in DIRECTION_VECTORS]
        if unknown:
            raise ValueError(
                f"unknown shapes/directions {unknown}; shapes are {SHAPES}, directions are "
                f"{tuple(DIRECTION_VECTORS)}"
            )
        if label not in ("direction", "shape"):
            raise ValueError(f"label must be 'direction' or 'shape', got {label!r}")
        if motion not in ("wrap", "bounce"):
            raise ValueError(f"motion must be 'wrap' or 'bounce', got {motion!r}")
        if channels not in (1, 3):
            raise ValueError(f"channels must be 1 or 3, got {channels}")
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {sorted(LAYOUTS)}, got {layout!r}")
        if shape_size is None:
            shape_size = (min(height, width) / 5, min(height, width) / 3)
        largest = 2 * max(shape_size) * max(_HALF_EXTENT[s] for s in shapes)
        if min(shape_size) < 2 or largest >= min(height, width):
            raise ValueError(
                f"shape_size {shape_size} must be >= 2 pixels and the shapes must fit in the "
                f"{height}x{width} frame with room to move"
            )
        self.n_clips, self.frames, self.height, self.width = n_clips, frames, height, width
        self.shapes, self.directions = tuple(shapes), tuple(directions)
        self.label, self.n_shapes, self.motion, self.noise = label, n_shapes, motion, noise
        self.channels, self.layout, self.transform, self.fps = channels, layout, transform, fps
        self.classes = list(self.directions if label == "direction" else self.shapes)
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}

        rng = np.random.default_rng(seed) if seed is not None else backend.numpy_rng()
        self._generate(rng, shape_size, speed, drift)

    # ------------------------------------------------------------------ generation
    def _generate(self, rng, shape_size, speed, drift) -> None:
        N, T, S, H, W = self.n_clips, self.frames, self.n_shapes, self.height, self.width
        self.shape_labels = rng.permutation(np.arange(N) % len(self.shapes)).astype(np.int64)
        self.direction_labels = rng.permutation(np.arange(N) % len(self.directions))
        self.direction_labels = self.direction_labels.astype(np.int64)
        self.labels = self.direction_labels if self.label == "direction" else self.shape_labels

        radius = rng.uniform(*shape_size, (N, S)) / 2
        half = np.array([_HALF_EXTENT[s] for s in self.shapes])[self.shape_labels][:, None]
        extent = radius * half  # (N, S), the same along x and y for our three shapes
        unit = np.array([DIRECTION_VECTORS[d] for d in self.directions], float)
        unit = unit[self.direction_labels]  # (N, 2): which axes carry the labelled motion
        along = unit != 0
        unit = unit / np.linalg.norm(unit, axis=1, keepdims=True)
        spd = rng.uniform(*speed, (N, S))
        side = rng.uniform(*drift, (N, S)) * rng.choice([-1.0, 1.0], (N, S))
        t = np.arange(T, dtype=float)

        centers, velocities, events = [], [], np.zeros((N, T), np.int64)
        for axis, length in ((0, W), (1, H)):
            labelled = np.broadcast_to(along[:, axis : axis + 1], (N, S))
            v = np.where(labelled, spd * unit[:, axis : axis + 1], side)
            wrap = labelled & (self.motion == "wrap")
            lo = np.where(wrap, 0.0, extent)
            hi = np.where(wrap, length, length - extent)
            p0 = rng.uniform(lo, hi)
            pos, sign, crossed = _move(p0, v, t, extent, length, wrap)
            centers.append(pos)
            velocities.append(sign * v[:, None])
            bounce = (crossed & ~wrap[:, None]).any(axis=2)
            events[bounce] = 1
            events[(crossed & wrap[:, None]).any(axis=2) & (events == 0)] = 2
        self.centers = np.stack(centers, -1).astype(np.float32)  # (N, T, S, 2)
        self.velocities = np.stack(velocities, -1).astype(np.float32)
        self.events = events

        if self.channels == 3:
            colour = rng.uniform(0.2, 1.0, (N, S, 3))
            colour /= colour.max(axis=-1, keepdims=True)  # bright: one channel at 1
        else:
            colour = rng.uniform(0.5, 1.0, (N, S, 1))
        self.videos = np.empty((N, T, H, W, self.channels), np.uint8)
        self.boxes = np.empty((N, T, S, 4), np.int64)
        chunk = max(1, 2**22 // max(1, T * S * H * W))  # bound the temporaries
        for a in range(0, N, chunk):
            b = min(N, a + chunk)
            self._draw(slice(a, b), radius[a:b], colour[a:b], rng)

    def _draw(self, sl, radius, colour, rng) -> None:
        """Rasterise clips ``sl``: masks (n, T, S, H, W), boxes and the uint8 frames."""
        H, W = self.height, self.width
        cx = self.centers[sl, :, :, 0, None, None].astype(np.float64)  # (n, T, S, 1, 1)
        cy = self.centers[sl, :, :, 1, None, None].astype(np.float64)
        wrap_x = self.motion == "wrap"
        # Offsets of pixel centres from the shape centre; on a torus, the shortest one.
        dx = np.arange(W)[None, None, None, None, :] + 0.5 - cx
        dy = np.arange(H)[None, None, None, :, None] + 0.5 - cy
        if wrap_x:
            dx = np.mod(dx + W / 2, W) - W / 2
            dy = np.mod(dy + H / 2, H) - H / 2
        r = radius[:, None, :, None, None]
        mask = np.zeros(np.broadcast_shapes(dx.shape, dy.shape), bool)
        kinds = self.shape_labels[sl]
        for k, name in enumerate(self.shapes):  # each clip is tested for its own shape only
            clips = np.nonzero(kinds == k)[0]
            mask[clips] = _inside(name, dx[clips], dy[clips], r[clips])

        # Tight boxes. Column x of a pixel "unwrapped" next to the centre is cx + dx - 0.5.
        cols, rows = mask.any(axis=3), mask.any(axis=4)  # (n, T, S, W), (n, T, S, H)
        ux = np.rint(cx[..., 0] + dx[..., 0, :] - 0.5).astype(np.int64)  # (n, T, S, W)
        uy = np.rint(cy[..., 0] + dy[..., :, 0] - 0.5).astype(np.int64)  # (n, T, S, H)
        big = np.iinfo(np.int64).max // 2
        box = self.boxes[sl]
        box[..., 0] = np.where(cols, ux, big).min(-1)
        box[..., 1] = np.where(rows, uy, big).min(-1)
        box[..., 2] = np.where(cols, ux, -big).max(-1) + 1
        box[..., 3] = np.where(rows, uy, -big).max(-1) + 1

        # Paint shapes in order (later ones on top) on a black background, then noise.
        img = np.zeros((*mask.shape[:2], H, W, self.channels), np.float32)
        for s in range(self.n_shapes):
            m = mask[:, :, s, :, :, None]
            img = np.where(m, colour[:, None, s, None, None, :].astype(np.float32), img)
        if self.noise:
            img += rng.normal(0.0, self.noise, img.shape).astype(np.float32)
        self.videos[sl] = np.rint(np.clip(img, 0.0, 1.0) * 255).astype(np.uint8)

    # ------------------------------------------------------------------ dataset
    def __len__(self) -> int:
        return self.n_clips

    def __getitem__(self, index: int) -> tuple[np.ndarray, int]:
        clip = self.videos[index]
        if self.transform is not None:
            clip = self.transform(clip)
        return to_layout(clip, self.layout), int(self.labels[index])

    def __repr__(self) -> str:
        return (
            f"MovingShapes(n_clips={self.n_clips}, frames={self.frames}, "
            f"size=({self.height}, {self.width}), label={self.label!r}, "
            f"classes={self.classes}, motion={self.motion!r}, layout={self.layout!r})"
        )

    # ------------------------------------------------------------------ files
    def to_folder(
        self,
        root: str | os.PathLike,
        label: str | None = None,
        ext: str = ".mp4",
        workers: int | None = None,
    ) -> Path:
        """Write every clip as a video file, one sub-folder per class.

        ``root/<class>/<index:05d><ext>``, with ``label`` (``"direction"`` or ``"shape"``;
        default: this dataset's) naming the folders, so ``VideoFolder(root, ...)`` reads
        them back. VideoFolder numbers the classes in sorted order unless given
        ``classes=ds.classes``, which keeps this dataset's indices.
        ``root/annotations.json`` keeps, per file, the shape, direction, boxes and
        events. Files are encoded ``workers`` at a time (default: one per CPU core).
        Returns ``Path(root)``.
        """
        from .video import write_video

        label = label or self.label
        if label not in ("direction", "shape"):
            raise ValueError(f"label must be 'direction' or 'shape', got {label!r}")
        names = self.directions if label == "direction" else self.shapes
        targets = self.direction_labels if label == "direction" else self.shape_labels
        root = Path(root)
        files = [f"{names[k]}/{i:05d}{ext}" for i, k in enumerate(targets)]
        for name in names:
            (root / name).mkdir(parents=True, exist_ok=True)

        def write(i: int) -> None:
            write_video(root / files[i], self.videos[i], fps=self.fps)

        with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
            list(pool.map(write, range(self.n_clips)))
        annotations = {
            "label": label,
            "classes": sorted(names),
            "fps": self.fps,
            "box_format": "x0, y0, x1, y1 in pixels, x1 and y1 exclusive",
            "events": list(EVENTS),
            "clips": [
                {
                    "file": files[i],
                    "shape": self.shapes[self.shape_labels[i]],
                    "direction": self.directions[self.direction_labels[i]],
                    "boxes": self.boxes[i].tolist(),
                    "events": self.events[i].tolist(),
                }
                for i in range(self.n_clips)
            ],
        }
        (root / "annotations.json").write_text(json.dumps(annotations))
        return root
