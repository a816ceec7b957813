"""Host programs run through temporary files (filerun.py)."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from patchwright.filerun import run_through_files


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
