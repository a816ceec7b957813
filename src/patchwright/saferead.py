"""Reading files the repository controls on the host, without following a symlink anywhere.

The repository under review is untrusted: a committed `.claude -> tooling`, `pyproject.toml ->
build-settings.toml` or `docs -> /home/me` must not decide what patchwright reads. Every
folder on the way is opened with O_NOFOLLOW relative to the one before (no check-then-open
race), and the file itself too; FIFOs and devices are never opened for reading (O_NONBLOCK,
then fstat must say regular file). Compose detection, agent files, instruction files and
their imports, and the repository's settings all read through here.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path, PurePosixPath

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK
# Errors that mean "not a plain file reached without a link": a symlink (ELOOP), a file where a
# folder should be (ENOTDIR), nothing there, or nothing we may read.
_ABSENT = (errno.ENOENT, errno.ELOOP, errno.ENOTDIR, errno.EACCES, errno.ENXIO)


def parts_of(relative: str | tuple[str, ...]) -> tuple[str, ...] | None:
    """The components of a repo-relative path, or None when it is absolute or climbs out."""
    parts = relative if isinstance(relative, tuple) else PurePosixPath(relative).parts
    if not parts or any(p in ("", ".", "..") or "/" in p or "\0" in p for p in parts):
        return None
    return tuple(parts)


@contextmanager
def _folder_fd(root: Path, parts: tuple[str, ...]) -> Iterator[int]:
    """A descriptor of root/parts..., each component opened without following a link."""
    with ExitStack() as stack:
        fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
        stack.callback(os.close, fd)
        for part in parts:
            fd = os.open(part, _DIR_FLAGS, dir_fd=fd)
            stack.callback(os.close, fd)
        yield fd


def read_bytes(root: Path, relative: str | tuple[str, ...], limit: int) -> bytes | None:
    """At most `limit` + 1 bytes of the regular file at `relative` in `root`, or None when it is
    absent, not regular, or reached through a symlink (a caller tells "too long" by the length)."""
    parts = parts_of(relative)
    if parts is None:
        return None
    try:
        with _folder_fd(root, parts[:-1]) as folder:
            fd = os.open(parts[-1], _FILE_FLAGS, dir_fd=folder)
            try:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    return None
                os.set_blocking(fd, True)
                chunks: list[bytes] = []
                wanted = limit + 1
                while wanted > 0 and (chunk := os.read(fd, min(wanted, 1 << 20))):
                    chunks.append(chunk)
                    wanted -= len(chunk)
                return b"".join(chunks)
            finally:
                os.close(fd)
    except OSError as err:
        if err.errno in _ABSENT:
            return None
        raise


def is_plain_file(root: Path, relative: str | tuple[str, ...]) -> bool:
    """True if `relative` is a regular file in `root` reached without following any symlink."""
    parts = parts_of(relative)
    if parts is None:
        return False
    try:
        with _folder_fd(root, parts[:-1]) as folder:
            info = os.stat(parts[-1], dir_fd=folder, follow_symlinks=False)
    except OSError as err:
        if err.errno in _ABSENT:
            return False
        raise
    return stat.S_ISREG(info.st_mode)


def plain_files_in(root: Path, folder: str | tuple[str, ...], suffix: str, limit: int = 1000) -> list[str]:
    """Names of the regular files ending in `suffix` in `folder` (reached without a link), sorted."""
    parts = parts_of(folder)
    if parts is None:
        return []
    names: list[str] = []
    try:
        with _folder_fd(root, parts) as fd, os.scandir(fd) as entries:
            for entry in entries:
                if entry.name.endswith(suffix) and entry.is_file(follow_symlinks=False):
                    names.append(entry.name)
                if len(names) >= limit:
                    break
    except OSError as err:
        if err.errno in _ABSENT:
            return []
        raise
    return sorted(names)


def entries_in(root: Path, folder: str | tuple[str, ...], limit: int = 1000) -> list[tuple[str, bool]]:
    """(name, is_dir) of the regular files and real folders in `folder` ("" for `root`), reached
    without a link, sorted; at most `limit` looked at. Symlinks and special files are left out."""
    parts = parts_of(folder) if folder else ()
    if parts is None:
        return []
    found: list[tuple[str, bool]] = []
    try:
        with _folder_fd(root, parts) as fd, os.scandir(fd) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False):
                    found.append((entry.name, True))
                elif entry.is_file(follow_symlinks=False):
                    found.append((entry.name, False))
                if len(found) >= limit:
                    break
    except OSError as err:
        if err.errno in _ABSENT:
            return []
        raise
    return sorted(found)


def relative_in(root: Path, path: Path) -> tuple[str, ...] | None:
    """`path`'s components below `root`, compared as text (no link is resolved), or None."""
    try:
        return parts_of(path.relative_to(root).parts)
    except ValueError:
        return None
