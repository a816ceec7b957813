"""Getting the repository into a container: a full copy, or a sync of a snapshot.

The files git sees travel as one GNU tar stream into `tar -x` running as the sandbox
user (measured faster than the engine's archive API in benchmarks/startup.py; the
files come out owned by that user with no root step). The sanitized git configs
follow in the same stream.
"""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import Callable
from dataclasses import dataclass

import docker
from docker.models.containers import Container
from docker.models.images import Image

from patchwright.errors import SandboxError
from patchwright.repocopy import (
    PendingScan,
    copy_members,
    git_config_tar,
    nul_listing,
    scan_files,
    tar_into,
    tar_members,
)
from patchwright.sandbox import labels
from patchwright.sandbox.base import WORKSPACE, SandboxSpec
from patchwright.sandbox.copypipe import CopyPipe, SpooledCopy
from patchwright.sandbox.engine import ContainerExec, container_options, engine_cpus, stdin_fd
from patchwright.sandbox.env import GID, UID
from patchwright.sandbox.snapshot import (
    FIND_ARGV,
    Entry,
    SnapshotBuild,
    SnapshotLock,
    SyncPlan,
    host_entries,
    parse_find,
    plan_sync,
    stale,
)
from patchwright.sandbox.stream import CappedBuffer
from patchwright.workspace import Workspace

Progress = Callable[[str], None]


@dataclass(frozen=True)
class HostView:
    """The host side of a start: what git sees, what travels, its quick-check view, what differs
    from the index."""

    files: list[str]
    members: list[str]  # parent dirs, files, .git
    entries: dict[str, Entry]  # only when starting from a snapshot
    dirty: list[str]


def list_host(ws: Workspace, with_entries: bool, pending: PendingScan | None = None) -> HostView:
    """What travels, from `pending` (the walk begun at launch) or a walk made now."""
    scan = pending.result() if pending is not None else scan_files(ws)
    listed = pending.members if pending is not None else None  # listed ahead, for the spool
    members = listed if listed is not None else copy_members(ws, scan.files)
    entries = host_entries(ws, members) if with_entries else {}
    return HostView(scan.files, members, entries, scan.dirty)


COPY_TIMEOUT = 1800.0  # seconds the host's tar may take to write a repo into the sandbox


def extract(runner: ContainerExec, ws: Workspace, members: list[str], extra: list[bytes]) -> None:
    """Extract a tar of `members`, then the archives in `extra`, one after another (--ignore-zeros
    reads past each one's end), as the sandbox user.

    The host's tar writes into the exec's socket itself (`tar_into`); through Python only when
    the socket is TLS."""
    errors = CappedBuffer(4096)
    argv = ["tar", "-x", "-i", "-f", "-", "-C", WORKSPACE]

    def send(sock: socket.socket) -> None:
        if not members:
            return
        with stdin_fd(sock) as fd:
            if fd is None:
                for chunk in tar_members(ws, members, UID, GID):
                    sock.sendall(chunk)
            elif (code := tar_into(ws, members, UID, GID, fd, COPY_TIMEOUT)) != 0:
                errors.take(f"the host's tar exited with {code}\n".encode())

    code = runner.stream(argv, errors.take, send=send, stdin=extra, what="copy the repository")
    if code != 0:
        detail = errors.render()[0].strip().splitlines()[-1:] or [f"tar exited with {code}"]
        raise SandboxError(f"cannot copy the repository into the sandbox: {detail[0][:200]}")


def copy_from_image(runner: ContainerExec, path: str, progress: Progress) -> None:
    """The image already holds the repo at `path` (SWE-bench's /testbed): copy it into the workspace
    as the sandbox user, who can then edit it. Packages the image installed from `path` in editable
    mode still import from there, not from the copy."""
    if not path.startswith("/") or "\0" in path:
        raise SandboxError(f"image workspace {path!r}: not an absolute path")
    progress(f"copying the image's repo from {path} into the sandbox")
    argv = [
        "cp",
        "-R",
        "-P",
        "--preserve=mode,timestamps,links",
        "--",
        f"{path.rstrip('/')}/.",
        f"{WORKSPACE}/",
    ]
    result = runner.execute(argv, timeout=600)
    if result.exit_code != 0:
        tail = result.output.strip().splitlines()[-1:] or [f"cp exited with {result.exit_code}"]
        raise SandboxError(f"cannot copy the repo from the image's {path}: {tail[0][:200]}")


def _configs(ws: Workspace) -> list[bytes]:
    config = git_config_tar(ws, UID, GID)
    return [config] if config is not None else []


def copy_all(
    runner: ContainerExec,
    ws: Workspace,
    view: HostView,
    progress: Progress,
    pipe: CopyPipe | SpooledCopy | None = None,
) -> None:
    """The whole repo, as git sees it, into an empty workspace: through `pipe` when the engine
    could mount one (copypipe.py), else (or if that failed) through the exec's stdin."""
    progress(f"copying {len(view.files)} files into the sandbox")
    if pipe is not None:
        try:
            pipe.extract(runner, ws, view.members, _configs(ws), COPY_TIMEOUT)
            return
        except SandboxError as err:
            progress(f"{err}; copying through the engine instead")
            empty_workspace(runner)
    extract(runner, ws, view.members, _configs(ws))


def empty_workspace(runner: ContainerExec) -> None:
    """Remove what a failed copy left (folders it made read-only too)."""
    script = f"chmod -R u+w {WORKSPACE} 2>/dev/null; find {WORKSPACE} -mindepth 1 -delete"
    result = runner.execute(["sh", "-c", script], timeout=600)
    if result.exit_code != 0:
        raise SandboxError(f"cannot empty the workspace for a second copy: {result.output.strip()[-200:]}")


def sync(
    runner: ContainerExec,
    ws: Workspace,
    view: HostView,
    manifest: bytes | None,
    racy_from: int,
    progress: Progress,
) -> SyncPlan:
    """Bring a snapshot's workspace to the host's state: delete what went, send what changed.

    `manifest`: the snapshot's listing kept on the host; without it, listed in the container.
    """
    if manifest is None:
        manifest, code = runner.collect(FIND_ARGV, max_bytes=1 << 30)
        if code != 0:
            raise SandboxError(f"cannot list the snapshot's files (find exited with {code})")
    plan = plan_sync(view.entries, parse_find(manifest), racy_from)
    if stale(plan, len(view.entries)):
        raise SandboxError(f"it is out of date: {len(plan.send)} of {len(view.entries)} paths differ")
    progress(f"from the snapshot: {len(plan.send)} paths to copy, {len(plan.delete)} to remove")
    if plan.delete:  # on stdin: any bytes a name holds arrive as they are
        listing = nul_listing(plan.delete)
        output = CappedBuffer(4096)
        argv = ["xargs", "-0", "-r", "rm", "-rf", "--"]
        code = runner.stream(argv, output.take, stdin=[listing], what="sync")
        if code != 0:
            raise SandboxError(
                f"cannot remove what the repo no longer has: {output.render()[0].strip()[-200:]}"
            )
    extract(runner, ws, plan.send, _configs(ws))
    return plan


def build_snapshot(
    client: docker.DockerClient,
    ws: Workspace,
    base: Image,
    view: HostView,
    spec: SandboxSpec,
    image_labels: dict[str, str],
    lock: SnapshotLock | None = None,
    start: bool = True,
) -> SnapshotBuild:
    """Start building the repo's snapshot: its own copy of the repo in a container of its own
    (hardened as a sandbox, labelled with the run so prune finds it), committed once the copy is in.
    `start=False`: not begun; the caller runs it (`SnapshotBuild.run`) in its own thread."""
    builder_spec = dataclasses.replace(spec, run_id=builder_run_id(spec.run_id))

    def make_builder() -> Container:
        options = container_options(builder_spec, True, engine_cpus(client, spec.cpus))
        container = client.containers.create(base, **options)
        container.start()
        return container

    def runner(container: Container) -> ContainerExec:
        return ContainerExec(client, str(container.id), WORKSPACE)

    def quiet(_: str) -> None:
        pass

    found = {
        **image_labels,
        labels.MANAGED: labels.MANAGED_VALUE,
        labels.KIND: labels.KIND_SNAPSHOT,
        labels.RUN_ID: "",
        labels.OWNER: "",
    }
    build = SnapshotBuild(
        client,
        ws,
        found,
        make_builder,
        lambda container: copy_all(runner(container), ws, view, quiet),
        lambda container: runner(container).collect(FIND_ARGV, max_bytes=1 << 30),
        spec.manifest_dir,
        lock,
    )
    if start:
        build.start()
    return build


def builder_run_id(run_id: str) -> str:
    """The run id on the container a run's snapshot is built in."""
    return f"{run_id}-snapshot"
