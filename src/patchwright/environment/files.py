"""Reading the repository's files on the host, as hostile input.

No symlink is followed anywhere on a path (a committed `.github -> /etc` is as good as absent),
only regular files up to a size cap are read, YAML goes through the safe loader with a bound on
aliases, and a file that does not parse is reported as a note instead of failing the run.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from patchwright.saferead import entries_in, is_plain_file, read_bytes
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
        try:
            return is_plain_file(self.root, parts)
        except OSError:
            return False

    def listdir(self, path: str = "") -> list[tuple[str, bool]]:
        """(name, is_dir) of the regular files and real folders in `path`, sorted, at most MAX_LISTED."""
        parts = _parts(path) if path else ()
        if parts is None:
            return []
        try:
            return entries_in(self.root, parts, MAX_LISTED)
        except OSError:
            return []

    def head(self, path: str, size: int = 4096) -> str:
        """The first `size` bytes of a (possibly large) regular file as text; "" when unreadable."""
        parts = _parts(path)
        if parts is None:
            return ""
        try:
            data = read_bytes(self.root, parts, size)
        except OSError:
            return ""
        return (data or b"")[:size].decode("utf-8", "replace")

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
