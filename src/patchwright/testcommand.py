"""Test-command detection: the repo's test command guessed from its files, the way a new
contributor would, reading only regular files (never a symlink) and a bounded number of entries.
"""

from __future__ import annotations

import os
import re
from pathlib import Path


def _plain_file(root: Path, name: str) -> bool:
    """A regular file at the repo root, not a symlink (which could lead anywhere on the host)."""
    path = root / name
    return not path.is_symlink() and path.is_file()


DETECT_MAX_ENTRIES = 20_000  # directory entries looked at when guessing the test command


def _has_python_tests(root: Path) -> bool:
    """test_*.py / *_test.py at the root, or test_*.py under a test* folder, never following a
    symlink (a committed `tests -> /` would walk the host) and looking at a bounded number of entries."""
    budget = DETECT_MAX_ENTRIES
    try:
        top = list(os.scandir(root))
    except OSError:
        return False
    for entry in top:
        if entry.is_file(follow_symlinks=False) and re.fullmatch(r"test_.*\.py|.*_test\.py", entry.name):
            return True
    for entry in top:
        if not (entry.name.startswith("test") and entry.is_dir(follow_symlinks=False)):
            continue
        for _dirpath, dirnames, filenames in os.walk(entry.path, followlinks=False):
            budget -= len(dirnames) + len(filenames)
            if any(n.startswith("test_") and n.endswith(".py") for n in filenames):
                return True
            if budget <= 0:
                return False
    return False


def detect_test_command(root: Path) -> str | None:
    """Guess the repo's test command from its files, the way a new contributor would."""
    if _plain_file(root, "package.json"):
        import json

        try:
            with (root / "package.json").open("rb") as fh:
                scripts = json.loads(fh.read(1 << 20)).get("scripts", {})
        except (ValueError, OSError, AttributeError):
            scripts = {}
        test = scripts.get("test") if isinstance(scripts, dict) else None
        if isinstance(test, str) and "no test specified" not in test:
            return "npm test"
    if _plain_file(root, "go.mod"):
        return "go test ./..."
    if _plain_file(root, "Cargo.toml"):
        return "cargo test"
    python_markers = ("pytest.ini", "conftest.py", "tox.ini", "setup.cfg", "pyproject.toml", "setup.py")
    if any(_plain_file(root, m) for m in python_markers) or _has_python_tests(root):
        return "python3 -m pytest -q"
    if _plain_file(root, "Makefile"):
        with (root / "Makefile").open("rb") as fh:
            text = fh.read(1 << 20).decode(errors="replace")
        if re.search(r"^test\s*:", text, re.MULTILINE):
            return "make test"
    return None
