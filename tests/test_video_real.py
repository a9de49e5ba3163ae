"""Real-world video files made by the bundled FFmpeg: gaps, varying rates, rotation, damage.

Each file is made the way cameras, phones and tools make them: an AVI whose encoder
skipped repeated frames (null index slots), variable-rate MP4/MKV, a phone video with
rotation metadata, odd sizes, files cut short and files of random bytes.
"""

import subprocess

import numpy as np
import pytest

from minideep.data import VideoReadError, iter_frames, read_video, video_info, write_video
from minideep.data.video import _ffmpeg, _packets

GAP_FILTER = "mpdecimate,select='not(between(n,10,40))'"  # drops repeats, then 31 more


def _ffmpeg_make(out, *args):
    cmd = [_ffmpeg(), "-y", "-hide_banner", "-loglevel", "error", *map(str, args), str(out)]
    subprocess.run(cmd, check=True, capture_output=True)
    return out


def _testsrc(size="64x48", rate=15, seconds=4):
    return ["-f", "lavfi", "-i", f"testsrc=size={size}:rate={rate}", "-t", seconds]


def _timestamps(path):
    """Presentation times (s) of the stored frames, sorted, and where the last one ends."""
    cmd = [_ffmpeg(), "-v", "error", "-i", str(path), "-map", "0:v:0", "-c", "copy"]
    out = subprocess.run([*cmd, "-f", "framecrc", "-"], capture_output=True, text=True).stdout
    time_base, packets = _packets(out)
    times = np.array(sorted(t for t, _ in packets), float) * float(time_base)
    return times, float(max(t + d for t, d in packets) * time_base)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("real")
    # frame-to-frame steps from 27 to 107 ms, kept in ms by the filters and the encoder
    vfr = ["-vf", "settb=1/1000,setpts='(N/15+0.03*sin(N))/TB'", "-fps_mode", "vfr"]
    vfr += ["-enc_time_base", "1/1000", "-pix_fmt", "yuv420p"]
    made = {
        "gap.avi": _ffmpeg_make(
            d / "gap.avi", *_testsrc(), "-vf", GAP_FILTER, "-fps_mode", "passthrough",
            "-c:v", "mpeg4",
        ),
        "nogap.avi": _ffmpeg_make(d / "nogap.avi", *_testsrc(), "-c:v", "mpeg4"),
        "gap.mkv": _ffmpeg_make(
            d / "gap.mkv", *_testsrc(), "-vf", GAP_FILTER, "-fps_mode", "passthrough",
            "-pix_fmt", "yuv420p",
        ),
        "vfr.mp4": _ffmpeg_make(d / "vfr.mp4", *_testsrc(), *vfr),
        "vfr.mkv": _ffmpeg_make(d / "vfr.mkv", *_testsrc(), *vfr),
        "upright.mp4": _ffmpeg_make(d / "upright.mp4", *_testsrc(), "-pix_fmt", "yuv420p"),
        "odd.mkv": _ffmpeg_make(
            d / "odd.mkv", *_testsrc("63x47", 10, 2), "-c:v", "libx264", "-pix_fmt", "yuv444p"
        ),
        "odd.avi": _ffmpeg_make(d / "odd.avi", *_testsrc("63x47", 10, 2), "-c:v", "mpeg4"),
    }  # fmt: skip
    # A phone video: frames stored landscape, display rotated by 90 degrees.
    made["rotated.mp4"] = _ffmpeg_make(
        d / "rotated.mp4", "-display_rotation", 90, "-i", made["upright.mp4"], "-c", "copy"
    )
    return made


# --- every frame on the timeline -------------------------------------------------


def test_avi_with_null_frames_has_every_frame_of_its_timeline(files):
    frames = read_video(files["gap.avi"])
    info = video_info(files["gap.avi"])
    assert frames.shape == (60, 48, 64, 3)  # 4 s at 15 fps, though only 19 are stored
    assert info["n_frames"] == 60 and info["fps"] == 15
    assert len(_timestamps(files["gap.avi"])[0]) == 19


def test_null_frames_repeat_the_frame_before_and_the_others_are_in_place(files):
    gap = read_video(files["gap.avi"]).astype(int)
    whole = read_video(files["nogap.avi"]).astype(int)  # the same source, every frame
    stored = set(np.round(_timestamps(files["gap.avi"])[0] * 15).astype(int).tolist())
    last = None
    for k in range(60):
        if k in stored:  # the frame encoded for slot k: the source's frame k
            assert np.abs(gap[k] - whole[k]).mean() < 4, k
            last = k
        else:  # a null slot shows the last stored frame again
            np.testing.assert_array_equal(gap[k], gap[last])


def test_avi_with_null_frames_matches_imageio_up_to_where_a_gap_starts(files):
    iio = pytest.importorskip("imageio.v3")
    ours = read_video(files["gap.avi"]).astype(int)
    theirs = iio.imread(files["gap.avi"], plugin="FFMPEG", index=None).astype(int)
    assert theirs.shape == ours.shape
    # imageio lets FFmpeg's constant-rate output fill the gaps, which at the first slot of
    # a gap may already show the next stored frame; we repeat the previous one there.
    same = [np.abs(ours[k] - theirs[k]).mean() < 1 for k in range(60)]
    near = [min(np.abs(ours[k] - theirs[j]).mean() for j in (k - 1, k, k + 1) if 0 <= j < 60)
            < 1 for k in range(60)]  # fmt: skip
    assert all(near)
    assert sum(same) >= 48


@pytest.mark.parametrize("start, stop, step", [(5, 50, 3), (12, None, 4), (0, 20, 1), (58, 70, 1)])
def test_slicing_counts_timeline_frames(files, start, stop, step):
    full = read_video(files["gap.avi"])
    part = read_video(files["gap.avi"], start=start, stop=stop, step=step)
    np.testing.assert_array_equal(part, full[start:stop:step])
    streamed = list(iter_frames(files["gap.avi"], start=start, stop=stop, step=step))
    assert len(streamed) == len(part)


@pytest.mark.parametrize("name", ["vfr.mp4", "vfr.mkv", "gap.mkv"])
def test_varying_timestamps_give_the_frames_as_stored_and_are_not_truncated(files, name):
    times, end = _timestamps(files[name])
    frames = read_video(files[name])
    assert len(frames) == len(times) == video_info(files[name])["n_frames"]
    if name.startswith("vfr"):
        steps = np.diff(times)
        assert len(times) >= 60 and steps.min() < 0.045 and steps.max() > 0.09
    else:
        assert len(times) < 40  # the gaps are gaps: nothing is invented in an MKV
    assert end == pytest.approx(video_info(files[name])["duration"], abs=0.02)


@pytest.mark.parametrize("name", ["vfr.mp4", "vfr.mkv", "gap.avi"])
@pytest.mark.parametrize("rate", [6, 10, 24, 40])
def test_fps_resamples_to_the_frame_showing_at_each_tick(files, name, rate):
    full = read_video(files[name])
    times, end = _timestamps(files[name])
    if name.endswith(".avi"):
        times = np.arange(len(full)) / 15  # the timeline's slots
    resampled = read_video(files[name], fps=rate)
    assert len(resampled) == round(end * rate)
    ticks = np.floor(times * rate + 0.5)  # FFmpeg's fps filter: nearest tick, latest wins
    for k, frame in enumerate(resampled):
        j = int(np.nonzero(ticks <= k)[0].max())
        np.testing.assert_array_equal(frame, full[j])


def test_fps_on_a_constant_rate_file_drops_or_repeats_frames(tmp_path):
    frames = (np.arange(30)[:, None, None, None] * 8 + np.zeros((1, 16, 16, 3))).astype(np.uint8)
    path = tmp_path / "ten.mkv"
    write_video(path, frames, fps=10)
    full = read_video(path)
    np.testing.assert_array_equal(read_video(path, fps=5), full[::2])
    np.testing.assert_array_equal(read_video(path, fps=20), full[np.arange(60) // 2])
    part = read_video(path, fps=20, start=3, step=5)  # slicing counts resampled frames
    np.testing.assert_array_equal(part, full[np.arange(3, 60, 5) // 2])
    assert len(list(iter_frames(path, fps=2.5))) == 8


@pytest.mark.parametrize("fps", [0, -5, "10"])
def test_bad_fps_is_refused(files, fps):
    with pytest.raises(ValueError, match="fps"):
        read_video(files["gap.avi"], fps=fps)


# --- rotation, odd sizes -----------------------------------------------------------


def test_rotated_phone_video_comes_upright(files):
    upright = read_video(files["upright.mp4"])
    rotated = read_video(files["rotated.mp4"])
    assert upright.shape == (60, 48, 64, 3)
    assert rotated.shape == (60, 64, 48, 3)
    np.testing.assert_array_equal(rotated, np.rot90(upright, 1, axes=(1, 2)))
    info = video_info(files["rotated.mp4"])
    assert (info["height"], info["width"], info["rotation"]) == (64, 48, 90)
    assert read_video(files["rotated.mp4"], size=(32, 24), stop=2).shape == (2, 32, 24, 3)


@pytest.mark.parametrize("name", ["odd.mkv", "odd.avi"])
def test_odd_frame_sizes(files, name):
    frames = read_video(files[name])
    info = video_info(files[name])
    assert frames.shape == (20, 47, 63, 3)
    assert (info["n_frames"], info["height"], info["width"]) == (20, 47, 63)
    assert read_video(files[name], grayscale=True, step=3).shape == (7, 47, 63, 1)


@pytest.mark.parametrize(
    "name", ["gap.avi", "nogap.avi", "gap.mkv", "vfr.mp4", "vfr.mkv", "rotated.mp4", "odd.avi"]
)
def test_video_info_agrees_with_read_video(files, name):
    info = video_info(files[name])
    frames = read_video(files[name])
    assert info["n_frames"] == len(frames)
    assert (info["height"], info["width"]) == frames.shape[1:3]
    assert info["duration"] == pytest.approx(2 if "odd" in name else 4, abs=0.1)


# --- damaged files -----------------------------------------------------------------


@pytest.fixture(scope="module")
def damaged(tmp_path_factory):
    d = tmp_path_factory.mktemp("damaged")
    rng = np.random.default_rng(0)
    noise = rng.integers(0, 256, (60, 32, 32, 3), dtype=np.uint8)  # big frames: real bytes
    made = {}
    for ext in (".mp4", ".mkv", ".webm", ".avi"):
        whole = d / f"whole{ext}"
        write_video(whole, noise, fps=20)
        data = whole.read_bytes()
        made[f"cut{ext}"] = d / f"cut{ext}"
        made[f"cut{ext}"].write_bytes(data[: len(data) // 2])
        made[f"random{ext}"] = d / f"random{ext}"
        made[f"random{ext}"].write_bytes(rng.bytes(20_000))
        if ext == ".mp4":  # the middle overwritten: the index is fine, the data is not
            middle = bytearray(data)
            at = len(data) // 3
            middle[at : at + 3000] = rng.bytes(3000)
            made["middle.mp4"] = d / "middle.mp4"
            made["middle.mp4"].write_bytes(bytes(middle))
    return made


READERS = {
    "read_video": read_video,
    "iter_frames": lambda p: list(iter_frames(p)),
    "video_info": video_info,
}


@pytest.mark.parametrize("reader", list(READERS))
@pytest.mark.parametrize("ext", [".mp4", ".mkv", ".webm", ".avi"])
def test_a_truly_truncated_file_is_still_reported(damaged, reader, ext):
    path = damaged[f"cut{ext}"]
    with pytest.raises(VideoReadError, match="truncated") as err:
        READERS[reader](path)
    assert str(path) in str(err.value)
    if ext != ".avi":  # an AVI cut in half loses its index: FFmpeg's own words then
        verb = "found" if reader == "video_info" else "decoded"
        assert f"{verb} " in str(err.value) and " of 60 frames" in str(err.value)


@pytest.mark.parametrize("reader", list(READERS))
@pytest.mark.parametrize("ext", [".mp4", ".mkv", ".webm", ".avi"])
def test_random_bytes_are_not_a_video(damaged, reader, ext):
    path = damaged[f"random{ext}"]
    with pytest.raises(VideoReadError, match="not a") as err:
        READERS[reader](path)
    assert str(path) in str(err.value)


def test_frames_that_cannot_be_decoded_make_a_corrupt_file(damaged):
    path = damaged["middle.mp4"]
    with pytest.raises(VideoReadError, match="corrupt") as err:
        read_video(path)
    assert str(path) in str(err.value)
    assert read_video(path, stop=3).shape == (3, 32, 32, 3)  # the start is still readable
