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

from patchwright.errors import OutputError, WorkspaceError
from patchwright.hostgit import git_env, host_git, run_git
from patchwright.outputs import diff_header_paths, files_in_patch, looks_secret
from patchwright.sanitize import strip_userinfo

RUNS_DIR = Path(".patchwright") / "runs"
EXCLUDE_LINE = "/.patchwright/runs/"  # config and agents in .patchwright/ stay committable
TAR_CHUNK = 1 << 20

# Credentials must not enter the sandbox: URL user-info and http extra headers
# (actions/checkout stores the token as `http.<url>.extraheader`).
_SECRET_NAME = re.compile(r"(extraheader|pass|token|secret|cookie|oauth|auth|key|credential)", re.IGNORECASE)
_DROPPED_SECTIONS = {"credential", "include"}
_GIT_ENV = {**git_env(), "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": "/dev/null"}


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
        out = run_git(
            ws.root,
            "ls-files",
            "-z",
            "-t",
            "--cached",
            "--others",
            "--modified",
            "--deleted",
            "--exclude-standard",
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
        subsection = strip_userinfo(subsection)  # [url "https://token@host/"], [http "https://u:p@h"]
        value = strip_userinfo(value)
        if looks_secret(value) or looks_secret(subsection):
            continue  # a token by its shape (ghp_..., AKIA...), whatever the key is called
        header = (section, subsection or None)
        if header != current:
            sub = subsection.replace("\\", "\\\\").replace('"', '\\"')
            lines.append(f'[{section} "{sub}"]' if subsection else f"[{section}]")
            current = header
        lines.append(f"\t{name} = {_quote_config_value(value)}")
    return "\n".join(lines) + "\n" if lines else ""


def is_git_config(rel: str) -> bool:
    """Config files anywhere under .git: the repo's, worktrees', submodules' (.git/modules/*/config).
    Not the repo's own refs and reflogs (a branch called `config`); elsewhere, when in doubt, a
    file is taken for a config and sanitized, since a real one must never travel as it is."""
    if rel.startswith((".git/refs/", ".git/logs/")):
        return False
    return os.path.basename(rel) in ("config", "config.worktree")


# What of .git the model needs: the object store, refs, HEAD and the index (and the sanitized
# config, sent on its own). Not hooks, logs, credential stores (.git-credentials), FETCH_HEAD
# (remote URLs), submodules' and worktrees' git dirs, LFS caches or anything else found there.
_GIT_FILES = frozenset(
    {"HEAD", "ORIG_HEAD", "MERGE_HEAD", "CHERRY_PICK_HEAD", "REVERT_HEAD", "index", "packed-refs", "shallow"}
)
_GIT_TREES = ("objects", "refs")
_GIT_INFO = frozenset({"exclude", "attributes", "sparse-checkout"})
REACHABILITY_TIMEOUT = 20.0  # seconds for `git rev-list --objects --all` before a stricter rule applies


def _loose_objects(git_dir: Path) -> dict[str, str]:
    """Loose object ids -> their path relative to git_dir."""
    found: dict[str, str] = {}
    objects = git_dir / "objects"
    try:
        folders = [e for e in os.scandir(objects) if len(e.name) == 2 and e.is_dir(follow_symlinks=False)]
    except OSError:
        return found
    for folder in folders:
        for entry in os.scandir(folder.path):
            found[folder.name + entry.name] = f"objects/{folder.name}/{entry.name}"
    return found


def _listed_ids(ws: Workspace, *args: str, timeout: float, column: int = 0) -> set[str] | None:
    """Object ids in a column of a git command's output; None when it fails or runs long."""
    try:
        out = subprocess.run(
            host_git(ws.root, *args), capture_output=True, env=git_env(ws.root), timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return None
    if out.returncode != 0:
        return None
    lines = out.stdout.decode(errors="replace").splitlines()
    return {fields[column] for line in lines if len(fields := line.split("\t")[0].split()) > column}


def unreachable_loose(ws: Workspace, git_dir: Path) -> set[str]:
    """Loose objects (as paths relative to git_dir) no ref, HEAD or the index reaches: the blob of a
    `.env` once added and reset, say. They stay on the host."""
    loose = _loose_objects(git_dir)
    if not loose:
        return set()
    staged = _listed_ids(ws, "ls-files", "-s", timeout=REACHABILITY_TIMEOUT, column=1) or set()
    head = _listed_ids(ws, "ls-tree", "-r", "-t", "HEAD", timeout=REACHABILITY_TIMEOUT, column=2)
    candidates = set(loose) - staged - (head or set())
    if not candidates:
        return set()
    reachable = _listed_ids(
        ws, "rev-list", "--objects", "--all", "--indexed-objects", timeout=REACHABILITY_TIMEOUT
    )
    if reachable is None:  # too slow or failed: keep only what the index and HEAD hold
        reachable = set()
    return {loose[oid] for oid in candidates - reachable}


def _cruft_packs(git_dir: Path) -> set[str]:
    """Packs of unreachable objects (`git gc --cruft`): every file of such a pack."""
    pack_dir = git_dir / "objects" / "pack"
    try:
        names = os.listdir(pack_dir)
    except OSError:
        return set()
    stems = {n.removesuffix(".mtimes") for n in names if n.endswith(".mtimes")}
    return {f"objects/pack/{n}" for n in names if n.rpartition(".")[0] in stems}


def _git_dir_members(ws: Workspace) -> list[str]:
    """What of .git travels (see _GIT_FILES): never its config files, which travel sanitized
    (git_config_tar), nor objects nothing reaches."""
    git_dir = ws.root / ".git"
    members = [".git"]
    skip = unreachable_loose(ws, git_dir) | _cruft_packs(git_dir)
    for name in sorted(_GIT_FILES):
        path = git_dir / name
        if path.is_file() and not path.is_symlink():
            members.append(f".git/{name}")
    info = git_dir / "info"
    if info.is_dir() and not info.is_symlink():
        members.append(".git/info")
        members += [f".git/info/{n}" for n in sorted(_GIT_INFO) if (info / n).is_file()]
    for tree in _GIT_TREES:
        top = git_dir / tree
        if not top.is_dir() or top.is_symlink():
            continue
        for dirpath, dirnames, filenames in os.walk(top):
            rel = os.path.relpath(dirpath, git_dir)
            members.append(f".git/{rel}")
            dirnames[:] = [d for d in dirnames if not os.path.islink(os.path.join(dirpath, d))]
            for name in filenames:
                inner = os.path.join(rel, name)
                if inner not in skip:
                    members.append(f".git/{inner}")
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


def _tar_argv(uid: int, gid: int) -> list[str]:
    """GNU tar writing an archive of the NUL-separated names on its stdin, owned by uid:gid."""
    return [
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
    ]


def _listing(members: list[str]) -> bytes:
    return "\0".join(members).encode("utf-8", "surrogateescape") + b"\0"


def tar_members(ws: Workspace, members: list[str], uid: int, gid: int) -> Iterator[bytes]:
    """Stream a tar of exactly `members` (paths relative to the repo root), owned by uid:gid."""
    proc = subprocess.Popen(
        _tar_argv(uid, gid),
        cwd=ws.root,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdin is not None and proc.stdout is not None
    listing = _listing(members)
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


def tar_into(ws: Workspace, members: list[str], uid: int, gid: int, fd: int, timeout: float) -> int:
    """Write a tar of exactly `members` straight into `fd` (a blocking socket or pipe); tar's exit code.

    No byte passes through this process: while the copy runs, Python only waits, so a thread
    busy elsewhere (the SDK's import) neither slows the copy nor is slowed by it.
    """
    proc = subprocess.Popen(
        _tar_argv(uid, gid), cwd=ws.root, stdin=subprocess.PIPE, stdout=fd, stderr=subprocess.DEVNULL
    )
    try:
        proc.communicate(_listing(members), timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    return proc.returncode


def git_config_tar(ws: Workspace, uid: int, gid: int) -> bytes | None:
    """A tar of the repo's git config files (.git/config, .git/config.worktree), sanitized;
    None when there are none. (Submodules' and worktrees' git dirs do not travel.)"""
    if not ws.git_dir_is_local:
        return None
    buf = io.BytesIO()
    count = 0
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for rel in (".git/config", ".git/config.worktree"):
            path = ws.root / rel
            if path.is_symlink() or not path.is_file():
                continue
            data = sanitize_git_config(path.read_text(errors="surrogateescape")).encode(
                errors="surrogateescape"
            )
            info = tarfile.TarInfo(rel)
            info.size, info.uid, info.gid, info.mode = len(data), uid, gid, 0o644
            tar.addfile(info, io.BytesIO(data))
            count += 1
    return buf.getvalue() if count else None


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


@dataclass(frozen=True)
class ApplyResult:
    applied: bool
    message: str


# Paths a model-made patch must never change on the host: each would let the model instruct,
# configure or re-point the next run (agent and instruction files, patchwright's config) or
# change what git itself does with the tree. Compared case-insensitively (macOS, Windows).
PROTECTED_DIRS = frozenset({".git", ".patchwright", ".claude", ".cursor", ".windsurf"})
PROTECTED_FILES = frozenset(
    {
        "claude.md",
        "claude.local.md",
        "agents.md",
        "gemini.md",
        ".cursorrules",
        ".windsurfrules",
        ".clinerules",
        "copilot-instructions.md",
        ".gitattributes",
        ".gitmodules",
    }
)
MAX_APPLY_BYTES = 50 * 1024 * 1024  # a patch for a human to review, not a data dump
MAX_APPLY_FILES = 2000


def _path_problem(name: str) -> str | None:
    parts = name.split("/")
    lowered = [p.lower() for p in parts]
    if name.startswith("/") or ".." in parts:
        return f"{name}: path leaves the repository"
    if ".git" in lowered or lowered[0] == ".patchwright":
        return f"{name}: touches git internals or patchwright's own files"
    if PROTECTED_DIRS & set(lowered[:-1]) or lowered[-1] in PROTECTED_FILES:
        return f"{name}: touches agent, instruction or git attribute files, which steer later runs"
    return None


def patch_problems(patch: str) -> list[str]:
    """Why a model-made patch must not touch the host repo: .git or .patchwright paths,
    absolute or `..` paths, agent/instruction files, gitlinks, and symlinks (new or retargeted)
    that point outside the repository."""
    problems: list[str] = []
    path = ""
    symlink = False

    def check(name: str) -> None:
        problem = _path_problem(name)
        if problem:
            problems.append(problem)

    for line in patch.splitlines():
        if line.startswith("diff --git "):
            symlink = False
            targets = diff_header_paths(line)
            path = targets[-1] if targets else ""
            if not targets:
                problems.append(f"{line[:120]!r}: a diff header patchwright cannot read")
            for name in dict.fromkeys(targets):
                check(name)
        elif line.startswith(("rename to ", "copy to ", "rename from ", "copy from ")):
            check(line.split(" ", 2)[2])
        elif line.startswith(("new file mode ", "new mode ")):
            mode = line.rsplit(" ", 1)[-1]
            symlink = mode == "120000"
            if mode == "160000":
                problems.append(f"{path}: adds a submodule link")
        elif line.startswith("index ") and line.endswith(" 120000"):
            symlink = True  # an existing symlink whose target changes
        elif line.startswith("index ") and line.endswith(" 160000"):
            problems.append(f"{path}: changes a submodule link")
        elif symlink and line.startswith("GIT binary patch"):
            problems.append(f"{path}: a symlink target in binary form")
        elif symlink and line.startswith("+") and not line.startswith("+++"):
            target = line[1:]
            resolved = posixpath.normpath(posixpath.join(posixpath.dirname(path), target))
            if target.startswith("/") or resolved == ".." or resolved.startswith("../"):
                problems.append(f"{path}: symlink to {target} points outside the repository")
    return problems


def _file_section(patch: str, name: str) -> str:
    """The part of `patch` that changes `name` (from its `diff --git` line to the next)."""
    out: list[str] = []
    inside = False
    for line in patch.splitlines(keepends=True):
        if line.startswith("diff --git "):
            inside = name in diff_header_paths(line.rstrip("\n"))
        if inside:
            out.append(line)
    return "".join(out)


def _patchwright_table(text: str | None) -> object:
    if text is None:
        return None
    import tomllib

    return tomllib.loads(text).get("tool", {}).get("patchwright")


def config_problems(ws: Workspace, patch: str) -> list[str]:
    """A patch that changes `[tool.patchwright]` in the root pyproject.toml (the repo's
    patchwright settings) is refused, like one touching .patchwright/config.toml."""
    section = _file_section(patch, "pyproject.toml")
    if not section:
        return []
    current = ws.root / "pyproject.toml"
    with tempfile.TemporaryDirectory() as scratch:
        before: str | None = None
        if current.is_file() and not current.is_symlink():
            before = current.read_text(errors="replace")
            Path(scratch, "pyproject.toml").write_text(before)
        Path(scratch, "p.diff").write_text(section)
        applied = subprocess.run(
            ["git", "-c", "core.hooksPath=/dev/null", "apply", "p.diff"],
            cwd=scratch,
            capture_output=True,
            env={**_GIT_ENV, "GIT_CEILING_DIRECTORIES": os.path.dirname(scratch)},  # no repo: plain patch
        )
        if applied.returncode != 0:
            return []  # git apply --check on the repo reports it
        after_path = Path(scratch, "pyproject.toml")
        after = after_path.read_text(errors="replace") if after_path.exists() else None
    try:
        changed = _patchwright_table(before) != _patchwright_table(after)
    except ValueError:
        changed = True
    return ["pyproject.toml: changes [tool.patchwright], patchwright's own settings"] if changed else []


def apply_patch(ws: Workspace, patch_file: Path) -> ApplyResult:
    """Apply a patch to the host working tree, only if it is safe, within the size and file
    limits, and `git apply --check` accepts it whole. git runs no program the repo names."""
    size = patch_file.stat().st_size
    if size > MAX_APPLY_BYTES:
        return ApplyResult(
            False,
            f"patch not applied: it is {size / 2**20:.1f} MiB, over the --apply limit of "
            f"{MAX_APPLY_BYTES // 2**20} MiB",
        )
    text = patch_file.read_text(errors="surrogateescape")
    count = len(files_in_patch(text))
    if count > MAX_APPLY_FILES:
        return ApplyResult(
            False, f"patch not applied: it changes {count} files, over the --apply limit of {MAX_APPLY_FILES}"
        )
    problems = patch_problems(text) or config_problems(ws, text)
    if problems:
        return ApplyResult(
            False,
            f"patch not applied: {problems[0]}"
            + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""),
        )
    check = run_git(ws.root, "apply", "--check", "--binary", "--", str(patch_file))
    if check.returncode != 0:
        first = (check.stderr.decode(errors="replace").strip().splitlines() or [""])[0]
        return ApplyResult(False, f"patch does not apply cleanly: {first}")
    done = run_git(ws.root, "apply", "--binary", "--", str(patch_file))
    if done.returncode != 0:
        return ApplyResult(False, f"git apply failed: {done.stderr.decode(errors='replace').strip()}")
    stat = run_git(ws.root, "apply", "--stat", "--", str(patch_file)).stdout.decode(errors="replace").strip()
    return ApplyResult(True, f"applied to {ws.root}:\n{stat}")


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
