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
    for command in ("gradcheck",):
        assert command in out.stdout


@pytest.mark.parametrize("command", ["gradcheck"])
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
