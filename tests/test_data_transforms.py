"""Clip transforms: the same spatial change in every frame, reproducible randomness."""

import numpy as np
import pytest

import minideep as md
from minideep.data import (
    CenterCrop,
    Compose,
    Normalize,
    RandomCrop,
    RandomHorizontalFlip,
    Resize,
    ToFloat,
    to_layout,
)


@pytest.fixture
def clip():
    return np.random.default_rng(0).integers(0, 256, (5, 12, 10, 3), dtype=np.uint8)


def test_to_float_scales_uint8_to_unit_range(clip):
    out = ToFloat()(clip)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, clip / 255.0, rtol=1e-6)


def test_normalize_per_channel(clip):
    out = Normalize((0.5, 0.4, 0.3), (0.1, 0.2, 0.5))(clip)
    expected = (clip / 255.0 - np.array([0.5, 0.4, 0.3])) / np.array([0.1, 0.2, 0.5])
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_normalize_refuses_a_channel_count_mismatch(clip):
    with pytest.raises(ValueError, match="3 channels"):
        Normalize((0.5, 0.5), (1, 1))(clip)


@pytest.mark.parametrize("p, flipped", [(1.0, True), (0.0, False)])
def test_horizontal_flip_mirrors_every_frame(clip, p, flipped):
    out = RandomHorizontalFlip(p)(clip)
    np.testing.assert_array_equal(out, clip[:, :, ::-1] if flipped else clip)


def test_random_crop_uses_one_window_for_all_frames():
    frame = np.arange(12 * 10).reshape(12, 10, 1)
    clip = np.stack([frame + 1000 * t for t in range(4)])
    out = RandomCrop((5, 6))(clip)
    assert out.shape == (4, 5, 6, 1)
    assert np.all(out - out[0] == np.arange(4)[:, None, None, None] * 1000)
    top, left = divmod(int(out[0, 0, 0, 0]), 10)
    np.testing.assert_array_equal(out[0], frame[top : top + 5, left : left + 6])


def test_random_crop_with_padding_keeps_the_size(clip):
    assert RandomCrop((12, 10), padding=2)(clip).shape == clip.shape


def test_crops_larger_than_the_frame_are_refused(clip):
    with pytest.raises(ValueError, match="larger"):
        RandomCrop(20)(clip)
    with pytest.raises(ValueError, match="larger"):
        CenterCrop(13)(clip)


def test_center_crop(clip):
    np.testing.assert_array_equal(CenterCrop((4, 6))(clip), clip[:, 4:8, 2:8])


def test_random_transforms_repeat_under_manual_seed(clip):
    t = Compose([RandomCrop(8), RandomHorizontalFlip()])
    md.manual_seed(9)
    a = [t(clip) for _ in range(4)]
    md.manual_seed(9)
    b = [t(clip) for _ in range(4)]
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_resize_halving_averages_2x2_blocks(clip):
    out = Resize((6, 5))(clip.astype(np.float32))
    blocks = clip.astype(np.float32).reshape(5, 6, 2, 5, 2, 3).mean(axis=(2, 4))
    np.testing.assert_allclose(out, blocks, rtol=1e-5)


@pytest.mark.parametrize("size", [(24, 20), (7, 3), 9])
def test_resize_keeps_constant_frames_constant_and_uint8(size):
    clip = np.full((2, 12, 10, 3), 77, np.uint8)
    out = Resize(size)(clip)
    h, w = (size, size) if isinstance(size, int) else size
    assert out.shape == (2, h, w, 3) and out.dtype == np.uint8
    assert np.all(out == 77)


@pytest.mark.parametrize(
    "layout, shape", [("TCHW", (5, 3, 12, 10)), ("CTHW", (3, 5, 12, 10)), ("THWC", (5, 12, 10, 3))]
)
def test_to_layout_makes_float_model_inputs(clip, layout, shape):
    out = to_layout(clip, layout)
    assert out.shape == shape and out.dtype == np.float32 and out.max() <= 1.0


def test_to_layout_refuses_unknown_layouts(clip):
    with pytest.raises(ValueError, match="layout"):
        to_layout(clip, "HWCT")
