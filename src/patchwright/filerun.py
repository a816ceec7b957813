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
from dataclasses import dataclass
from pathlib import Path
from typing import IO


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
    return start_through_files(argv, input=input, cwd=cwd, env=env, stdout=stdout).finish(timeout)


def start_through_files(
    argv: list[str],
    *,
    input: bytes = b"",
    cwd: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    stdout: int | None = None,
) -> Running:
    """`run_through_files`, begun: the program runs on while this process does other things."""
    files = [tempfile.TemporaryFile() for _ in range(3)]  # noqa: SIM115 (`Running` closes them)
    given, out, err = files
    try:
        given.write(input)
        given.seek(0)
        process = subprocess.Popen(
            argv, stdin=given, stdout=out if stdout is None else stdout, stderr=err, cwd=cwd, env=env
        )
    except BaseException:
        for fh in files:
            fh.close()
        raise
    given.close()
    return Running(argv, process, out, err)


@dataclass
class Running:
    """A program started by `start_through_files`; `finish` waits for it and reads what it wrote."""

    argv: list[str]
    process: subprocess.Popen[bytes]
    out: IO[bytes]
    err: IO[bytes]

    def finish(self, timeout: float | None = None) -> subprocess.CompletedProcess[bytes]:
        try:
            try:
                code = self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
                raise
            self.out.seek(0)
            self.err.seek(0)
            return subprocess.CompletedProcess(self.argv, code, self.out.read(), self.err.read())
        finally:
            self.close()

    def close(self) -> None:
        """Stop the program if it still runs (a result not wanted after all) and drop its files."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.out.close()
        self.err.close()
