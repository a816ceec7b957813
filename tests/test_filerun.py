"""Host programs run through temporary files (filerun.py)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from patchwright.filerun import run_through_files, start_through_files


def test_input_output_errors_and_the_exit_code_all_come_through() -> None:
    big = os.urandom(3 << 20)  # larger than any pipe holds: nothing may block on the way
    done = run_through_files(["sh", "-c", "cat; echo oops >&2; exit 3"], input=big)
    assert done.returncode == 3
    assert done.stdout == big
    assert done.stderr == b"oops\n"


def test_output_can_go_to_a_descriptor_of_the_callers(tmp_path: Path) -> None:
    target = tmp_path / "out"
    with target.open("wb") as sink:
        done = run_through_files(
            ["sh", "-c", "pwd; cat"], input=b"listed\n", cwd=tmp_path, stdout=sink.fileno()
        )
    assert done.returncode == 0 and done.stdout == b""
    assert target.read_bytes() == f"{tmp_path}\nlisted\n".encode()


def test_a_program_past_its_timeout_is_killed() -> None:
    started = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired):
        run_through_files(["sleep", "30"], timeout=0.3)
    assert time.monotonic() - started < 10


def test_a_program_begun_runs_on_while_the_caller_works_and_is_read_once_finished() -> None:
    running = start_through_files(["sh", "-c", "cat; echo late >&2"], input=b"given\n")
    time.sleep(0.2)  # the caller's own work; the output waits in its file, nothing blocks
    done = running.finish()
    assert (done.returncode, done.stdout, done.stderr) == (0, b"given\n", b"late\n")


def test_a_program_begun_and_not_wanted_is_stopped_and_its_files_dropped() -> None:
    running = start_through_files(["sleep", "30"])
    started = time.monotonic()
    running.close()
    assert running.process.returncode is not None and time.monotonic() - started < 5
    assert running.out.closed and running.err.closed
    running.close()  # again: nothing left to do


def test_a_begun_program_past_its_timeout_is_killed() -> None:
    running = start_through_files(["sleep", "30"])
    with pytest.raises(subprocess.TimeoutExpired):
        running.finish(timeout=0.2)
    assert running.process.returncode == -9
