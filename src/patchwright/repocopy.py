"""What of the host repository travels into the sandbox, and how.

This is the credential-bearing boundary: the files git sees (tracked and untracked, not
ignored), the parts of `.git` a fresh checkout needs, and the git config with its
credentials stripped (URL user-info, extra headers, credential helpers, includes), streamed
as a tar by the host's own tar.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import stat
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from patchwright.ci import is_ci
from patchwright.errors import WorkspaceError
from patchwright.filerun import Running, run_through_files, start_through_files
from patchwright.hostgit import configless_env, git_env, host_git
from patchwright.outputs import looks_secret
from patchwright.sanitize import strip_userinfo
from patchwright.workspace import Workspace

TAR_CHUNK = 1 << 20

# Credentials must not enter the sandbox: URL user-info and http extra headers
# (actions/checkout stores the token as `http.<url>.extraheader`).
_SECRET_NAME = re.compile(r"(extraheader|pass|token|secret|cookie|oauth|auth|key|credential)", re.IGNORECASE)
_DROPPED_SECTIONS = {"credential", "include"}


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
    return begin_scan(ws).result()


_LS_FILES = ("ls-files", "-z", "-t", "--cached", "--others", "--modified", "--deleted", "--exclude-standard")


def begin_scan(ws: Workspace) -> PendingScan:
    """`scan_files`, begun: git walks the tree while this process goes on (cli.py begins it
    before the run's own imports, which leave the second core idle)."""
    return PendingScan(ws, start_through_files(host_git(ws.root, *_LS_FILES), env=git_env(ws.root)))


class PendingScan:
    """A `git ls-files` walk under way; `result` waits for it, `close` drops one not needed.

    With `spool_into`, the copy's tar is written ahead too, into a file, as soon as the walk
    ends: on a thread that waits for git, lists what travels, and starts the host's tar."""

    def __init__(self, ws: Workspace, running: Running) -> None:
        self.ws = ws
        self.running = running
        self.members: list[str] | None = None  # what travels, once listed ahead
        self.spool: Spool | None = None  # the tar written ahead, once begun
        self._lock = threading.Lock()
        self._scan: FileScan | WorkspaceError | None = None
        self._ahead: threading.Thread | None = None

    def spool_into(self, folder: Path, uid: int, gid: int, cap: int) -> None:
        """Write the copy's tar (owned by uid:gid) into `folder`, which the spool then owns; a
        tar that would pass `cap` bytes is stopped (the copy then goes the usual way)."""

        def ahead() -> None:
            try:
                scan = self.result()
                self.members = copy_members(self.ws, scan.files)
                self.spool = Spool.begin(self.ws, self.members, folder, uid, gid, cap)
            except Exception:  # no spool, then; the sandbox's own listing says what went wrong
                shutil.rmtree(folder, ignore_errors=True)

        self._ahead = threading.Thread(target=ahead, name="patchwright-copy-ahead", daemon=True)
        self._ahead.start()

    def take_spool(self) -> Spool | None:
        """The spool, once its tar is under way (this waits for the walk and the list, not the
        tar); the caller owns it then, and closes it."""
        if self._ahead is not None:
            self._ahead.join()
        spool, self.spool = self.spool, None
        return spool

    def close(self) -> None:
        if self._ahead is not None:
            self._ahead.join()
        self.running.close()
        if self.spool is not None:
            self.spool.close()

    def result(self) -> FileScan:
        with self._lock:
            if self._scan is None:
                ws = self.ws
                done = self.running.finish()
                if done.returncode != 0:
                    err = done.stderr.decode().strip()
                    self._scan = WorkspaceError(f"git ls-files failed in {ws.root}: {err}")
                else:
                    self._scan = _parse_scan(ws, done.stdout)
            if isinstance(self._scan, WorkspaceError):
                raise self._scan
            return self._scan


SPOOL_NAME = "copy.tar"
SPOOL_ROOT = "/dev/shm"  # memory: a spool on disk would leave the engine's next fsync to flush it
SPOOL_CAP = 512 << 20  # bytes; and at most a quarter of the room left there
SPOOL_FLOOR = 64 << 20  # less room than this (a container's own 64 MiB /dev/shm): the pipe, as before


def writes_ahead(snapshots: bool | None, env: dict[str, str]) -> bool:
    """Whether a run's copy is written ahead into a spool: one that builds no snapshot (CI's, or
    `--no-snapshots`), on an engine that looks local (the sandbox checks it; a spool it cannot
    mount is dropped)."""
    host = env.get("DOCKER_HOST", "")
    local = sys.platform == "linux" and (not host or host.startswith("unix://"))
    return local and (snapshots is False or (snapshots is None and is_ci(env)))


SPOOL_STALE = 3600.0  # seconds: a spool lives for a start's second or two; older, its run was killed


def remove_stale_spools(root: str = SPOOL_ROOT, older_than: float = SPOOL_STALE) -> list[str]:
    """Spool folders a run killed during its start (SIGKILL) left in memory; removed, named."""
    removed: list[str] = []
    try:
        entries = [e for e in os.scandir(root) if e.name.startswith("patchwright-copy-")]
    except OSError:
        return removed
    for entry in entries:
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if (
            not stat.S_ISDIR(info.st_mode)
            or info.st_uid != os.getuid()
            or time.time() - info.st_mtime < older_than
        ):
            continue
        with contextlib.suppress(OSError):
            os.truncate(os.path.join(entry.path, SPOOL_NAME), 0)
        shutil.rmtree(entry.path, ignore_errors=True)
        removed.append(entry.path)
    return removed


def spool_folder() -> tuple[Path, int] | None:
    """A new folder (mode 0700) for a spool and the bytes it may take, or None where there is no
    room in memory or no `prlimit` to hold the tar to it."""
    try:
        room = os.statvfs(SPOOL_ROOT)
    except OSError:
        return None
    cap = min(SPOOL_CAP, room.f_bavail * room.f_frsize // 4)
    if cap < SPOOL_FLOOR or shutil.which("prlimit") is None:
        return None
    try:
        return Path(tempfile.mkdtemp(prefix="patchwright-copy-", dir=SPOOL_ROOT)), cap
    except OSError:
        return None


@dataclass
class Spool:
    """The copy's tar written into a file of a folder of its own (mode 0700) while the run starts:
    `copypipe.SpooledCopy` mounts that one file where the pipe would be."""

    folder: Path
    running: Running

    @property
    def path(self) -> Path:
        return self.folder / SPOOL_NAME

    @classmethod
    def begin(cls, ws: Workspace, members: list[str], folder: Path, uid: int, gid: int, cap: int) -> Spool:
        path = folder / SPOOL_NAME
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        try:
            argv = ["prlimit", f"--fsize={cap}", "--", *_tar_argv(uid, gid)]  # past it: SIGXFSZ
            running = start_through_files(argv, input=nul_listing(members), cwd=ws.root, stdout=fd)
        finally:
            os.close(fd)
        return cls(folder, running)

    @property
    def failed(self) -> bool:
        """Its tar has ended with an error already (stopped at its cap, say)."""
        return self.running.process.poll() not in (None, 0)

    def finish(self, timeout: float | None = None) -> int:
        """Wait for the host's tar; its exit code (-9: killed at the timeout)."""
        try:
            return self.running.finish(timeout).returncode
        except subprocess.TimeoutExpired:
            return -9

    def append(self, archives: list[bytes]) -> None:
        with open(self.path, "ab") as fh:
            for archive in archives:
                fh.write(archive)

    def close(self) -> None:
        """Stop the tar if it runs, and free the file: emptied first, since a container that
        mounted it keeps it alive after it is unlinked."""
        self.running.close()
        with contextlib.suppress(OSError):
            os.truncate(self.path, 0)
        shutil.rmtree(self.folder, ignore_errors=True)


def _parse_scan(ws: Workspace, out: bytes) -> FileScan:
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
            ["git", "config", "--file", fh.name, "--list", "-z"], capture_output=True, env=configless_env()
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


def nul_listing(names: Iterable[str]) -> bytes:
    """Paths as `tar -T`, `find -files0-from`, `xargs -0` and `git update-index -z` read them:
    each ended by a NUL, any bytes a name holds kept as they are."""
    return b"".join(os.fsencode(name) + b"\0" for name in names)


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
    listing = nul_listing(members)
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
    try:
        argv = _tar_argv(uid, gid)
        return run_through_files(
            argv, input=nul_listing(members), cwd=ws.root, stdout=fd, timeout=timeout
        ).returncode
    except subprocess.TimeoutExpired:
        return -9  # killed


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
