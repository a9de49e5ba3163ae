"""Reading and writing video files with FFmpeg.

A video file is a container (mp4, avi, mkv, webm, ...) holding a compressed stream of
frames. Decoding it is FFmpeg's job: we run the ``ffmpeg`` program that ships inside
the ``imageio-ffmpeg`` wheel, ask it to write raw pixels (``rgb24``: 3 bytes per
pixel, or ``gray``: 1 byte) to a pipe, and cut that byte stream into frames::

    ffmpeg -i clip.mp4 -map 0:v:0 -f rawvideo -pix_fmt rgb24 -      ->  T * H * W * 3 bytes
    np.frombuffer(raw, np.uint8).reshape(T, H, W, 3)

Everything else here is about doing that safely:

* the frame size is read from FFmpeg's own log (the ``Output #0`` stream line), so
  resizing (``size=``) happens inside FFmpeg with its area filter;
* a file that is missing, empty, not a video or truncated raises
  :class:`VideoReadError` naming the path and the cause, never a bare FFmpeg log;
* a watchdog kills FFmpeg when it makes no progress for ``timeout`` seconds, so a
  stuck read (a pipe, a network mount) fails instead of hanging;
* a file whose frames stop well before the end its header promises is reported as
  truncated ("decoded N of M frames") instead of returning a short clip.

Which frames? Those on the file's timeline. An AVI file is a constant-rate container:
every slot of its index is one frame period, and an encoder that had nothing new to
show writes an empty ("null", "repeat the previous frame") chunk. FFmpeg's demuxer
skips those chunks, leaving gaps in the timestamps, but the frames are still on the
timeline - OpenCV counts them, and so does FFmpeg when it writes constant-rate output.
So for an AVI we read the frame rate from its header (``dwRate / dwScale``) and put
FFmpeg's ``fps`` filter at that rate first: each gap is filled by repeating the frame
before it. Other containers (MP4, MKV, WebM, ...) store a timestamp per frame and may
vary the rate; their frames come as stored, one per timestamp. ``fps=r`` instead
resamples any file to the constant rate ``r`` (the same ``fps`` filter). A rotated
(phone) video comes upright, as FFmpeg turns it by its rotation metadata.

Frames are ``uint8`` arrays laid out ``(T, H, W, C)`` (C = 3 for RGB, 1 for
grayscale), the layout of image files. Models want floats in ``(T, C, H, W)`` or
``(C, T, H, W)``: see :func:`minideep.data.transforms.to_layout`.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np

VIDEO_EXTENSIONS = (
    ".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".ogv", ".flv",
    ".wmv", ".3gp", ".gif",
)  # fmt: skip

# Seconds FFmpeg may go without producing anything (its header, a frame) before the
# read is abandoned. Decoding one frame takes milliseconds, so this is generous.
STALL_TIMEOUT = 10.0

# FFmpeg's words for input that ends before its index says it should.
_TRUNCATION_MESSAGES = ("partial file", "ended prematurely", "corrupt input packet", "truncat")
# FFmpeg's words for a packet the decoder could not turn into a frame.
_DECODE_FAILURES = ("Decoding error", "Error submitting packet to decoder")


class VideoReadError(OSError):
    """A video file could not be read: missing, empty, not a video, truncated or stuck.

    ``.path`` is the file, ``.cause`` the reason in words; ``str(error)`` says both.
    """

    def __init__(self, path, cause: str):
        super().__init__(f"cannot read video '{path}': {cause}")
        self.path = str(path)
        self.cause = cause

    def __str__(self) -> str:
        return self.args[0]


class VideoWriteError(OSError):
    """FFmpeg failed to encode a video; the message names the path and FFmpeg's reason."""

    def __init__(self, path, cause: str):
        super().__init__(f"cannot write video '{path}': {cause}")
        self.path = str(path)
        self.cause = cause

    def __str__(self) -> str:
        return self.args[0]


def _ffmpeg() -> str:
    """Path of the FFmpeg executable bundled with imageio-ffmpeg (or $IMAGEIO_FFMPEG_EXE).

    Without imageio-ffmpeg, an ``ffmpeg`` on the PATH is used.
    """
    try:
        import imageio_ffmpeg
    except ImportError:
        found = shutil.which("ffmpeg")
        if found is None:
            raise ModuleNotFoundError(
                "reading and writing video needs FFmpeg: pip install imageio-ffmpeg (it ships "
                "an ffmpeg binary), or put an ffmpeg executable on the PATH"
            ) from None
        return found
    return imageio_ffmpeg.get_ffmpeg_exe()


def _check_file(path) -> str:
    """Fail early, with a plain reason, on the cases FFmpeg reports confusingly."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise VideoReadError(path, "no such file")
    if os.path.isdir(path):
        raise VideoReadError(path, "it is a directory, not a file")
    if os.path.isfile(path) and os.path.getsize(path) == 0:
        raise VideoReadError(path, "the file is empty (0 bytes)")
    return path


# ---------------------------------------------------------------------------
# The timeline of an AVI file.


def _avi_frame_rate(path: str) -> Fraction | None:
    """The frame rate of the first video stream of an AVI file, or None for other files.

    An AVI stream header (``strh``) says how long one index slot lasts: ``dwScale /
    dwRate`` seconds. Every slot is a frame, null ("repeat") slots included, so this rate
    is the file's timeline. The headers come first in the file: 64 KiB is plenty.
    """
    if not os.path.isfile(path):  # a pipe or a device: reading it would consume it
        return None
    with open(path, "rb") as f:
        head = f.read(1 << 16)
    if head[:4] != b"RIFF" or head[8:12] != b"AVI ":
        return None
    at = head.find(b"strh")
    while at != -1:
        # 'strh', chunk size, then fccType, fccHandler, dwFlags, wPriority, wLanguage,
        # dwInitialFrames, dwScale, dwRate (little-endian 32-bit words).
        body = head[at + 8 : at + 8 + 28]
        if len(body) == 28 and body[:4] == b"vids":
            scale = int.from_bytes(body[20:24], "little")
            rate = int.from_bytes(body[24:28], "little")
            return Fraction(rate, scale) if rate > 0 and scale > 0 else None
        at = head.find(b"strh", at + 4)
    return None


# ---------------------------------------------------------------------------
# Understanding FFmpeg's log.

_DURATION = re.compile(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)")
_VIDEO_STREAM = re.compile(r"Stream #\d+:\d+.*?: Video: (\w+).*?, (\d+)x(\d+)")
_FPS = re.compile(r", (\d+(?:\.\d+)?)(k?) (fps|tbr)")
_ROTATION = re.compile(r"rotation of (-?\d+(?:\.\d+)?) degrees", re.IGNORECASE)
_FRAME_COUNT = re.compile(r"frame=\s*(\d+)")
_END_TIME = re.compile(r"frame=.*? time=(\d+):(\d+):(\d+(?:\.\d+)?)")


def _parse_header(lines: list[str]) -> dict:
    """Fps, duration, codec, sizes and rotation from FFmpeg's log lines (``None`` if absent).

    ``width``/``height`` describe the input stream as displayed (a stream rotated by
    +-90 degrees swaps them, as FFmpeg's autorotation does), ``out_width``/``out_height``
    the frames FFmpeg writes to us (after rotation and scaling).
    """
    info = {"fps": None, "duration": None, "codec": None, "width": None, "height": None}
    info.update(out_width=None, out_height=None, rotation=0.0)
    section = None
    in_first_video = False  # the lines under the first input video stream (its side data)
    for line in lines:
        if line.startswith("Input #"):
            section = "input"
        elif line.startswith("Output #"):
            section, in_first_video = "output", False
        elif section == "input" and (m := _DURATION.search(line)):
            h, mnt, s = m.groups()
            info["duration"] = int(h) * 3600 + int(mnt) * 60 + float(s)
        elif (m := _VIDEO_STREAM.search(line)) and section is not None:
            codec, width, height = m.group(1), int(m.group(2)), int(m.group(3))
            if section == "input" and info["codec"] is None:
                info.update(codec=codec, width=width, height=height)
                rates = {unit: float(v) * (1000 if k else 1) for v, k, unit in _FPS.findall(line)}
                info["fps"] = rates.get("fps", rates.get("tbr"))
                in_first_video = True
                continue
            elif section == "output" and info["out_width"] is None:
                info.update(out_width=width, out_height=height)
        if "Stream #" in line:
            in_first_video = False
        elif in_first_video and (m := _ROTATION.search(line)):
            info["rotation"] = float(m.group(1))
    if info["width"] is not None and round(info["rotation"]) % 180 == 90:
        info["width"], info["height"] = info["height"], info["width"]
    return info


def _end_time(lines: list[str]) -> float | None:
    """Where the frames FFmpeg wrote end, in seconds: the ``time=`` of its last report."""
    for line in reversed(lines):
        if m := _END_TIME.search(line):
            h, mnt, s = m.groups()
            return int(h) * 3600 + int(mnt) * 60 + float(s)
    return None


def _error_cause(lines: list[str]) -> str:
    """One sentence saying why FFmpeg gave up, from its log."""
    text = "\n".join(lines)
    if "moov atom not found" in text:
        return (
            "not a readable MP4: its index ('moov' atom) is missing; the file is truncated "
            "or not a video"
        )
    if "matches no streams" in text or "does not contain any stream" in text:
        return "the file contains no video stream"
    for line in lines:
        if "Error opening input:" in line:
            reason = line.split("Error opening input:", 1)[1].strip()
            if reason.startswith("Invalid data"):
                return f"not a video FFmpeg can decode ({reason})"
            return reason
    errors = [ln.strip() for ln in lines if "rror" in ln or "nvalid" in ln]
    return (errors or [ln.strip() for ln in lines if ln.strip()] or ["FFmpeg failed silently"])[-1]


def _promised_frames(info: dict, rate=None) -> int | None:
    """About how many frames the header promises: duration * fps (None if unknown)."""
    rate = rate or info["fps"]
    if info["duration"] and rate:
        return round(info["duration"] * float(rate))
    return None


def _check_complete(
    path, lines, n, end, info, start=0, stop=None, step=1, rate=None, verb="decoded"
):
    """Raise :class:`VideoReadError` if the frames ended early (a truncated file).

    Two tests. The frames read (``n`` of them, of ``range(start, stop, step)``) end at
    ``end`` seconds (None: unknown), well before the duration in the header - a test on
    time, not on counts, so frames that are missing on purpose (gaps, a varying rate) are
    no reason. Or FFmpeg said the input ended before its index did. ``rate``: the frame
    rate of the frames read (default: the header's).
    """
    rate = float(rate or info["fps"] or 0)
    duration = info["duration"]
    if n > 0 and end is not None and duration and rate:
        # the last frame taken may lie up to `step` frames before the last one there is
        slack = max((step + 2) / rate, 0.05 * duration)
        if duration - end > slack:
            promised = _promised_frames(info, rate)
            expected = len(range(start, promised if stop is None else min(stop, promised), step))
            detail = "" if (start, stop, step) == (0, None, 1) else " requested"
            raise VideoReadError(
                path,
                f"the file is truncated: {verb} {n} of {expected}{detail} frames (they end "
                f"at {end:.2f} s, the header promises {duration:g} s at {rate:g} fps)",
            )
    text = "\n".join(lines).lower()
    found = [m for m in _TRUNCATION_MESSAGES if m in text]
    if found:
        raise VideoReadError(
            path,
            f"the file is truncated or corrupt: {verb} {n} frames before FFmpeg "
            f"reported '{found[0]}'",
        )


def _check_decoded(path, lines, n) -> None:
    """Raise :class:`VideoReadError` if FFmpeg lost frames it could not decode.

    A damaged frame that the decoder repairs (it "conceals" the errors) still comes out,
    so it is kept; a packet that gives no frame at all means a corrupt file: the frames
    would no longer match the file's timeline (nor ``video_info``'s count).
    """
    failed = [ln for ln in lines if any(m in ln for m in _DECODE_FAILURES)]
    if failed:
        reason = failed[0].rsplit(":", 1)[1].strip()
        raise VideoReadError(
            path,
            f"the file is corrupt: FFmpeg could not decode part of it ({reason}); {n} "
            "frames were decoded",
        )


# ---------------------------------------------------------------------------
# One FFmpeg process decoding to a pipe.


class _Decoder:
    """Runs ``ffmpeg ... -f rawvideo -`` and hands out its frames as arrays.

    Two helper threads: one reads FFmpeg's log (stderr) so its pipe never fills up, the
    other is a watchdog that kills FFmpeg if ``timeout`` seconds pass without progress.
    """

    def __init__(self, path: str, cmd: list[str], channels: int, timeout: float):
        self.path, self.channels, self.timeout = path, channels, timeout
        self.lines: list[str] = []
        self.stalled = False
        self._header = threading.Event()
        self._done = threading.Event()
        # When we started waiting on FFmpeg (None while the caller has the frames): time
        # spent by a slow consumer of iter_frames must not count as FFmpeg stalling.
        self._waiting_since: float | None = time.monotonic()
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        self._log_thread = threading.Thread(target=self._read_log, daemon=True)
        self._watchdog = threading.Thread(target=self._watch, daemon=True)
        self._log_thread.start()
        self._watchdog.start()

    def _read_log(self) -> None:
        in_output = False
        for raw in iter(self.proc.stderr.readline, b""):
            line = raw.decode("utf-8", errors="replace").rstrip()
            self.lines.append(line)
            in_output = in_output or line.startswith("Output #")
            if in_output and " Video: " in line:
                self._header.set()
        self._header.set()

    def _watch(self) -> None:
        while not self._done.wait(0.05):
            since = self._waiting_since
            if since is not None and time.monotonic() - since > self.timeout:
                self.stalled = True
                self.proc.kill()
                return

    def _fail_if_stalled(self) -> None:
        if self.stalled:
            raise VideoReadError(
                self.path, f"FFmpeg made no progress for {self.timeout:g} s and was stopped"
            )

    def start(self) -> dict:
        """Wait for FFmpeg's header and return :func:`_parse_header` of it."""
        self._header.wait()
        self._waiting_since = None
        self._fail_if_stalled()
        info = _parse_header(self.lines)
        if info["out_width"] is None:
            self._waiting_since = time.monotonic()
            self.proc.wait()
            self._log_thread.join()
            self._fail_if_stalled()
            raise VideoReadError(self.path, _error_cause(self.lines))
        self.frame_shape = (info["out_height"], info["out_width"], self.channels)
        return info

    def blocks(self, expected: int | None = None, whole: bool = False, max_bytes: int = 1 << 22):
        """Yield ``(k, H, W, C)`` uint8 arrays of consecutive frames until FFmpeg ends.

        FFmpeg's bytes are read straight into fresh arrays (``readinto``): no copies, and
        the arrays are writable. ``expected`` frames (if known) sizes the first block;
        with ``whole``, the first block holds all ``expected`` frames (read_video: one
        array, nothing to concatenate), still read ``max_bytes`` at a time so that the
        watchdog sees progress.
        """
        frame_bytes = math.prod(self.frame_shape)
        per_block = max(1, max_bytes // frame_bytes)
        if expected is None:
            size = per_block
        else:
            size = max(1, expected if whole else min(per_block, expected))
        while True:
            block = np.empty((size, *self.frame_shape), np.uint8)
            buffer = memoryview(block).cast("B")
            got = 0
            while got < len(buffer):
                self._waiting_since = time.monotonic()
                chunk = self.proc.stdout.readinto(buffer[got : got + per_block * frame_bytes])
                self._waiting_since = None
                self._fail_if_stalled()
                if not chunk:
                    break
                got += chunk
            n = got // frame_bytes
            if n == size:
                yield block
                size = per_block
                continue
            if n:
                yield block[:n].copy()  # the last, partly filled block: keep only its frames
            return

    def finish(self) -> int:
        """Wait for FFmpeg to exit and return its exit code."""
        self._waiting_since = time.monotonic()
        code = self.proc.wait()
        self._log_thread.join()
        self._fail_if_stalled()
        return code

    def close(self) -> None:
        self._done.set()
        if self.proc.poll() is None:  # abandoned early (stop reached, consumer gave up)
            self.proc.kill()
        self.proc.wait()
        self._log_thread.join()
        self.proc.stdout.close()
        self.proc.stderr.close()


def _decode_command(path: str, size, grayscale: bool, start, stop, step, rate) -> list[str]:
    """The FFmpeg command line; ``rate``: resample to this constant rate first (or None)."""
    cmd = [_ffmpeg(), "-hide_banner", "-nostdin", "-nostats", "-i", path, "-map", "0:v:0"]
    filters = []
    if rate is not None:
        # Constant rate: one frame per 1/rate s, each the frame showing at that time
        # (a gap repeats the frame before it). FFmpeg's autorotation runs before this.
        filters.append(f"fps={rate.numerator}/{rate.denominator}")
    if (start, step) != (0, 1) or stop is not None:
        # Frame numbers n count the frames so far from 0; keep start <= n < stop, every step-th.
        keep = f"gte(n,{start})*not(mod(n-{start},{step}))"
        if stop is not None:
            keep += f"*lt(n,{stop})"
        filters.append(f"select='{keep}'")
    if size is not None:
        filters.append(f"scale={size[1]}:{size[0]}:flags=area")
    if filters:
        cmd += ["-vf", ",".join(filters)]
    if stop is not None:  # lets FFmpeg stop decoding at `stop` instead of at the end
        cmd += ["-frames:v", str(len(range(start, stop, step)))]
    # passthrough: one output frame per frame out of the filters, none duplicated or dropped
    cmd += ["-fps_mode", "passthrough", "-an", "-sn", "-dn"]
    cmd += ["-f", "rawvideo", "-pix_fmt", "gray" if grayscale else "rgb24", "-"]
    return cmd


def _check_args(size, start, stop, step, fps=None):
    if size is not None:
        size = (size, size) if isinstance(size, int) else tuple(int(s) for s in size)
        if len(size) != 2 or min(size) < 1:
            raise ValueError(f"size must be an int or a (height, width) pair >= 1, got {size}")
    if start < 0 or (stop is not None and stop < 0) or step < 1:
        raise ValueError(
            f"need start >= 0, stop >= 0 (or None) and step >= 1, got start={start}, "
            f"stop={stop}, step={step}"
        )
    if fps is not None and not (isinstance(fps, int | float | Fraction) and fps > 0):
        raise ValueError(f"fps must be a positive number (frames per second) or None, got {fps!r}")
    return size


def _frame_rate(path: str, fps) -> Fraction | None:
    """The constant rate the frames are resampled to: ``fps``, an AVI's own, or None."""
    if fps is not None:
        return Fraction(fps).limit_denominator(1_000_000)
    return _avi_frame_rate(path)


def _decode(
    path, size, grayscale, start, stop, step, fps, timeout, whole=False
) -> Iterator[np.ndarray]:
    """Yield blocks of frames of ``path``; raise :class:`VideoReadError` on bad input.

    ``whole``: the first block is as long as the header promises (for read_video).
    """
    path = _check_file(path)
    size = _check_args(size, start, stop, step, fps)
    if stop is not None and stop <= start:
        return
    rate = _frame_rate(path, fps)
    cmd = _decode_command(path, size, grayscale, start, stop, step, rate)
    decoder = _Decoder(path, cmd, 1 if grayscale else 3, timeout)
    try:
        info = decoder.start()
        promised = _promised_frames(info, rate)
        expected = None if promised is None else len(range(start, promised, step))
        if stop is not None:
            expected = min(expected or stop, len(range(start, stop, step)))
        n = 0
        for block in decoder.blocks(expected, whole):
            n += len(block)
            yield block
        code = decoder.finish()
        if code != 0 and n == 0:
            raise VideoReadError(path, _error_cause(decoder.lines))
        wanted = None if stop is None else len(range(start, stop, step))
        if wanted is None or n < wanted:  # reached the end of the file: was it all there?
            end = _end_time(decoder.lines)
            _check_complete(path, decoder.lines, n, end, info, start, stop, step, rate)
            _check_decoded(path, decoder.lines, n)
    finally:
        decoder.close()


def iter_frames(
    path: str | os.PathLike,
    size: int | tuple[int, int] | None = None,
    grayscale: bool = False,
    start: int = 0,
    stop: int | None = None,
    step: int = 1,
    fps: float | None = None,
    timeout: float = STALL_TIMEOUT,
) -> Iterator[np.ndarray]:
    """Yield the frames of a video one at a time, each ``uint8 (H, W, C)``.

    Memory stays that of a few frames however long the video is. Arguments are those
    of :func:`read_video`. A truncated file raises :class:`VideoReadError` after the
    frames that could be decoded have been yielded.
    """
    for block in _decode(path, size, grayscale, start, stop, step, fps, timeout):
        yield from block


def read_video(
    path: str | os.PathLike,
    size: int | tuple[int, int] | None = None,
    grayscale: bool = False,
    start: int = 0,
    stop: int | None = None,
    step: int = 1,
    fps: float | None = None,
    timeout: float = STALL_TIMEOUT,
) -> np.ndarray:
    """Decode a video file into a ``uint8`` array ``(T, H, W, C)``.

    Args:
        path: any file FFmpeg reads (mp4, avi, mkv, webm, mov, gif, ...).
        size: ``(H, W)`` (or one int for a square) to resize every frame to, with
            FFmpeg's area filter; ``None`` keeps the stored size. A rotated (phone)
            video is turned upright first, so ``(H, W)`` is the upright size.
        grayscale: one channel (luma) instead of RGB: ``C = 1``.
        start, stop, step: which frames, as in ``frames[start:stop:step]``
            (non-negative; ``stop=None`` reads to the end), counted after ``fps``.
        fps: ``None``: every frame on the file's timeline - for an AVI (a
            constant-rate container) one frame per slot, the null "repeat" slots
            included, as OpenCV and FFmpeg count them; for other containers the frames
            as stored, whatever their timestamps. A number ``r``: the frames resampled
            to the constant rate ``r`` (FFmpeg's ``fps`` filter: at each time k / r the
            frame showing then; frames are repeated or dropped as needed).
        timeout: seconds FFmpeg may go without progress before the read is abandoned.

    Returns:
        ``(T, H, W, C)`` uint8, ``C`` = 1 if ``grayscale`` else 3; without ``fps`` and
        the slicing, ``T == video_info(path)["n_frames"]``. ``T`` may be 0 when
        ``start`` is past the end.

    Raises:
        VideoReadError: missing, empty, non-video or truncated file, or a stuck FFmpeg.
    """
    blocks = list(_decode(path, size, grayscale, start, stop, step, fps, timeout, whole=True))
    if blocks:
        return np.concatenate(blocks) if len(blocks) > 1 else blocks[0]
    size = _check_args(size, start, stop, step, fps)
    if size is None:
        info = video_info(path, timeout=timeout)
        size = (info["height"], info["width"])
    return np.zeros((0, *size, 1 if grayscale else 3), np.uint8)


_NOPTS = -(2**63)  # FFmpeg's AV_NOPTS_VALUE: a packet without a timestamp


def _packets(text: str) -> tuple[Fraction | None, list[tuple[int, int]]]:
    """The time base and ``(timestamp, duration)`` of each packet from FFmpeg's framecrc.

    framecrc writes ``#tb 0: 1/15`` then one line per packet:
    ``stream, dts, pts, duration, size, checksum``. A packet without a presentation
    timestamp counts at its decoding timestamp.
    """
    time_base, packets = None, []
    for line in text.splitlines():
        if line.startswith("#tb 0:"):
            time_base = Fraction(line.split(":", 1)[1].strip())
        elif line and not line.startswith("#"):
            fields = line.split(",")
            if len(fields) >= 5 and fields[0].strip() == "0":
                dts, pts, duration = (int(f) for f in fields[1:4])
                packets.append((dts if pts == _NOPTS else pts, duration))
    return time_base, packets


def video_info(path: str | os.PathLike, timeout: float = 60.0) -> dict:
    """Describe a video: ``fps``, ``n_frames``, ``height``, ``width``, ``duration``, ...

    Nothing is decoded: FFmpeg copies the container's packets (one per stored frame)
    and lists their timestamps, so this is fast even for long files. ``n_frames`` counts
    the frames :func:`read_video` gives without ``fps``, by the same rule: for an AVI the
    slots of its timeline from its first frame to the end of its last (null "repeat"
    slots included), for other containers the stored frames. ``fps`` is an AVI's
    timeline rate, else the header's (average) rate; ``duration`` (in seconds) comes from
    the header, or ``n_frames / fps`` when the header has none. ``height``/``width`` are
    those of the frames read: rotated as FFmpeg rotates them (``rotation``, in degrees,
    is the file's rotation metadata). ``codec`` is FFmpeg's name of the stream's codec.

    Raises:
        VideoReadError: missing, empty, non-video or truncated file; more than
            ``timeout`` seconds.
    """
    path = _check_file(path)
    cmd = [_ffmpeg(), "-hide_banner", "-nostdin", "-i", path, "-map", "0:v:0"]
    cmd += ["-c", "copy", "-f", "framecrc", "-"]
    try:
        result = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise VideoReadError(path, f"FFmpeg did not finish within {timeout:g} s") from None
    lines = result.stderr.decode("utf-8", errors="replace").replace("\r", "\n").splitlines()
    info = _parse_header(lines)
    time_base, packets = _packets(result.stdout.decode("ascii", errors="replace"))
    if result.returncode != 0 or info["width"] is None or time_base is None:
        raise VideoReadError(path, _error_cause(lines))
    rate = _avi_frame_rate(path)
    end = None
    n_frames = len(packets)
    if packets:
        first = min(t for t, _ in packets) * time_base
        end = max(t + d for t, d in packets) * time_base - first  # seconds, as FFmpeg's time=
        if rate is not None:  # the fps filter's count: slots from the first to the end
            n_frames = round((first + end) * rate) - round(first * rate)
    end = None if end is None else float(end)
    _check_complete(path, lines, n_frames, end, info, rate=rate, verb="found")
    fps = float(rate) if rate is not None else info["fps"] or 0.0
    duration = info["duration"] or (n_frames / fps if fps else 0.0)
    return {
        "path": path,
        "fps": fps,
        "n_frames": n_frames,
        "height": info["height"],
        "width": info["width"],
        "duration": duration,
        "codec": info["codec"],
        "rotation": info["rotation"],
    }


# ---------------------------------------------------------------------------
# Writing.

# Per container: codec, pixel format and quality flags. yuv444p keeps full colour
# resolution (tiny synthetic frames smear with 4:2:0) and encodes any size, odd included.
_ENCODERS = {
    ".mp4": (
        "libx264",
        "yuv444p",
        ["-crf", "{crf}", "-preset", "medium", "-movflags", "+faststart"],
    ),
    ".m4v": ("libx264", "yuv444p", ["-crf", "{crf}", "-movflags", "+faststart"]),
    ".mov": ("libx264", "yuv444p", ["-crf", "{crf}"]),
    ".mkv": ("libx264", "yuv444p", ["-crf", "{crf}"]),
    ".avi": ("mpeg4", "yuv420p", ["-q:v", "2"]),
    ".webm": ("libvpx-vp9", "yuv444p", ["-crf", "{crf}", "-b:v", "0"]),
    ".gif": ("gif", "rgb8", []),
}


def _as_frame_array(frame) -> np.ndarray:
    """One frame as uint8 ``(H, W, C)``; floats are taken to be in [0, 1]."""
    if hasattr(frame, "numpy") and not isinstance(frame, np.ndarray):  # a Tensor
        frame = frame.numpy()
    frame = np.asarray(frame)
    if frame.ndim == 2:
        frame = frame[:, :, None]
    if frame.ndim != 3 or frame.shape[2] not in (1, 3):
        raise ValueError(f"a frame must be (H, W), (H, W, 1) or (H, W, 3), got shape {frame.shape}")
    if frame.dtype.kind == "f":
        frame = np.round(np.clip(frame, 0.0, 1.0) * 255.0)
    elif frame.dtype != np.uint8:
        frame = np.clip(frame, 0, 255)
    return np.ascontiguousarray(frame, dtype=np.uint8)


def write_video(
    path: str | os.PathLike,
    frames: np.ndarray | Iterable,
    fps: float = 25.0,
    codec: str | None = None,
    pix_fmt: str | None = None,
    crf: int = 17,
    timeout: float = 60.0,
) -> None:
    """Encode frames into a video file; any frame size, odd sizes included.

    Args:
        path: output file; the extension picks the container and the default codec:
            ``.mp4``/``.mkv``/``.mov`` H.264 (libx264, ``yuv444p``), ``.avi`` MPEG-4
            part 2, ``.webm`` VP9, ``.gif``.
        frames: ``(T, H, W, C)`` with ``C`` in {1, 3}, or ``(T, H, W)`` grayscale, or any
            iterable of ``(H, W[, C])`` frames (written as they come, never all held).
            ``uint8`` as is; floats are taken to be in [0, 1].
        fps: frames per second stored in the file.
        codec, pix_fmt: override the FFmpeg encoder and its pixel format. ``yuv420p``
            plays everywhere but needs even sizes; ``yuv444p`` keeps colours sharp.
        crf: quality of H.264/VP9 (0 best ... 51 worst; 17 looks lossless).
        timeout: seconds FFmpeg may take to finish after the last frame.

    The file appears only once complete: FFmpeg writes a temporary file that is renamed.

    Raises:
        ValueError: bad frame shapes, no frames, or odd sizes with a 4:2:0 pix_fmt.
        VideoWriteError: FFmpeg failed (its reason is in the message).
    """
    path = Path(path)
    frames_iter = iter(frames)
    try:
        first = _as_frame_array(next(frames_iter))
    except StopIteration:
        raise ValueError(f"write_video('{path}'): no frames to write") from None
    height, width, channels = first.shape
    default_codec, default_pix_fmt, params = _ENCODERS.get(path.suffix.lower(), (None, None, []))
    codec = codec or default_codec
    pix_fmt = pix_fmt or default_pix_fmt
    if codec == "libx264" and "420" in str(pix_fmt) and (height % 2 or width % 2):
        raise ValueError(
            f"libx264 with pix_fmt {pix_fmt} halves the chroma resolution and needs even "
            f"sizes, got {height}x{width}; use pix_fmt='yuv444p' (the default)"
        )
    if codec != default_codec:
        params = []
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.partial{path.suffix}")
    in_fmt = "gray" if channels == 1 else "rgb24"
    cmd = [_ffmpeg(), "-y", "-hide_banner", "-nostdin", "-loglevel", "error"]
    cmd += ["-f", "rawvideo", "-pix_fmt", in_fmt, "-s", f"{width}x{height}", "-r", f"{fps}"]
    cmd += ["-i", "-", "-an"]
    cmd += (["-c:v", codec] if codec else []) + (["-pix_fmt", pix_fmt] if pix_fmt else [])
    cmd += [p.format(crf=crf) for p in params] + [str(tmp)]
    with tempfile.TemporaryFile() as log:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=log)
        try:
            n = 0
            for frame in _chain(first, frames_iter):
                frame = _as_frame_array(frame)
                if frame.shape != first.shape:
                    raise ValueError(
                        f"write_video('{path}'): frame {n} has shape {frame.shape}, "
                        f"frame 0 has {first.shape}; all frames must have the same shape"
                    )
                proc.stdin.write(frame.tobytes())
                n += 1
            proc.stdin.close()
            code = proc.wait(timeout=timeout)
        except BrokenPipeError:  # FFmpeg quit early; its log says why
            code = proc.wait(timeout=timeout)
        except BaseException:
            proc.kill()
            proc.wait()
            tmp.unlink(missing_ok=True)
            raise
        log.seek(0)
        message = log.read().decode("utf-8", errors="replace").strip()
    if code != 0:
        tmp.unlink(missing_ok=True)
        lines = message.splitlines() or [f"FFmpeg exited with code {code}"]
        raise VideoWriteError(path, lines[-1])
    os.replace(tmp, path)


def _chain(first, rest):
    yield first
    yield from rest
