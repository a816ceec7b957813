"""The state after setup, kept per repository and working tree, so the next run skips installs.

A run whose tests could run saves the sandbox's state after setup (checkpoint.py: the workspace
and the sandbox user's home, as tar files) for its own verification. Kept in the user's cache
under a key of the repository's path, every file's path and content (so any edit, a lockfile's
included, or another commit gives another key; a fresh checkout of the same commit does not), the
image, the setup, the test command and the services, the next run with the same key starts from
it: no copy, no setup, no network. With services, the setup runs again over the kept state (their
databases start empty; installs find their work done). The saved workspace holds the
repository's files, so the key must match the whole tree, not only its lockfiles. The cache
folder is the user's own (0700); a few states are kept, newest first.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from patchwright.hostgit import run_git
from patchwright.repocopy import scan_files
from patchwright.sandbox.base import default_manifest_dir
from patchwright.sandbox.checkpoint import SAVED, Checkpoint
from patchwright.workspace import Workspace

KEEP = 5  # states kept in all; the oldest go first
ENVIRONMENT_FILE = "environment.json"


def default_cache_dir() -> Path:
    """Beside the snapshot manifests, in the user's cache."""
    return Path(default_manifest_dir()).parent / "setup-states"


def state_key(
    ws: Workspace, image: str, setup: str | None, test_command: str, services: tuple[str, ...] = ()
) -> str:
    """Changes with any file's content or mode (git's blob ids for files that match the index, so
    a fresh checkout on a CI runner gives the same key; the bytes of the others), the image,
    setup, tests or services (a client library may be built for its server's version)."""
    digest = hashlib.sha256()
    for part in (str(ws.root), image, setup or "", test_command, "\n".join(sorted(services))):
        digest.update(part.encode("utf-8", "surrogateescape") + b"\0")
    scan = scan_files(ws)
    dirty = set(scan.dirty)
    index = _index_entries(ws)
    for name in sorted(scan.files):
        entry = None if name in dirty else index.get(name)
        digest.update(f"{name}\0{entry or _content_id(ws.root / name)}\0".encode("utf-8", "surrogateescape"))
    return digest.hexdigest()[:32]


def _index_entries(ws: Workspace) -> dict[str, str]:
    """path -> "mode blob" of git's index (stage 0)."""
    out = run_git(ws.root, "ls-files", "-s", "-z").stdout.decode("utf-8", "surrogateescape")
    entries: dict[str, str] = {}
    for record in out.split("\0"):
        meta, _, name = record.partition("\t")
        fields = meta.split()
        if len(fields) == 3 and fields[2] == "0":
            entries[name] = f"{fields[0]} {fields[1]}"
    return entries


def _content_id(path: Path) -> str:
    """A file's mode and bytes (a link's target), hashed; never follows a link."""
    try:
        info = os.lstat(path)
        if stat.S_ISLNK(info.st_mode):
            return f"link {os.readlink(path)}"
        digest = hashlib.sha256()
        with open(path, "rb") as fh:
            while chunk := fh.read(1 << 20):
                digest.update(chunk)
        return f"{stat.S_IMODE(info.st_mode):o} {digest.hexdigest()}"
    except OSError:
        return "unreadable"


@dataclass(frozen=True)
class SetupStates:
    """The cache folder: one subfolder a key, holding the checkpoint's tar files and the
    environment (recipe, why the tests can run) that went with them."""

    folder: Path

    def find(self, key: str) -> dict[str, Any] | None:
        """The environment saved with `key`'s state, when the whole state is there."""
        entry = self.folder / key
        if entry.is_symlink() or not Checkpoint(entry).complete:
            return None
        try:
            saved = json.loads((entry / ENVIRONMENT_FILE).read_text())
        except (OSError, ValueError):
            return None
        return saved if isinstance(saved, dict) and saved.get("tests_runnable") is True else None

    def take(self, key: str, into: Checkpoint) -> bool:
        """Put `key`'s state in `into` (linked where the filesystem allows, else copied)."""
        entry = Checkpoint(self.folder / key)
        try:
            into.folder.mkdir(parents=True, exist_ok=True)
            for name in SAVED:
                _link_or_copy(entry.path(name), into.path(name))
            os.utime(entry.folder)  # the newest are kept
        except OSError:
            into.remove()
            return False
        return True

    def keep(self, key: str, state: Checkpoint, environment: dict[str, Any]) -> bool:
        """Save a run's state under `key` (written whole or not at all); False when it cannot be."""
        if not state.complete:
            return False
        staging = self.folder / f".{key}.partial"
        try:
            self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
            os.chmod(self.folder, 0o700)
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(mode=0o700)
            for name in SAVED:
                _link_or_copy(state.path(name), staging / f"{name}.tar")
            (staging / ENVIRONMENT_FILE).write_text(json.dumps(environment))
            shutil.rmtree(self.folder / key, ignore_errors=True)
            os.replace(staging, self.folder / key)
        except OSError:
            shutil.rmtree(staging, ignore_errors=True)
            return False
        self.prune()
        return True

    def prune(self, keep: int = KEEP) -> None:
        entries = [p for p in self.folder.iterdir() if p.is_dir() and not p.name.startswith(".")]
        entries.sort(key=lambda p: p.stat().st_mtime, reverse=True)
        for old in entries[keep:]:
            shutil.rmtree(old, ignore_errors=True)


def _link_or_copy(source: Path, target: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        target.unlink()
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)
