"""The repo's test command, as a new contributor would find it: one place, the environment's
recipe (environment/detect.py), which reads only regular files, never a symlink, and a bounded
number of entries."""

from __future__ import annotations

from pathlib import Path

from patchwright.environment.detect import detect


def detect_test_command(root: Path) -> str | None:
    """The test command the repository's CI, manifests or Makefile point at, or None."""
    return detect(root).test_command
