"""The local Docker runtime: a hardened container holding a copy of the repository.

Hardening: non-root uid, all capabilities dropped, no-new-privileges, read-only
root filesystem, pids/memory/CPU limits, no network unless the setup phase asks
for it (and then cut before the model's first command), no host environment.
The repository travels in as a tar stream (transfer.py) into a tmpfs workspace of its own.

Large repos (SandboxSpec.snapshot_min_files files or more) instead live in the container's own
layer, so the container can be committed as a snapshot and later ones start from it
(see snapshot.py). A committed layer cannot sit under a read-only root, so there the
root stays writable to root only: the image's world-writable /var/tmp and /run/lock
are covered by read-only tmpfs mounts, so the sandbox user can write exactly what it
can under a read-only root (the workspace, /tmp, home), which tests check.
"""

from __future__ import annotations

import contextlib
import dataclasses
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import docker
import docker.errors
from docker.models.containers import Container
from docker.models.images import Image

from patchwright.environment.probe import first_error
from patchwright.errors import SandboxError
from patchwright.repocopy import PendingScan, Spool
from patchwright.sandbox import checkpoint, egress, labels, transfer
from patchwright.sandbox.base import (
    WORKSPACE,
    CommandResult,
    PatchFile,
    SandboxSpec,
    SetupFailed,
    StartResult,
    default_manifest_dir,
)
from patchwright.sandbox.baseline import Baseline
from patchwright.sandbox.checkpoint import Checkpoint
from patchwright.sandbox.copypipe import CopyPipe, SpooledCopy, engine_is_local
from patchwright.sandbox.engine import (
    ContainerExec,
    container_options,
    discard,
    disconnect_networks,
    engine_cpus,
    setup_runs,
    side_by_side,
)
from patchwright.sandbox.env import CA_FILE_NAME, CONTROL_DIR, MODEL_PATH, network_env
from patchwright.sandbox.files import FileChannel, FileHelper, helper_argv
from patchwright.sandbox.shell import ShellBroken, ShellSession, driver_argv
from patchwright.sandbox.shelldriver import MODEL_PATH_VARIABLE
from patchwright.sandbox.snapshot import (
    SnapshotBuild,
    SnapshotLock,
    SyncPlan,
    current_snapshot,
    load_manifest,
    lock_path,
)
from patchwright.sandbox.snapshotjob import SnapshotJob, hand_off
from patchwright.sandbox.transfer import HostView, Progress
from patchwright.services import ServiceSet
from patchwright.workspace import Workspace

HOST_CA_PATH = f"{CONTROL_DIR}/{CA_FILE_NAME}"
PROTECTED_PYTHON = "/tmp/.patchwright-python/python3"  # execute-only, root's: see _protected_python
# $0 is PROTECTED_PYTHON; the copy must then run the modules the driver and the helper import.
PROTECT_PYTHON = (
    'set -e; p=$(command -v python3); d="${0%/*}"; mkdir -m 0755 "$d"; cp -L "$p" "$0"; chmod 0111 "$0"; '
    '"$0" -I -S -B -c "import ctypes, json, os, select, subprocess, struct"'
)
MAX_LATE_CHANGES = 200  # paths named as changed after the last tool call
LATE_OUTPUT_LIMIT = 256 * 1024
HANDOFF_AFTER = 0.3  # a build saving its copy is waited for this long: the user's wait stays well under 1.5 s


def _quiet(_: str) -> None:
    pass


class DockerSandbox:
    """A `Sandbox` on the local Docker engine. One instance, one container, one run."""

    workdir = WORKSPACE
    # seconds stop() waits for a snapshot build saving its copy before handing it to a detached process
    handoff_after = HANDOFF_AFTER

    def __init__(
        self,
        client: docker.DockerClient,
        spec: SandboxSpec,
        workspace: Workspace,
        progress: Progress = _quiet,
        services: ServiceSet | None = None,
        scan: PendingScan | None = None,
    ) -> None:
        self.client = client
        # the run's databases (services/): in this container's network namespace, gone with it
        self.services = services if services is not None else ServiceSet(None, [])
        self.spec = spec
        self.workspace = workspace
        self.progress = progress
        self.container: Container | None = None
        self._exec: ContainerExec | None = None
        self._shell: ShellSession | None = None
        self._files = FileHelper(self._open_files)
        self._last_end = 0.0  # the sandbox's file clock when the last command ended
        self._python = "python3"  # the helpers' interpreter (_protected_python)
        self._shell_env: dict[str, str] = {}  # extra variables for the model's shell
        self._baseline = Baseline(WORKSPACE, CONTROL_DIR)
        self._host: HostView | None = None
        self._base_image: Image | None = None
        self._snapshot: Image | None = None  # the snapshot this container starts from
        self._passed_over = ""  # a snapshot found but not used (out of date, unsyncable): replaced
        self._snapshot_labels: dict[str, str] | None = None  # set when this container will be one
        self._build: SnapshotBuild | None = None
        self._job: SnapshotJob | None = None  # how a detached process would finish the build
        self.snapshot_job: int | None = None  # the pid of the process finishing it, once handed off
        self._in_layer = False  # the workspace is in the container's own layer (snapshots), not a tmpfs
        self._stop_signal = "SIGKILL"  # what ends the container: SIGTERM when it runs our `sleep` (discard)
        self._started = False  # start() is over: the next command records the starting state first
        self._egress: egress.EgressProxy | None = None  # setup's registries-only network, until setup ends
        self._setup_open = False  # setup_run() may run: the network is as setup has it
        self._setup_networked = False  # the container is on the network setup had
        self._setup_env: dict[str, str] | None = None
        self.sync_plan: SyncPlan | None = None  # what a start from a snapshot copied and removed
        # the full copy's way in, while it is to come (copypipe.py)
        self._pipe: CopyPipe | SpooledCopy | None = None
        self._scan = scan  # the host's `git ls-files`, begun at launch (cli.py); taken by the first listing
        self._spool: Spool | None = None  # the copy's tar written ahead, from that listing (CI runs)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> StartResult:
        """Create the container, copy the repo in, run setup, cut the network, open the shell,
        record the starting state (the base diff() compares against).

        A start from a saved state (verification) records it just before the first command.
        """
        try:
            if self.spec.restore_from:  # verification, reuse: a state after setup, offline
                setup = self._start_restored(Checkpoint(Path(self.spec.restore_from)))
                self._started = True
                return StartResult(setup)
            self._create()
            try:
                self._fill()
            except SandboxError as err:
                if self._snapshot is None:
                    raise
                self.progress(f"cannot start from the repo's snapshot ({err}); copying the whole repo")
                self._discard_container()
                self._passed_over = str(self._snapshot.id)
                self._snapshot = None
                self._start_fresh()
                self._fill()
            self._drop_spool()
            self.services.wait_ready()  # up before setup and the model's first command
            self._setup_open = bool(self.spec.setup_command or self.spec.setup_repairable)
            setup = self._run_setup(self.spec.setup_command) if self.spec.setup_command else None
            if not self.spec.setup_repairable:
                self._close_setup(save=setup is not None)
            return StartResult(setup)
        except BaseException:
            self.stop()
            raise

    def _start_restored(self, saved: Checkpoint) -> CommandResult | None:
        """A fresh container holding the saved post-setup state. Setup does not run again, unless
        replayed (`replay_setup`: the services' fresh databases need what setup put in them);
        then it runs once, over the restored files, and its result is returned."""
        self.progress("starting from the state after setup")
        try:
            self._base_image = self.client.images.get(self.spec.image)
        except docker.errors.ImageNotFound:
            raise self._missing_image() from None
        self._start_container(self._base_image, writable_root=False)
        checkpoint.restore(self._runner(), saved)
        self.services.wait_ready()
        setup = None
        if setup_runs(self.spec) and self.spec.setup_command:
            self._setup_open = True
            setup = self._run_setup(self.spec.setup_command)
            self._setup_open = False
            self._cut_network()
            self._stop_egress()
        self._open_shell()
        return setup

    def _fill(self) -> None:
        """Copy the repo in (or sync the snapshot) and open the model's shell."""
        assert self._host is not None and self._exec is not None
        if self._snapshot is not None:
            manifest_dir = self.spec.manifest_dir
            manifest = load_manifest(manifest_dir, str(self._snapshot.id)) if manifest_dir else None
            racy_from = int(self._snapshot.labels[labels.COPIED_AT]) - 1  # a second's slack for coarse clocks
            self.sync_plan = transfer.sync(
                self._exec, self.workspace, self._host, manifest, racy_from, self.progress
            )
        elif self.spec.image_workspace:  # the repo is in the image (SWE-bench's /testbed)
            transfer.copy_from_image(self._exec, self.spec.image_workspace, self.progress)
        else:
            try:
                transfer.copy_all(self._exec, self.workspace, self._host, self.progress, self._pipe)
            finally:
                self._close_pipe()
        if self.spec.network:  # the model's own installs go through the same proxy as setup's
            self._shell_env = self._trust_host_ca()
        self._open_shell()

    def _discard_container(self) -> None:
        """Close the shell and the file helper, kill the container (the engine removes it:
        `auto_remove`); never raises."""
        self._files.close()
        if self._shell is not None:
            self._shell.close()
            self._shell = None
        if self.container is not None:
            discard(self.container, self._stop_signal)
            self.container = None
            self._exec = None
        self._close_pipe()

    def _discard_sandbox(self) -> None:
        self._discard_container()
        self._stop_egress()

    def _close_pipe(self) -> None:
        if self._pipe is not None:
            self._pipe.close()
            self._pipe = None

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
        if self.spec.snapshots and not self.spec.image_workspace:
            self._snapshot = current_snapshot(self.client, self.workspace, self._base_image)
        if self._snapshot is not None:
            self._host = self._list_host(with_entries=True)
            try:
                self._start_container(self._snapshot, writable_root=True)
                return
            except docker.errors.ImageNotFound:  # pruned or superseded by another run just now
                self._snapshot = None
        self._start_fresh()

    def _start_fresh(self) -> None:
        """A container of the sandbox image, for a full copy (and, for a large repo, a snapshot
        built beside it)."""
        assert self._base_image is not None  # _create looked it up
        if self._host is None:
            self._host = self._list_host(with_entries=False)
        file_count = len(self._host.files)
        if (
            self.spec.snapshots
            and not self.spec.image_workspace
            and file_count >= self.spec.snapshot_min_files
        ):
            self._snapshot_labels = {
                labels.BASE_IMAGE: str(self._base_image.id),
                labels.FILE_COUNT: str(file_count),
            }
        if not self.spec.image_workspace and engine_is_local(self.client):
            spool, self._spool = self._spool, None
            if spool is not None and not spool.failed:
                self._pipe = SpooledCopy(spool)
            else:
                if spool is not None:
                    spool.close()
                with contextlib.suppress(OSError):  # no pipe: the copy goes through the engine
                    self._pipe = CopyPipe.create()
        try:
            self._start_container(self._base_image, writable_root=False)
        except docker.errors.ImageNotFound:
            raise self._missing_image() from None

    def _take_scan(self) -> PendingScan | None:
        scan, self._scan = self._scan, None
        return scan

    def _list_host(self, with_entries: bool) -> HostView:
        """What travels: from the listing begun at launch if there is one, whose copy written
        ahead (a spool) this sandbox then owns."""
        scan = self._take_scan()
        if scan is not None:
            self._spool = scan.take_spool()
        return transfer.list_host(self.workspace, with_entries, pending=scan)

    def _drop_spool(self) -> None:
        """A copy written ahead that this start did not use (a snapshot, or no pipe): freed."""
        spool, self._spool = self._spool, None
        if spool is not None:
            spool.close()

    def _missing_image(self) -> SandboxError:
        return SandboxError(
            f"sandbox image {self.spec.image} not found; run `agent sandbox build` or pass --image"
        )

    def _start_container(self, image: Image, writable_root: bool) -> None:
        """Create and start the container; ImageNotFound is left to the caller."""
        self._in_layer = writable_root
        self._start_egress()
        try:
            options = self.container_options(writable_root)
            self.container = self.client.containers.create(image, **options)
            # An entrypoint of the image's own would stand between docker-init and our `sleep`.
            entrypoint = (image.attrs.get("Config") or {}).get("Entrypoint")
            self._stop_signal = "SIGKILL" if entrypoint else "SIGTERM"
            self.container.start()
            self._setup_networked = options["network_mode"] != "none"
            if self.spec.setup_repairable and not self.spec.setup_command:
                self._cut_network()  # no setup asked for a network: a repair's first command opens it
            self.services.attach(self.container)  # they join this container's network namespace
        except docker.errors.ImageNotFound:
            raise
        except docker.errors.APIError as err:
            raise SandboxError(f"cannot start the sandbox container: {err.explanation or err}") from None
        self._exec = ContainerExec(
            self.client, str(self.container.id), WORKSPACE, self.spec.command_timeout, self.spec.output_limit
        )
        self._python = self._protected_python()

    def _protected_python(self) -> str:
        """A copy of the sandbox's python3 that the sandbox user may run but not read, for the
        shell driver and the file helper: the kernel makes a process of an unreadable program
        non-dumpable at exec, so no process of the same uid can open its /proc files even before
        its own prctl. Made as the container's root (no capabilities) in a root-owned folder of
        /tmp, before any process of the sandbox user exists. An image where the copy does not
        run (a python3 that needs files beside it) keeps its python3: then the start order alone
        protects the helpers (docs/security.md)."""
        copy = self._runner().stream(
            ["sh", "-c", PROTECT_PYTHON, PROTECTED_PYTHON],
            lambda _: True,
            timeout=60,
            what="protect python3",
            root=True,
        )
        return PROTECTED_PYTHON if copy == 0 else "python3"

    def container_options(self, writable_root: bool = False) -> dict[str, Any]:
        """The hardened container's settings, as `containers.create` keyword arguments."""
        network = self._egress.network_name if self._egress is not None else None
        options = container_options(
            self.spec, writable_root, engine_cpus(self.client, self.spec.cpus), network
        )
        if self.services.specs:  # the services' names (db, postgres...) resolve to 127.0.0.1
            options["extra_hosts"] = self.services.hosts()
        if network is not None:
            options["sysctls"] = egress.SANDBOX_SYSCTLS
        if self._pipe is not None:
            options["mounts"] = [*options["mounts"], self._pipe.mount()]
        return options

    def _begin_snapshot(self) -> None:
        """Build the repo's snapshot in a container of its own, in the background (snapshot.py)."""
        if self._snapshot_labels is None or self._base_image is None or self._host is None:
            return
        self.progress("saving a snapshot of the repository in the background, for faster starts next time")
        image_labels = {**self._snapshot_labels, labels.REPO_PATH: str(self.workspace.root)}
        self._snapshot_labels = None
        lock = SnapshotLock(lock_path(self.spec.manifest_dir or default_manifest_dir(), self.workspace))
        self._build = transfer.build_snapshot(
            self.client, self.workspace, self._base_image, self._host, self.spec, image_labels, lock
        )
        self._job = SnapshotJob(
            root=str(self.workspace.root),
            git_dir=str(self.workspace.git_dir),
            git_dir_is_local=self.workspace.git_dir_is_local,
            base_image=str(self._base_image.id),
            spec=dataclasses.asdict(self.spec),
            image_labels={k: v for k, v in image_labels.items() if k != labels.FILE_COUNT},
            leftover_run_id=transfer.builder_run_id(self.spec.run_id),
            replaces=self._passed_over,
        )

    def _hand_off_snapshot(self) -> None:
        """The run is over and its snapshot is not: a detached process finishes it (snapshotjob.py),
        so nobody waits for it; this build stops."""
        assert self._build is not None
        lock_fd = self._build.lock.shared_fd() if self._build.lock is not None else None
        self._build.abandon()
        if self._job is not None:
            try:
                self.snapshot_job = hand_off(self._job, lock_fd)
                self.progress("the repository's snapshot is finished in the background")
            except OSError as err:  # a slower next start, nothing worse
                self.progress(f"cannot finish the repository's snapshot in the background: {err}")

    @property
    def snapshot_error(self) -> str | None:
        """Why the last snapshot build failed (a slower next start, nothing worse)."""
        return self._build.error if self._build is not None else None

    def _await_snapshot(self) -> None:
        """Wait for a snapshot build in progress."""
        if self._build is not None:
            self._build.wait()

    def _ready(self) -> None:
        """Before any command after start: the starting state is recorded."""
        if self._started and self._baseline.tree is None:
            view = self._host
            # The host's own git already said what differs from its index (see Baseline.record).
            use_dirty = (
                view is not None
                and self.workspace.git_dir_is_local
                and not self.spec.setup_command
                and not self.spec.setup_repairable  # a repair may have changed the workspace
                and not self.spec.image_workspace  # the host's index says nothing of the image's repo
            )
            self._baseline.record(self._runner(), view.dirty if use_dirty and view is not None else None)

    def _trust_host_ca(self) -> dict[str, str]:
        """Copy the host's CA bundle in; the variables that make tools trust it and use the proxy."""
        if self.spec.host_ca_bundle:
            with open(self.spec.host_ca_bundle, "rb") as fh:
                self._runner().write_file(HOST_CA_PATH, fh.read())
        return network_env(self.spec.proxy_env, HOST_CA_PATH if self.spec.host_ca_bundle else None)

    def _start_egress(self) -> None:
        """Setup's registries-only network and its proxy, before the container that joins it."""
        wanted = (
            self.spec.egress is not None
            and (self.spec.setup_command or self.spec.setup_repairable)
            and not self.spec.network
            and setup_runs(self.spec)
        )
        if wanted and self._egress is None:
            assert self.spec.egress is not None
            proxy = egress.EgressProxy(
                self.client, self.spec.egress, self.spec.run_id, dict(self.spec.labels), self.progress
            )
            self._egress = proxy  # before it starts: a stop (Ctrl-C) mid-way removes what it made
            proxy.start()

    def _stop_egress(self) -> None:
        if self._egress is not None:
            self._egress.stop()
            self._egress = None

    def _run_setup(self, command: str) -> CommandResult:
        """Run the setup command with the network on; unless the setup window stays open for a
        repair, a failure cuts the network and raises SetupFailed, quoting the first error."""
        where = "package registries only" if self._egress is not None else "network on"
        self.progress(f"setup ({where}): {command}")
        result = self.setup_run(command)
        if (result.timed_out or result.exit_code != 0) and not self.spec.setup_repairable:
            refused = self.egress_refused()
            self._cut_network()
            status = "timed out" if result.timed_out else f"exited with {result.exit_code}"
            message = f"setup command {status}: {first_error(result.output)[:200]}"
            if refused:
                message += (
                    f" (the setup proxy refused {', '.join(refused[:5])}: not a package registry; "
                    "add it with --allow-host, or pass --network)"
                )
            raise SetupFailed(message, result)
        return result

    def egress_refused(self) -> list[str]:
        """The hosts setup's proxy refused so far: what a failed install may have needed."""
        return self._egress.refused() if self._egress is not None else []

    def setup_run(self, command: str, timeout: float | None = None) -> CommandResult:
        """One command of the setup window, with the network on and setup's variables."""
        if not self._setup_open:
            raise SandboxError("the setup window is closed: the network is cut and the starting state taken")
        if not self._setup_networked and not self.spec.network:
            self._connect_network()
        if self._setup_env is None:
            env = {**self._trust_host_ca(), **self.services.env(), **self.spec.env, "PATH": MODEL_PATH}
            if self._egress is not None:
                env = egress.environment(env, self._egress.env())
            self._setup_env = env
        limit = timeout or self.spec.setup_timeout
        return self._runner().execute(["bash", "-c", command], timeout=limit, env=self._setup_env)

    def finish_setup(self, save: bool = True) -> None:
        """Cut the network, save the state for verification, record the starting state."""
        if self._setup_open and not self._started:
            self._close_setup(save)

    def _close_setup(self, save: bool) -> None:
        self._setup_open = False
        self._cut_network()
        self._stop_egress()
        if save and self.spec.checkpoint_to:
            saved = Checkpoint(Path(self.spec.checkpoint_to))
            checkpoint.save(
                self._runner(), saved, checkpoint.limit_for(self.spec.workspace_size, self.spec.home_size)
            )
        self._begin_snapshot()  # in a container of its own, in the background
        self._started = True
        # Now rather than at the first command: a start on a thread (BackgroundStart) then
        # records while the model's first request is made, not after it.
        self._ready()

    def _connect_network(self) -> None:
        """Join setup's network again (the registries-only one, or the default bridge)."""
        assert self.container is not None
        if self.spec.egress is not None and self._egress is None:  # never the full network instead
            raise SandboxError("the setup proxy is gone: the setup window has no network")
        name = self._egress.network_name if self._egress is not None else "bridge"
        try:
            self.client.networks.get(name).connect(self.container)
        except docker.errors.APIError as err:
            raise SandboxError(f"cannot open the network for setup: {err.explanation or err}") from None
        self._setup_networked = True

    def _cut_network(self) -> None:
        """The network setup had is cut, unless the run itself has one (a repair's next command
        joins it again while the setup window is open)."""
        if self._setup_networked and not self.spec.network:
            assert self.container is not None
            disconnect_networks(self.client, self.container)
            self._setup_networked = False

    def _open_shell(self) -> None:
        env = {**self.services.env(), **self.spec.env, **self._shell_env, MODEL_PATH_VARIABLE: MODEL_PATH}
        argv = driver_argv(WORKSPACE, python=self._python)
        opened = self._runner().open(argv, env, what="open the sandbox shell", stderr=False)
        try:
            self._shell = ShellSession.handshake(opened.sock, opened.reader(), keepalive=opened)
        except ShellBroken as err:
            raise SandboxError(str(err)) from None
        # The file helper starts beside the shell: when the sandbox starts and right after a
        # kill-all, so no process of the sandbox user exists that could reach it through /proc
        # between its exec and its prctl.
        self._files.attach(self._start_files())

    def restart_shell(self) -> None:
        """Kill every process of the sandbox user and open a fresh shell in the workspace."""
        self._ready()
        if self._shell is not None:
            self._shell.close()
            self._shell = None
        with contextlib.suppress(SandboxError):
            self.stop_user_processes()
        self._open_shell()

    def stop(self) -> None:
        """Remove the container and its workspace; never raises, safe to call again.

        Ctrl-C and SIGTERM wait until the removal is done (they are held, not lost).
        """
        held = {signal.SIGINT, signal.SIGTERM}
        main_thread = threading.current_thread() is threading.main_thread()
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, held) if main_thread else None
        try:
            if self._build is not None and self._build.running:
                self._build.wait_if_saving(self.handoff_after)
                if self._build.running:
                    self._hand_off_snapshot()
            # The services go while the sandbox does (each waits on the engine). The setup proxy's
            # network goes after the sandbox, which may still be on it (normally gone after setup).
            side_by_side(self.services.stop, self._discard_sandbox)
            if (scan := self._take_scan()) is not None:  # a start that failed before listing
                scan.close()
            self._drop_spool()
        finally:
            if previous is not None:
                signal.pthread_sigmask(signal.SIG_SETMASK, previous)

    def __enter__(self) -> DockerSandbox:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    # -- commands --------------------------------------------------------------------------

    def _runner(self) -> ContainerExec:
        if self._exec is None:
            raise SandboxError("the sandbox is not running")
        return self._exec

    def run(self, command: str, timeout: float | None = None) -> CommandResult:
        """Run in the persistent shell; if the shell died, say so and start a new one."""
        self._ready()
        if self._shell is None:
            self._open_shell()
        assert self._shell is not None
        limit = timeout or self.spec.command_timeout
        try:
            result = self._shell.run(command, limit, self.spec.output_limit)
            self._last_end = max(self._last_end, self._shell.last_end)
            return result
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
        return self._runner().execute(argv, timeout, env, stdin, output_limit)

    # -- files -----------------------------------------------------------------------------

    def read_file(self, path: str, max_bytes: int = 64 * 1024 * 1024) -> bytes:
        """The bytes of a file in the sandbox (the caller checks the path is allowed)."""
        self._ready()
        return self._runner().read_file(path, max_bytes)

    def write_file(self, path: str, data: bytes) -> None:
        """Write a file through a process in the sandbox, so its rules (read-only root) apply."""
        self._ready()
        self._runner().write_file(path, data)

    def file_op(self, request: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
        """One file operation (filehelper.py), confined to the workspace, in one round trip."""
        self._ready()
        return self._files.request(request, timeout)

    def _start_files(self) -> FileChannel:
        argv = helper_argv(WORKSPACE, python=self._python)
        opened = self._runner().open(argv, what="start the file helper", stderr=False)
        return FileChannel(opened.sock, opened.reader(), keepalive=opened)

    def _open_files(self) -> FileChannel:
        """A helper that died (killed by the model, or after a diff) starts again only with a
        fresh shell after a kill-all (`_open_shell`), never while the model's processes run."""
        self.restart_shell()
        channel = self._files.channel
        if channel is None:
            raise SandboxError("the sandbox's file helper did not start")
        return channel

    def diff(self, dest: Path) -> PatchFile:
        """Write a binary-safe patch of every change since start to `dest`, as `git apply` takes it.

        Every process of the sandbox user is killed first (a `setsid` child editing files after
        the last command included), so the patch is what the tools saw; the next `run` opens a
        fresh shell."""
        self._ready()
        self.stop_user_processes()
        # The two only read the workspace, so they look at it at once (in a 20,000-file repo,
        # each walks every file: 0.15 s and 0.3 s of the user's wait at the end of a run).
        with ThreadPoolExecutor(1, thread_name_prefix="patchwright-late-changes") as looking:
            later = looking.submit(self._late_changes)
            patch = self._baseline.diff(self._runner(), dest)
            late = later.result()
        return dataclasses.replace(patch, late_changes=late) if late else patch

    def _late_changes(self) -> tuple[str, ...]:
        """What in the workspace changed after the last command or file operation ended (by the
        kernel's ctime, which no process can set back; `.git` aside): a process left running
        wrote it while the model was thinking, and no tool result showed it. Run once every
        process of the sandbox user is gone, so nothing changes after this look."""
        last = max(self._last_end, self._files.last_end)
        if last <= 0:
            return ()
        argv = ["find", WORKSPACE, "-path", f"{WORKSPACE}/.git", "-prune", "-o"]
        argv += ["-newerct", f"@{last:.9f}", "-printf", "%y %P\\0"]
        found = self._runner().execute(argv, timeout=60, output_limit=LATE_OUTPUT_LIMIT)
        names: list[str] = []
        for entry in found.output.split("\0"):
            kind, space, name = entry.partition(" ")
            if kind == "d" and space:
                names.append(f"{name}/" if name else "./")  # "./": the workspace's own folder
            elif name and kind in ("f", "l"):
                names.append(name)
        return tuple(sorted(names)[:MAX_LATE_CHANGES])

    def stop_user_processes(self) -> None:
        """SIGKILL every process of the sandbox user: `kill -1` reaches all the caller may signal
        but itself, atomically against fork; the main process is root's and stays."""
        if self._shell is not None:
            self._shell.close()
            self._shell = None
        self._files.close()  # killed with the rest; opened again when next needed
        self._runner().kill_user_processes()
