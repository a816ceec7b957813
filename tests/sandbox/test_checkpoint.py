"""The saved state's folder on the host: removed at the end of a run, the large case by a
detached `rm` so that the user does not wait for the filesystem to free its blocks."""

from __future__ import annotations

import os
import time
from pathlib import Path

from patchwright.sandbox.checkpoint import SAVED, Checkpoint


def filled(folder: Path, size: int) -> Checkpoint:
    folder.mkdir()
    saved = Checkpoint(folder)
    for name in SAVED:
        saved.path(name).write_bytes(os.urandom(size))
    return saved


def gone_within(path: Path, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while path.exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def test_a_small_checkpoint_is_removed_before_remove_returns(tmp_path: Path) -> None:
    saved = filled(tmp_path / "cp", 64 * 1024)
    assert saved.remove(hand_off_over=1 << 20) is False
    assert not saved.folder.exists()


def test_a_large_checkpoint_is_removed_by_a_detached_process(tmp_path: Path) -> None:
    saved = filled(tmp_path / "cp", 256 * 1024)
    assert saved.remove(hand_off_over=64 * 1024) is True
    assert gone_within(saved.folder, 10)


def test_files_whose_blocks_stay_allocated_are_not_counted(tmp_path: Path) -> None:
    """A file linked into the kept states (reuse.py) frees nothing, nor does a hole."""
    saved = filled(tmp_path / "cp", 256 * 1024)
    kept = tmp_path / "kept.tar"
    os.link(saved.path("workspace"), kept)
    with open(saved.path("home"), "wb") as fh:
        fh.truncate(1 << 30)  # a hole: no blocks
    assert saved.remove(hand_off_over=64 * 1024) is False
    assert not saved.folder.exists()
    assert kept.stat().st_size == 256 * 1024  # the kept link is untouched


def test_removing_a_checkpoint_that_was_never_written_does_nothing(tmp_path: Path) -> None:
    saved = Checkpoint(tmp_path / "never")
    assert saved.remove() is False
    (tmp_path / "empty").mkdir()
    assert Checkpoint(tmp_path / "empty").remove() is False
    assert not (tmp_path / "empty").exists()
