"""The ``minideep`` command line."""

import subprocess
import sys

import pytest

from minideep.cli import main


def run(*args):
    return subprocess.run(
        [sys.executable, "-m", "minideep", *args], capture_output=True, text=True, timeout=600
    )


def test_help_lists_the_commands():
    out = run("--help")
    assert out.returncode == 0
    for command in ("demo", "gradcheck", "bench"):
        assert command in out.stdout


@pytest.mark.parametrize("command", ["demo", "gradcheck", "bench"])
def test_every_command_has_help(command):
    out = run(command, "--help")
    assert out.returncode == 0 and "usage: minideep " + command in out.stdout


def test_gradcheck_passes_and_lists_every_case(capsys):
    from minideep.checks import all_cases

    assert main(["gradcheck"]) == 0
    printed = capsys.readouterr().out
    for case in all_cases():
        assert case.name in printed
    assert " 0 failed" in printed


def test_gradcheck_filter(capsys):
    assert main(["gradcheck", "--filter", "softmax"]) == 0
    printed = capsys.readouterr().out
    assert "log_softmax" in printed and "matmul" not in printed


def test_unknown_command_fails_with_a_message():
    out = run("frobnicate")
    assert out.returncode != 0 and "invalid choice" in out.stderr


def test_bad_option_fails_with_a_message():
    out = run("gradcheck", "--device", "tpu")
    assert out.returncode != 0 and "tpu" in out.stderr


def test_demo_runs_end_to_end_and_writes_its_plots(tmp_path):
    out = run("demo", "--fast", "--no-progress", "--out", str(tmp_path / "demo"), "--seed", "1")
    assert out.returncode == 0, out.stderr
    assert "held-out accuracy:" in out.stdout and "time taken:" in out.stdout
    for name in ("training_curves.png", "confusion_matrix.png", "test_clips.png"):
        path = tmp_path / "demo" / name
        assert path.stat().st_size > 1000 and str(path) in out.stdout
    videos = list((tmp_path / "demo" / "data" / "train").rglob("*.mp4"))
    assert videos, "the synthetic clips are written as real video files"


def test_demo_on_a_users_folder_of_videos(tmp_path):
    from minideep.data import MovingShapes

    MovingShapes(n_clips=16, frames=6, size=16, channels=1, seed=3).to_folder(tmp_path / "mine")
    out = run("demo", "--fast", "--no-progress", "--out", str(tmp_path / "o"),
              "--data", str(tmp_path / "mine"))  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "held-out accuracy:" in out.stdout


def test_demo_with_the_same_seed_gives_the_same_result(tmp_path):
    from minideep import demo
    from minideep.demo import FAST_SIZES

    runs = [
        demo.run(tmp_path / f"r{i}", seed=4, sizes=FAST_SIZES, progress=False, log=lambda m: None)
        for i in range(2)
    ]
    assert runs[0]["history"]["train_loss"] == runs[1]["history"]["train_loss"]
    assert runs[0]["accuracy"] == runs[1]["accuracy"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["demo", "--data", "/nonexistent/videos"], "not a readable directory"),
        (["demo", "--epochs", "0"], "--epochs must be at least 1"),
        (["demo", "--epochs", "many"], "invalid int value"),
        (["bench", "--what", "everything"], "invalid choice"),
    ],
)
def test_bad_arguments_give_a_one_line_error(args, message):
    out = run(*args)
    assert out.returncode != 0
    assert message in out.stderr and "Traceback" not in out.stderr


def test_demo_on_a_folder_without_videos_is_a_one_line_error(tmp_path):
    (tmp_path / "cats").mkdir()
    out = run("demo", "--no-progress", "--data", str(tmp_path))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "no video files" in out.stderr


def test_bench_prints_tables_and_writes_results(tmp_path):
    out = run("bench", "--quick", "--out", str(tmp_path), "--name", "quick")
    assert out.returncode == 0, out.stderr
    for word in ("matmul", "conv2d fwd+bwd", "max_pool2d", "lstm", "cnn", "tiny"):
        assert word in out.stdout
    assert (tmp_path / "quick.json").exists() and (tmp_path / "quick.md").exists()
