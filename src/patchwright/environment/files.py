"""Reading the repository's files on the host, as hostile input.

No symlink is followed anywhere on a path (a committed `.github -> /etc` is as good as absent),
only regular files up to a size cap are read, YAML goes through the safe loader with a bound on
aliases, and a file that does not parse is reported as a note instead of failing the run.
"""

from __future__ import annotations

import json
import os
import stat
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from patchwright.services.detect import load_yaml, read_repo_file

MAX_FILE_BYTES = 512 * 1024  # a manifest or a CI file; lockfiles are only looked at, not read whole
MAX_LOCK_BYTES = 8 * 1024 * 1024
MAX_LISTED = 500  # entries of one folder looked at


def _parts(path: str) -> tuple[str, ...] | None:
    """A relative path's parts; None for anything that could leave the repository."""
    parts = tuple(p for p in path.split("/") if p not in ("", "."))
    if not parts or any(p == ".." for p in parts) or path.startswith("/"):
        return None
    return parts


@dataclass
class RepoFiles:
    """The repository at `root`, read safely; `notes` collects what was skipped and why."""

    root: Path
    notes: list[str] = field(default_factory=list)

    def read(self, path: str, limit: int = MAX_FILE_BYTES) -> bytes | None:
        """A regular file's bytes, or None (absent, a symlink on the way, not a regular file, too big)."""
        parts = _parts(path)
        if parts is None:
            return None
        try:
            return read_repo_file(self.root, parts, limit)
        except OSError as err:
            self.notes.append(f"{path}: skipped ({err.strerror or err})")
            return None

    def exists(self, path: str) -> bool:
        """A regular file at `path`, reached without a symlink (its content is not read)."""
        parts = _parts(path)
        if parts is None:
            return False
        fds: list[int] = []
        try:
            fds.append(os.open(self.root, os.O_RDONLY | os.O_DIRECTORY))
            for part in parts[:-1]:
                fds.append(os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fds[-1]))
            info = os.stat(parts[-1], dir_fd=fds[-1], follow_symlinks=False)
            return stat.S_ISREG(info.st_mode)
        except OSError:
            return False
        finally:
            for fd in reversed(fds):
                os.close(fd)

    def listdir(self, path: str = "") -> list[tuple[str, bool]]:
        """(name, is_dir) of the regular files and real folders in `path`, sorted, at most MAX_LISTED."""
        parts = _parts(path) if path else ()
        if parts is None:
            return []
        fds: list[int] = []
        found: list[tuple[str, bool]] = []
        try:
            fds.append(os.open(self.root, os.O_RDONLY | os.O_DIRECTORY))
            for part in parts:
                fds.append(os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fds[-1]))
            with os.scandir(fds[-1]) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        found.append((entry.name, True))
                    elif entry.is_file(follow_symlinks=False):
                        found.append((entry.name, False))
                    if len(found) >= MAX_LISTED:
                        break
        except OSError:
            return []
        finally:
            for fd in reversed(fds):
                os.close(fd)
        return sorted(found)

    def head(self, path: str, size: int = 4096) -> str:
        """The first `size` bytes of a (possibly large) regular file as text; "" when unreadable."""
        parts = _parts(path)
        if parts is None:
            return ""
        fds: list[int] = []
        try:
            fds.append(os.open(self.root, os.O_RDONLY | os.O_DIRECTORY))
            for part in parts[:-1]:
                fds.append(os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fds[-1]))
            fds.append(os.open(parts[-1], os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=fds[-1]))
            if not stat.S_ISREG(os.fstat(fds[-1]).st_mode):
                return ""
            return os.read(fds[-1], size).decode("utf-8", "replace")
        except OSError:
            return ""
        finally:
            for fd in reversed(fds):
                os.close(fd)

    def text(self, path: str, limit: int = MAX_FILE_BYTES) -> str | None:
        data = self.read(path, limit)
        return None if data is None else data.decode("utf-8", "replace")

    def yaml(self, path: str) -> Any:
        text = self.text(path)
        if text is None:
            return None
        try:
            return load_yaml(text)
        except yaml.YAMLError as err:
            self.notes.append(f"{path}: not valid YAML, skipped ({str(err).splitlines()[0][:120]})")
            return None

    def json(self, path: str) -> Any:
        text = self.text(path)
        if text is None:
            return None
        try:
            return json.loads(_strip_json_comments(text) if path.endswith(".json") else text)
        except ValueError as err:
            self.notes.append(f"{path}: not valid JSON, skipped ({err})")
            return None

    def toml(self, path: str) -> dict[str, Any] | None:
        text = self.text(path)
        if text is None:
            return None
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            self.notes.append(f"{path}: not valid TOML, skipped ({err})")
            return None


def _strip_json_comments(text: str) -> str:
    """devcontainer.json is JSON with comments: drop `//` line comments outside strings."""
    out: list[str] = []
    for line in text.splitlines():
        in_string = False
        escaped = False
        cut = len(line)
        for i, ch in enumerate(line):
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = not in_string
            elif not in_string and line.startswith("//", i):
                cut = i
                break
        out.append(line[:cut])
    return "\n".join(out)


def join(folder: str, name: str) -> str:
    """`folder/name`, or `name` at the root (folder "" or ".")."""
    return name if folder in ("", ".") else f"{folder}/{name}"
