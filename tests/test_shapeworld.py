"""ShapeWorld: determinism, ground truth that agrees with the pixels, files on disk."""

import numpy as np
import pytest

from minideep.data import DataLoader, ShapeWorld
from minideep.data.shapeworld import ANOMALIES, SHAPES, shape_mask

ALL = dict(classes=SHAPES, camera_motion=1.0, scale_drift=0.03, colour_drift=0.02)


@pytest.fixture(scope="module")
def world():
    """A busy world: every shape, a panning camera, growing and shrinking objects."""
    return ShapeWorld(10, frames=8, size=48, n_objects=(2, 5), noise=0.02, **ALL)


@pytest.fixture(scope="module")
def anomalous():
    return ShapeWorld(12, frames=10, size=40, camera_motion=0.5, anomaly_rate=1.0, seed=3)


def _silhouettes(w, i, t):
    """(K, H, W) bool: the pixels each object of clip i would cover in frame t if alone."""
    ys, xs = np.mgrid[: w.height, : w.width] + 0.5
    out = np.zeros((w.n_objects[1], w.height, w.width), bool)
    for k in np.nonzero(w.present[i, t])[0]:
        cx, cy = w.centers[i, t, k].astype(np.float64)
        r = np.float64(w.radii[i, k]) * np.float64(w.scales[i, t, k])
        out[k] = shape_mask(w.classes[w.object_labels[i, k]], xs - cx, ys - cy, r)
    return out


def _arrays(w):
    names = "videos masks flow anomalies centers scales present visible camera depths radii"
    return [getattr(w, n) for n in names.split()] + [w.object_labels, w.anomaly_types]


def test_same_seed_gives_the_same_world_bit_for_bit():
    kw = dict(frames=6, size=32, noise=0.05, camera_motion=1.0, anomaly_rate=0.5, seed=5)
    a, b = ShapeWorld(6, **kw), ShapeWorld(6, **kw)
    for x, y in zip(_arrays(a), _arrays(b)):
        np.testing.assert_array_equal(x, y)
    for i in range(6):
        for t in range(6):
            np.testing.assert_array_equal(a.boxes[i][t], b.boxes[i][t])
            np.testing.assert_array_equal(a.track_ids[i][t], b.track_ids[i][t])


def test_different_seeds_give_different_worlds():
    a, b = ShapeWorld(4, frames=4, size=32, seed=0), ShapeWorld(4, frames=4, size=32, seed=1)
    assert not np.array_equal(a.videos, b.videos)
    assert not np.array_equal(a.masks, b.masks)


def test_attribute_shapes_and_dtypes(world):
    N, T, H, W, K = 10, 8, 48, 48, 5
    assert world.videos.shape == (N, T, H, W, 3) and world.videos.dtype == np.uint8
    assert world.masks.shape == (N, T, H, W) and world.masks.dtype == np.int64
    assert world.flow.shape == (N, T - 1, H, W, 2) and world.flow.dtype == np.float32
    assert world.anomalies.shape == (N, T) and world.anomalies.dtype == bool
    assert len(world.boxes) == len(world.labels) == len(world.track_ids) == N
    for i in range(N):
        assert len(world.boxes[i]) == T
        for t in range(T):
            boxes, labels, ids = world.boxes[i][t], world.labels[i][t], world.track_ids[i][t]
            assert boxes.dtype == np.float32 and boxes.shape == (len(ids), 4)
            assert labels.dtype == ids.dtype == np.int64 and labels.shape == ids.shape
    assert world.centers.shape == (N, T, K, 2) and world.scales.shape == (N, T, K)
    assert world.present.shape == world.visible.shape == (N, T, K)
    assert world.object_labels.shape == world.depths.shape == (N, K)
    assert world.camera.shape == (N, T, 2)


def test_boxes_are_the_tight_boxes_of_the_visible_masks(world):
    for i in range(world.n_clips):
        for t in range(world.frames):
            mask = world.masks[i, t]
            ids = world.track_ids[i][t]
            assert sorted(set(np.unique(mask)) - {0}) == ids.tolist()
            for k, box in zip(ids, world.boxes[i][t]):
                rows, cols = np.nonzero(mask == k)
                tight = [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]
                np.testing.assert_array_equal(box, tight)


def test_labels_and_track_ids_are_consistent_across_frames(world):
    for i in range(world.n_clips):
        seen = {}
        for t in range(world.frames):
            ids, labels = world.track_ids[i][t], world.labels[i][t]
            assert len(set(ids.tolist())) == len(ids)
            assert (1 <= ids).all() and (ids <= world.n_objects[1]).all()
            for k, label in zip(ids.tolist(), labels.tolist()):
                assert seen.setdefault(k, label) == label == world.object_labels[i, k - 1]


def test_masks_show_the_nearest_object_at_each_pixel(world):
    hidden = 0
    for i in range(world.n_clips):
        depth = world.depths[i]
        for t in range(world.frames):
            covers = _silhouettes(world, i, t)
            nearest = np.where(covers, depth[:, None, None], np.inf).argmin(axis=0) + 1
            expected = np.where(covers.any(axis=0), nearest, 0)
            np.testing.assert_array_equal(world.masks[i, t], expected)
            shown = world.masks[i, t] == np.arange(1, len(covers) + 1)[:, None, None]
            hidden += (covers & ~shown).any()  # some object is partly hidden
    assert hidden > 0  # the busy world does have occlusions


def test_without_occlusion_objects_never_overlap():
    w = ShapeWorld(8, frames=8, size=48, n_objects=(3, 4), occlusion=False)
    for i in range(w.n_clips):
        for t in range(w.frames):
            covers = _silhouettes(w, i, t)
            assert covers.sum(axis=0).max() <= 1
            b = w.boxes[i][t]
            overlap_x = np.minimum(b[:, None, 2], b[None, :, 2]) > np.maximum(
                b[:, None, 0], b[None, :, 0]
            )
            overlap_y = np.minimum(b[:, None, 3], b[None, :, 3]) > np.maximum(
                b[:, None, 1], b[None, :, 1]
            )
            assert not (overlap_x & overlap_y)[~np.eye(len(b), dtype=bool)].any()


def test_flow_carries_object_pixels_onto_the_same_object(world):
    """Warp each object pixel of frame t by the flow: in frame t+1 one of the four pixels
    around the landing point shows the same track id, unless a nearer object is there."""
    H, W = world.height, world.width
    ys, xs = np.mgrid[:H, :W]
    hits = counted = 0
    for i in range(world.n_clips):
        depth = np.concatenate([[np.inf], world.depths[i]])
        for t in range(world.frames - 1):
            mask, flow = world.masks[i, t], world.flow[i, t]
            after = np.pad(world.masks[i, t + 1], 1)
            on = mask > 0
            qx, qy = xs[on] + flow[on, 0], ys[on] + flow[on, 1]  # landing point - 0.5
            x0, y0 = np.floor(qx).astype(int) + 1, np.floor(qy).astype(int) + 1
            inside = (x0 >= 0) & (x0 <= W) & (y0 >= 0) & (y0 <= H)
            x0, y0, source = x0[inside], y0[inside], mask[on][inside]
            around = np.stack(
                [after[y0, x0], after[y0, x0 + 1], after[y0 + 1, x0], after[y0 + 1, x0 + 1]], 1
            )
            hit = (around == source[:, None]).any(axis=1)
            occluded = (depth[around] < depth[source][:, None]).any(axis=1)
            hits += hit.sum()
            counted += (hit | ~occluded).sum()
    assert counted > 5000 and hits / counted >= 0.99


def test_flow_moves_each_pixel_centre_onto_the_same_point_of_its_shape(world):
    """The flow is exact: a pixel centre of object k, moved by it, lands on the same point
    of k's shape (the same offset from the centre, in units of the object's scale)."""
    ys, xs = np.mgrid[: world.height, : world.width] + 0.5
    points = np.stack([xs, ys], axis=-1)
    for i in range(world.n_clips):
        for t in range(world.frames - 1):
            mask, flow = world.masks[i, t], world.flow[i, t]
            k = mask[mask > 0] - 1
            centre, scale = world.centers[i, t, k], world.scales[i, t, k, None]
            centre_next, scale_next = world.centers[i, t + 1, k], world.scales[i, t + 1, k, None]
            before = (points[mask > 0] - centre) / scale
            after = (points[mask > 0] + flow[mask > 0] - centre_next) / scale_next
            np.testing.assert_allclose(after, before, atol=1e-4)


def test_camera_motion_shows_in_the_background_flow():
    moving = ShapeWorld(4, frames=6, size=32, camera_motion=1.5)
    still = ShapeWorld(4, frames=6, size=32, camera_motion=0.0)
    background = moving.masks[:, :-1] == 0
    step = np.diff(moving.camera, axis=1)  # (N, T-1, 2)
    expected = np.broadcast_to(step[:, :, None, None], moving.flow.shape)
    np.testing.assert_allclose(moving.flow[background], expected[background], atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(step, axis=-1), 1.5, rtol=1e-5)
    assert not still.flow[still.masks[:, :-1] == 0].any()
    # objects are carried along: their screen motion is their own motion plus the camera's
    assert not np.allclose(moving.centers, still.centers)


def test_no_anomalies_without_anomaly_rate(world):
    assert not world.anomalies.any()
    assert (world.anomaly_types == 0).all() and (world.anomaly_tracks == 0).all()


def test_anomaly_flags_mark_the_frames_of_the_anomaly(anomalous):
    w = anomalous
    t = np.arange(w.frames)
    assert (w.anomaly_types > 0).all() and set(w.anomaly_types.tolist()) == {1, 2, 3}
    for i in range(w.n_clips):
        kind, k, onset = ANOMALIES[w.anomaly_types[i]], w.anomaly_tracks[i] - 1, w.anomaly_onsets[i]
        flags = t == onset if kind == "appear" else t >= onset
        np.testing.assert_array_equal(w.anomalies[i], flags)
        own = np.diff(w.centers[i, :, k] - w.camera[i], axis=0)  # world motion t -> t+1
        if kind == "stop":
            np.testing.assert_allclose(own[onset - 1 :], 0, atol=1e-4)
            assert np.abs(own[: onset - 1]).sum() > 0
        elif kind == "reverse":
            direction = np.sign(own[: onset - 1] @ own[0])  # +1: with the first step
            np.testing.assert_allclose(own[onset - 1 :] @ own[0], -own[0] @ own[0], rtol=1e-4)
            assert (direction > 0).all()
        else:
            assert not w.present[i, :onset, k].any() and not w.visible[i, :onset, k].any()
            assert w.visible[i, onset, k]


def test_write_and_load_round_trip(tmp_path):
    w = ShapeWorld(3, frames=5, size=32, noise=0.05, camera_motion=1.0, anomaly_rate=0.7)
    root = w.write(tmp_path / "world")
    assert sorted(p.name for p in root.iterdir())[:2] == ["00000.mkv", "00000.npz"]
    back = ShapeWorld.load(root)
    np.testing.assert_array_equal(back.videos, w.videos)  # FFV1 is lossless
    for x, y in zip(_arrays(back), _arrays(w)):
        np.testing.assert_array_equal(x, y)
    for i in range(3):
        for t in range(5):
            for name in ("boxes", "labels", "track_ids"):
                a, b = getattr(back, name)[i][t], getattr(w, name)[i][t]
                assert a.dtype == b.dtype
                np.testing.assert_array_equal(a, b)
    assert back.classes == w.classes and back.n_objects == w.n_objects
    clip, target = back[1]
    np.testing.assert_array_equal(target["masks"], w[1][1]["masks"])


@pytest.mark.parametrize(
    "layout, shape", [("TCHW", (6, 3, 32, 32)), ("CTHW", (3, 6, 32, 32)), ("THWC", (6, 32, 32, 3))]
)
def test_items_are_a_float_clip_and_fixed_shape_targets(layout, shape):
    w = ShapeWorld(4, frames=6, size=32, n_objects=(1, 3), layout=layout)
    clip, target = w[2]
    assert clip.shape == shape and clip.dtype == np.float32 and clip.max() <= 1.0
    assert target["boxes"].shape == (6, 3, 4) and target["labels"].shape == (6, 3)
    assert target["track_ids"].shape == (6, 3) and target["masks"].shape == (6, 32, 32)
    assert target["flow"].shape == (5, 32, 32, 2) and target["anomalies"].shape == (6,)
    for t in range(6):  # the slots of the visible objects carry the per-frame rows
        ids = target["track_ids"][t]
        np.testing.assert_array_equal(ids[ids > 0], w.track_ids[2][t])
        np.testing.assert_array_equal(target["boxes"][t][ids > 0], w.boxes[2][t])
        np.testing.assert_array_equal(target["labels"][t][ids > 0], w.labels[2][t])
        assert (target["labels"][t][ids == 0] == -1).all()


def test_the_dataloader_stacks_clips_and_targets():
    w = ShapeWorld(4, frames=4, size=32, n_objects=(2, 2))
    clips, targets = next(iter(DataLoader(w, batch_size=4)))
    assert clips.shape == (4, 4, 3, 32, 32)
    assert targets["boxes"].shape == (4, 4, 2, 4) and targets["flow"].shape == (4, 3, 32, 32, 2)
    assert targets["masks"].shape == (4, 4, 32, 32) and str(targets["masks"].dtype) == "int64"


@pytest.mark.parametrize("background", ["plain", "texture", "clutter"])
def test_backgrounds_get_busier(background):
    w = ShapeWorld(3, frames=2, size=32, background=background)
    colours = [len(np.unique(w.videos[i, 0][w.masks[i, 0] == 0], axis=0)) for i in range(3)]
    if background == "plain":
        assert colours == [1, 1, 1]
    else:
        assert min(colours) > 10


def test_appearance_drifts_slowly():
    w = ShapeWorld(4, frames=12, size=48, background="plain", scale_drift=0.02, colour_drift=0.02)
    used = w.object_labels >= 0
    growth = np.log(w.scales[:, -1] / w.scales[:, 0])[used] / 11
    assert np.abs(growth).max() <= 0.02 + 1e-6 and np.abs(growth).max() > 0.005
    i, k = np.argwhere(w.visible[:, 0] & w.visible[:, -1])[0]
    first = w.videos[i, 0][w.masks[i, 0] == k + 1][0].astype(int)
    last = w.videos[i, -1][w.masks[i, -1] == k + 1][0].astype(int)
    assert 0 < np.abs(first - last).max() <= 0.02 * 11 * 255 + 1


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(classes=("circle", "hexagon")), "hexagon"),
        (dict(classes=()), "classes"),
        (dict(size=8), "at least 16"),
        (dict(n_objects=(3, 1)), "n_objects"),
        (dict(n_objects=0), "n_objects"),
        (dict(background="stars"), "background"),
        (dict(frames=1), "frames"),
        (dict(object_size=(20, 40)), "do not fit"),
        (dict(anomaly_rate=1.5), "anomaly_rate"),
        (dict(noise=-0.1), "noise"),
        (dict(layout="HWTC"), "layout"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ShapeWorld(2, **{"size": 32, **kwargs})


def test_crowded_worlds_without_occlusion_say_they_cannot_be_placed():
    with pytest.raises(ValueError, match="without overlap"):
        ShapeWorld(2, size=16, n_objects=(12, 12), object_size=(3, 4), occlusion=False)
