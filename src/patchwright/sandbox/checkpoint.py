"""The state right after setup, saved once, so verification starts from it: no second setup, no network.

What setup makes lives in the workspace (node_modules, a venv) and the sandbox user's home
(`pip install --user`), both tmpfs, so a container commit would not hold it; each is saved as
a tar file on the host instead, streamed (memory stays flat), and extracted as the sandbox user.

The sandbox is untrusted and the checkpoint lands on the host's disk, so it is bounded: tar
saves holes as holes (`--sparse`: a `truncate -s 100G` file costs nothing), and the bytes
written stop at what the sandbox's tmpfs folders can hold plus slack for tar's headers
(`limit_for`); past that, or on any failure, the partial file is removed and the save fails.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from patchwright.errors import SandboxError
from patchwright.sandbox.base import WORKSPACE
from patchwright.sandbox.engine import ContainerExec
from patchwright.sandbox.env import HOME
from patchwright.sandbox.stream import CappedBuffer

SAVED = {"workspace": WORKSPACE, "home": HOME}  # file stem -> folder in the sandbox
CHUNK = 1 << 20
SLACK = 64 * 2**20  # tar's headers and padding over the folders' own bytes
# Freeing a large file's blocks takes the host's filesystem a while (0.38 s a GiB measured on
# ext4), which the user would wait for at the end of a run: past this, a detached `rm` frees them.
HAND_OFF_BYTES = 128 * 2**20
_SIZE = re.compile(r"(\d+)([kmgt]?)b?")


def size_bytes(size: str) -> int:
    """A tmpfs size as Docker writes it (`2g`, `512m`, `1048576`) in bytes."""
    match = _SIZE.fullmatch(size.strip().lower())
    if match is None:
        raise ValueError(f"not a size: {size!r}")
    return int(match.group(1)) << (10 * " kmgt".index(match.group(2) or " "))


def limit_for(workspace_size: str, home_size: str) -> int:
    """The most a checkpoint may hold: the saved folders' tmpfs sizes together, plus slack."""
    return size_bytes(workspace_size) + size_bytes(home_size) + SLACK


@dataclass(frozen=True)
class Checkpoint:
    """A folder on the host with one tar file per saved folder of the sandbox."""

    folder: Path

    def path(self, name: str) -> Path:
        return self.folder / f"{name}.tar"

    @property
    def complete(self) -> bool:
        return all(self.path(name).is_file() for name in SAVED)

    def remove(self, hand_off_over: int = HAND_OFF_BYTES) -> bool:
        """Delete the tar files and the folder; never raises. True when a detached `rm` does it
        (it may finish after this process has exited): when their blocks, where this folder
        holds the last link, come to more than `hand_off_over` bytes."""
        if self._freed_by_removal() > hand_off_over:
            try:
                subprocess.Popen(
                    ["rm", "-rf", "--", str(self.folder)],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,  # not this terminal's Ctrl-C
                    close_fds=True,
                    cwd="/",
                )
                return True
            except OSError:
                pass  # removed here, then
        for name in SAVED:
            with contextlib.suppress(OSError):
                self.path(name).unlink()
        with contextlib.suppress(OSError):
            self.folder.rmdir()
        return False

    def _freed_by_removal(self) -> int:
        """The bytes the filesystem frees when the tar files go (a file linked into the kept
        states, reuse.py, frees nothing)."""
        freed = 0
        for name in SAVED:
            with contextlib.suppress(OSError):
                info = self.path(name).lstat()
                if stat.S_ISREG(info.st_mode) and info.st_nlink == 1:
                    freed += info.st_blocks * 512
        return freed


class _Capped:
    """Writes chunks to a file until `limit` bytes in all; past it, says stop (returns False)."""

    def __init__(self, fh: BinaryIO, limit: int) -> None:
        self.fh, self.left, self.over = fh, limit, False

    def write(self, chunk: bytes) -> bool:
        if len(chunk) > self.left:
            self.over = True
            return False
        self.left -= len(chunk)
        self.fh.write(chunk)
        return True


def save(runner: ContainerExec, checkpoint: Checkpoint, limit: int) -> None:
    """Stream each saved folder out of the container into its tar file, written whole or not at
    all: at most `limit` bytes for all of them, and no partial file left on any path."""
    checkpoint.folder.mkdir(parents=True, exist_ok=True)
    left = limit
    for name, folder in SAVED.items():
        target = checkpoint.path(name)
        partial = target.with_suffix(".partial")
        try:
            with open(partial, "wb") as fh:
                sink = _Capped(fh, left)
                code = runner.stream(
                    ["tar", "--sparse", "-c", "-f", "-", "-C", folder, "."],
                    sink.write,
                    what="save the state after setup",
                )
            if sink.over:
                raise SandboxError(
                    f"cannot save the state after setup: it is larger than {limit // 2**20} MiB, "
                    "more than the sandbox's workspace and home can hold"
                )
            if code != 0:
                raise SandboxError(f"cannot save the state after setup ({folder}: tar exited with {code})")
            left = sink.left
            os.replace(partial, target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise


def _chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            yield chunk


def restore(runner: ContainerExec, checkpoint: Checkpoint) -> None:
    """Extract each saved folder into the container, as the sandbox user."""
    for name, folder in SAVED.items():
        errors = CappedBuffer(4096)
        argv = ["tar", "-x", "-f", "-", "-C", folder]
        code = runner.stream(
            argv, errors.take, stdin=_chunks(checkpoint.path(name)), what="restore the state after setup"
        )
        if code != 0:
            detail = errors.render()[0].strip().splitlines()[-1:] or [f"tar exited with {code}"]
            raise SandboxError(f"cannot restore the state after setup into {folder}: {detail[0][:200]}")
