"""The host repository: where it is, which files travel into the sandbox, and the run folder.

Only reads the host repo, with two exceptions the user asked for: the run folder
under `.patchwright/runs/` (hidden through `.git/info/exclude`, never .gitignore)
and `--apply`, which applies a patch only when git says it applies cleanly.
"""

from __future__ import annotations

import io
import os
import posixpath
import re
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import git

from patchwright.errors import WorkspaceError
from patchwright.outputs import diff_header_paths

RUNS_DIR = Path(".patchwright") / "runs"
EXCLUDE_LINE = "/.patchwright/runs/"  # config and agents in .patchwright/ stay committable
TAR_CHUNK = 1 << 20

# Credentials must not enter the sandbox: URL user-info and http extra headers
# (actions/checkout stores the token as `http.<url>.extraheader`).
_URL_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@")
_SECRET_NAME = re.compile(r"(extraheader|pass|token|secret|cookie|oauth)", re.IGNORECASE)
_DROPPED_SECTIONS = {"credential", "include"}
_GIT_ENV = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null"}


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
    return scan_files(ws).files


@dataclass(frozen=True)
class FileScan:
    """What one `git ls-files` walk of the working tree tells."""

    files: list[str]  # tracked (as they are now) and untracked, not ignored; present on disk
    dirty: list[str]  # of those and the deleted: what differs from the index (changed, deleted,
    # untracked, unmerged), files and links only; the rest matches the index


_DIRTY_TAGS = frozenset("CR?MK")  # `ls-files -t`: changed, removed, other, unmerged, to be killed


def scan_files(ws: Workspace) -> FileScan:
    """One walk of the working tree (git's own, with its ignore rules and stat checks)."""
    try:
        out = subprocess.run(
            [
                "git",
                "ls-files",
                "-z",
                "-t",
                "--cached",
                "--others",
                "--modified",
                "--deleted",
                "--exclude-standard",
            ],
            cwd=ws.root,
            capture_output=True,
            check=True,
        ).stdout
    except subprocess.CalledProcessError as err:
        raise WorkspaceError(f"git ls-files failed in {ws.root}: {err.stderr.decode().strip()}") from None
    names: set[str] = set()
    removed: set[str] = set()
    dirty: set[str] = set()
    for entry in out.decode("utf-8", "surrogateescape").split("\0"):
        if len(entry) > 2:
            tag, name = entry[0], entry[2:]
            names.add(name)
            if tag in _DIRTY_TAGS:
                dirty.add(name)
                if tag == "R":
                    removed.add(name)
    root = os.fsencode(ws.root) + b"/"

    def is_folder(name: str) -> bool:
        path = root + os.fsencode(name)
        return os.path.isdir(path) and not os.path.islink(path)

    # Tracked files deleted in the working tree are not there to copy; folders (submodules,
    # nested repos) travel empty and are no index entries to update.
    return FileScan(files=sorted(names - removed), dirty=sorted(n for n in dirty if not is_folder(n)))


def _quote_config_value(value: str) -> str:
    """A value as git config syntax: bare when it can be, quoted and escaped when it must."""
    if value and value == value.strip() and not any(c in value for c in '#;"\\\n\t'):
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t")
    return f'"{escaped}"'


def sanitize_git_config(text: str) -> str:
    """A git config without credentials: git parses it, we keep only what is safe, and rewrite it.

    Dropped: [credential] sections, include paths, and keys that hold secrets
    (extraheader, passwords, tokens, cookies); URL user-info is stripped from
    every value. Parsing with git itself covers every syntax git accepts (keys on
    section lines, continued lines, quoting). A file git cannot parse is dropped whole.
    """
    with tempfile.NamedTemporaryFile("w", suffix=".gitconfig", delete=False, errors="surrogateescape") as fh:
        fh.write(text)
    try:
        listed = subprocess.run(
            ["git", "config", "--file", fh.name, "--list", "-z"], capture_output=True, env=_GIT_ENV
        )
    finally:
        os.unlink(fh.name)
    if listed.returncode != 0:
        return ""
    lines: list[str] = []
    current: tuple[str, str | None] | None = None
    for entry in listed.stdout.decode("utf-8", "surrogateescape").split("\0"):
        if not entry:
            continue
        key, _, value = entry.partition("\n")
        section, _, rest = key.partition(".")
        subsection, _, name = rest.rpartition(".")
        if section in _DROPPED_SECTIONS or section.startswith("includeif") or _SECRET_NAME.search(name):
            continue
        header = (section, subsection or None)
        if header != current:
            sub = subsection.replace("\\", "\\\\").replace('"', '\\"')
            lines.append(f'[{section} "{sub}"]' if subsection else f"[{section}]")
            current = header
        clean = _URL_USERINFO.sub(r"\g<scheme>", value)
        lines.append(f"\t{name} = {_quote_config_value(clean)}")
    return "\n".join(lines) + "\n" if lines else ""


def is_git_config(rel: str) -> bool:
    """Config files anywhere under .git: the repo's, worktrees', submodules' (.git/modules/*/config).
    Not the repo's own refs and reflogs (a branch called `config`); elsewhere, when in doubt, a
    file is taken for a config and sanitized, since a real one must never travel as it is."""
    if rel.startswith((".git/refs/", ".git/logs/")):
        return False
    return os.path.basename(rel) in ("config", "config.worktree")


def _git_dir_members(ws: Workspace) -> list[str]:
    """Every path under .git except its config files, which travel sanitized (git_config_tar)."""
    members = [".git"]
    base = ws.root
    for dirpath, dirnames, filenames in os.walk(ws.root / ".git"):
        rel = os.path.relpath(dirpath, base)
        members.extend(os.path.join(rel, d) for d in dirnames)
        members.extend(os.path.join(rel, f) for f in filenames if not is_git_config(os.path.join(rel, f)))
    return members


def copy_members(ws: Workspace, files: list[str]) -> list[str]:
    """Everything that travels into the sandbox: parent dirs of `files`, `files`, and .git.

    Directories go in explicitly, or they would be created owned by root. Each directory's
    contents follow it before anything else does: GNU tar gives a directory its own mode
    (read-only ones too) as soon as a member outside it comes, and could then not write in it.
    """
    parents: set[str] = set()
    for name in files:
        parent = name.rpartition("/")[0]
        while parent and parent not in parents:  # string work: Path.parents is slow at 20k files
            parents.add(parent)
            parent = parent.rpartition("/")[0]
    members = [*parents, *files]
    if ws.git_dir_is_local:
        members += _git_dir_members(ws)
    return sorted(set(members), key=lambda name: name.replace("/", "\0"))  # "\0" sorts before all


def tar_stream(ws: Workspace, files: list[str], uid: int, gid: int) -> Iterator[bytes]:
    """Stream a tar of `files` and .git, owned by uid:gid, made by GNU tar for speed."""
    return tar_members(ws, copy_members(ws, files), uid, gid)


def tar_members(ws: Workspace, members: list[str], uid: int, gid: int) -> Iterator[bytes]:
    """Stream a tar of exactly `members` (paths relative to the repo root), owned by uid:gid."""
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
    """A tar of every git config file under .git, sanitized; None when there are none."""
    if not ws.git_dir_is_local:
        return None
    buf = io.BytesIO()
    count = 0
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for dirpath, _, filenames in os.walk(ws.root / ".git"):
            for name in filenames:
                path = Path(dirpath) / name
                rel = os.path.relpath(path, ws.root)
                if not is_git_config(rel) or path.is_symlink() or not path.is_file():
                    continue
                data = sanitize_git_config(path.read_text(errors="surrogateescape")).encode(
                    errors="surrogateescape"
                )
                info = tarfile.TarInfo(rel)
                info.size, info.uid, info.gid, info.mode = len(data), uid, gid, 0o644
                tar.addfile(info, io.BytesIO(data))
                count += 1
    return buf.getvalue() if count else None


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


def patch_problems(patch: str) -> list[str]:
    """Why a model-made patch must not touch the host repo: .git or .patchwright paths,
    absolute or `..` paths, gitlinks, and symlinks that point outside the repository."""
    problems: list[str] = []
    path = ""
    symlink = False
    for line in patch.splitlines():
        if line.startswith("diff --git "):
            symlink = False
            targets = diff_header_paths(line)
            path = targets[0] if targets else ""
            for name in dict.fromkeys(targets):
                parts = name.split("/")
                if name.startswith("/") or ".." in parts:
                    problems.append(f"{name}: path leaves the repository")
                elif any(p.lower() == ".git" for p in parts) or parts[0] == ".patchwright":
                    problems.append(f"{name}: touches git internals or patchwright's own files")
        elif line.startswith(("rename to ", "copy to ")):
            name = line.split(" to ", 1)[1]
            if name.startswith("/") or ".." in name.split("/") or ".git" in name.lower().split("/"):
                problems.append(f"{name}: path leaves the repository or touches git internals")
        elif line.startswith(("new file mode ", "new mode ")):
            mode = line.rsplit(" ", 1)[-1]
            symlink = mode == "120000"
            if mode == "160000":
                problems.append(f"{path}: adds a submodule link")
        elif symlink and line.startswith("+") and not line.startswith("+++"):
            target = line[1:]
            resolved = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
            if target.startswith("/") or resolved == ".." or resolved.startswith("../"):
                problems.append(f"{path}: symlink to {target} points outside the repository")
    return problems


def apply_patch(ws: Workspace, patch_file: Path) -> ApplyResult:
    """Apply a patch to the host working tree, only if it is safe and `git apply --check` accepts it whole."""
    problems = patch_problems(patch_file.read_text(errors="surrogateescape"))
    if problems:
        return ApplyResult(
            False,
            f"patch not applied: {problems[0]}"
            + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""),
        )
    check = subprocess.run(
        ["git", "apply", "--check", "--binary", str(patch_file)], cwd=ws.root, capture_output=True, text=True
    )
    if check.returncode != 0:
        return ApplyResult(
            False, f"patch does not apply cleanly: {(check.stderr.strip().splitlines() or [''])[0]}"
        )
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
