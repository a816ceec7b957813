"""The Docker engine as the sandbox sees it: a client, and processes run in one container.

Every process patchwright starts in a container goes through `ContainerExec.stream`:
create the exec, hijack its socket, send stdin, read the multiplexed frames into a
sink until the process closes its end, then ask for the exit code. The persistent
shell keeps its socket open instead (`ContainerExec.open`).
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import secrets
import socket
import ssl
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import docker
import docker.errors
import requests
from docker.errors import APIError, DockerException
from docker.models.containers import Container

from patchwright.errors import SandboxError
from patchwright.sandbox import labels
from patchwright.sandbox.base import WORKSPACE, CommandResult, SandboxSpec
from patchwright.sandbox.env import BASE_ENV, GID, HOME, UID
from patchwright.sandbox.stream import (
    CappedBuffer,
    FrameReader,
    StreamClosed,
    StreamTimeout,
    command_result,
    under_timeout,
)

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
WORLD_WRITABLE = ("/var/tmp", "/run/lock")  # in the image, besides /tmp: covered when the root is writable
Sink = Callable[[bytes], bool]  # takes one payload; False stops reading


def _os_error_text(err: BaseException) -> str | None:
    """The innermost OS error message ("Connection refused") in an exception's chain, args or reason."""
    found: str | None = None
    pending: list[BaseException] = [err]
    seen: set[int] = set()
    while pending:
        current = pending.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            found = current.strerror
        linked = [current.__cause__, current.__context__, getattr(current, "reason", None), *current.args]
        pending.extend(item for item in linked if isinstance(item, BaseException))
    return found


def one_line(text: str, limit: int = 200) -> str:
    text = " ".join(_ANSI_ESCAPE.sub("", text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def error_reason(err: BaseException) -> str:
    """A short one-line reason for a Docker or transport failure, without URLs and retry noise."""
    if isinstance(err, APIError) and err.explanation:
        text = str(err.explanation)
    else:
        text = _os_error_text(err) or str(err)
    return one_line(text)


def docker_client() -> docker.DockerClient:
    """A client for the engine named by the environment, or a SandboxError saying it is not there."""
    try:
        client = docker.from_env()
        client.ping()
    except (DockerException, requests.RequestException) as err:
        host = os.environ.get("DOCKER_HOST") or DEFAULT_DOCKER_HOST
        raise SandboxError(
            f"cannot reach the Docker engine ({host}: {error_reason(err)}); is dockerd running? see README"
        ) from err
    return client


@contextlib.contextmanager
def docker_errors(what: str, error: type[SandboxError] = SandboxError) -> Iterator[None]:
    """Turn Docker SDK and transport failures into our one-line errors."""
    try:
        yield
    except (DockerException, requests.RequestException) as err:
        raise error(f"{what}: {error_reason(err)}") from err


def raw_socket(raw: Any) -> socket.socket:
    """The docker SDK hands back a SocketIO wrapper; reads and writes go to the real socket."""
    sock = getattr(raw, "_sock", raw)
    if not isinstance(sock, socket.socket):
        raise SandboxError("unsupported Docker transport for the sandbox shell (need a unix or tcp socket)")
    return sock


def early_output(response: object, sock: socket.socket) -> bytes:
    """What the HTTP layer read of the process's output along with the response's headers.

    A process that writes before this thread has parsed those headers (a thread kept from the
    GIL by the SDK's import, say) has its first frames in that layer's buffer, not on the
    socket: read from the socket alone, they are lost, and a helper's ready frame with them (a
    30 s wait, then "the sandbox shell did not start"; docker/docker-py#3332). None where the
    SDK gives no way to the buffer (TLS)."""
    http_response = getattr(getattr(response, "_response", None), "raw", None)
    buffered = getattr(getattr(http_response, "_fp", None), "fp", None)
    if not isinstance(buffered, io.BufferedReader):
        return b""
    timeout = sock.gettimeout()
    sock.settimeout(0)  # an empty buffer reads the socket once: now, not block
    try:
        early = buffered.peek()
        return buffered.read(len(early)) if early else b""
    except OSError:
        return b""
    finally:
        sock.settimeout(timeout)


@contextlib.contextmanager
def stdin_fd(sock: socket.socket) -> Iterator[int | None]:
    """The descriptor of an exec's socket, blocking, for another process to write into directly;
    None when its bytes must pass through Python (TLS)."""
    if isinstance(sock, ssl.SSLSocket):
        yield None
        return
    timeout = sock.gettimeout()
    sock.settimeout(None)  # a descriptor with a timeout is non-blocking: a writer would get EAGAIN
    try:
        yield sock.fileno()
    finally:
        sock.settimeout(timeout)


@dataclass(frozen=True)
class OpenExec:
    """A started exec. `response` owns `sock`: when the collector frees it, it closes the socket,
    so whoever talks to the process keeps this whole object, not the socket alone. `early`: the
    start of the process's output, read before the socket was handed over (`early_output`)."""

    exec_id: str
    sock: socket.socket
    response: object
    early: bytes = b""

    def reader(self) -> FrameReader:
        return FrameReader(self.sock, self.early)


@dataclass(frozen=True)
class ContainerExec:
    """Processes in one container, as the sandbox user, with the sandbox's base environment."""

    client: docker.DockerClient
    container_id: str
    workdir: str
    default_timeout: float = 120.0
    output_limit: int = 32 * 1024

    def open(
        self,
        argv: list[str],
        env: dict[str, str] | None = None,
        what: str = "run a command",
        stderr: bool = True,
        root: bool = False,
        stdin: bool = True,
    ) -> OpenExec:
        """Start a process, with stdin attached unless `stdin` is False: its exec id and the socket
        to talk to it. `root`: as the container's root (no capabilities), only for patchwright's
        own preparation."""
        try:
            exec_id = self.client.api.exec_create(
                self.container_id,
                argv,
                stdin=stdin,
                stdout=True,
                stderr=stderr,
                environment={**BASE_ENV, **(env or {})},
                workdir=self.workdir,
                user="0:0" if root else f"{UID}:{GID}",
            )["Id"]
            response = self.client.api.exec_start(exec_id, socket=True)
            sock = raw_socket(response)
            return OpenExec(exec_id, sock, response, early_output(response, sock))
        except docker.errors.NotFound:
            raise SandboxError("the sandbox container is gone") from None
        except docker.errors.APIError as err:
            raise SandboxError(f"cannot {what} in the sandbox: {err.explanation or err}") from None

    def stream(
        self,
        argv: list[str],
        sink: Sink,
        *,
        stdin: Iterable[bytes] | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 600,
        what: str = "run a command",
        send: Callable[[socket.socket], None] | None = None,
        root: bool = False,
    ) -> int | None:
        """Run a process to its end, feeding `stdin` and each output payload to `sink`; its exit code.

        `send`, instead of `stdin`, writes the process's stdin itself (to the socket, or its
        descriptor: `stdin_fd`). Stops reading at the deadline, or when `sink` returns False; an
        early close of stdin by the process (it died) ends the writing, not the run.
        """
        # Without input, no stdin at all: closing an attached stdin (a half-close of the hijacked
        # connection) can end the engine's copy of the output, and a process that exits at once
        # then loses it (moby/moby#38457; seen as a setup's "echo ...; exit 3" with no output).
        feeds = stdin is not None or send is not None
        opened = self.open(argv, env, what, root=root, stdin=feeds)
        exec_id, sock = opened.exec_id, opened.sock
        try:
            if feeds:
                try:
                    if send is not None:
                        send(sock)
                    for chunk in stdin or ():
                        sock.sendall(chunk)
                    sock.shutdown(socket.SHUT_WR)
                except OSError as err:  # the process exited and closed its stdin
                    sink(str(err).encode())
            reader = opened.reader()
            deadline = time.monotonic() + timeout
            while sink(reader.read_payload(deadline)):
                pass
        except (StreamClosed, StreamTimeout):
            pass
        finally:
            sock.close()
        try:
            code = self.client.api.exec_inspect(exec_id).get("ExitCode")
        except docker.errors.APIError as err:
            raise SandboxError(f"cannot {what} in the sandbox: {err.explanation or err}") from None
        return code if isinstance(code, int) else None

    def execute(
        self,
        argv: list[str],
        timeout: float | None = None,
        env: dict[str, str] | None = None,
        stdin: bytes | None = None,
        output_limit: int | None = None,
    ) -> CommandResult:
        """Run one process under `timeout`, its output capped (head and tail kept)."""
        limit = timeout or self.default_timeout
        buffer = CappedBuffer(output_limit or self.output_limit)
        started = time.monotonic()
        stdin_chunks = [stdin] if stdin is not None else None
        code = self.stream(
            under_timeout(argv, limit), buffer.take, stdin=stdin_chunks, env=env, timeout=limit + 15
        )
        return command_result(buffer, code, time.monotonic() - started, limit)

    def kill_user_processes(self) -> None:
        """SIGKILL every process of the sandbox user: `kill -1` reaches all the caller may signal
        but itself, atomically against fork; the main process is root's and stays."""
        # Killed again until no process of the user but this one is left in /proc (a zombie
        # counts until the container's init reaps it): no fixed pause, at most ~1 s for one stuck
        # in the kernel. (`kill -0 -1` cannot tell: it succeeds while root's processes exist.)
        script = (
            'left() { for p in /proc/[0-9]*; do [ "${p#/proc/}" != $$ ] && [ -O "$p" ] && return 0; '
            "done; return 1; }; kill -KILL -1 2>/dev/null; n=0; "
            "while left && [ $n -lt 100 ]; do sleep 0.01; kill -KILL -1 2>/dev/null; n=$((n+1)); done; exit 0"
        )
        output = CappedBuffer(4096)
        # Not under `timeout`, which `kill -1` would take down with the rest.
        code = self.stream(
            ["bash", "-c", script], output.take, timeout=30, what="stop the sandbox's processes"
        )
        if code != 0:
            raise SandboxError(f"cannot stop the sandbox's processes: {output.render()[0][-200:]}")

    def collect(self, argv: list[str], max_bytes: int, timeout: float = 600) -> tuple[bytes, int | None]:
        """A process's raw stdout and exit code; OSError past `max_bytes`."""
        chunks: list[bytes] = []
        size = 0

        def keep(chunk: bytes) -> bool:
            nonlocal size
            chunks.append(chunk)
            size += len(chunk)
            return size <= max_bytes

        code = self.stream(argv, keep, timeout=timeout, what=f"run {argv[0]}")
        if size > max_bytes:
            raise OSError(f"output larger than {max_bytes} bytes")
        return b"".join(chunks), code

    def read_file(self, path: str, max_bytes: int = 64 * 1024 * 1024) -> bytes:
        data, code = self.collect(["cat", "--", path], max_bytes, timeout=120)
        if code != 0:
            raise FileNotFoundError(path)
        return data

    def write_file(self, path: str, data: bytes) -> None:
        """Through a process in the container, so its rules (read-only root, the user) apply."""
        script = 'mkdir -p "$(dirname "$1")" && cat > "$1"'
        result = self.execute(["sh", "-c", script, "sh", path], stdin=data, timeout=60)
        if result.exit_code != 0:
            raise OSError(result.output.strip() or f"cannot write {path}")


def engine_cpus(client: docker.DockerClient, wanted: float) -> float:
    """The engine refuses a CPU limit above its own CPU count (a 1-CPU VM, Docker Desktop)."""
    try:
        return float(client.info().get("NCPU") or wanted)
    except (docker.errors.APIError, ValueError, TypeError):
        return wanted


def setup_runs(spec: SandboxSpec) -> bool:
    """Whether a start runs setup: always from scratch; from a saved state only when replayed."""
    return not spec.restore_from or (spec.replay_setup and bool(spec.setup_command))


def container_options(
    spec: SandboxSpec, writable_root: bool, cpus: float, network: str | None = None
) -> dict[str, Any]:
    """The hardened sandbox container's settings, as `containers.create` keyword arguments.

    The workspace is a tmpfs (spec.workspace_size), except in a snapshot's container
    (`writable_root`), whose own layer holds the repo; the image's world-writable folders are
    then covered read-only, as a read-only root leaves them.
    """
    tmpfs = {
        "/tmp": f"rw,nosuid,nodev,exec,size={spec.tmp_size},mode=1777",
        HOME: f"rw,nosuid,nodev,exec,size={spec.home_size},uid={UID},gid={GID},mode=0755",
    }
    if writable_root:
        tmpfs.update({path: "ro,nosuid,nodev,noexec,size=1m" for path in WORLD_WRITABLE})
    else:
        tmpfs[WORKSPACE] = f"rw,nosuid,nodev,exec,size={spec.workspace_size},uid={UID},gid={GID},mode=0755"
    return {
        "command": ["sleep", "infinity"],
        "init": True,
        # The main process runs as root (with no capabilities), so no process of the sandbox
        # user can kill it and end the container mid-run; every exec runs as the sandbox user.
        "user": "0:0",
        "working_dir": WORKSPACE,
        "environment": BASE_ENV,
        "labels": {
            labels.MANAGED: labels.MANAGED_VALUE,
            labels.KIND: labels.KIND_SANDBOX,
            labels.RUN_ID: spec.run_id,
            labels.OWNER: labels.owner(),  # prune leaves a run alone while this process lives
            **spec.labels,
        },
        "name": f"patchwright-{spec.run_id}-{secrets.token_hex(3)}",
        "hostname": "sandbox",
        # `network`: setup's own (egress.py), when it runs on the registries-only network
        "network_mode": network
        or (
            "bridge"
            if spec.network or ((spec.setup_command or spec.setup_repairable) and setup_runs(spec))
            else "none"
        ),
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges"],
        "read_only": not writable_root,
        "pids_limit": spec.pids_limit,
        "mem_limit": spec.memory,
        "memswap_limit": spec.memory,
        "nano_cpus": int(min(spec.cpus, cpus) * 1e9),
        "tmpfs": tmpfs,
        "mounts": [],
        "stdin_open": False,
        "tty": False,
        # The engine removes the container once it is stopped, even if this process died first: a
        # stop is a kill, and no one waits for the removal (unmounts, the layer: 0.2-0.4 s).
        "auto_remove": True,
    }


def discard(container: Container, stop_signal: str = "SIGKILL") -> None:
    """Kill a container made with `auto_remove` (the engine then removes it); one that never
    started, or has exited already, is removed here. Never raises.

    For SIGKILL the engine answers once the container has stopped (0.6-0.9 s measured at the end
    of a run, the engine busy with a snapshot's commit); for any other signal it answers once the
    signal is sent. `SIGTERM` is for a container whose main process ends on it (`sleep` under
    docker-init: the init passes it on, and exits when its child does)."""
    try:
        container.kill(signal=stop_signal)
        return
    except docker.errors.NotFound:
        return
    except (docker.errors.APIError, requests.RequestException):
        pass  # not running (created only, or exited): removed below, unless the engine is at it
    with contextlib.suppress(docker.errors.APIError, requests.RequestException):
        container.remove(force=True, v=True)


def side_by_side(*steps: Callable[[], None]) -> None:
    """Run the steps on threads of their own and wait for all; the first error is raised once
    every step is done. Teardowns are engine calls that wait on the engine (a kill, a removal),
    so together they cost the longest of them instead of the sum."""
    if len(steps) < 2:
        for step in steps:
            step()
        return
    with ThreadPoolExecutor(len(steps), thread_name_prefix="patchwright-teardown") as pool:
        running = [pool.submit(step) for step in steps]
    for done in running:
        done.result()


def disconnect_networks(client: docker.DockerClient, container: Container) -> None:
    """Cut every network a container has; SandboxError if one is still attached after."""
    container.reload()
    networks = container.attrs["NetworkSettings"]["Networks"] or {}
    for name in list(networks):
        client.networks.get(name).disconnect(container, force=True)
    container.reload()
    if container.attrs["NetworkSettings"]["Networks"]:
        raise SandboxError("could not cut the sandbox network after setup")
