"""Keep every path a tool touches inside the workspace, as the sandbox itself resolves it.

The check runs `realpath` inside the container, so symlinks are judged by what
they point to there; a path that leads out (absolute elsewhere, `..`, or a link)
is refused before anything reads or writes it.
"""

from __future__ import annotations

import posixpath
from typing import Protocol

from patchwright.sandbox.base import CommandResult
from patchwright.tools.base import ToolError


class Executes(Protocol):
    workdir: str

    def execute(self, argv: list[str], timeout: float | None = None) -> CommandResult: ...


def resolve_path(sandbox: Executes, path: str) -> str:
    """Return the real path inside the sandbox's workdir for `path`, or raise ToolError saying why not."""
    root = sandbox.workdir
    if not isinstance(path, str) or not path.strip():
        raise ToolError("`path` is required and must be a non-empty string")
    if "\0" in path:
        raise ToolError("`path` must not contain NUL bytes")
    joined = posixpath.normpath(posixpath.join(root, path))
    if not _inside(joined, root):
        raise ToolError(f"{path}: outside the workspace {root}; only files under {root} can be used")
    result = sandbox.execute(["realpath", "-m", "--", joined], timeout=15)
    real = result.output.strip()
    if result.exit_code != 0 or not real.startswith("/"):
        raise ToolError(f"{path}: cannot resolve the path ({real[:200]})")
    if not _inside(real, root):
        raise ToolError(f"{path}: resolves to {real}, outside the workspace {root} (a symlink leads out)")
    return real


def _inside(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")
