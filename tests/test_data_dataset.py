"""Datasets and the DataLoader: batch shapes, dtypes, seeded shuffles, VideoFolder."""

import numpy as np
import pytest

import minideep as md
from minideep.data import (
    DataLoader,
    MovingShapes,
    Subset,
    TensorDataset,
    VideoFolder,
    default_collate,
    random_split,
    write_video,
)
from minideep.data import dataset as dataset_module
from minideep.tensor import Tensor


def _order(loader):
    return np.concatenate([y.numpy() for _, y in loader])


@pytest.fixture
def numbers():
    x = np.arange(20, dtype=np.float32).reshape(10, 2)
    return TensorDataset(x, np.arange(10))


def test_tensor_dataset_rows(numbers):
    x, y = numbers[3]
    np.testing.assert_array_equal(x, [6, 7])
    assert y == 3 and len(numbers) == 10


def test_tensor_dataset_accepts_tensors_and_refuses_mismatched_lengths():
    ds = TensorDataset(md.tensor(np.ones((4, 2))), md.tensor(np.arange(4)))
    assert isinstance(ds[0][0], Tensor)
    with pytest.raises(ValueError, match="first dimensions"):
        TensorDataset(np.ones((4, 2)), np.ones(5))


@pytest.mark.parametrize(
    "n, batch_size, drop_last, sizes",
    [(10, 4, False, [4, 4, 2]), (10, 4, True, [4, 4]), (10, 5, False, [5, 5]), (3, 8, False, [3])],
)
def test_batches_have_the_expected_sizes(n, batch_size, drop_last, sizes):
    ds = TensorDataset(np.zeros((n, 3), np.float32), np.arange(n))
    loader = DataLoader(ds, batch_size=batch_size, drop_last=drop_last)
    batches = list(loader)
    assert [len(y) for _, y in batches] == sizes == [batch_size] * (len(sizes) - 1) + sizes[-1:]
    assert len(loader) == len(sizes)
    assert all(x.shape == (len(y), 3) for x, y in batches)


def test_batches_are_tensors_float32_inputs_and_int64_labels(numbers):
    x, y = next(iter(DataLoader(numbers, batch_size=4)))
    assert isinstance(x, Tensor) and isinstance(y, Tensor)
    assert x.dtype == np.float32 and y.dtype == np.int64
    assert x.device == "cpu"
    np.testing.assert_array_equal(y.numpy(), [0, 1, 2, 3])


def test_without_shuffle_the_order_is_the_dataset_order(numbers):
    np.testing.assert_array_equal(_order(DataLoader(numbers, batch_size=3)), np.arange(10))


def test_shuffle_visits_every_sample_once_per_epoch(numbers):
    order = _order(DataLoader(numbers, batch_size=3, shuffle=True))
    assert sorted(order.tolist()) == list(range(10))


def test_manual_seed_makes_shuffles_repeat(numbers):
    loader = DataLoader(numbers, batch_size=3, shuffle=True)
    md.manual_seed(123)
    first, second = _order(loader), _order(loader)
    md.manual_seed(123)
    again = _order(loader)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, second)  # a new order each epoch


def test_a_generator_of_its_own_overrides_the_library_seed(numbers):
    a = DataLoader(numbers, shuffle=True, generator=np.random.default_rng(5))
    b = DataLoader(numbers, shuffle=True, generator=np.random.default_rng(5))
    np.testing.assert_array_equal(_order(a), _order(b))


def test_default_collate_handles_dicts_tensors_numbers_and_strings():
    samples = [{"x": md.tensor(np.ones(2)), "y": i, "w": 0.5, "name": f"s{i}"} for i in range(3)]
    batch = default_collate(samples)
    assert batch["x"].shape == (3, 2) and batch["y"].dtype == np.int64
    assert batch["w"].dtype == np.float32 and batch["name"] == ["s0", "s1", "s2"]


def test_default_collate_refuses_samples_of_different_shapes():
    with pytest.raises(ValueError, match="different shapes"):
        default_collate([np.zeros(2), np.zeros(3)])


def test_subset_and_random_split(numbers):
    md.manual_seed(0)
    a, b = random_split(numbers, [7, 3])
    assert (len(a), len(b)) == (7, 3)
    assert sorted(a.indices + b.indices) == list(range(10))
    c, d = random_split(numbers, [0.8, 0.2])
    assert (len(c), len(d)) == (8, 2)
    assert Subset(numbers, [4, 1])[1][1] == 1
    with pytest.raises(ValueError, match="add up"):
        random_split(numbers, [5, 6])


def test_loader_over_moving_shapes_gives_video_batches():
    ds = MovingShapes(10, frames=6, size=16, layout="CTHW")
    x, y = next(iter(DataLoader(ds, batch_size=4, shuffle=True)))
    assert x.shape == (4, 3, 6, 16, 16) and x.dtype == np.float32
    assert y.shape == (4,) and y.dtype == np.int64


# --- VideoFolder -------------------------------------------------------------------


@pytest.fixture(scope="module")
def shapes_folder(tmp_path_factory):
    ds = MovingShapes(9, frames=10, size=20, seed=2)
    return ds, ds.to_folder(tmp_path_factory.mktemp("vf") / "root")


def test_video_folder_finds_classes_like_image_folder(shapes_folder):
    ds, root = shapes_folder
    vf = VideoFolder(root, clip_len=4)
    assert vf.classes == sorted(ds.classes)
    assert vf.class_to_idx == {c: i for i, c in enumerate(sorted(ds.classes))}
    assert len(vf) == 9
    for path, target in vf.samples:
        assert f"/{vf.classes[target]}/" in path.replace("\\", "/")


@pytest.mark.parametrize(
    "layout, clip_len, step, shape",
    [
        ("TCHW", 4, 1, (4, 3, 20, 20)),
        ("CTHW", 5, 2, (3, 5, 20, 20)),
        ("THWC", 10, 1, (10, 20, 20, 3)),
    ],
)
def test_video_folder_clips_have_the_requested_length_and_layout(
    shapes_folder, layout, clip_len, step, shape
):
    clip, target = VideoFolder(shapes_folder[1], clip_len, step=step, layout=layout)[0]
    assert clip.shape == shape and clip.dtype == np.float32
    assert isinstance(target, int)


def test_center_and_start_sampling_pick_the_expected_frames(shapes_folder):
    root = shapes_folder[1]
    full = VideoFolder(root, 10, layout="THWC")[0][0]
    start = VideoFolder(root, 4, sampling="start", layout="THWC")[0][0]
    center = VideoFolder(root, 4, sampling="center", layout="THWC")[0][0]
    np.testing.assert_array_equal(start, full[:4])
    np.testing.assert_array_equal(center, full[3:7])


def test_random_sampling_is_reproducible_with_manual_seed(shapes_folder):
    vf = VideoFolder(shapes_folder[1], 3, sampling="random")
    md.manual_seed(4)
    a = [vf[0][0] for _ in range(5)]
    md.manual_seed(4)
    b = [vf[0][0] for _ in range(5)]
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_short_videos_are_padded_with_their_last_frame(shapes_folder):
    vf = VideoFolder(shapes_folder[1], 12, layout="THWC")
    clip = vf[0][0]
    assert clip.shape[0] == 12
    np.testing.assert_array_equal(clip[10], clip[9])


def test_decoded_videos_are_cached_so_an_epoch_decodes_nothing(shapes_folder, monkeypatch):
    vf = VideoFolder(shapes_folder[1], 4)
    calls = []
    real = dataset_module.read_video
    monkeypatch.setattr(
        dataset_module, "read_video", lambda *a, **k: calls.append(a) or real(*a, **k)
    )
    for _ in DataLoader(vf, batch_size=4):
        pass
    assert len(calls) == len(vf)
    for _ in DataLoader(vf, batch_size=4, shuffle=True):
        pass
    assert len(calls) == len(vf)


def test_preload_fills_the_cache(shapes_folder, monkeypatch):
    vf = VideoFolder(shapes_folder[1], 4, cache=True)
    vf.preload(workers=2)
    monkeypatch.setattr(dataset_module, "read_video", None)  # any decode would now fail
    assert vf[5][0].shape == (4, 3, 20, 20)


def test_video_folder_options_size_grayscale_and_transform(shapes_folder):
    vf = VideoFolder(
        shapes_folder[1], 4, size=(10, 12), grayscale=True, transform=lambda c: c[:, :, ::-1]
    )
    assert vf[0][0].shape == (4, 1, 10, 12)


def test_video_folder_accepts_other_containers_and_skips_other_files(tmp_path):
    frames = np.zeros((3, 8, 8, 3), np.uint8)
    for name in ("a/x.avi", "a/y.MKV", "b/z.webm"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        write_video(tmp_path / name, frames)
    (tmp_path / "a" / "notes.txt").write_text("not a video")
    vf = VideoFolder(tmp_path, 2)
    assert vf.classes == ["a", "b"] and len(vf) == 3


def test_video_folder_errors_name_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a directory"):
        VideoFolder(tmp_path / "nope", 4)
    (tmp_path / "empty_class").mkdir()
    with pytest.raises(FileNotFoundError, match="no video files"):
        VideoFolder(tmp_path, 4)


@pytest.mark.gpu
@pytest.mark.skipif(not md.cuda.is_available(), reason="needs CUDA and CuPy")
def test_loader_puts_batches_on_the_gpu():
    ds = MovingShapes(6, frames=4, size=16)
    x, y = next(iter(DataLoader(ds, batch_size=3, device="cuda")))
    assert x.device == "cuda" and y.device == "cuda"
    assert x.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_allclose(x.numpy(), np.stack([ds[i][0] for i in range(3)]))


@pytest.mark.gpu
@pytest.mark.skipif(not md.cuda.is_available(), reason="needs CUDA and CuPy")
def test_collate_stacks_gpu_tensors_on_the_gpu():
    samples = [(md.tensor(np.ones(3), device="cuda"), i) for i in range(4)]
    x, y = default_collate(samples, device="cuda")
    assert x.shape == (4, 3) and x.device == "cuda" and y.device == "cuda"
