"""A sandbox in a local folder: the same contract as Docker's, with no isolation at all.

For the tools' tests (milliseconds, not a container per test) and as the second
backend the contract tests hold to the interface. Commands run as the calling user
on the host, so it is never used for a run of `agent fix`: only trusted code goes here.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from patchwright.errors import SandboxError
from patchwright.repocopy import git_config_tar, scan_files, tar_stream
from patchwright.sandbox.base import (
    DEFAULT_COMMAND_TIMEOUT,
    DEFAULT_OUTPUT_LIMIT,
    CommandResult,
    PatchFile,
    ServiceControl,
    SetupFailed,
    StartResult,
)
from patchwright.sandbox.baseline import Baseline
from patchwright.sandbox.files import FileChannel, FileHelper, helper_argv
from patchwright.sandbox.shell import ShellBroken, ShellSession, driver_argv
from patchwright.sandbox.stream import CappedBuffer, RawReader, command_result, under_timeout
from patchwright.workspace import Workspace


class LocalSandbox:
    """A `Sandbox` whose workspace is `<root>/workspace` on this machine."""

    def __init__(
        self,
        workspace: Workspace | None = None,
        root: Path | None = None,
        setup_command: str | None = None,
        command_timeout: float = DEFAULT_COMMAND_TIMEOUT,
        output_limit: int = DEFAULT_OUTPUT_LIMIT,
        setup_repairable: bool = False,
    ) -> None:
        self.repo = workspace
        self.setup_repairable = setup_repairable
        self._setup_open = False
        self.root = Path(root or tempfile.mkdtemp(prefix="patchwright-local-"))
        self.workdir = str(self.root / "workspace")
        self.services: ServiceControl | None = None
        self.control_dir = str(self.root / "control")
        self.setup_command = setup_command
        self.command_timeout = command_timeout
        self.output_limit = output_limit
        self._baseline = Baseline(self.workdir, self.control_dir)
        self._shell: ShellSession | None = None
        self._driver: subprocess.Popen[bytes] | None = None
        self._helper: subprocess.Popen[bytes] | None = None
        self._files = FileHelper(self._open_files)
        self._env = {
            "HOME": str(self.root / "home"),
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),  # the host's own tools
            "LANG": "C.UTF-8",
            "TERM": "dumb",
            "GIT_PAGER": "cat",
            "PAGER": "cat",
            "PYTHONDONTWRITEBYTECODE": "1",
        }

    def start(self) -> StartResult:
        try:
            for folder in (self.workdir, self.control_dir, self._env["HOME"]):
                os.makedirs(folder, exist_ok=True)
            if self.repo is not None:
                self._copy_repository(self.repo)
            setup = None
            self._setup_open = True
            if self.setup_command:
                setup = self.setup_run(self.setup_command)
                if setup.exit_code != 0 and not self.setup_repairable:
                    raise SetupFailed(f"setup command exited with {setup.exit_code}", setup)
            if not self.setup_repairable:
                self.finish_setup()
            return StartResult(setup)
        except BaseException:
            self.stop()
            raise

    def _copy_repository(self, ws: Workspace) -> None:
        """What git sees, through the same tar stream the container gets."""
        tar = subprocess.Popen(["tar", "-x", "-i", "-f", "-", "-C", self.workdir], stdin=subprocess.PIPE)
        assert tar.stdin is not None
        uid, gid = os.getuid(), os.getgid()
        config = git_config_tar(ws, uid, gid)
        with tar.stdin:
            for chunk in itertools.chain(tar_stream(ws, scan_files(ws).files, uid, gid), [config or b""]):
                tar.stdin.write(chunk)
        if tar.wait() != 0:
            raise SandboxError("cannot copy the repository into the local sandbox")

    def _open_shell(self) -> None:
        ours, theirs = socket.socketpair()
        self._driver = subprocess.Popen(
            driver_argv(self.workdir, python=sys.executable),
            stdin=theirs.fileno(),
            stdout=theirs.fileno(),
            stderr=subprocess.DEVNULL,
            env=self._env,
            start_new_session=True,
        )
        theirs.close()
        try:
            self._shell = ShellSession.handshake(ours, RawReader(ours))
        except ShellBroken as err:
            raise SandboxError(str(err)) from None

    def _close_shell(self) -> None:
        if self._shell is not None:
            self._shell.close()
            self._shell = None
        if self._driver is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._driver.pid, signal.SIGKILL)
            self._driver.wait()
            self._driver = None

    def run(self, command: str, timeout: float | None = None) -> CommandResult:
        if self._shell is None:
            self._open_shell()
        assert self._shell is not None
        try:
            return self._shell.run(command, timeout or self.command_timeout, self.output_limit)
        except ShellBroken as err:
            self.restart_shell()
            return CommandResult(
                f"[{err}; a fresh shell was started in {self.workdir}]", None, timed_out=True
            )

    def setup_run(self, command: str, timeout: float | None = None) -> CommandResult:
        """A command of the setup window (there is no network to cut on the host)."""
        if not self._setup_open:
            raise SandboxError("the setup window is closed: the starting state is taken")
        return self.execute(["bash", "-c", command], timeout)

    def finish_setup(self, save: bool = True) -> None:
        """Take the starting state and open the shell (nothing is saved: no verification runs here)."""
        if self._setup_open:
            self._setup_open = False
            self._baseline.record(self)
            if self._shell is None:  # a command of the setup window may have opened it
                self._open_shell()

    def restart_shell(self) -> None:
        self._close_shell()
        self._open_shell()

    def execute(
        self,
        argv: list[str],
        timeout: float | None = None,
        env: dict[str, str] | None = None,
        stdin: bytes | None = None,
        output_limit: int | None = None,
    ) -> CommandResult:
        limit = timeout or self.command_timeout
        buffer = CappedBuffer(output_limit or self.output_limit)
        started = time.monotonic()
        process = subprocess.Popen(
            under_timeout(argv, limit),
            cwd=self.workdir,
            env={**self._env, **(env or {})},
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        assert process.stdout is not None
        if process.stdin is not None:
            with contextlib.suppress(BrokenPipeError), process.stdin:
                process.stdin.write(stdin or b"")
        stdout = process.stdout
        while chunk := os.read(stdout.fileno(), 1 << 16):
            buffer.feed(chunk)
        stdout.close()
        code = process.wait()
        return command_result(buffer, code, time.monotonic() - started, limit)

    def read_file(self, path: str, max_bytes: int = 64 * 1024 * 1024) -> bytes:
        try:
            with open(path, "rb") as fh:
                data = fh.read(max_bytes + 1)
        except (IsADirectoryError, FileNotFoundError, PermissionError):
            raise FileNotFoundError(path) from None
        if len(data) > max_bytes:
            raise OSError(f"output larger than {max_bytes} bytes")
        return data

    def write_file(self, path: str, data: bytes) -> None:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as fh:
            fh.write(data)

    def file_op(self, request: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
        return self._files.request(request, timeout)

    def _open_files(self) -> FileChannel:
        ours, theirs = socket.socketpair()
        self._helper = subprocess.Popen(
            helper_argv(self.workdir),
            stdin=theirs.fileno(),
            stdout=theirs.fileno(),
            stderr=subprocess.DEVNULL,
            cwd=self.workdir,
            env=self._env,
            start_new_session=True,
        )
        theirs.close()
        return FileChannel(ours, RawReader(ours))

    def diff(self, dest: Path) -> PatchFile:
        return self._baseline.diff(self, dest)

    def stop(self) -> None:
        self._files.close()
        if self._helper is not None:
            with contextlib.suppress(ProcessLookupError):
                self._helper.kill()
            self._helper.wait()
            self._helper = None
        self._close_shell()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> LocalSandbox:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()
