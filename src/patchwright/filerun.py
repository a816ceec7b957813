"""Host programs whose input and output go through temporary files, not pipes.

Through pipes, this process wakes for every 4 KiB it writes and every 32 KiB it reads
(`subprocess`'s communicate loop), and takes the GIL again at each wake. Beside the SDK's
import, which keeps it up to 5 ms at a time, a 1 MB file list written to tar, or 2 MB of
records read from find, took a second or more that way. Through files the program reads and
writes at its own speed, and Python waits for it once.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path


def run_through_files(
    argv: list[str],
    *,
    input: bytes = b"",
    cwd: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    stdout: int | None = None,
    timeout: float | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run `argv` to its end with `input` on its stdin; its output and errors, captured (or its
    output written to the descriptor `stdout`). A timeout kills it and raises TimeoutExpired."""
    with (
        tempfile.TemporaryFile() as given,
        tempfile.TemporaryFile() as out,
        tempfile.TemporaryFile() as err,
    ):
        given.write(input)
        given.seek(0)
        done = subprocess.run(
            argv,
            stdin=given,
            stdout=out if stdout is None else stdout,
            stderr=err,
            cwd=cwd,
            env=env,
            timeout=timeout,
            check=False,
        )
        out.seek(0)
        err.seek(0)
        return subprocess.CompletedProcess(argv, done.returncode, out.read(), err.read())
