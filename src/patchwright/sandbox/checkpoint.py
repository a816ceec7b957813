"""The state right after setup, saved once, so verification starts from it: no second setup, no network.

What setup makes lives in the workspace (node_modules, a venv) and the sandbox user's home
(`pip install --user`), both tmpfs, so a container commit would not hold it; each is saved as
a tar file on the host instead, streamed (memory stays flat), and extracted as the sandbox user.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from patchwright.errors import SandboxError
from patchwright.sandbox.base import WORKSPACE
from patchwright.sandbox.engine import ContainerExec
from patchwright.sandbox.env import HOME
from patchwright.sandbox.stream import CappedBuffer

SAVED = {"workspace": WORKSPACE, "home": HOME}  # file stem -> folder in the sandbox
CHUNK = 1 << 20


@dataclass(frozen=True)
class Checkpoint:
    """A folder on the host with one tar file per saved folder of the sandbox."""

    folder: Path

    def path(self, name: str) -> Path:
        return self.folder / f"{name}.tar"

    @property
    def complete(self) -> bool:
        return all(self.path(name).is_file() for name in SAVED)

    def remove(self) -> None:
        for name in SAVED:
            with contextlib.suppress(OSError):
                self.path(name).unlink()
        with contextlib.suppress(OSError):
            self.folder.rmdir()


def save(runner: ContainerExec, checkpoint: Checkpoint) -> None:
    """Stream each saved folder out of the container into its tar file (written whole or not at all)."""
    checkpoint.folder.mkdir(parents=True, exist_ok=True)
    for name, folder in SAVED.items():
        target = checkpoint.path(name)
        partial = target.with_suffix(".partial")
        with open(partial, "wb") as fh:
            code = runner.stream(
                ["tar", "-c", "-f", "-", "-C", folder, "."],
                lambda chunk: fh.write(chunk) >= 0,  # every chunk written; read on to the end
                what="save the state after setup",
            )
        if code != 0:
            partial.unlink(missing_ok=True)
            raise SandboxError(f"cannot save the state after setup ({folder}: tar exited with {code})")
        os.replace(partial, target)


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
