"""The host repository: where it is, which files travel into the sandbox, and the run folder.

Only reads the host repo, with two exceptions the user asked for: the run folder
under `.patchwright/runs/` (hidden through `.git/info/exclude`, never .gitignore)
and `--apply`, which applies a patch only when git says it applies cleanly.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import git

from patchwright.errors import WorkspaceError

RUNS_DIR = Path(".patchwright") / "runs"
EXCLUDE_LINE = "/.patchwright/"
TAR_CHUNK = 1 << 20

# Credentials must not enter the sandbox: URL user-info and http extra headers
# (actions/checkout stores the token as `http.<url>.extraheader`).
_URL_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@")
_SECRET_KEYS = re.compile(r"^\s*(extraheader|password|token|oauth\w*)\s*=", re.IGNORECASE)
_SECRET_SECTIONS = re.compile(r"^\s*\[(credential|http)\b", re.IGNORECASE)


@dataclass(frozen=True)
class Workspace:
    """A host git repository as patchwright sees it."""

    root: Path
    git_dir: Path  # the repo's own .git directory (common dir for worktrees)
    git_dir_is_local: bool  # False for worktrees/submodules whose .git is a file

    def run_dir(self, run_id: str) -> Path:
        return self.root / RUNS_DIR / run_id


def open_workspace(path: Path) -> Workspace:
    """Find the git repository around `path`; a clear WorkspaceError when there is none."""
    if not path.exists():
        raise WorkspaceError(f"{path}: no such directory")
    if not path.is_dir():
        raise WorkspaceError(f"{path}: not a directory")
    try:
        repo = git.Repo(path, search_parent_directories=True)
    except git.InvalidGitRepositoryError:
        raise WorkspaceError(
            f"{path} is not inside a git repository (run `git init` or pass --repo)"
        ) from None
    except git.NoSuchPathError:
        raise WorkspaceError(f"{path}: no such directory") from None
    if repo.bare or repo.working_tree_dir is None:
        raise WorkspaceError(f"{path} is a bare git repository; patchwright needs a working tree")
    root = Path(repo.working_tree_dir).resolve()
    dot_git = root / ".git"
    return Workspace(root=root, git_dir=Path(repo.common_dir).resolve(), git_dir_is_local=dot_git.is_dir())


def list_files(ws: Workspace) -> list[str]:
    """The files git sees in the working tree: tracked (as they are now) and untracked, not ignored."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ws.root,
            capture_output=True,
            check=True,
        ).stdout
    except subprocess.CalledProcessError as err:
        raise WorkspaceError(f"git ls-files failed in {ws.root}: {err.stderr.decode().strip()}") from None
    names = sorted({n for n in out.decode("utf-8", "surrogateescape").split("\0") if n})
    # Tracked files deleted in the working tree are not there to copy.
    return [n for n in names if os.path.lexists(ws.root / n)]


def sanitize_git_config(text: str) -> str:
    """Drop credentials from a .git/config: URL user-info, extra headers, credential sections."""
    out: list[str] = []
    skipping = False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("["):
            skipping = bool(_SECRET_SECTIONS.match(stripped)) and "credential" in stripped.lower()
        if skipping or _SECRET_KEYS.match(line):
            continue
        out.append(_URL_USERINFO.sub(r"\g<scheme>", line))
    return "\n".join(out) + "\n"


def _git_dir_members(ws: Workspace) -> list[str]:
    """Every path under .git except its config, which travels sanitized."""
    members = [".git"]
    base = ws.root
    for dirpath, dirnames, filenames in os.walk(ws.root / ".git"):
        rel = os.path.relpath(dirpath, base)
        members.extend(os.path.join(rel, d) for d in dirnames)
        members.extend(os.path.join(rel, f) for f in filenames if not (rel == ".git" and f == "config"))
    return members


def tar_stream(ws: Workspace, files: list[str], uid: int, gid: int) -> Iterator[bytes]:
    """Stream a tar of `files` and .git, owned by uid:gid, made by GNU tar for speed."""
    # Directories go in first and explicitly, or the engine creates them owned by root.
    parents = {str(parent) for name in files for parent in Path(name).parents if str(parent) != "."}
    members = sorted(parents) + list(files)
    if ws.git_dir_is_local:
        members += _git_dir_members(ws)
    listing = "\0".join(members).encode("utf-8", "surrogateescape") + b"\0"
    proc = subprocess.Popen(
        [
            "tar",
            "-c",
            "-f",
            "-",
            "--no-recursion",
            "--null",
            "-T",
            "-",
            f"--owner={uid}",
            f"--group={gid}",
            "--numeric-owner",
            "--ignore-failed-read",
        ],
        cwd=ws.root,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdin is not None and proc.stdout is not None
    # The list is small next to the pipe's throughput; feeding it from a thread avoids a deadlock.
    import threading

    def feed() -> None:
        assert proc.stdin is not None
        try:
            proc.stdin.write(listing)
        finally:
            proc.stdin.close()

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        while chunk := proc.stdout.read(TAR_CHUNK):
            yield chunk
    finally:
        proc.stdout.close()
        proc.wait()
        feeder.join()


def git_config_tar(ws: Workspace, uid: int, gid: int) -> bytes | None:
    """A one-file tar holding the sanitized .git/config, or None when there is none."""
    config = ws.root / ".git" / "config"
    if not ws.git_dir_is_local or not config.is_file():
        return None
    data = sanitize_git_config(config.read_text(errors="surrogateescape")).encode(errors="surrogateescape")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(".git/config")
        info.size, info.uid, info.gid, info.mode = len(data), uid, gid, 0o644
        tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def hide_run_dir(ws: Workspace) -> None:
    """Keep `.patchwright/` out of git status through .git/info/exclude (idempotent)."""
    exclude = ws.git_dir / "info" / "exclude"
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


@dataclass(frozen=True)
class ApplyResult:
    applied: bool
    message: str


def apply_patch(ws: Workspace, patch_file: Path) -> ApplyResult:
    """Apply a patch to the host working tree, only if `git apply --check` accepts it whole."""
    check = subprocess.run(
        ["git", "apply", "--check", "--binary", str(patch_file)], cwd=ws.root, capture_output=True, text=True
    )
    if check.returncode != 0:
        return ApplyResult(False, f"patch does not apply cleanly: {(check.stderr.strip().splitlines() or [''])[0]}")
    done = subprocess.run(
        ["git", "apply", "--binary", str(patch_file)], cwd=ws.root, capture_output=True, text=True
    )
    if done.returncode != 0:
        return ApplyResult(False, f"git apply failed: {done.stderr.strip()}")
    stat = subprocess.run(
        ["git", "apply", "--stat", str(patch_file)], cwd=ws.root, capture_output=True, text=True
    ).stdout.strip()
    return ApplyResult(True, f"applied to {ws.root}:\n{stat}")


def detect_test_command(root: Path) -> str | None:
    """Guess the repo's test command from its files, the way a new contributor would."""
    package_json = root / "package.json"
    if package_json.is_file():
        import json

        try:
            scripts = json.loads(package_json.read_text()).get("scripts", {})
        except (ValueError, OSError, AttributeError):
            scripts = {}
        test = scripts.get("test") if isinstance(scripts, dict) else None
        if isinstance(test, str) and "no test specified" not in test:
            return "npm test"
    if (root / "go.mod").is_file():
        return "go test ./..."
    if (root / "Cargo.toml").is_file():
        return "cargo test"
    python_markers = ("pytest.ini", "conftest.py", "tox.ini", "setup.cfg", "pyproject.toml", "setup.py")
    python_tests = [*root.glob("test_*.py"), *root.glob("*_test.py"), *root.glob("test*/**/test_*.py")]
    if any((root / m).is_file() for m in python_markers) or python_tests:
        return "python3 -m pytest -q"
    makefile = root / "Makefile"
    if makefile.is_file() and re.search(r"^test\s*:", makefile.read_text(errors="replace"), re.MULTILINE):
        return "make test"
    return None
