"""The local Docker runtime: a hardened container holding a copy of the repository.

Hardening: non-root uid, all capabilities dropped, no-new-privileges, read-only
root filesystem, pids/memory/CPU limits, no network unless the setup phase asks
for it (and then cut before the model's first command), no host environment.
The repository travels in as a tar stream into a volume of the container's own.
"""

from __future__ import annotations

import contextlib
import secrets
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import docker
import docker.errors
from docker.models.containers import Container
from docker.types import Mount

from patchwright.errors import SandboxError
from patchwright.sandbox import labels
from patchwright.sandbox.base import WORKSPACE, CommandResult, SandboxSpec
from patchwright.sandbox.shell import DRIVER, RUNNER, ShellBroken, ShellSession
from patchwright.sandbox.stream import CappedBuffer, FrameReader, StreamClosed, StreamTimeout, command_result
from patchwright.workspace import Workspace, git_config_tar, list_files, tar_stream

UID = GID = 1000
HOME = "/home/agent"
CONTROL_DIR = "/tmp/.patchwright"
BASE_REF = "refs/patchwright/base"


def trusted_git(index_file: str) -> str:
    """A git command line the model cannot redirect: fixed binary and PATH, no user/system config,
    no hooks, its own index (the model's own git use never moves the base)."""
    return (
        f"env -i HOME=/tmp PATH=/usr/bin:/bin GIT_CONFIG_NOSYSTEM=1 GIT_CONFIG_GLOBAL=/dev/null "
        f"GIT_INDEX_FILE={index_file} /usr/bin/git -c core.hooksPath=/dev/null -c core.quotepath=off "
        "-c core.fsmonitor=false"
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
    ) -> None:
        self.client = client
        self.spec = spec
        self.workspace = workspace
        self.progress = progress
        self.container: Container | None = None
        self._shell: ShellSession | None = None
        self._base_tree: str | None = None
        self._shell_env: dict[str, str] = {}  # extra variables for the model's shell

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> None:
        """Create the container, copy the repo in, run setup, cut the network, open the shell."""
        try:
            self._create()
            self._copy_repository()
            if self.spec.setup_command:
                self._run_setup(self.spec.setup_command)
            self._record_base()
            if self.spec.network:  # the model's own installs go through the same proxy as setup's
                self._shell_env = self._trust_host_ca()
            self._open_shell()
        except BaseException:
            self.stop()
            raise

    def _labels(self) -> dict[str, str]:
        return {
            labels.MANAGED: "true",
            labels.KIND: "sandbox",
            labels.RUN_ID: self.spec.run_id,
            **self.spec.labels,
        }

    def _create(self) -> None:
        spec = self.spec
        self.progress("starting sandbox container")
        try:
            self.client.images.get(spec.image)  # `run` would try a pull; a missing image is the user's to fix
            self.container = self.client.containers.create(spec.image, **self.container_options())
            self.container.start()
        except docker.errors.ImageNotFound:
            raise SandboxError(
                f"sandbox image {spec.image} not found; run `agent sandbox build` or pass --image"
            ) from None
        except docker.errors.APIError as err:
            raise SandboxError(f"cannot start the sandbox container: {err.explanation or err}") from None

    def _engine_cpus(self) -> float:
        """The engine refuses a CPU limit above its own CPU count (a 1-CPU VM, Docker Desktop)."""
        try:
            return float(self.client.info().get("NCPU") or self.spec.cpus)
        except (docker.errors.APIError, ValueError, TypeError):
            return self.spec.cpus

    def container_options(self) -> dict[str, Any]:
        """The hardened container's settings, as `containers.create` keyword arguments."""
        spec = self.spec
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
            "read_only": True,
            "pids_limit": spec.pids_limit,
            "mem_limit": spec.memory,
            "memswap_limit": spec.memory,
            "nano_cpus": int(min(spec.cpus, self._engine_cpus()) * 1e9),
            "tmpfs": {
                "/tmp": f"rw,nosuid,nodev,exec,size={spec.tmp_size},mode=1777",
                HOME: f"rw,nosuid,nodev,exec,size={spec.home_size},uid={UID},gid={GID},mode=0755",
            },
            # An anonymous volume: removed with the container (remove(v=True)), by prune too.
            "mounts": [Mount(target=WORKSPACE, source=None, type="volume")],
            "stdin_open": False,
            "tty": False,
        }

    def _copy_repository(self) -> None:
        """Stream the repo as a tar into `tar -x` running as the sandbox user.

        Measured faster than the engine's archive API (benchmarks/startup.py), and the
        files come out owned by the sandbox user with no root step.
        """
        assert self.container is not None
        files = list_files(self.workspace)
        self.progress(f"copying {len(files)} files into the sandbox")
        self._extract(tar_stream(self.workspace, files, UID, GID))
        config = git_config_tar(self.workspace, UID, GID)
        if config is not None:
            self._extract([config])

    def _extract(self, chunks: Iterable[bytes]) -> None:
        assert self.container is not None
        try:
            exec_id = self.client.api.exec_create(
                self.container.id,
                ["tar", "-x", "-f", "-", "-C", WORKSPACE],
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
        env = self._trust_host_ca()
        self.progress(f"setup (network on): {command}")
        result = self.execute(["bash", "-c", command], timeout=self.spec.setup_timeout, env=env)
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
        """Snapshot the starting state as a git tree; diff() compares against it."""
        index = f"{CONTROL_DIR}/base.index"
        git = trusted_git(index)
        script = (
            f"set -e; mkdir -p {CONTROL_DIR}; cd {WORKSPACE}; "
            f"if [ ! -d .git ]; then {git} init -q; fi; "
            f"if [ -f .git/index ]; then cp -p .git/index {index}; fi; "
            # tar kept mtimes and sizes, so the host index's hashes hold for unchanged files;
            # `cp -p` keeps the index's own mtime, which git's racy-entry check relies on.
            f"{git} -c core.checkStat=minimal -c core.trustctime=false add -A; "
            f'tree=$({git} write-tree); {git} update-ref {BASE_REF} "$tree"; echo "$tree"'
        )
        result = self.execute(["bash", "-c", script], timeout=600)
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
                environment={**BASE_ENV, **self._shell_env, "PW_RUNNER": RUNNER},
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
            if self._shell is not None:
                self._shell.close()
                self._shell = None
            if self.container is not None:
                with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
                    self.container.remove(force=True, v=True)
                self.container = None
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
