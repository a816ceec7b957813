"""Repo snapshots: an image that already holds a repo's files, so the next sandbox need not copy them.

Copying a 20,000-file repo into a container costs several bare `docker run`s; a
container made from an image that holds the files starts as fast as any other. So,
for large repos, the first sandbox is committed to an image (tagged by the repo's
path), and later sandboxes start from it and sync only what changed since: rsync's
quick check (type, size, mtime second, executable bit, link target), with anything
in the snapshot the host no longer has deleted. Files whose mtime falls in or after
the second the copy began are always sent again (git's "racy" rule): an edit in that
second could keep both size and mtime.

A snapshot is committed before the model's first command and before the starting
state is recorded, so it holds the repo as copied and nothing else: nothing a model
did, no object git wrote for the base. What a snapshot holds is listed (by `find`, in the container, just before the
commit) into a manifest on the host, named by the image id; without the manifest, a
start lists the snapshot in the container instead.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import signal
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import docker
import docker.errors
from docker.models.containers import Container
from docker.models.images import Image

from patchwright.filerun import run_through_files
from patchwright.hostgit import run_git
from patchwright.repocopy import is_git_config, nul_listing
from patchwright.sandbox import labels
from patchwright.sandbox.base import WORKSPACE
from patchwright.workspace import Workspace

SNAPSHOT_REPO = "patchwright-snapshot"
MAX_CHANGED_SHARE = 0.25  # files changed between the snapshot's commit and HEAD: above this, rebuild
STALE_MIN_PATHS = 1000  # a sync sending more paths than this (and that share of all) starts fresh
STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM, signal.SIGHUP})
COMMIT_TIMEOUT = 3600  # seconds a snapshot commit may take (the engine copies the repo's files)

# `find` in the container prints one record per path: kind, size, mtime (whole seconds), mode
# (octal), path, link target.
FIND_ARGV = ["find", WORKSPACE, "-mindepth", "1", "-printf", "%y\\0%s\\0%Ts\\0%m\\0%P\\0%l\\0"]
# The same records on the host, for the NUL-separated paths on stdin (findutils 4.9 and later).
HOST_FIND_ARGV = ["find", "-files0-from", "-", "-maxdepth", "0", "-printf", "%y\\0%s\\0%Ts\\0%m\\0%p\\0%l\\0"]
_FIELDS = 6

# One path's record, as find prints it: kind ("f" file, "d" directory, "l" symlink; any other is
# always sent), size, mtime in whole seconds (the tar stream keeps no more), mode in octal, link
# target. Kept as text, in a plain tuple: a file that did not change has the same record on both
# sides, so the quick check on 20,000 paths is mostly one tuple comparison each (`plan_sync`),
# and only the records that differ as text are read as numbers (`_same`).
Entry = tuple[str, str, str, str, str]
_QUICK_KINDS = frozenset("fdl")


def entry(kind: str, size: int = 0, mtime: int = 0, mode: int = 0o644, target: str = "") -> Entry:
    """The record find would print for these numbers (where GNU find is not there to print it)."""
    return (kind, str(size), str(mtime), format(mode, "o"), target)


@dataclass(frozen=True)
class SyncPlan:
    """What brings a snapshot's workspace to the host's state: delete first, then send."""

    delete: list[str]  # paths to remove (whole trees), relative to the workspace
    send: list[str]  # host paths to copy in, parents before children
    send_bytes: int


def snapshot_tag(ws: Workspace) -> str:
    """One snapshot per repo on this machine, named by its path."""
    digest = hashlib.sha256(os.fsencode(ws.root)).hexdigest()[:16]
    return f"{SNAPSHOT_REPO}:{digest}"


def host_entries(ws: Workspace, members: list[str]) -> dict[str, Entry]:
    """The quick-check view of `members` (as `repocopy.copy_members` lists them) on the host.

    GNU find stats them all in one process, in the container's own record format. A loop of
    `os.lstat` here hands the GIL to the SDK's import and back at every call: 20,000 calls took
    1.0-1.4 s during that import, against 0.15 s alone. Where find cannot (BSD's), the loop."""
    if not members:
        return {}
    found = run_through_files(HOST_FIND_ARGV, input=nul_listing(members), cwd=ws.root)
    if found.stdout or found.returncode == 0:  # 1 also when a path went since it was listed
        return parse_find(found.stdout)
    entries: dict[str, Entry] = {}
    root = os.fsencode(ws.root) + b"/"
    for name in members:
        path = root + os.fsencode(name)
        try:
            info = os.lstat(path)
        except OSError:
            continue  # gone since it was listed; tar skips it too
        entries[name] = _entry(path, info)
    return entries


def _entry(path: bytes, info: os.stat_result) -> Entry:
    """The record HOST_FIND_ARGV prints for `path`."""
    mode = info.st_mode
    kind = "d" if stat.S_ISDIR(mode) else "l" if stat.S_ISLNK(mode) else "f" if stat.S_ISREG(mode) else "?"
    target = os.fsdecode(os.readlink(path)) if kind == "l" else ""
    return entry(kind, info.st_size, info.st_mtime_ns // 1_000_000_000, stat.S_IMODE(mode), target)


def parse_find(raw: bytes) -> dict[str, Entry]:
    """Records from FIND_ARGV's (or HOST_FIND_ARGV's) output, by path: every field as printed,
    cut by slicing, so no Python runs per path (this runs beside the SDK's import)."""
    fields = raw.decode("utf-8", "surrogateescape").split("\0")
    end = len(fields) - len(fields) % _FIELDS  # the trailing "" after the last NUL
    kinds, sizes, mtimes, modes, paths, targets = (fields[i:end:_FIELDS] for i in range(_FIELDS))
    return dict(zip(paths, zip(kinds, sizes, mtimes, modes, targets, strict=True), strict=True))


def _seconds(mtime: str) -> int:
    """Whole seconds from %Ts, or from %T@ ("1700000000.0000000000") in a manifest saved before."""
    return int(mtime.partition(".")[0])


def _same(want: Entry, have: Entry, racy_from: int) -> bool:
    """The quick check on two records that differ as text: a folder's size or time, a link's,
    never count; a file's group and other bits (a umask) neither, only whether its owner may
    run it."""
    kind = want[0]
    if kind != have[0]:
        return False
    if kind == "d":
        return True
    if kind == "l":
        return want[4] == have[4]
    if kind != "f":
        return False
    try:
        return (
            int(want[1]) == int(have[1])
            and _seconds(want[2]) == _seconds(have[2]) < racy_from
            and bool(int(want[3], 8) & stat.S_IXUSR) == bool(int(have[3], 8) & stat.S_IXUSR)
        )
    except ValueError:  # not a number: a find that does not know %Ts, say
        return False


def _under(path: str, roots: set[str]) -> bool:
    """Whether `path` or one of its parents is in `roots`."""
    while path:
        if path in roots:
            return True
        path = path.rpartition("/")[0]
    return False


def kept(path: str) -> bool:
    """Snapshot paths the host's listing leaves out but a start sends anyway: the sanitized
    git configs, which travel on their own."""
    return path.startswith(".git/") and is_git_config(path)


def plan_sync(
    host: dict[str, Entry], snapshot: dict[str, Entry], racy_from: int, keep: Callable[[str], bool] = kept
) -> SyncPlan:
    """Compare the host's entries with the snapshot's.

    A path whose record is the same text on both sides is unchanged (unless it is a file from
    the copy's own second, or of a kind never compared): one pass of tuple comparisons. Only
    the rest is looked at closely."""
    differ = [
        path
        for path, want in host.items()
        if want != snapshot.get(path)
        or want[0] not in _QUICK_KINDS
        or (want[0] == "f" and (not want[2].isdigit() or int(want[2]) >= racy_from))
    ]
    removed = {path for path in snapshot.keys() - host.keys() if not keep(path)}
    removed.update(
        path for path in differ if path in snapshot and snapshot[path][0] != host[path][0] and not keep(path)
    )
    delete = sorted(path for path in removed if not _under(path.rpartition("/")[0], removed))
    # What a removed folder held on the host goes again, whatever its record says.
    under_removed = {path for path in host if _under(path, removed)} if removed else set()
    if under_removed:
        looked_at = set(differ)
        differ = [path for path in host if path in looked_at or path in under_removed]
    send: list[str] = []
    send_bytes = 0
    for path in differ:
        have = snapshot.get(path)
        want = host[path]
        if have is None or path in under_removed or not _same(want, have, racy_from):
            send.append(path)
            send_bytes += int(want[1]) if want[0] == "f" and want[1].isdigit() else 0
    return SyncPlan(delete=delete, send=send, send_bytes=send_bytes)


def stale(plan: SyncPlan, paths: int) -> bool:
    """Whether a fresh copy beats this sync: a snapshot whose files all differ in time (a fresh
    clone of the same commit, say) would be sent whole, file by file into its layer on disk
    (12 s for the 20,000-file benchmark repo, against 0.7 s for a full copy into the tmpfs),
    and again at every start, since the snapshot itself stays as it was."""
    return len(plan.send) > max(STALE_MIN_PATHS, MAX_CHANGED_SHARE * paths)


def head_commit(ws: Workspace) -> str:
    """HEAD's commit id, or "" in a repo with no commits."""
    out = run_git(ws.root, "rev-parse", "-q", "--verify", "HEAD^{commit}")
    return out.stdout.decode().strip() if out.returncode == 0 else ""


def drifted(ws: Workspace, snapshot_head: str, file_count: int) -> bool:
    """Whether HEAD moved so far from the snapshot's (a pull, another branch) that a fresh copy
    beats syncing: more than MAX_CHANGED_SHARE of the files differ, or the old commit is gone."""
    head = head_commit(ws)
    if head == snapshot_head:
        return False
    if not head or not snapshot_head:
        return True
    out = run_git(
        ws.root,
        "diff",
        "--name-only",
        "--no-renames",
        "--no-ext-diff",
        "--no-textconv",
        "-z",
        snapshot_head,
        head,
    )
    if out.returncode != 0:
        return True
    changed = out.stdout.count(b"\0")
    return changed > MAX_CHANGED_SHARE * max(file_count, 1)


def _manifest_path(directory: str, image_id: str) -> str:
    return os.path.join(directory, image_id.removeprefix("sha256:") + ".find")


def save_manifest(directory: str, image_id: str, raw: bytes) -> None:
    """Keep FIND_ARGV's output for the snapshot `image_id` (written whole or not at all)."""
    os.makedirs(directory, exist_ok=True)
    path = _manifest_path(directory, image_id)
    partial = f"{path}.{os.getpid()}.tmp"
    with open(partial, "wb") as fh:
        fh.write(raw)
    os.replace(partial, path)


def load_manifest(directory: str, image_id: str) -> bytes | None:
    try:
        with open(_manifest_path(directory, image_id), "rb") as fh:
            return fh.read()
    except OSError:
        return None


def drop_manifest(directory: str, image_id: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(_manifest_path(directory, image_id))


def remove_manifests(directory: str, keep: set[str]) -> list[str]:
    """Delete manifests of snapshots not in `keep` (image ids); what was deleted."""
    kept = {image_id.removeprefix("sha256:") for image_id in keep}
    removed = []
    try:
        names = os.listdir(directory)
    except OSError:
        return []
    for name in names:
        if name.endswith(".find") and name.removesuffix(".find") not in kept:
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(directory, name))
                removed.append(name)
    return removed


# -- the engine's side: finding a current snapshot, committing a new one ---------------------


def current_snapshot(client: docker.DockerClient, ws: Workspace, base: Image) -> Image | None:
    """This repo's snapshot, if it was made from `base` and HEAD has not moved far since."""
    try:
        snapshot = client.images.get(snapshot_tag(ws))
    except docker.errors.ImageNotFound:
        return None
    found = snapshot.labels or {}
    numbers = (found.get(labels.COPIED_AT, ""), found.get(labels.FILE_COUNT, ""))
    if found.get(labels.BASE_IMAGE) != base.id or not all(n.isdigit() for n in numbers):
        return None
    if drifted(ws, found.get(labels.SNAPSHOT_HEAD, ""), int(numbers[1])):
        return None
    return snapshot


class SnapshotLock:
    """One builder of a repo's snapshot at a time on this machine: an flock on a file beside the
    manifests, which the kernel releases when its holder exits, however it exits. The file
    holds the holder's pid (for people and tests; the lock itself is the flock)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self, wait: float = 0.0) -> bool:
        """Take it, waiting up to `wait` seconds; False when another process holds it."""
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        deadline = time.monotonic() + wait
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    os.close(fd)
                    return False
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return True

    def adopt(self, fd: int) -> None:
        """Take over the lock through `fd`, a descriptor of the holder's own open file (passed to
        this process): the flock belongs to that open file, so it was never free in between."""
        os.set_inheritable(fd, False)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd

    def shared_fd(self) -> int | None:
        """A new descriptor holding the lock too (to hand the lock to another process), or None
        when it is not held."""
        fd = self._fd
        if fd is None:
            return None
        try:
            return os.dup(fd)
        except OSError:  # released just now
            return None

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing drops the flock

    def holder(self) -> int | None:
        """The pid of the process holding the lock, or None when it is free."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                text = os.read(fd, 32).decode(errors="replace").strip()
                return int(text) if text.isdigit() else -1
            return None
        finally:
            os.close(fd)


def lock_path(directory: str, ws: Workspace) -> str:
    """The lock file of this repo's snapshot, in the manifests' folder."""
    return os.path.join(directory, snapshot_tag(ws).partition(":")[2] + ".lock")


class Abandoned(Exception):
    """The build was handed to a detached process (snapshotjob.py) and stops here."""


@dataclass
class SnapshotBuild:
    """Builds a repo's snapshot on a thread of its own, in a container of its own.

    The builder gets its own copy of the repo and is committed once the copy is in, so
    the snapshot holds the repo as copied and nothing else, and the run's own sandbox
    never waits for it. A failed build costs the next run its head start, nothing else.
    With `lock`, a build another process holds the lock for is skipped (it is being made).
    """

    client: docker.DockerClient
    ws: Workspace
    image_labels: dict[str, str]  # the snapshot's: base image, file count
    make_builder: Callable[[], Container]  # a started container of the base image, repo in its layer
    fill: Callable[[Container], None]  # copy the repo into it
    list_files: Callable[[Container], tuple[bytes, int | None]]  # FIND_ARGV in it
    manifest_dir: str | None
    lock: SnapshotLock | None = None
    error: str | None = None
    _thread: threading.Thread | None = field(default=None, repr=False)
    _builder: Container | None = field(default=None, repr=False)
    _abandoned: bool = field(default=False, repr=False)
    _saving: bool = field(default=False, repr=False)
    _guard: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def start(self) -> None:
        self._thread = threading.Thread(target=self.run, name="patchwright-snapshot", daemon=True)
        self._thread.start()

    def wait(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def saving(self) -> bool:
        """Past its copy: listing and committing it, the one stage that may end soon."""
        return self._saving

    def wait_if_saving(self, timeout: float) -> None:
        """Wait up to `timeout` for a build that is saving; one still copying has its whole
        commit to go, so it is not waited for (a run ending on a fresh clone would wait, then
        hand it off anyway)."""
        if self._saving:
            self.wait(timeout)

    def abandon(self) -> None:
        """Stop the build without waiting: its builder is killed (the copy into it then fails and
        the thread removes it). What this process does not get to remove before it exits, the
        detached process that takes over removes (snapshotjob.py): the builder's run id says."""
        with self._guard:
            self._abandoned = True
            builder = self._builder
        if builder is not None:
            with contextlib.suppress(docker.errors.APIError):
                builder.kill()

    def run(self) -> None:
        """The build itself, in the calling thread (a detached job calls this directly)."""
        if self.lock is not None and not self.lock.acquire():
            self.error = "another process is saving this repository's snapshot"
            return
        try:
            self._build()
        finally:
            if self.lock is not None:
                self.lock.release()

    def _build(self) -> None:
        tag = snapshot_tag(self.ws)
        try:
            # A stop signal (snapshotjob.py) is held until the builder is known, so it is removed.
            held = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
            try:
                builder = self.make_builder()
                with self._guard:
                    self._builder = builder
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, held)
            if self._abandoned:
                raise Abandoned("handed to a detached process")
            copied_at = int(time.time())
            self.fill(builder)
            self._saving = True
            manifest, code = self.list_files(builder)
            try:
                previous: str | None = self.client.images.get(tag).id
            except docker.errors.ImageNotFound:
                previous = None
            found = {
                **self.image_labels,
                labels.COPIED_AT: str(copied_at),
                labels.SNAPSHOT_HEAD: head_commit(self.ws),
            }
            repository, _, name = tag.partition(":")
            if self._abandoned:
                raise Abandoned("handed to a detached process")
            # The SDK's 60 s would give up on a large repo while the engine is still committing.
            usual = self.client.api.timeout
            self.client.api.timeout = max(usual or 0, COMMIT_TIMEOUT)
            try:
                image = builder.commit(repository, name, conf={"Labels": found}, pause=True)
            finally:
                self.client.api.timeout = usual
            if self.manifest_dir and code == 0:
                save_manifest(self.manifest_dir, str(image.id), manifest)
            if previous is not None and previous != image.id:  # superseded; if in use, prune takes it later
                with contextlib.suppress(docker.errors.APIError):
                    self.client.images.remove(previous)
                    if self.manifest_dir:
                        drop_manifest(self.manifest_dir, previous)
        except Exception as err:
            self.error = str(err)
        finally:
            self._remove_builder()

    def _remove_builder(self) -> None:
        with self._guard:
            builder, self._builder = self._builder, None
        if builder is not None:
            with contextlib.suppress(docker.errors.APIError):
                builder.remove(force=True)
