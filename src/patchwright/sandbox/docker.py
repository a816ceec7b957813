"""The local Docker runtime: a hardened container holding a copy of the repository.

Hardening: non-root uid, all capabilities dropped, no-new-privileges, read-only
root filesystem, pids/memory/CPU limits, no network unless the setup phase asks
for it (and then cut before the model's first command), no host environment.
The repository travels in as a tar stream into a volume of the container's own.

Large repos (SandboxSpec.snapshot_min_files files or more) instead live in the container's own
layer, so the container can be committed as a snapshot and later ones start from it
(see snapshot.py). A committed layer cannot sit under a read-only root, so there the
root stays writable to root only: the image's world-writable /var/tmp and /run/lock
are covered by read-only tmpfs mounts, so the sandbox user can write exactly what it
can under a read-only root (the workspace, /tmp, home), which tests check.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import os
import secrets
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import docker
import docker.errors
from docker.models.containers import Container
from docker.models.images import Image
from docker.types import Mount

from patchwright.errors import SandboxError
from patchwright.sandbox import labels
from patchwright.sandbox.base import WORKSPACE, CommandResult, SandboxSpec
from patchwright.sandbox.shell import DRIVER, RUNNER, ShellBroken, ShellSession
from patchwright.sandbox.snapshot import (
    FIND_ARGV,
    Entry,
    SyncPlan,
    drifted,
    drop_manifest,
    head_commit,
    host_entries,
    load_manifest,
    parse_find,
    plan_sync,
    save_manifest,
    snapshot_tag,
)
from patchwright.sandbox.stream import CappedBuffer, FrameReader, StreamClosed, StreamTimeout, command_result
from patchwright.services import ServiceSet
from patchwright.workspace import (
    Workspace,
    copy_members,
    git_config_tar,
    scan_files,
    tar_members,
)


@dataclass(frozen=True)
class HostView:
    """The host side of a start: what git sees, what travels, its quick-check view, what differs
    from the index."""

    files: list[str]
    members: list[str]  # parent dirs, files, .git
    entries: dict[str, Entry]  # only when starting from a snapshot
    dirty: list[str]


UID = GID = 1000
HOME = "/home/agent"
CONTROL_DIR = "/tmp/.patchwright"
BASE_REF = "refs/patchwright/base"
COMMIT_TIMEOUT = 3600  # seconds a snapshot commit may take (the engine copies the repo's files)
WORLD_WRITABLE = ("/var/tmp", "/run/lock")  # in the image, besides /tmp: covered when the root is writable


def trusted_git(index_file: str) -> str:
    """A git command line the model cannot redirect: fixed binary and PATH, no user/system config,
    no hooks, its own index (the model's own git use never moves the base)."""
    return (
        f"env -i HOME=/tmp PATH=/usr/bin:/bin GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null "
        f"GIT_INDEX_FILE={index_file} /usr/bin/git -c core.hooksPath=/dev/null -c core.quotepath=off "
        "-c core.fsmonitor=false -c core.splitIndex=false"
    )


BASE_ENV = {
    "HOME": HOME,
    "USER": "agent",
    "LANG": "C.UTF-8",
    "PATH": f"{HOME}/.local/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "PIP_BREAK_SYSTEM_PACKAGES": "1",
    "PIP_USER": "1",
    "PYTHONDONTWRITEBYTECODE": "1",
    "GIT_PAGER": "cat",
    "PAGER": "cat",
    "TERM": "dumb",
}
HOST_CA_PATH = f"{CONTROL_DIR}/host-ca.pem"
CA_ENV_NAMES = (
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "PIP_CERT",
    "NODE_EXTRA_CA_CERTS",
    "GIT_SSL_CAINFO",
    "CURL_CA_BUNDLE",
    "npm_config_cafile",
)

Progress = Callable[[str], None]
# Kills every process but init, the container's main process (init's oldest child) and itself.
KILL_ALL = """
main=$(pgrep -o -P 1)
for pid in $(ps -e -o pid=); do
  case " 1 $main $$ $PPID " in *" $pid "*) ;; *) kill -KILL "$pid" 2>/dev/null ;; esac
done
exit 0
"""


def _quiet(_: str) -> None:
    pass


class DockerSandbox:
    """A `Sandbox` on the local Docker engine. One instance, one container, one run."""

    def __init__(
        self,
        client: docker.DockerClient,
        spec: SandboxSpec,
        workspace: Workspace,
        progress: Progress = _quiet,
        services: ServiceSet | None = None,
    ) -> None:
        self.client = client
        # -- services (issue 11): started in this container's network namespace, gone with it
        self.services = services if services is not None else ServiceSet(None, [])
        self.spec = spec
        self.workspace = workspace
        self.progress = progress
        self.container: Container | None = None
        self._shell: ShellSession | None = None
        self._base_tree: str | None = None
        self._shell_env: dict[str, str] = {}  # extra variables for the model's shell
        self._host: HostView | None = None
        self._base_image: Image | None = None
        self._snapshot: Image | None = None  # the snapshot this container starts from
        self._snapshot_labels: dict[str, str] | None = None  # set when this container will be one
        self._committer: threading.Thread | None = None
        self._in_layer = False  # the workspace is in the container's own layer (snapshots), not a volume
        self._started = False  # start() is over: the next command records the starting state first
        self.sync_plan: SyncPlan | None = None  # what a start from a snapshot copied and removed
        self.setup_result: CommandResult | None = None  # the setup command's output, for the run's record
        self.snapshot_error: str | None = None  # why the last commit failed (a slow start, nothing worse)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Create the container, copy the repo in, run setup, cut the network, open the shell.

        The starting state (the base diff() compares against) is recorded just before the
        first command, so a snapshot commit, which must come before it, can overlap the
        model's first request.
        """
        try:
            self._create()
            try:
                self._fill()
            except SandboxError as err:
                if self._snapshot is None:
                    raise
                self.progress(f"cannot start from the repo's snapshot ({err}); copying the whole repo")
                self._discard_container()
                self._snapshot = None
                self._start_fresh()
                self._fill()
            self.services.wait_ready()  # services (issue 11): up before setup and the first turn
            if self.spec.setup_command:
                self._begin_snapshot()  # before setup: what setup makes differs run to run
                self._run_setup(self.spec.setup_command)
            else:
                self._begin_snapshot()  # in the background, while the model thinks of a first command
            self._started = True
        except BaseException:
            self.stop()
            raise

    def _fill(self) -> None:
        """Copy the repo in and open the model's shell."""
        self._copy_repository()
        self._open_model_shell()

    def _discard_container(self) -> None:
        """Close the shell, remove the container and its volume; never raises."""
        if self._shell is not None:
            self._shell.close()
            self._shell = None
        if self.container is not None:
            with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                self.container.remove(force=True, v=True)
            self.container = None

    def _open_model_shell(self) -> None:
        if self.spec.network:  # the model's own installs go through the same proxy as setup's
            self._shell_env = self._trust_host_ca()
        self._open_shell()

    def _labels(self) -> dict[str, str]:
        return {
            labels.MANAGED: "true",
            labels.KIND: "sandbox",
            labels.RUN_ID: self.spec.run_id,
            labels.OWNER: labels.owner(),  # prune leaves a run alone while this process lives
            **self.spec.labels,
        }

    def _create(self) -> None:
        """Pick the image (this repo's snapshot, when one is current) and start the container.

        Without a snapshot, the repo's file count decides whether this container becomes one.
        """
        self.progress("starting sandbox container")
        try:
            self._base_image = self.client.images.get(self.spec.image)  # `run` would pull; not ours to do
        except docker.errors.ImageNotFound:
            raise self._missing_image() from None
        except docker.errors.APIError as err:
            raise SandboxError(f"cannot start the sandbox container: {err.explanation or err}") from None
        if self.spec.snapshots:
            self._snapshot = self._current_snapshot(self._base_image)
        if self._snapshot is not None:
            self._host = self._list_host(with_entries=True)
            try:
                self._start_container(self._snapshot, writable_root=True)
                return
            except docker.errors.ImageNotFound:  # pruned or superseded by another run just now
                self._snapshot = None
        self._start_fresh()

    def _start_fresh(self) -> None:
        """A container of the sandbox image, for a full copy (to be committed, for a large repo)."""
        assert self._base_image is not None  # _create looked it up
        if self._host is None:
            self._host = self._list_host(with_entries=False)
        file_count = len(self._host.files)
        if self.spec.snapshots and file_count >= self.spec.snapshot_min_files:
            self._snapshot_labels = {
                labels.BASE_IMAGE: str(self._base_image.id),
                labels.FILE_COUNT: str(file_count),
            }
        try:
            self._start_container(self._base_image, writable_root=self._snapshot_labels is not None)
        except docker.errors.ImageNotFound:
            raise self._missing_image() from None

    def _missing_image(self) -> SandboxError:
        return SandboxError(
            f"sandbox image {self.spec.image} not found; run `agent sandbox build` or pass --image"
        )

    def _start_container(self, image: Image, writable_root: bool) -> None:
        """Create and start the container; ImageNotFound is left to the caller."""
        self._in_layer = writable_root
        try:
            self.container = self.client.containers.create(image, **self.container_options(writable_root))
            self.container.start()
            self.services.attach(self.container)  # services (issue 11): join this network namespace
        except docker.errors.ImageNotFound:
            raise
        except docker.errors.APIError as err:
            raise SandboxError(f"cannot start the sandbox container: {err.explanation or err}") from None

    def _list_host(self, with_entries: bool) -> HostView:
        scan = scan_files(self.workspace)
        members = copy_members(self.workspace, scan.files)
        entries = host_entries(self.workspace, members) if with_entries else {}
        return HostView(scan.files, members, entries, scan.dirty)

    def _engine_cpus(self) -> float:
        """The engine refuses a CPU limit above its own CPU count (a 1-CPU VM, Docker Desktop)."""
        try:
            return float(self.client.info().get("NCPU") or self.spec.cpus)
        except (docker.errors.APIError, ValueError, TypeError):
            return self.spec.cpus

    def _current_snapshot(self, base: Image) -> Image | None:
        """This repo's snapshot, if it was made from `base` and HEAD has not moved far since."""
        try:
            snapshot = self.client.images.get(snapshot_tag(self.workspace))
        except docker.errors.ImageNotFound:
            return None
        found = snapshot.labels or {}
        numbers = (found.get(labels.COPIED_AT, ""), found.get(labels.FILE_COUNT, ""))
        if found.get(labels.BASE_IMAGE) != base.id or not all(n.isdigit() for n in numbers):
            return None
        if drifted(self.workspace, found.get(labels.SNAPSHOT_HEAD, ""), int(numbers[1])):
            return None
        return snapshot

    def container_options(self, writable_root: bool = False) -> dict[str, Any]:
        """The hardened container's settings, as `containers.create` keyword arguments."""
        spec = self.spec
        tmpfs = {
            "/tmp": f"rw,nosuid,nodev,exec,size={spec.tmp_size},mode=1777",
            HOME: f"rw,nosuid,nodev,exec,size={spec.home_size},uid={UID},gid={GID},mode=0755",
        }
        if writable_root:  # covered read-only, as a read-only root would leave them
            tmpfs.update({path: "ro,nosuid,nodev,noexec,size=1m" for path in WORLD_WRITABLE})
        return {
            "command": ["sleep", "infinity"],
            "init": True,
            "user": f"{UID}:{GID}",
            "working_dir": WORKSPACE,
            "environment": BASE_ENV,
            "labels": self._labels(),
            "name": f"patchwright-{spec.run_id}-{secrets.token_hex(3)}",
            "hostname": "sandbox",
            "network_mode": "bridge" if (spec.network or spec.setup_command) else "none",
            "cap_drop": ["ALL"],
            "security_opt": ["no-new-privileges"],
            "read_only": not writable_root,
            "pids_limit": spec.pids_limit,
            "mem_limit": spec.memory,
            "memswap_limit": spec.memory,
            "nano_cpus": int(min(spec.cpus, self._engine_cpus()) * 1e9),
            "tmpfs": tmpfs,
            # An anonymous volume: removed with the container (remove(v=True)), by prune too.
            "mounts": [] if writable_root else [Mount(target=WORKSPACE, source=None, type="volume")],
            "stdin_open": False,
            "tty": False,
            **({"extra_hosts": self.services.hosts()} if self.services.specs else {}),  # services (issue 11)
        }

    def _copy_repository(self) -> None:
        """Stream the repo as a tar into `tar -x` running as the sandbox user (or, from a
        snapshot, only what changed since it); the sanitized git configs follow in the same stream.

        Measured faster than the engine's archive API (benchmarks/startup.py), and the
        files come out owned by the sandbox user with no root step.
        """
        assert self.container is not None and self._host is not None
        config = git_config_tar(self.workspace, UID, GID)
        configs = [config] if config is not None else []
        if self._snapshot is not None:
            self._sync_snapshot(self._snapshot, configs)
            return
        view = self._host
        self.progress(f"copying {len(view.files)} files into the sandbox")
        copied_at = int(time.time())
        self._extract(itertools.chain(tar_members(self.workspace, view.members, UID, GID), configs))
        if self._snapshot_labels is not None:
            self._snapshot_labels.update(
                {labels.COPIED_AT: str(copied_at), labels.SNAPSHOT_HEAD: head_commit(self.workspace)}
            )

    def _sync_snapshot(self, snapshot: Image, configs: list[bytes]) -> None:
        """Bring the snapshot's workspace to the host's state: delete what went, send what changed."""
        assert self._host is not None
        manifest = load_manifest(self.spec.manifest_dir, str(snapshot.id)) if self.spec.manifest_dir else None
        if manifest is None:  # list the snapshot in the container instead
            manifest, code = self._collect_now(FIND_ARGV, max_bytes=1 << 30)
            if code != 0:
                raise SandboxError(f"cannot list the snapshot's files (find exited with {code})")
        host = self._host.entries
        have = parse_find(manifest)
        racy_from = int(snapshot.labels[labels.COPIED_AT]) - 1  # a second's slack for coarse clocks
        plan = self.sync_plan = plan_sync(host, have, racy_from)
        self.progress(f"from the snapshot: {len(plan.send)} paths to copy, {len(plan.delete)} to remove")
        if plan.delete:  # on stdin: any bytes a name holds arrive as they are
            listing = b"".join(os.fsencode(path) + b"\0" for path in plan.delete)
            result = self._execute_now(
                ["xargs", "-0", "-r", "rm", "-rf", "--"], stdin=listing, timeout=600, output_limit=4096
            )
            if result.exit_code != 0:
                raise SandboxError(
                    f"cannot remove what the repo no longer has: {result.output.strip()[-200:]}"
                )
        sent = tar_members(self.workspace, plan.send, UID, GID) if plan.send else iter(())
        self._extract(itertools.chain(sent, configs))

    def _begin_snapshot(self) -> None:
        """Commit this container as the repo's snapshot, in the background: a paused container
        holds still while the engine copies its layer, and every exec waits for the commit."""
        if self._snapshot_labels is None or self.container is None:
            return
        found = {
            **self._snapshot_labels,
            labels.MANAGED: labels.MANAGED_VALUE,
            labels.KIND: labels.KIND_SNAPSHOT,
            labels.RUN_ID: "",
            labels.OWNER: "",
            labels.REPO_PATH: str(self.workspace.root),
        }
        self._snapshot_labels = None
        self.progress("saving a snapshot of the repository, for faster starts next time")
        container = self.container
        self._committer = threading.Thread(target=self._commit, args=(container, found), daemon=True)
        self._committer.start()

    def _commit(self, container: Container, snapshot_labels: dict[str, str]) -> None:
        tag = snapshot_tag(self.workspace)
        try:
            try:
                previous: str | None = self.client.images.get(tag).id
            except docker.errors.ImageNotFound:
                previous = None
            manifest, code = self._collect_now(FIND_ARGV, max_bytes=1 << 30)
            repository, _, name = tag.partition(":")
            # The SDK's 60 s would give up on a large repo while the engine, still committing,
            # keeps the container paused; every command waits for this thread meanwhile.
            usual = self.client.api.timeout
            self.client.api.timeout = max(usual or 0, COMMIT_TIMEOUT)
            try:
                image = container.commit(repository, name, conf={"Labels": snapshot_labels}, pause=True)
            finally:
                self.client.api.timeout = usual
            if self.spec.manifest_dir and code == 0:
                save_manifest(self.spec.manifest_dir, str(image.id), manifest)
            if previous is not None and previous != image.id:  # superseded; if in use, prune takes it later
                with contextlib.suppress(docker.errors.APIError):
                    self.client.images.remove(previous)
                    if self.spec.manifest_dir:
                        drop_manifest(self.spec.manifest_dir, previous)
        except Exception as err:  # a failed commit costs the next run its head start, nothing else
            self.snapshot_error = str(err)
            self._wait_unpaused(container)

    def _wait_unpaused(self, container: Container) -> None:
        """After a failed commit the engine may still hold the container paused for a while."""
        deadline = time.monotonic() + COMMIT_TIMEOUT
        while time.monotonic() < deadline:
            try:
                container.reload()
            except docker.errors.APIError:
                return
            if not container.attrs.get("State", {}).get("Paused"):
                return
            time.sleep(0.5)

    def _await_snapshot(self) -> None:
        """Wait for a commit in progress: the container is paused until it ends."""
        if self._committer is not None:
            self._committer.join()
            self._committer = None

    def _ready(self) -> None:
        """Before any command after start: the commit is over and the starting state recorded."""
        self._await_snapshot()
        if self._started and self._base_tree is None:
            self._record_base()

    def _extract(self, chunks: Iterable[bytes]) -> None:
        """Extract the tar archives in `chunks`, one after another (--ignore-zeros reads past
        each one's end), as the sandbox user."""
        assert self.container is not None
        try:
            exec_id = self.client.api.exec_create(
                self.container.id,
                ["tar", "-x", "-i", "-f", "-", "-C", WORKSPACE],
                stdin=True,
                user=f"{UID}:{GID}",
                environment=BASE_ENV,
            )["Id"]
            sock = _raw_socket(self.client.api.exec_start(exec_id, socket=True))
        except docker.errors.APIError as err:
            raise SandboxError(
                f"cannot copy the repository into the sandbox: {err.explanation or err}"
            ) from None
        errors = CappedBuffer(4096)
        try:
            for chunk in chunks:
                sock.sendall(chunk)
            sock.shutdown(socket.SHUT_WR)
            reader = FrameReader(sock)
            deadline = time.monotonic() + 600
            while True:
                errors.feed(reader.read_payload(deadline))
        except (StreamClosed, StreamTimeout):
            pass
        except OSError as err:  # tar died early and closed its stdin
            errors.feed(str(err).encode())
        finally:
            sock.close()
        code = self.client.api.exec_inspect(exec_id).get("ExitCode")
        if code != 0:
            detail = errors.render()[0].strip().splitlines()[-1:] or [f"tar exited with {code}"]
            raise SandboxError(f"cannot copy the repository into the sandbox: {detail[0][:200]}")

    def _trust_host_ca(self) -> dict[str, str]:
        """Copy the host's CA bundle in; the variables that make pip, npm, git and curl trust it
        (and use the host's proxy, when one is set)."""
        if not self.spec.host_ca_bundle:
            return dict(self.spec.proxy_env)
        with open(self.spec.host_ca_bundle, "rb") as fh:
            self.write_file(HOST_CA_PATH, fh.read())
        return {**self.spec.proxy_env, **{name: HOST_CA_PATH for name in CA_ENV_NAMES}}

    def _run_setup(self, command: str) -> None:
        """Run the setup command with the network on, then cut the network for good."""
        assert self.container is not None
        env = {**self._trust_host_ca(), **self.services.env()}  # services (issue 11)
        self.progress(f"setup (network on): {command}")
        result = self.setup_result = self.execute(
            ["bash", "-c", command], timeout=self.spec.setup_timeout, env=env
        )
        if not self.spec.network:
            self._disconnect_network()
        if result.timed_out or result.exit_code != 0:
            status = "timed out" if result.timed_out else f"exited with {result.exit_code}"
            tail = result.output.strip().splitlines()[-1:] or [""]
            raise SandboxError(f"setup command {status}: {tail[0][:200]}")

    def _disconnect_network(self) -> None:
        assert self.container is not None
        self.container.reload()
        networks = self.container.attrs["NetworkSettings"]["Networks"] or {}
        for name in list(networks):
            self.client.networks.get(name).disconnect(self.container, force=True)
        self.container.reload()
        if self.container.attrs["NetworkSettings"]["Networks"]:
            raise SandboxError("could not cut the sandbox network after setup")

    def _record_base(self) -> None:
        """Record the starting state as a git tree; diff() compares against it."""
        index = f"{CONTROL_DIR}/base.index"
        git = trusted_git(index)
        # tar kept mtimes and sizes, so the host index's hashes hold for unchanged files;
        # `cp -p` keeps the index's own mtime, which git's racy-entry check relies on.
        walk = f"{git} -c core.checkStat=minimal -c core.trustctime=false add -A"
        fill = walk
        view = self._host
        if view is not None and self.workspace.git_dir_is_local and not self.spec.setup_command:
            # The host's own git already told what differs from its index: only those paths are
            # hashed (their stat never matches a host entry's), not the whole tree walked.
            dirty = base64.b64encode(b"".join(os.fsencode(name) + b"\0" for name in view.dirty)).decode()
            fill = (
                f"if ! printf %s {dirty} | base64 -d | {git} update-index -z --add --remove --replace --stdin; "
                f"then {walk}; fi"
            )
        script = (
            f"set -e; mkdir -p {CONTROL_DIR}; cd {WORKSPACE}; rm -f {index}; "
            f"if [ ! -d .git ]; then {git} init -q; fi; "
            f"if [ -f .git/index ]; then cp -p .git/index {index}; fi; {fill}; "
            f'tree=$({git} write-tree); {git} update-ref {BASE_REF} "$tree"; echo "$tree"'
        )
        if self._shell is None:
            self._open_shell()
        assert self._shell is not None
        try:  # the shell, before the model has it: no exec to pay for
            result = self._shell.run(script, 600, self.spec.output_limit)
        except ShellBroken as err:
            raise SandboxError(f"cannot record the starting state in the sandbox: {err}") from None
        tree = result.output.strip().splitlines()[-1:] if result.exit_code == 0 else []
        if not tree or len(tree[0]) < 40:
            raise SandboxError(
                f"cannot record the starting state in the sandbox: {result.output.strip()[-300:]}"
            )
        self._base_tree = tree[0]

    def _open_shell(self) -> None:
        assert self.container is not None
        token = secrets.token_hex(6)
        shell_dir = f"{CONTROL_DIR}/shell-{token}"
        try:
            exec_id = self.client.api.exec_create(
                self.container.id,
                ["bash", "--noprofile", "--norc", "-c", DRIVER, "driver", shell_dir, WORKSPACE, token],
                stdin=True,
                stdout=True,
                stderr=True,
                environment={**BASE_ENV, **self.services.env(), **self._shell_env, "PW_RUNNER": RUNNER},
                workdir=WORKSPACE,
                user=f"{UID}:{GID}",
            )["Id"]
            raw = self.client.api.exec_start(exec_id, socket=True)
        except docker.errors.APIError as err:
            raise SandboxError(f"cannot open the sandbox shell: {err.explanation or err}") from None
        try:
            self._shell = ShellSession.handshake(_raw_socket(raw), token)
        except ShellBroken as err:
            raise SandboxError(str(err)) from None

    def restart_shell(self) -> None:
        """Kill every process of the sandbox user and open a fresh shell in the workspace."""
        self._ready()
        if self._shell is not None:
            self._shell.close()
            self._shell = None
        with contextlib.suppress(SandboxError):
            self.execute(["bash", "-c", KILL_ALL], timeout=10)
        self._open_shell()

    def stop(self) -> None:
        """Remove the container and its workspace volume; never raises, safe to call again.

        Ctrl-C and SIGTERM wait until the removal is done (they are held, not lost).
        """
        held = {signal.SIGINT, signal.SIGTERM}
        main_thread = threading.current_thread() is threading.main_thread()
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, held) if main_thread else None
        try:
            if self._committer is not None:  # removing a paused container mid-commit can fail
                self._committer.join(timeout=300)
                self._committer = None
            self.services.stop()  # services (issue 11)
            self._discard_container()
        finally:
            if previous is not None:
                signal.pthread_sigmask(signal.SIG_SETMASK, previous)

    def __enter__(self) -> DockerSandbox:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- commands --------------------------------------------------------------------------

    def run(self, command: str, timeout: float | None = None) -> CommandResult:
        """Run in the persistent shell; if the shell died, say so and start a new one."""
        self._ready()
        if self._shell is None:
            self._open_shell()
        assert self._shell is not None
        limit = timeout or self.spec.command_timeout
        try:
            return self._shell.run(command, limit, self.spec.output_limit)
        except ShellBroken as err:
            self.restart_shell()
            return CommandResult(
                output=f"[{err}; a fresh shell was started in {WORKSPACE}]",
                exit_code=None,
                timed_out=True,
            )

    def execute(
        self,
        argv: list[str],
        timeout: float | None = None,
        env: dict[str, str] | None = None,
        stdin: bytes | None = None,
        output_limit: int | None = None,
    ) -> CommandResult:
        """Run one process outside the persistent shell, bounded in time and output."""
        self._ready()
        return self._execute_now(argv, timeout, env, stdin, output_limit)

    def _execute_now(
        self,
        argv: list[str],
        timeout: float | None = None,
        env: dict[str, str] | None = None,
        stdin: bytes | None = None,
        output_limit: int | None = None,
    ) -> CommandResult:
        if self.container is None:
            raise SandboxError("the sandbox is not running")
        limit = timeout or self.spec.command_timeout
        wrapped = ["timeout", "-k", "2", str(max(1, int(limit))), *argv]
        started = time.monotonic()
        try:
            exec_id = self.client.api.exec_create(
                self.container.id,
                wrapped,
                stdin=stdin is not None,
                environment={**BASE_ENV, **(env or {})},
                workdir=WORKSPACE,
                user=f"{UID}:{GID}",
            )["Id"]
            sock = _raw_socket(self.client.api.exec_start(exec_id, socket=True))
        except docker.errors.NotFound:
            raise SandboxError("the sandbox container is gone") from None
        except docker.errors.APIError as err:
            raise SandboxError(f"cannot run a command in the sandbox: {err.explanation or err}") from None
        buffer = CappedBuffer(output_limit or self.spec.output_limit)
        try:
            if stdin is not None:
                sock.sendall(stdin)
                sock.shutdown(socket.SHUT_WR)
            reader = FrameReader(sock)
            deadline = started + limit + 15
            while True:
                buffer.feed(reader.read_payload(deadline))
        except (StreamClosed, StreamTimeout):
            pass
        finally:
            sock.close()
        code = self.client.api.exec_inspect(exec_id).get("ExitCode")
        return command_result(buffer, code, time.monotonic() - started, limit)

    # -- files -----------------------------------------------------------------------------

    def _collect(self, argv: list[str], max_bytes: int, timeout: float = 600) -> tuple[bytes, int | None]:
        """Run a process and return its raw stdout (no decoding, no cap below max_bytes)."""
        self._ready()
        return self._collect_now(argv, max_bytes, timeout)

    def _collect_now(self, argv: list[str], max_bytes: int, timeout: float = 600) -> tuple[bytes, int | None]:
        if self.container is None:
            raise SandboxError("the sandbox is not running")
        try:
            exec_id = self.client.api.exec_create(
                self.container.id,
                argv,
                stdout=True,
                stderr=False,
                user=f"{UID}:{GID}",
                workdir=WORKSPACE,
                environment=BASE_ENV,
            )["Id"]
            sock = _raw_socket(self.client.api.exec_start(exec_id, socket=True))
        except docker.errors.APIError as err:
            raise SandboxError(f"cannot run {argv[0]} in the sandbox: {err.explanation or err}") from None
        chunks: list[bytes] = []
        size = 0
        try:
            reader = FrameReader(sock)
            deadline = time.monotonic() + timeout
            while size <= max_bytes:
                chunk = reader.read_payload(deadline)
                chunks.append(chunk)
                size += len(chunk)
        except (StreamClosed, StreamTimeout):
            pass
        finally:
            sock.close()
        if size > max_bytes:
            raise OSError(f"output larger than {max_bytes} bytes")
        return b"".join(chunks), self.client.api.exec_inspect(exec_id).get("ExitCode")

    def read_file(self, path: str, max_bytes: int = 64 * 1024 * 1024) -> bytes:
        """The bytes of a file in the sandbox (the caller checks the path is allowed)."""
        data, code = self._collect(["cat", "--", path], max_bytes, timeout=120)
        if code != 0:
            raise FileNotFoundError(path)
        return data

    def write_file(self, path: str, data: bytes) -> None:
        """Write a file through a process in the sandbox, so its rules (read-only root) apply."""
        script = 'mkdir -p "$(dirname "$1")" && cat > "$1"'
        result = self.execute(["sh", "-c", script, "sh", path], stdin=data, timeout=60)
        if result.exit_code != 0:
            raise OSError(result.output.strip() or f"cannot write {path}")

    # -- diff ------------------------------------------------------------------------------

    def diff(self) -> str:
        """A binary-safe patch of every change since start, as `git apply` takes it."""
        self._ready()
        if self._base_tree is None:
            raise SandboxError("the sandbox has no starting state")
        index = f"{CONTROL_DIR}/diff.index"
        git = trusted_git(index)
        script = (
            f"set -e; cd {WORKSPACE}; mkdir -p {CONTROL_DIR}; rm -f {index}; "
            f"if [ -f {CONTROL_DIR}/base.index ]; then cp -p {CONTROL_DIR}/base.index {index}; fi; "
            f"{git} add -A >/dev/null; tree=$({git} write-tree); "
            f"{git} diff --binary --full-index -M --no-color --no-ext-diff --no-textconv "
            f'--src-prefix=a/ --dst-prefix=b/ {self._base_tree} "$tree"'
        )
        data, code = self._collect(["bash", "-c", script], max_bytes=1 << 30)
        if code != 0:
            raise SandboxError(f"cannot compute the patch (git exited with {code})")
        # surrogateescape keeps non-UTF-8 bytes intact for writing the patch back out
        return data.decode("utf-8", "surrogateescape")


def _raw_socket(raw: Any) -> socket.socket:
    """The docker SDK hands back a SocketIO wrapper; reads and writes go to the real socket."""
    sock = getattr(raw, "_sock", raw)
    if not isinstance(sock, socket.socket):
        raise SandboxError("unsupported Docker transport for the sandbox shell (need a unix or tcp socket)")
    return sock
