"""The repository's full copy through a named pipe, when the engine runs on this machine.

Through an exec's stdin every byte is copied twice more on its way (by the engine, then by
the container's shim), and those copies take the CPU the SDK's import needs at the same
time: the 225 MB of the 20,000-file benchmark repo took 1.1-1.4 s that way, 0.5-0.6 s through
a pipe. So the host makes a FIFO in a folder of its own (mode 0700: no other host user
reaches it) and the container gets that one file, bind-mounted read-only; the host's tar
writes into it and the container's tar, the sandbox user's first process, reads it.

Nothing else of the host is mounted, and once the copy is over the folder is removed: the
pipe in the container then leads nowhere (no host process opens it again). An engine that
does not share this machine's kernel (Docker Desktop's VM, a remote engine) cannot see the
host's FIFO, so the copy goes through the exec's stdin there (transfer.extract); so does a
copy whose pipe failed (an SELinux host that refuses the unlabelled mount, say).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

import docker
import docker.errors
import docker.types

from patchwright.errors import SandboxError
from patchwright.repocopy import Spool, tar_into
from patchwright.sandbox.base import WORKSPACE
from patchwright.sandbox.engine import ContainerExec
from patchwright.sandbox.env import GID, UID
from patchwright.sandbox.stream import CappedBuffer
from patchwright.workspace import Workspace

IN_CONTAINER = "/.patchwright-copy"  # where the container sees the pipe
PIPE_SIZE = 1 << 20  # bytes the pipe holds (the most an unprivileged process may ask by default)
OPEN_WAIT = 30.0  # seconds the host waits for the container's tar to open the pipe
EXTRACT_ARGV = ["tar", "-x", "-i", "-B", "-f", IN_CONTAINER, "-C", WORKSPACE]  # -B: a pipe gives short reads


def engine_is_local(client: docker.DockerClient) -> bool:
    """The engine runs on this machine's kernel, over a local socket: a host path it mounts is
    this machine's file."""
    if sys.platform != "linux" or not client.api.base_url.startswith("http+docker://localhost"):
        return False
    try:
        version = client.version()
    except (docker.errors.DockerException, OSError):
        return False
    return version.get("Os") == "linux" and version.get("KernelVersion") == os.uname().release


class CopyPipe:
    """One FIFO for one container's copy; `close` removes it from the host."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / "pipe"

    @classmethod
    def create(cls) -> CopyPipe:
        pipe = cls(Path(tempfile.mkdtemp(prefix="patchwright-copy-")))
        try:
            os.mkfifo(pipe.path, 0o600)
            os.chmod(pipe.path, 0o644)  # read by the sandbox user; written by this process alone
        except OSError:
            pipe.close()
            raise
        return pipe

    def mount(self) -> docker.types.Mount:
        return docker.types.Mount(IN_CONTAINER, str(self.path), type="bind", read_only=True)

    def close(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)

    def extract(
        self, runner: ContainerExec, ws: Workspace, members: list[str], extra: list[bytes], timeout: float
    ) -> None:
        """A tar of `members`, then the archives in `extra`, through the pipe into the workspace.
        The container's tar opens the pipe, then the host's writes into it from a thread."""
        errors = CappedBuffer(4096)
        over = threading.Event()  # the container's tar has ended: stop waiting for it to open
        failures: list[str] = []

        def write() -> None:
            fd = _open_for_writing(self.path, over, time.monotonic() + OPEN_WAIT)
            if fd is None:
                failures.append("the container's tar did not open the pipe")
                return
            try:
                if (code := tar_into(ws, members, UID, GID, fd, timeout)) != 0:
                    failures.append(f"the host's tar exited with {code}")
                    return
                for chunk in extra:
                    _write_all(fd, chunk)
            except OSError as err:
                failures.append(f"cannot write to the pipe: {err.strerror or err}")
            finally:
                os.close(fd)  # the container's tar reads to the end of the pipe: this is its end

        writer = threading.Thread(target=write, name="patchwright-copy", daemon=True)
        writer.start()
        try:
            code = runner.stream(EXTRACT_ARGV, errors.take, timeout=timeout, what="copy the repository")
        finally:
            over.set()
            writer.join()
        if code != 0 or failures:
            said = errors.render()[0].strip().splitlines()[-1:]
            detail = (failures or said or [f"tar exited with {code}"])[0]
            raise SandboxError(f"cannot copy the repository through the pipe: {detail[:200]}")


class SpooledCopy:
    """The copy's tar written ahead into a file while the run started (repocopy.Spool), mounted
    where the pipe would be: the container's tar reads a file that is there, so the host's tar
    (half the copy's CPU) ran while the run's own modules were imported. Used for runs that build
    no snapshot (CI); `close` empties and removes the file."""

    def __init__(self, spool: Spool) -> None:
        self.spool = spool

    def mount(self) -> docker.types.Mount:
        return docker.types.Mount(IN_CONTAINER, str(self.spool.path), type="bind", read_only=True)

    def close(self) -> None:
        self.spool.close()

    def extract(
        self, runner: ContainerExec, ws: Workspace, members: list[str], extra: list[bytes], timeout: float
    ) -> None:
        """The spooled tar (of the same `members`), then the archives in `extra`, into the workspace."""
        if (wrote := self.spool.finish(timeout)) != 0:  # -25 (SIGXFSZ): the repo is past the spool's cap
            raise SandboxError(
                f"cannot copy the repository from its spool: the host's tar exited with {wrote}"
            )
        self.spool.append(extra)
        errors = CappedBuffer(4096)
        code = runner.stream(EXTRACT_ARGV, errors.take, timeout=timeout, what="copy the repository")
        if code != 0:
            said = errors.render()[0].strip().splitlines()[-1:] or [f"tar exited with {code}"]
            raise SandboxError(f"cannot copy the repository from its spool: {said[0][:200]}")


def _open_for_writing(path: Path, over: threading.Event, deadline: float) -> int | None:
    """The pipe's write end, once a reader has it open (a blocking open would wait forever for a
    reader that never comes); None if none came before the deadline or the reader's end."""
    while not over.is_set() and time.monotonic() < deadline:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as err:
            if err.errno != errno.ENXIO:  # ENXIO: no reader yet
                return None
            time.sleep(0.002)
            continue
        os.set_blocking(fd, True)  # tar writes into it as into any file
        with contextlib.suppress(OSError):  # fewer, larger hand-overs: 10-20% faster here
            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_SIZE)
        return fd
    return None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
