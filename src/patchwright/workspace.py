"""The host repository and the run folder inside it.

Only reads the host repo, with one exception the user asked for: the run folder under
`.patchwright/runs/` (hidden through `.git/info/exclude`, never .gitignore). What travels
into the sandbox is repocopy.py; what `--apply` may write is applygate.py.
"""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from patchwright.errors import OutputError, WorkspaceError
from patchwright.hostgit import git_env

RUNS_DIR = Path(".patchwright") / "runs"
EXCLUDE_LINE = "/.patchwright/runs/"  # config and agents in .patchwright/ stay committable


@dataclass(frozen=True)
class Workspace:
    """A host git repository as patchwright sees it."""

    root: Path
    git_dir: Path  # the repo's own .git directory (common dir for worktrees)
    git_dir_is_local: bool  # False for worktrees/submodules whose .git is a file

    def run_dir(self, run_id: str) -> Path:
        return self.root / RUNS_DIR / run_id


def open_workspace(path: Path) -> Workspace:
    """Find the git repository around `path`; a clear WorkspaceError when there is none.

    One `git rev-parse` (a few milliseconds) rather than a git library, whose import alone
    cost a start about 0.3 s of CPU beside the SDK's."""
    if not path.exists():
        raise WorkspaceError(f"{path}: no such directory")
    if not path.is_dir():
        raise WorkspaceError(f"{path}: not a directory")
    asks = ["--is-bare-repository", "--is-inside-work-tree", "--git-common-dir"]
    out = _rev_parse(path, [*asks, "--show-toplevel"])
    if out is None:  # outside a repo, in a bare one, or inside a .git folder: say which
        found = _rev_parse(path, asks)
        if found is None:
            raise WorkspaceError(f"{path} is not inside a git repository (run `git init` or pass --repo)")
        out = found
    bare, inside, common, *top = out
    if bare == "true":
        raise WorkspaceError(f"{path} is a bare git repository; patchwright needs a working tree")
    if inside != "true" or not top:
        raise WorkspaceError(f"{path} is inside a git folder, not its working tree; pass --repo")
    root = Path(top[0]).resolve()
    return Workspace(root=root, git_dir=(path / common).resolve(), git_dir_is_local=(root / ".git").is_dir())


def _rev_parse(path: Path, asks: list[str]) -> list[str] | None:
    """`git rev-parse ASKS` in `path`, one answer a line; None when git refuses. safe.directory is
    opened as a library reading the repo would (rev-parse runs no program of the repo's)."""
    try:
        done = subprocess.run(
            ["git", "-c", "safe.directory=*", "rev-parse", *asks],
            cwd=path,
            env=git_env(),
            capture_output=True,
            check=False,
        )
    except OSError as err:
        raise WorkspaceError(f"cannot run git: {err.strerror or err}") from None
    if done.returncode != 0:
        return None
    return os.fsdecode(done.stdout).splitlines()


_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def real_run_dir(ws: Workspace, run_id: str, create: bool) -> Path:
    """The run folder, only ever a real folder inside the repository: a repo can commit
    `.patchwright -> /elsewhere` (or the runs folder as a link), which would put a run's outputs,
    and --resume's inputs, outside it. WorkspaceError (exit 2) for a link or a bad run id."""
    if not _RUN_ID.fullmatch(run_id):
        raise WorkspaceError(f"{run_id!r} is not a run id (letters, digits, '.', '_' and '-')")
    current = ws.root
    for part in (*RUNS_DIR.parts, run_id):
        current = current / part
        if current.is_symlink():
            raise WorkspaceError(
                f"{current} is a symbolic link; patchwright writes run outputs only inside the repository "
                "(remove the link, or run on a clone without it)"
            )
        if create:
            try:
                current.mkdir(exist_ok=True)
            except OSError as err:
                raise OutputError(f"cannot create the run directory {current}: {err.strerror}") from None
        if current.exists() and not current.is_dir():
            raise WorkspaceError(f"{current} is not a directory")
    if create and os.path.realpath(current) != os.path.join(
        os.path.realpath(ws.root), *RUNS_DIR.parts, run_id
    ):
        raise WorkspaceError(f"{current} resolves outside the repository")
    return current


def hide_run_dir(ws: Workspace) -> None:
    """Keep `.patchwright/` out of git status through .git/info/exclude (idempotent)."""
    exclude = ws.git_dir / "info" / "exclude"
    if exclude.is_symlink() or exclude.parent.is_symlink():
        raise WorkspaceError(f"{exclude} is a symbolic link; patchwright does not write through it")
    try:
        existing = exclude.read_text() if exclude.exists() else ""
        if EXCLUDE_LINE in existing.splitlines():
            return
        exclude.parent.mkdir(parents=True, exist_ok=True)
        with exclude.open("a") as fh:
            if existing and not existing.endswith("\n"):
                fh.write("\n")
            fh.write(f"# patchwright run outputs\n{EXCLUDE_LINE}\n")
    except OSError as err:
        raise WorkspaceError(f"cannot update {exclude}: {err.strerror}") from None
