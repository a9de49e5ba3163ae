"""ShapeWorld: a seeded video world of moving shapes, with ground truth for every task.

The world
---------
A clip is ``T`` frames of an ``H x W`` scene filmed by a camera that may pan. In it move
between ``n_objects[0]`` and ``n_objects[1]`` objects, each a shape of one of the
``classes`` (circle, square, triangle, and optionally diamond, cross, ring), with

* an identity, its *track id* ``1, 2, ..., k`` (unique within the clip, the same in
  every frame; slot ``k - 1`` of the per-object arrays);
* a *depth*: nearer objects are drawn over farther ones, so objects occlude each other;
* a motion: the objects of a clip drift together, each along the clip's *common
  direction* give or take ``spread`` degrees, at its own speed (``speed`` pixels per
  frame); their paths are chosen so that they stay (mostly) in view;
* an appearance that changes slowly: the colour drifts by up to ``colour_drift`` per
  channel and frame, the size grows or shrinks by up to ``scale_drift`` (a fraction)
  per frame.

Behind them lies a background, ``"plain"`` (one colour), ``"texture"`` (a colour plus a
few smooth waves) or ``"clutter"`` (the texture plus static bars and ellipses, ``clutter``
of them per 1000 square pixels). The camera pans along a smooth path at
``camera_motion`` pixels per frame: the background and every object shift together by
the camera's translation. Gaussian pixel noise (``noise``) comes last.

An *anomaly* (in a fraction ``anomaly_rate`` of the clips) is one object that, from its
onset frame on, moves against the common flow (``"reverse"``), stops (``"stop"``) or is
not there before it (``"appear"``: it pops up mid-clip). The anomalous object is the
nearest one, so it is never hidden.

How each ground truth is made
-----------------------------
Everything is computed, not estimated, from the known state of the world. Pixel
``(x, y)`` (column, row) covers the square ``[x, x + 1) x [y, y + 1)``; its centre is
``(x + 0.5, y + 0.5)``. An object is a centre ``c_t``, a radius ``r s_t`` (base radius
times the scale at frame t) and a class.

1. **Rasterising a shape** (:func:`shape_mask`): a pixel belongs to an object when its
   centre, at offset ``(dx, dy)`` from the object's centre, satisfies the shape's
   inequality (``dx^2 + dy^2 <= r^2`` for a circle). NumPy evaluates it for every pixel of
   every frame at once.
2. **Compositing by depth** (:func:`composite`): a z-buffer. Each pixel remembers the
   depth of the nearest object drawn so far; an object wins the pixels it covers where it
   is nearer. The result is the *id map* (``masks``): the track id of the visible object
   at each pixel, 0 for the background.
3. **Boxes from the id map** (:func:`boxes_from_masks`): an object's box is the tight box
   around its *visible* pixels. Frame t of clip i lists the objects with at least one
   visible pixel (in track id order): partly hidden objects get the box of what is seen,
   fully hidden or out-of-view objects get none.
4. **Flow from the known motions** (:func:`flow_from_motion`): a point at offset ``u``
   from an object's centre in frame t sits at offset ``u s_{t+1} / s_t`` in frame t+1, so
   the pixel at ``p`` moves by ``(c_{t+1} - c_t) + (s_{t+1} / s_t - 1)(p - c_t)`` - a
   translation plus a scaling about the centre. The background is "object 0": it moves
   with the camera, scale 1. The flow of a pixel is the motion of whatever is visible
   there in frame t (in frame t+1 it may have become hidden).
5. **Anomaly flags**: for ``"reverse"`` and ``"stop"`` every frame from the onset on
   (the object is off its normal course from that frame); for ``"appear"`` the onset
   frame only (the frame where the object pops up).

The rest of a clip's state is kept as attributes too (centres, scales, depths, radii,
the camera path), so any ground truth above can be recomputed from it.
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

SHAPES = ("circle", "square", "triangle", "diamond", "cross", "ring")
BACKGROUNDS = ("plain", "texture", "clutter")
ANOMALIES = ("none", "reverse", "stop", "appear")
REVERSE, STOP, APPEAR = 1, 2, 3  # indices into ANOMALIES

# Every shape of radius r has the area of the circle of radius r, so size does not tell
# the class. These are the half-widths (the largest |dx| and |dy|) as multiples of r.
_HALF_EXTENT = {
    "circle": 1.0,
    "square": np.sqrt(np.pi) / 2,  # side sqrt(pi) r
    "triangle": np.sqrt(2 * np.pi) / 2,  # base = height = sqrt(2 pi) r
    "diamond": np.sqrt(np.pi / 2),  # |dx| + |dy| <= a, area 2 a^2
    "cross": np.sqrt(9 * np.pi / 20),  # two bars of half-length L, half-width L / 3
    "ring": 2 / np.sqrt(3),  # outer radius R, inner R / 2, area 3/4 pi R^2
}
_VIDEO_CODEC = {"codec": "ffv1", "pix_fmt": "bgr0"}  # FFV1 is lossless: files decode exactly


def shape_mask(shape: str, dx, dy, r):
    """Which pixels, at offsets ``(dx, dy)`` from a shape's centre, lie inside the shape.

    ``dx``, ``dy`` and ``r`` broadcast together (e.g. ``(..., 1, W)``, ``(..., H, 1)``
    and ``(..., 1, 1)``); the result is a bool array of their broadcast shape. The
    triangle points up (rows grow downwards).
    """
    ax, ay = np.abs(dx), np.abs(dy)
    h = _HALF_EXTENT[shape] * r
    if shape == "circle":
        return dx * dx + dy * dy <= r * r
    if shape == "square":
        return np.maximum(ax, ay) <= h
    if shape == "triangle":
        return (dy <= h) & (ax <= (dy + h) / 2)
    if shape == "diamond":
        return ax + ay <= h
    if shape == "cross":
        return ((ax <= h) & (ay <= h / 3)) | ((ax <= h / 3) & (ay <= h))
    if shape == "ring":
        d2 = dx * dx + dy * dy
        return (d2 <= h * h) & (d2 >= h * h / 4)
    raise ValueError(f"unknown shape {shape!r}; shapes are {SHAPES}")


def composite(layers, depths, background, colours):
    """Draw objects over a background with a z-buffer: the nearest object wins a pixel.

    Args:
        layers: list of K bool arrays ``(..., H, W)``, the pixels each object covers.
        depths: ``(..., K)`` distance from the camera (smaller is nearer).
        background: ``(..., H, W, 3)`` float colours.
        colours: ``(..., K, 3)`` float colour of each object.

    Returns ``(ids, image)``: ``ids`` int64 ``(..., H, W)`` holds ``k + 1`` where object k
    is visible and 0 on the background; ``image`` ``(..., H, W, 3)``.
    """
    ids = np.zeros(layers[0].shape, np.int64)
    zbuffer = np.full(layers[0].shape, np.inf, np.float32)
    image = np.broadcast_to(background, (*ids.shape, background.shape[-1]))
    for k, covered in enumerate(layers):
        nearer = covered & (depths[..., k, None, None] < zbuffer)
        ids = np.where(nearer, k + 1, ids)
        zbuffer = np.where(nearer, depths[..., k, None, None], zbuffer)
        image = np.where(nearer[..., None], colours[..., k, None, None, :], image)
    return ids, image


def boxes_from_masks(ids, n_ids: int):
    """Tight boxes around the pixels of each id in an id map.

    ``ids``: int ``(..., H, W)``; ids ``1..n_ids`` are boxed. Returns ``(boxes, visible)``:
    ``boxes`` float32 ``(..., n_ids, 4)`` as ``(x0, y0, x1, y1)`` in pixel-edge
    coordinates (``x1``, ``y1`` exclusive: id k's pixels lie in ``ids[y0:y1, x0:x1]``),
    zeros where an id has no pixel; ``visible`` bool ``(..., n_ids)``.
    (torchvision's ``masks_to_boxes`` gives the last pixel instead: ``x1 - 1``, ``y1 - 1``.)
    """
    hit = ids[..., None] == np.arange(1, n_ids + 1)  # (..., H, W, K)
    cols, rows = hit.any(axis=-3), hit.any(axis=-2)  # (..., W, K), (..., H, K)
    visible = cols.any(axis=-2)
    width, height = cols.shape[-2], rows.shape[-2]
    x0 = cols.argmax(axis=-2)  # the first True
    x1 = width - cols[..., ::-1, :].argmax(axis=-2)  # one past the last True
    y0 = rows.argmax(axis=-2)
    y1 = height - rows[..., ::-1, :].argmax(axis=-2)
    boxes = np.stack([x0, y0, x1, y1], axis=-1).astype(np.float32)
    return np.where(visible[..., None], boxes, np.float32(0)), visible


def flow_from_motion(ids, centers, scales, camera):
    """Forward optical flow of every pixel, from the known motion of what it shows.

    Args:
        ids: int ``(..., T, H, W)`` id map (0 background, k + 1 object k).
        centers: ``(..., T, K, 2)`` object centres ``(x, y)`` in pixels.
        scales: ``(..., T, K)`` object scales.
        camera: ``(..., T, 2)`` camera translation (the background's position).

    Returns float32 ``(..., T-1, H, W, 2)``: ``(dx, dy)`` carrying the pixel centre ``p``
    of frame t to where the same surface point is in frame t+1:
    ``(c_{t+1} - c_t) + (s_{t+1} / s_t - 1)(p - c_t)``, the background moving with the
    camera at scale 1.
    """
    # The background is "object 0": centre anywhere (0), moving with the camera, scale 1.
    move = np.concatenate([camera[..., None, :], centers], axis=-2)  # (..., T, K+1, 2)
    move = move[..., 1:, :, :] - move[..., :-1, :, :]
    growth = np.concatenate([np.ones_like(scales[..., :1]), scales], axis=-1)
    growth = growth[..., 1:, :] / growth[..., :-1, :] - 1.0  # (..., T-1, K+1)
    start = np.concatenate([np.zeros_like(camera[..., None, :]), centers], axis=-2)[..., :-1, :, :]
    ids = ids[..., :-1, :, :]
    height, width = ids.shape[-2:]
    flat = ids.reshape(*ids.shape[:-2], height * width, 1)  # pick, per pixel, its object's

    def per_pixel(table):  # (..., T-1, K+1, C) -> (..., T-1, H, W, C)
        return np.take_along_axis(table, flat, axis=-2).reshape(*ids.shape, table.shape[-1])

    px = np.stack(np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5), axis=-1)
    flow = per_pixel(move) + per_pixel(growth[..., None]) * (px - per_pixel(start))
    return flow.astype(np.float32)


def _stored(a):
    """``a`` rounded to float32, the precision it is stored in, so drawings match the store."""
    return np.asarray(a).astype(np.float32).astype(np.float64)


def _pair(size, name: str) -> tuple[int, int]:
    if isinstance(size, int | np.integer):
        return int(size), int(size)
    try:
        a, b = size
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an int or a pair, got {size!r}") from None
    return a, b


class ShapeWorld(Dataset):
    """A seeded multi-object video world with ground truth (see the module docstring).

    Args:
        n_clips: number of clips ``N``.
        frames: frames per clip ``T`` (at least 2, so there is a flow).
        size: frame size, one int (square) or ``(H, W)``, at least 16.
        n_objects: objects per clip, ``(min, max)`` inclusive (or one int); ``K = max``.
        classes: shape classes, from ``SHAPES`` (circle square triangle diamond cross ring).
        background: ``"plain"``, ``"texture"`` or ``"clutter"``.
        noise: standard deviation of Gaussian pixel noise, in [0, 1] intensity units.
        occlusion: True: objects may overlap (the nearer one is drawn); False: they are
            placed so that their bounding squares never touch (an object that finds no
            room is left out: the clip has one object fewer, and a track id is skipped).
        camera_motion: camera speed in pixels per frame along a smooth, slowly turning path.
        anomaly_rate: fraction of the clips (rounded) that hold one anomaly.
        seed: seed of this world's own generator (``None``: minideep's generator, seeded
            by ``md.manual_seed``). The same seed gives the same world, bit for bit.

    Difficulty knobs (keyword only):
        object_size: ``(min, max)`` diameter of the base circle in pixels (default
            ``(min(H, W) / 8, min(H, W) / 4)``).
        speed: ``(min, max)`` object speed in pixels per frame.
        spread: degrees an object's direction strays from the clip's common direction
            (180: independent directions).
        clutter: clutter items per 1000 square pixels of background (``"clutter"`` only).
        scale_drift: largest change of log scale per frame (0: constant size).
        colour_drift: largest change of a colour channel per frame (0: constant colour).
        layout: axes of the clips ``ds[i]`` returns: ``"TCHW"``, ``"CTHW"`` or ``"THWC"``.
        transform: applied to the uint8 ``(T, H, W, 3)`` clip before the layout (targets
            are not transformed: use photometric transforms only).

    Attributes (N clips, T frames, K = ``n_objects[1]`` object slots; slot k holds track
    id k + 1):

    * ``videos`` uint8 ``(N, T, H, W, 3)``;
    * ``boxes[i][t]`` float32 ``(K_t, 4)``, ``labels[i][t]`` int64 ``(K_t,)`` (index into
      ``classes``), ``track_ids[i][t]`` int64 ``(K_t,)``: the ``K_t`` objects visible in
      frame t, in track id order; boxes ``(x0, y0, x1, y1)``, tight around the visible
      pixels, ``x1``/``y1`` exclusive;
    * ``masks`` int64 ``(N, T, H, W)``: 0 background, else the track id seen there;
    * ``flow`` float32 ``(N, T-1, H, W, 2)``: motion ``(dx, dy)`` of each pixel into t+1;
    * ``anomalies`` bool ``(N, T)``; ``anomaly_types`` int64 ``(N,)`` indexing
      ``ANOMALIES``; ``anomaly_tracks`` ``(N,)`` (track id, 0 if none);
      ``anomaly_onsets`` ``(N,)`` (-1 if none);
    * the world's state: ``object_counts`` ``(N,)``; ``object_labels`` int64 ``(N, K)``
      (-1 for unused slots); ``radii``, ``depths`` float32 ``(N, K)`` (nan for unused
      slots; smaller depth is nearer); ``centers`` float32 ``(N, T, K, 2)``; ``scales``
      float32 ``(N, T, K)``; ``present`` bool ``(N, T, K)`` (the object exists: false for
      unused slots and before an ``"appear"``); ``visible`` bool ``(N, T, K)`` (at least
      one pixel in ``masks``); ``camera`` float32 ``(N, T, 2)``.

    ``ds[i]`` is ``(clip, target)``: ``clip`` float32 in [0, 1] with axes ``layout``;
    ``target`` a dict of fixed-shape arrays, so minideep's ``DataLoader`` stacks it:
    ``boxes`` ``(T, K, 4)``, ``labels`` ``(T, K)`` and ``track_ids`` ``(T, K)`` per slot
    (zeros, -1 and 0 where the object is not visible), ``masks`` ``(T, H, W)``, ``flow``
    ``(T-1, H, W, 2)``, ``anomalies`` ``(T,)``.
    """

    ANOMALIES = ANOMALIES

    def __init__(
        self,
        n_clips: int,
        frames: int = 16,
        size: int | tuple[int, int] = 64,
        n_objects: int | tuple[int, int] = (1, 4),
        classes: Sequence[str] = ("circle", "square", "triangle"),
        background: str = "clutter",
        noise: float = 0.0,
        occlusion: bool = True,
        camera_motion: float = 0.0,
        anomaly_rate: float = 0.0,
        seed: int | None = 0,
        *,
        object_size: tuple[float, float] | None = None,
        speed: tuple[float, float] = (0.5, 2.0),
        spread: float = 30.0,
        clutter: float = 4.0,
        scale_drift: float = 0.01,
        colour_drift: float = 0.01,
        layout: str = "TCHW",
        transform: Callable | None = None,
    ):
        height, width = _pair(size, "size")
        lo, hi = _pair(n_objects, "n_objects")
        classes = tuple(classes)
        if isinstance(classes, str) or not classes:
            raise ValueError(f"classes must be a non-empty sequence of names, got {classes!r}")
        unknown = [c for c in classes if c not in SHAPES]
        if unknown or len(set(classes)) != len(classes):
            raise ValueError(f"classes {list(classes)}: unknown or repeated; shapes are {SHAPES}")
        if not isinstance(n_clips, int | np.integer) or n_clips < 1:
            raise ValueError(f"n_clips must be a positive int, got {n_clips!r}")
        if frames < 2:
            raise ValueError(f"frames must be >= 2 (the flow needs two frames), got {frames}")
        if min(height, width) < 16:
            raise ValueError(f"size must be at least 16 pixels, got {height}x{width}")
        if not 1 <= lo <= hi <= 64:
            raise ValueError(
                f"n_objects must be (min, max) with 1 <= min <= max <= 64, got {n_objects}"
            )
        if background not in BACKGROUNDS:
            raise ValueError(f"background must be one of {BACKGROUNDS}, got {background!r}")
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {sorted(LAYOUTS)}, got {layout!r}")
        if object_size is None:
            object_size = (min(height, width) / 8, min(height, width) / 4)
        object_size, speed = tuple(map(float, object_size)), tuple(map(float, speed))
        largest = max(object_size) * max(_HALF_EXTENT[c] for c in classes)
        largest *= np.exp(scale_drift * (frames - 1))
        if min(object_size) < 3 or object_size[0] > object_size[1]:
            raise ValueError(
                f"object_size must be (min, max) with 3 <= min <= max, got {object_size}"
            )
        if largest > min(height, width) / 2:
            raise ValueError(
                f"objects up to {largest:.1f} pixels wide (object_size {object_size}, growing by "
                f"scale_drift {scale_drift} over {frames} frames) do not fit a {height}x{width} "
                "frame with room to move: use a larger size or smaller objects"
            )
        if not 0 <= speed[0] <= speed[1]:
            raise ValueError(f"speed must be (min, max) with 0 <= min <= max, got {speed}")
        if not 0 <= anomaly_rate <= 1:
            raise ValueError(f"anomaly_rate must be in [0, 1], got {anomaly_rate}")
        if anomaly_rate > 0 and speed[0] <= 0:
            raise ValueError(f"anomalies need moving objects: speed[0] must be > 0, got {speed}")
        amounts = dict(noise=noise, camera_motion=camera_motion, spread=spread, clutter=clutter)
        amounts.update(scale_drift=scale_drift, colour_drift=colour_drift)
        negative = {name: value for name, value in amounts.items() if value < 0}
        if negative:
            raise ValueError(f"these must be >= 0: {negative}")

        self.n_clips, self.frames = int(n_clips), int(frames)
        self.height, self.width = int(height), int(width)
        self.n_objects, self.classes = (int(lo), int(hi)), list(classes)
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}
        self.background, self.noise, self.occlusion = background, noise, occlusion
        self.camera_motion, self.anomaly_rate, self.seed = camera_motion, anomaly_rate, seed
        self.object_size, self.speed = object_size, speed
        self.spread, self.clutter = spread, clutter
        self.scale_drift, self.colour_drift = scale_drift, colour_drift
        self.layout, self.transform = layout, transform

        rng = np.random.default_rng(seed) if seed is not None else backend.numpy_rng()
        self._generate(rng)

    # ------------------------------------------------------------------ the world's state
    def _generate(self, rng: np.random.Generator) -> None:
        N, T, H, W, K = self.n_clips, self.frames, self.height, self.width, self.n_objects[1]

        counts = rng.integers(self.n_objects[0], K + 1, N)
        used = np.arange(K) < counts[:, None]  # (N, K) slots holding an object
        camera = _stored(_camera_path(rng, N, T, self.camera_motion))  # (N, T, 2)

        labels = np.where(used, rng.integers(0, len(self.classes), (N, K)), -1)
        radii = _stored(rng.uniform(*self.object_size, (N, K)) / 2)
        depths = rng.uniform(0.1, 1.0, (N, K))
        common = rng.uniform(0, 2 * np.pi, (N, 1))
        heading = common + np.deg2rad(self.spread) * rng.uniform(-1, 1, (N, K))
        speed = rng.uniform(*self.speed, (N, K))
        step = speed[..., None, None] * np.stack([np.cos(heading), np.sin(heading)], -1)[:, :, None]
        step = np.repeat(step, T - 1, axis=2)  # (N, K, T-1, 2) world motion t -> t+1
        growth = rng.uniform(-self.scale_drift, self.scale_drift, (N, K))
        scales = _stored(np.exp(growth[..., None] * np.arange(T)))  # (N, K, T)
        colour = rng.uniform(0.2, 1.0, (N, K, 3))
        colour /= colour.max(axis=-1, keepdims=True)  # bright: one channel at 1
        colour_step = rng.uniform(-self.colour_drift, self.colour_drift, (N, K, 3))
        present = np.repeat(used[..., None], T, axis=2)  # (N, K, T)

        kinds, tracks, onsets = _choose_anomalies(rng, counts, T, self.anomaly_rate)
        _apply_anomalies(kinds, tracks, onsets, step, present, depths)

        # Screen path = start + world motion so far + camera; choose starts that keep it in view.
        path = np.concatenate([np.zeros_like(step[:, :, :1]), np.cumsum(step, axis=2)], axis=2)
        path = path + camera[:, None]
        half = np.array([_HALF_EXTENT[c] for c in self.classes])[labels]
        extent = radii[..., None] * half[..., None] * scales  # (N, K, T) half-width
        lo, hi = _start_range(path, extent, present, (W, H))
        if self.occlusion:
            start = lo + rng.uniform(0, 1, lo.shape) * (hi - lo)
        else:
            start = _place_apart(rng, lo, hi, path, extent, present, first=tracks - 1)
            used = present.any(axis=2)  # some objects may have found no room
            counts, labels = used.sum(axis=1), np.where(used, labels, -1)
            if counts.min() < self.n_objects[0]:
                raise ValueError(
                    f"could not place {self.n_objects[0]} objects without overlap in "
                    f"{int((counts < self.n_objects[0]).sum())} clips (occlusion=False): use "
                    "fewer, smaller or slower objects, or a larger frame"
                )
        centers = _stored(start[:, :, None] + path)

        background = _draw_background_params(rng, self, camera)
        self.object_counts = counts.astype(np.int64)
        self.object_labels = labels.astype(np.int64)
        self.radii = np.where(used, radii, np.nan).astype(np.float32)
        self.depths = np.where(used, depths, np.nan).astype(np.float32)
        self.centers = np.where(used[:, None, :, None], centers.transpose(0, 2, 1, 3), np.nan)
        self.centers = self.centers.astype(np.float32)
        self.scales = np.where(used[:, None], scales.transpose(0, 2, 1), np.nan).astype(np.float32)
        self.present = present.transpose(0, 2, 1).copy()
        self.camera = camera.astype(np.float32)
        self.anomaly_types, self.anomaly_tracks, self.anomaly_onsets = kinds, tracks, onsets
        t = np.arange(T)
        lasting = (kinds == REVERSE) | (kinds == STOP)  # flagged from the onset on
        self.anomalies = (lasting[:, None] & (t >= onsets[:, None])) | (
            (kinds == APPEAR)[:, None] & (t == onsets[:, None])  # flagged at the onset
        )

        self.videos = np.empty((N, T, H, W, 3), np.uint8)
        self.masks = np.empty((N, T, H, W), np.int64)
        self.flow = np.empty((N, T - 1, H, W, 2), np.float32)
        self.visible = np.empty((N, T, K), bool)
        self._box_table = np.empty((N, T, K, 4), np.float32)
        colours = np.clip(colour[:, None] + colour_step[:, None] * t[:, None, None], 0, 1)
        chunk = max(1, 2**20 // (T * H * W))  # clips drawn at once: bounds the temporaries
        for a in range(0, N, chunk):
            sl = slice(a, min(N, a + chunk))
            self._render(sl, background, colours[sl].astype(np.float32), rng)
        self._index_boxes()

    def _render(self, sl: slice, background: dict, colours, rng) -> None:
        """Draw clips ``sl``: background, objects by depth, noise; then masks, boxes, flow."""
        H, W, K = self.height, self.width, self.n_objects[1]
        centers = self.centers[sl].astype(np.float64)  # (n, T, K, 2)
        radius = self.radii[sl, None, :].astype(np.float64) * self.scales[sl]  # (n, T, K)
        xs, ys = np.arange(W) + 0.5, np.arange(H) + 0.5  # pixel centres
        layers = []
        for k in range(K):
            dx = xs - centers[:, :, k, 0, None, None]  # (n, T, 1, W)
            dy = ys[:, None] - centers[:, :, k, 1, None, None]  # (n, T, H, 1)
            r = radius[:, :, k, None, None]
            covered = np.zeros((*dx.shape[:2], H, W), bool)
            for c, name in enumerate(self.classes):  # each clip tests its own object's shape
                clips = np.nonzero(self.object_labels[sl, k] == c)[0]
                covered[clips] = shape_mask(name, dx[clips], dy[clips], r[clips])
            layers.append(covered & self.present[sl, :, k, None, None])
        depths = np.nan_to_num(self.depths[sl], nan=np.inf)[:, None]  # (n, 1, K): all frames
        scene = _draw_background(background, sl, self.camera[sl].astype(np.float64), H, W)
        ids, image = composite(layers, depths, scene, colours)
        if self.noise:
            image = image + rng.normal(0.0, self.noise, image.shape).astype(np.float32)
        self.videos[sl] = np.rint(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)
        self.masks[sl] = ids
        self._box_table[sl], self.visible[sl] = boxes_from_masks(ids, K)
        scales = np.nan_to_num(self.scales[sl].astype(np.float64), nan=1.0)
        self.flow[sl] = flow_from_motion(
            ids, np.nan_to_num(centers), scales, self.camera[sl].astype(np.float64)
        )

    def _index_boxes(self) -> None:
        """Per clip and frame, the rows of the visible objects: ``boxes``, ``labels``, ..."""
        self.boxes, self.labels, self.track_ids = [], [], []
        for i in range(self.n_clips):
            boxes, labels, tracks = [], [], []
            for t in range(self.frames):
                (k,) = np.nonzero(self.visible[i, t])
                boxes.append(self._box_table[i, t, k])
                labels.append(self.object_labels[i, k])
                tracks.append((k + 1).astype(np.int64))
            self.boxes.append(boxes)
            self.labels.append(labels)
            self.track_ids.append(tracks)

    # ------------------------------------------------------------------ dataset
    def __len__(self) -> int:
        return self.n_clips

    def __getitem__(self, index: int) -> tuple[np.ndarray, dict]:
        clip = self.videos[index]
        if self.transform is not None:
            clip = self.transform(clip)
        seen = self.visible[index]  # (T, K)
        slots = np.arange(1, self.n_objects[1] + 1)
        target = {
            "boxes": self._box_table[index],
            "labels": np.where(seen, self.object_labels[index], -1),
            "track_ids": np.where(seen, slots, 0).astype(np.int64),
            "masks": self.masks[index],
            "flow": self.flow[index],
            "anomalies": self.anomalies[index],
        }
        return to_layout(clip, self.layout), target

    def __repr__(self) -> str:
        return (
            f"ShapeWorld(n_clips={self.n_clips}, frames={self.frames}, "
            f"size=({self.height}, {self.width}), n_objects={self.n_objects}, "
            f"classes={self.classes}, background={self.background!r}, "
            f"camera_motion={self.camera_motion}, anomaly_rate={self.anomaly_rate})"
        )

    # ------------------------------------------------------------------ files
    _CONFIG = (
        "n_clips frames n_objects classes background noise occlusion camera_motion "
        "anomaly_rate seed object_size speed spread clutter scale_drift colour_drift"
    ).split()
    _ARRAYS = "masks flow centers scales present visible camera radii depths object_labels"

    def write(self, root: str | os.PathLike, fps: float = 8.0, workers: int | None = None) -> Path:
        """Write the world to ``root``: lossless videos, arrays and readable annotations.

        * ``root/<i:05d>.mkv`` - clip i, FFV1 (lossless: it decodes to ``videos[i]`` exactly);
        * ``root/<i:05d>.npz`` - clip i's ``masks``, ``flow`` and state arrays;
        * ``root/annotations.json`` - the settings and, per clip, the anomaly and, per
          frame, the ``boxes``, ``labels`` and ``track_ids``.

        Videos are encoded ``workers`` at a time (default: one per CPU core). Returns
        ``Path(root)``; :meth:`load` reads it back.
        """
        from .video import write_video

        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)

        def write_clip(i: int) -> None:
            write_video(root / f"{i:05d}.mkv", self.videos[i], fps=fps, **_VIDEO_CODEC)
            arrays = {name: getattr(self, name)[i] for name in self._ARRAYS.split()}
            np.savez_compressed(root / f"{i:05d}.npz", **arrays)

        with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
            list(pool.map(write_clip, range(self.n_clips)))
        config = {name: getattr(self, name) for name in self._CONFIG}
        config["size"] = [self.height, self.width]
        annotations = {
            "format": "ShapeWorld 1",
            "fps": fps,
            "config": config,
            "box_format": "x0, y0, x1, y1 in pixels, x1 and y1 exclusive (tight visible box)",
            "anomaly_types": list(ANOMALIES),
            "clips": [
                {
                    "video": f"{i:05d}.mkv",
                    "arrays": f"{i:05d}.npz",
                    "anomaly": {
                        "type": ANOMALIES[self.anomaly_types[i]],
                        "track_id": int(self.anomaly_tracks[i]),
                        "onset": int(self.anomaly_onsets[i]),
                    },
                    "anomalies": self.anomalies[i].tolist(),
                    "frames": [
                        {
                            "boxes": self.boxes[i][t].tolist(),
                            "labels": self.labels[i][t].tolist(),
                            "track_ids": self.track_ids[i][t].tolist(),
                        }
                        for t in range(self.frames)
                    ],
                }
                for i in range(self.n_clips)
            ],
        }
        (root / "annotations.json").write_text(json.dumps(annotations))
        return root

    @classmethod
    def load(
        cls,
        root: str | os.PathLike,
        layout: str = "TCHW",
        transform: Callable | None = None,
        workers: int | None = None,
    ) -> ShapeWorld:
        """Read a world written by :meth:`write`: videos decoded from the files, the rest exact."""
        from .video import read_video

        root = Path(root)
        path = root / "annotations.json"
        if not path.is_file():
            raise FileNotFoundError(f"ShapeWorld.load: no annotations.json in '{root}'")
        annotations = json.loads(path.read_text())
        if annotations.get("format") != "ShapeWorld 1":
            raise ValueError(f"ShapeWorld.load: '{path}' is not a ShapeWorld annotation file")
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {sorted(LAYOUTS)}, got {layout!r}")
        config, clips = annotations["config"], annotations["clips"]
        world = cls.__new__(cls)
        for name in cls._CONFIG:
            value = config[name]
            setattr(world, name, tuple(value) if isinstance(value, list) else value)
        world.classes = list(world.classes)
        world.class_to_idx = {c: i for i, c in enumerate(world.classes)}
        world.height, world.width = config["size"]
        world.layout, world.transform = layout, transform

        with ThreadPoolExecutor(max_workers=workers or os.cpu_count() or 1) as pool:
            videos = list(pool.map(lambda c: read_video(root / c["video"]), clips))
        world.videos = np.stack(videos)
        arrays = [np.load(root / c["arrays"]) for c in clips]
        for name in cls._ARRAYS.split():
            setattr(world, name, np.stack([a[name] for a in arrays]))
        world.object_counts = (world.object_labels >= 0).sum(axis=1).astype(np.int64)
        kinds = [ANOMALIES.index(c["anomaly"]["type"]) for c in clips]
        world.anomaly_types = np.array(kinds, np.int64)
        world.anomaly_tracks = np.array([c["anomaly"]["track_id"] for c in clips], np.int64)
        world.anomaly_onsets = np.array([c["anomaly"]["onset"] for c in clips], np.int64)
        world.anomalies = np.array([c["anomalies"] for c in clips], bool)
        world._box_table = np.zeros((*world.visible.shape, 4), np.float32)
        for i, clip in enumerate(clips):
            for t, frame in enumerate(clip["frames"]):
                slots = np.array(frame["track_ids"], np.int64) - 1
                world._box_table[i, t, slots] = np.array(frame["boxes"], np.float32).reshape(-1, 4)
        world._index_boxes()
        return world


# ---------------------------------------------------------------------- world helpers
def _camera_path(rng, n: int, frames: int, speed: float):
    """``(n, T, 2)`` camera translation: ``speed`` pixels per frame, turning slowly."""
    start, turn = rng.uniform(0, 2 * np.pi, (n, 1)), rng.uniform(-0.1, 0.1, (n, 1))
    heading = start + turn * np.arange(frames - 1)  # radians, turning by `turn` per frame
    steps = speed * np.stack([np.cos(heading), np.sin(heading)], axis=-1)
    return np.concatenate([np.zeros((n, 1, 2)), np.cumsum(steps, axis=1)], axis=1)


def _choose_anomalies(rng, counts, frames: int, rate: float):
    """Which clips hold an anomaly: its kind, its object's track id and its onset frame."""
    n = len(counts)
    chosen = np.sort(rng.permutation(n)[: int(round(rate * n))])
    kinds, tracks = np.zeros(n, np.int64), np.zeros(n, np.int64)
    onsets = np.full(n, -1, np.int64)
    kinds[chosen] = rng.integers(1, len(ANOMALIES), len(chosen))
    tracks[chosen] = rng.integers(0, counts[chosen]) + 1
    # Onsets in the middle half of the clip, after at least one normal step when possible.
    first = min(frames - 1, max(2, frames // 4))
    last = max(first, min(frames - 1, 3 * frames // 4))
    onsets[chosen] = rng.integers(first, last + 1, len(chosen))
    return kinds, tracks, onsets


def _apply_anomalies(kinds, tracks, onsets, step, present, depths) -> None:
    """Change the anomalous objects in place: their motion (from the step into the onset
    frame on), their existence, and their depth (in front of everything)."""
    frames = present.shape[2]
    obj = np.arange(present.shape[1]) == (tracks - 1)[:, None]  # (N, K) the anomalous object
    after = np.arange(frames - 1) >= (onsets - 1)[:, None]  # (N, T-1) steps into t >= onset
    before = np.arange(frames) < onsets[:, None]  # (N, T)
    during = obj[:, :, None] & after[:, None]  # (N, K, T-1)
    step[during & (kinds == REVERSE)[:, None, None]] *= -1
    step[during & (kinds == STOP)[:, None, None]] = 0
    present[obj[:, :, None] & before[:, None] & (kinds == APPEAR)[:, None, None]] = False
    depths[obj & (kinds > 0)[:, None]] = 0.0


def _start_range(path, extent, present, frame):
    """The start points that keep each object's screen path in view while it is present.

    ``path`` ``(N, K, T, 2)`` is the motion so far, ``extent`` ``(N, K, T)`` the
    half-width. The centre stays half a half-width inside the frame, so at most a quarter
    of an object is cut off; a path too long for the frame is centred on it. Returns
    ``(lo, hi)``, each ``(N, K, 2)``.
    """
    margin = 0.5 * np.where(present, extent, 0).max(axis=-1)[..., None]  # (N, K, 1)
    lo = margin - np.where(present[..., None], path, np.inf).min(axis=2)
    hi = np.array(frame) - margin - np.where(present[..., None], path, -np.inf).max(axis=2)
    seen = present.any(axis=-1)[..., None]  # unused slots: anywhere
    lo, hi = np.where(seen, lo, 0.0), np.where(seen, hi, np.array(frame, float))
    middle = (lo + hi) / 2
    return np.where(lo <= hi, lo, middle), np.where(lo <= hi, hi, middle)


def _place_apart(rng, lo, hi, path, extent, present, first, tries: int = 100):
    """Starts ``(N, K, 2)`` for ``occlusion=False``: objects are placed one by one (the
    slot ``first`` of each clip first), each at the first of ``tries`` random starts whose
    bounding square, at every frame, stays at least a pixel away from those of the objects
    placed before it. An object that finds no such start is left out: ``present`` is
    cleared for it (in place)."""
    N, K = lo.shape[:2]
    rows = np.arange(N)
    order = np.argsort(np.arange(K) != first[:, None], axis=1, kind="stable")  # (N, K)
    start = np.zeros((N, K, 2))
    placed = np.zeros((N, K), bool)
    for k in order.T:  # (N,): the slot each clip places now
        options = lo[rows, k, None] + rng.uniform(0, 1, (N, tries, 2)) * (hi - lo)[rows, k, None]
        new = options[:, :, None, None] + path[rows, None, None, k]  # (N, tries, 1, T, 2)
        old = start[:, None, :, None] + path[:, None]  # (N, 1, K, T, 2)
        gap = np.abs(new - old).max(axis=-1)  # (N, tries, K, T) centre distance (inf-norm)
        reach = extent[rows, None, k, None] + extent[:, None] + 1
        both = present[rows, None, k, None] & (present & placed[..., None])[:, None]
        clash = ((gap < reach) & both).any(axis=(2, 3))  # (N, tries)
        start[rows, k] = options[rows, clash.argmin(axis=1)]  # the first without a clash
        present[rows[clash.all(axis=1)], k[clash.all(axis=1)]] = False
        placed[rows, k] = True
    return start


def _draw_background_params(rng, world: ShapeWorld, camera) -> dict:
    """Random background: a colour, three smooth waves, and clutter items (in world space).

    Clutter items are bars (even items) and ellipses (odd items), 2 to 4 times longer than
    wide, so that none looks like an object; they are static in the world.
    """
    N, H, W = world.n_clips, world.height, world.width
    angle = rng.uniform(0, 2 * np.pi, (N, 3))
    freq = rng.uniform(1 / 32, 1 / 8, (N, 3))  # cycles per pixel
    params = {
        "kind": world.background,
        "base": rng.uniform(0.15, 0.5, (N, 3)),
        "wave": freq[..., None] * np.stack([np.cos(angle), np.sin(angle)], -1),  # (N, 3, 2)
        "phase": rng.uniform(0, 2 * np.pi, (N, 3)),
        "amplitude": rng.uniform(-0.12, 0.12, (N, 3, 3)),  # wave, channel
    }
    # The camera sees world points u = pixel - camera: clutter covers that whole region.
    lo = -camera.max(axis=1)  # (N, 2)
    hi = np.array([W, H]) - camera.min(axis=1)
    area = np.prod(hi - lo, axis=1)
    density = world.clutter if world.background == "clutter" else 0.0
    counts = rng.poisson(density * area / 1000)
    D = int(counts.max(initial=0))
    long = rng.uniform(world.object_size[0] / 2, world.object_size[1] / 2, (N, D))
    params.update(
        items=np.arange(D) < counts[:, None],  # (N, D)
        position=lo[:, None] + rng.uniform(0, 1, (N, D, 2)) * (hi - lo)[:, None],
        half_axes=np.stack([long, long / rng.uniform(2, 4, (N, D))], -1),
        rotation=rng.uniform(0, np.pi, (N, D)),
        colour=rng.uniform(0.1, 0.9, (N, D, 3)),
    )
    return params


def _draw_background(p: dict, sl: slice, camera, H: int, W: int):
    """The background of clips ``sl``, ``(n, T, H, W, 3)`` float32 (T = 1 for a still camera)."""
    if not camera.any():
        camera = camera[:, :1]  # a still camera sees the same background in every frame
    # The background has no ground truth of its own, so float32 is precise enough (and fast).
    p = {
        k: v.astype(np.float32) if isinstance(v, np.ndarray) and v.dtype == float else v
        for k, v in p.items()
    }
    camera = camera.astype(np.float32)
    u = (np.arange(W, dtype=np.float32) + 0.5) - camera[:, :, 0, None, None]  # (n, T, 1, W)
    v = (np.arange(H, dtype=np.float32)[:, None] + 0.5) - camera[:, :, 1, None, None]
    image = np.zeros((*camera.shape[:2], H, W, 3), np.float32) + p["base"][sl, None, None, None]
    if p["kind"] != "plain":
        for j in range(3):
            kx, ky = p["wave"][sl, j, 0, None, None, None], p["wave"][sl, j, 1, None, None, None]
            phase = p["phase"][sl, j, None, None, None]
            wave = np.sin(2 * np.pi * kx * u + (2 * np.pi * ky * v + phase))
            image += wave[..., None] * p["amplitude"][sl, None, None, None, j]
    item = np.zeros(image.shape[:-1], np.int64)  # which clutter item covers a pixel (0: none)
    for d in range(p["items"].shape[1]):
        if not p["items"][sl, d].any():
            continue
        dx = u - p["position"][sl, d, 0, None, None, None]
        dy = v - p["position"][sl, d, 1, None, None, None]
        cos = np.cos(p["rotation"][sl, d])[:, None, None, None]
        sin = np.sin(p["rotation"][sl, d])[:, None, None, None]
        a = p["half_axes"][sl, d, 0, None, None, None]
        b = p["half_axes"][sl, d, 1, None, None, None]
        along = cos / a * dx + sin / a * dy  # the item's own axes, scaled to |.| <= 1
        across = cos / b * dy - sin / b * dx
        if d % 2:
            inside = along * along + across * across <= 1
        else:
            inside = np.maximum(np.abs(along), np.abs(across)) <= 1
        item = np.where(inside & p["items"][sl, d, None, None, None], d + 1, item)
    if p["items"].shape[1]:
        colour = np.concatenate([np.zeros_like(p["colour"][sl, :1]), p["colour"][sl]], axis=1)
        picked = np.take_along_axis(colour[:, None], item.reshape(*item.shape[:2], -1, 1), axis=2)
        image = np.where(item[..., None] > 0, picked.reshape(image.shape), image)
    return image.astype(np.float32)
