"""MovingShapes: determinism, labels that agree with the pixels, and files on disk."""

import json

import numpy as np
import pytest

from minideep.data import MovingShapes, VideoFolder, read_video


def _tight_box(mask):
    rows, cols = np.nonzero(mask.any(1))[0], np.nonzero(mask.any(0))[0]
    return cols.min(), rows.min(), cols.max() + 1, rows.max() + 1


def test_same_seed_gives_the_same_dataset():
    a, b = MovingShapes(20, seed=7), MovingShapes(20, seed=7)
    np.testing.assert_array_equal(a.videos, b.videos)
    np.testing.assert_array_equal(a.labels, b.labels)
    np.testing.assert_array_equal(a.boxes, b.boxes)
    np.testing.assert_array_equal(a.events, b.events)


def test_different_seeds_give_different_clips():
    assert not np.array_equal(MovingShapes(8, seed=0).videos, MovingShapes(8, seed=1).videos)


@pytest.mark.parametrize("size, channels", [(32, 3), ((24, 40), 1)])
def test_array_shapes_and_dtypes(size, channels):
    ds = MovingShapes(10, frames=6, size=size, channels=channels, n_shapes=2)
    h, w = (size, size) if isinstance(size, int) else size
    assert ds.videos.shape == (10, 6, h, w, channels) and ds.videos.dtype == np.uint8
    assert ds.boxes.shape == (10, 6, 2, 4) and ds.boxes.dtype == np.int64
    assert ds.centers.shape == ds.velocities.shape == (10, 6, 2, 2)
    assert ds.events.shape == (10, 6) and ds.labels.dtype == np.int64


@pytest.mark.parametrize(
    "layout, shape", [("TCHW", (8, 3, 16, 16)), ("CTHW", (3, 8, 16, 16)), ("THWC", (8, 16, 16, 3))]
)
def test_items_are_float_clips_in_the_chosen_layout(layout, shape):
    clip, label = MovingShapes(4, frames=8, size=16, layout=layout)[0]
    assert clip.shape == shape and clip.dtype == np.float32
    assert 0.0 <= clip.min() and clip.max() <= 1.0
    assert isinstance(label, int)


def test_labels_are_balanced_and_named():
    ds = MovingShapes(40, directions=("left", "right", "up", "down"))
    assert ds.classes == ["left", "right", "up", "down"]
    assert np.bincount(ds.labels).tolist() == [10, 10, 10, 10]
    assert ds.class_to_idx["up"] == 2


def test_label_shape_makes_the_shape_class_the_target():
    ds = MovingShapes(9, label="shape")
    assert ds.classes == ["circle", "square", "triangle"]
    np.testing.assert_array_equal(ds.labels, ds.shape_labels)
    assert ds[3][1] == ds.shape_labels[3]


@pytest.mark.parametrize("shape", ["circle", "square", "triangle"])
def test_boxes_are_tight_around_the_drawn_pixels_when_bouncing(shape):
    ds = MovingShapes(12, frames=10, size=24, shapes=(shape,), motion="bounce", channels=1)
    for i in range(len(ds)):
        for t in range(ds.frames):
            assert tuple(ds.boxes[i, t, 0]) == _tight_box(ds.videos[i, t, :, :, 0] > 0)


def test_boxes_wrap_around_the_frame_edges_with_the_pixels():
    ds = MovingShapes(30, frames=12, size=20, channels=1, speed=(2.0, 3.0))
    wrapped = 0
    for i in range(len(ds)):
        for t in range(ds.frames):
            x0, y0, x1, y1 = ds.boxes[i, t, 0]
            wrapped += x0 < 0 or y0 < 0 or x1 > 20 or y1 > 20
            # Rolling the frame by the box corner brings the whole shape into view.
            frame = np.roll(ds.videos[i, t, :, :, 0] > 0, (-y0, -x0), axis=(0, 1))
            assert _tight_box(frame) == (0, 0, x1 - x0, y1 - y0)
    assert wrapped > 0


def test_shapes_have_their_colour_inside_the_box_and_black_outside():
    ds = MovingShapes(5, frames=4, size=24, motion="bounce")
    x0, y0, x1, y1 = ds.boxes[2, 1, 0]
    frame = ds.videos[2, 1].copy()
    assert frame[y0:y1, x0:x1].max() > 100
    frame[y0:y1, x0:x1] = 0
    assert frame.max() == 0


@pytest.mark.parametrize(
    "direction, axis, sign", [("left", 0, -1), ("right", 0, 1), ("up", 1, -1), ("down", 1, 1)]
)
def test_velocity_at_frame_zero_points_in_the_labelled_direction(direction, axis, sign):
    ds = MovingShapes(8, directions=(direction,), motion="bounce")
    assert np.all(np.sign(ds.velocities[:, 0, :, axis]) == sign)


def test_centres_move_by_the_velocity_between_events():
    ds = MovingShapes(30, frames=12, motion="bounce", n_shapes=2)
    step = ds.centers[:, 1:] - ds.centers[:, :-1]
    quiet = ds.events[:, 1:] == 0
    np.testing.assert_allclose(step[quiet], ds.velocities[:, :-1][quiet], atol=1e-4)


def test_bounces_reverse_the_motion():
    ds = MovingShapes(40, frames=16, motion="bounce", speed=(2.0, 3.0), drift=(0, 0))
    n, t = np.nonzero(ds.events == MovingShapes.EVENTS.index("bounce"))
    assert len(n) > 0
    v_before, v_after = ds.velocities[n, t - 1, 0], ds.velocities[n, t, 0]
    assert np.all((v_before * v_after).sum(-1) < 0)


def test_with_wrapping_one_frame_says_nothing_about_the_direction():
    # Where a shape is in any one frame has the same (uniform) distribution for every
    # direction: compare the mean position of left- and right-moving shapes per frame.
    ds = MovingShapes(800, frames=16, directions=("left", "right"), size=32, seed=3)
    x = ds.centers[:, :, 0, 0]
    left, right = x[ds.labels == 0], x[ds.labels == 1]
    assert np.all(np.abs(left.mean(0) - right.mean(0)) < 2.0)
    assert np.all(np.abs(x.mean(0) - 16) < 1.5)


def test_noise_changes_the_background():
    clean = MovingShapes(3, noise=0.0, seed=1).videos
    noisy = MovingShapes(3, noise=0.1, seed=1).videos
    assert (clean == 0).mean() > 0.5 and (noisy == 0).mean() < 0.5


def test_transform_is_applied_before_the_layout():
    ds = MovingShapes(2, frames=4, size=16, transform=lambda c: c[:, ::2, ::2])
    assert ds[0][0].shape == (4, 3, 8, 8)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"shapes": ("hexagon",)},
        {"directions": ("sideways",)},
        {"label": "colour"},
        {"motion": "teleport"},
        {"channels": 2},
        {"layout": "HWTC"},
        {"shape_size": (20, 30)},
    ],
)
def test_bad_arguments_are_refused(kwargs):
    with pytest.raises(ValueError):
        MovingShapes(4, size=16, **kwargs)


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    ds = MovingShapes(12, frames=8, size=24, seed=5)
    root = ds.to_folder(tmp_path_factory.mktemp("shapes") / "clips")
    return ds, root


def test_to_folder_writes_one_video_per_clip_in_class_folders(folder):
    ds, root = folder
    files = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.mp4"))
    assert len(files) == 12
    assert {f.split("/")[0] for f in files} == set(ds.classes)
    notes = json.loads((root / "annotations.json").read_text())
    first = notes["clips"][0]
    assert first["direction"] == ds.directions[ds.direction_labels[0]]
    assert np.array_equal(first["boxes"], ds.boxes[0])


def test_written_clips_decode_back_close_to_the_drawn_ones(folder):
    ds, root = folder
    notes = json.loads((root / "annotations.json").read_text())
    for i, clip in enumerate(notes["clips"][:4]):
        back = read_video(root / clip["file"])
        assert back.shape == ds.videos[i].shape
        assert np.abs(back.astype(int) - ds.videos[i]).mean() < 4


def test_video_folder_reads_the_written_clips_with_their_classes(folder):
    ds, root = folder
    vf = VideoFolder(root, clip_len=8, classes=ds.classes)
    assert vf.classes == ds.classes and len(vf) == 12
    targets = sorted(vf.targets)
    assert targets == sorted(ds.labels.tolist())
