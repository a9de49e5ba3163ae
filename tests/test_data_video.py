"""Reading and writing real video files through FFmpeg, and failing clearly on bad ones."""

import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

import minideep as md
from minideep.data import VideoReadError, iter_frames, read_video, video_info, write_video


def _pattern(t=12, h=24, w=20, channels=3):
    """A smooth moving gradient: compresses well, so a lossy round trip stays close."""
    y, x = np.mgrid[0:h, 0:w]
    frames = [
        np.stack([(x * 8 + 5 * i) % 256, (y * 8) % 256, np.full_like(x, 40 + 10 * i)], -1)
        for i in range(t)
    ]
    frames = np.array(frames, np.uint8)
    return frames[..., :1] if channels == 1 else frames


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    frames = _pattern(t=30)
    write_video(path, frames, fps=10)
    return path, frames


@pytest.mark.parametrize("ext", [".mp4", ".avi", ".mkv", ".webm", ".mov"])
@pytest.mark.parametrize("size", [(24, 20), (17, 33), (9, 7)])
def test_write_then_read_keeps_shape_and_pixels(tmp_path, ext, size):
    frames = _pattern(t=6, h=size[0], w=size[1])
    path = tmp_path / f"v{ext}"
    write_video(path, frames, fps=12)
    back = read_video(path)
    assert back.dtype == np.uint8
    assert back.shape == frames.shape
    assert np.abs(back.astype(int) - frames).mean() < 6


@pytest.mark.parametrize("shape", [(5, 15, 11), (5, 15, 11, 1)])
def test_grayscale_frames_round_trip(tmp_path, shape):
    frames = _pattern(t=5, h=15, w=11, channels=1).reshape(shape)
    path = tmp_path / "gray.mp4"
    write_video(path, frames)
    back = read_video(path, grayscale=True)
    assert back.shape == (5, 15, 11, 1)
    assert np.abs(back.astype(int) - frames.reshape(5, 15, 11, 1)).mean() < 3


def test_float_frames_in_unit_range_are_written_as_uint8(tmp_path):
    frames = _pattern(t=4).astype(np.float32) / 255
    write_video(tmp_path / "f.mp4", frames)
    back = read_video(tmp_path / "f.mp4")
    assert np.abs(back.astype(int) - np.rint(frames * 255)).mean() < 6


def test_write_accepts_an_iterable_of_frames(tmp_path):
    frames = _pattern(t=5)
    write_video(tmp_path / "gen.mp4", (f for f in frames))
    assert read_video(tmp_path / "gen.mp4").shape == frames.shape


def test_write_rejects_frames_of_different_shapes_and_leaves_no_file(tmp_path):
    frames = [np.zeros((8, 8, 3), np.uint8), np.zeros((8, 10, 3), np.uint8)]
    with pytest.raises(ValueError, match="frame 1 has shape"):
        write_video(tmp_path / "bad.mp4", frames)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("shape", [(4, 8, 8, 2), (8, 8)])
def test_write_rejects_bad_frame_shapes(tmp_path, shape):
    with pytest.raises(ValueError, match="shape"):
        write_video(tmp_path / "bad.mp4", np.zeros(shape, np.uint8))


def test_odd_size_with_420_chroma_is_refused_with_advice(tmp_path):
    with pytest.raises(ValueError, match="yuv444p"):
        write_video(tmp_path / "o.mp4", np.zeros((2, 9, 7, 3), np.uint8), pix_fmt="yuv420p")


def test_rgb_video_read_as_grayscale_has_one_channel(video):
    path, frames = video
    gray = read_video(path, grayscale=True)
    assert gray.shape == (*frames.shape[:3], 1)


@pytest.mark.parametrize(
    "start, stop, step", [(0, None, 1), (5, None, 1), (0, 10, 1), (3, 20, 4), (2, None, 7)]
)
def test_start_stop_step_select_the_same_frames_as_slicing(video, start, stop, step):
    path, _ = video
    full = read_video(path)
    part = read_video(path, start=start, stop=stop, step=step)
    np.testing.assert_array_equal(part, full[start:stop:step])


@pytest.mark.parametrize("start, stop", [(100, None), (5, 5), (40, 50)])
def test_empty_selection_gives_zero_frames_of_the_right_size(video, start, stop):
    path, frames = video
    assert read_video(path, start=start, stop=stop).shape == (0, *frames.shape[1:])


def test_negative_start_is_refused(video):
    with pytest.raises(ValueError, match="start"):
        read_video(video[0], start=-1)


@pytest.mark.parametrize("size, expected", [((12, 10), (12, 10)), (8, (8, 8)), ((31, 5), (31, 5))])
def test_size_resizes_every_frame(video, size, expected):
    out = read_video(video[0], size=size)
    assert out.shape == (30, *expected, 3)


def test_iter_frames_streams_the_same_frames(video):
    path, _ = video
    frames = list(iter_frames(path, start=1, step=2))
    np.testing.assert_array_equal(np.stack(frames), read_video(path)[1::2])


def test_iter_frames_can_stop_early(video):
    it = iter_frames(video[0])
    first = next(it)
    it.close()
    assert first.shape == (24, 20, 3)


def test_video_info_matches_the_decoded_frames(video):
    path, frames = video
    info = video_info(path)
    decoded = read_video(path)
    assert info["n_frames"] == len(decoded) == len(frames)
    assert (info["height"], info["width"]) == decoded.shape[1:3]
    assert info["fps"] == pytest.approx(10)
    assert info["duration"] == pytest.approx(len(frames) / 10, abs=0.05)
    assert info["codec"] == "h264"


# --- bad input -------------------------------------------------------------------


def _missing(tmp_path):
    return tmp_path / "missing.mp4"


def _empty(tmp_path):
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    return path


def _text_named_mp4(tmp_path):
    path = tmp_path / "notes.mp4"
    path.write_text("this is not a video\n" * 20)
    return path


def _text_named_mkv(tmp_path):
    path = tmp_path / "notes.mkv"
    path.write_text("this is not a video either\n" * 20)
    return path


def _directory(tmp_path):
    path = tmp_path / "folder.mp4"
    path.mkdir()
    return path


BAD = {
    "missing": (_missing, "no such file"),
    "empty": (_empty, "empty"),
    "text named .mp4": (_text_named_mp4, "not a readable MP4"),
    "text named .mkv": (_text_named_mkv, "not a video"),
    "directory": (_directory, "directory"),
}


@pytest.mark.parametrize("reader", [read_video, video_info, lambda p: list(iter_frames(p))])
@pytest.mark.parametrize("case", list(BAD))
def test_bad_files_raise_video_read_error_naming_path_and_cause(tmp_path, case, reader):
    make, cause = BAD[case]
    path = make(tmp_path)
    with pytest.raises(VideoReadError) as err:
        reader(path)
    assert str(path) in str(err.value)
    assert cause in str(err.value)
    assert err.value.path == str(path)
    assert "Stream #" not in str(err.value)  # a reason, not FFmpeg's log


def test_video_read_error_is_an_os_error_and_exported_at_top_level():
    assert issubclass(md.data.VideoReadError, OSError)


@pytest.fixture(scope="module")
def truncated(tmp_path_factory):
    """An MP4 (index at the front) cut in half: the header promises 60 frames."""
    folder = tmp_path_factory.mktemp("trunc")
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (60, 32, 32, 3), dtype=np.uint8)  # noise: big frames
    whole = folder / "whole.mp4"
    write_video(whole, frames, fps=20)
    data = whole.read_bytes()
    cut = folder / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    return cut


def test_truncated_mp4_says_how_many_frames_were_decoded(truncated):
    with pytest.raises(VideoReadError, match=r"truncated: decoded \d+ of 60 frames") as err:
        read_video(truncated)
    assert str(truncated) in str(err.value)


def test_truncated_mp4_fails_in_iter_frames_after_the_good_frames(truncated):
    seen = []
    with pytest.raises(VideoReadError, match="truncated"):
        for frame in iter_frames(truncated):
            seen.append(frame)
    assert 0 < len(seen) < 60


def test_video_info_reports_a_truncated_file(truncated):
    with pytest.raises(VideoReadError, match="truncated"):
        video_info(truncated)


def test_the_start_of_a_truncated_file_can_still_be_read(truncated):
    assert read_video(truncated, stop=5).shape == (5, 32, 32, 3)


def test_mp4_cut_before_its_index_is_reported(tmp_path):
    path = tmp_path / "head.mov"  # .mov: index written at the end
    write_video(path, _pattern(t=10), fps=10)
    cut = tmp_path / "cut.mov"
    cut.write_bytes(path.read_bytes()[:-200])
    with pytest.raises(VideoReadError, match="cut.mov"):
        read_video(cut)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_stalled_source_times_out_instead_of_hanging(tmp_path, video):
    fifo = tmp_path / "stuck.mkv"
    os.mkfifo(fifo)
    head = video[0].read_bytes()[:300]

    def feed():  # write the first bytes, then go quiet while holding the pipe open
        try:
            with open(fifo, "wb") as f:
                f.write(head)
                f.flush()
                time.sleep(2)
        except OSError:
            pass

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    with pytest.raises(VideoReadError, match="no progress"):
        read_video(fifo, timeout=0.5)
    writer.join()


def test_importing_minideep_data_does_not_import_imageio():
    code = "import sys, minideep.data; print(any('imageio' in m for m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_a_slow_consumer_of_iter_frames_is_not_mistaken_for_a_stall(video):
    frames = []
    for frame in iter_frames(video[0], stop=3, timeout=0.2):
        time.sleep(0.3)  # longer than the timeout, but FFmpeg is not the one waiting
        frames.append(frame)
    assert len(frames) == 3
