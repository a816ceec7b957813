"""A sandbox that starts on a thread while the run goes on: the model's first request (and the
SDK's import) need no sandbox, so the copy and setup overlap them; every call waits for the start.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from patchwright.sandbox.base import CommandResult, PatchFile, Sandbox, StartResult


class BackgroundStart:
    """Wraps any `Sandbox`; `begin()` starts it, `start()` waits for that start and re-raises its error."""

    def __init__(
        self,
        inner: Sandbox,
        on_started: Callable[[StartResult | None, BaseException | None], None] | None = None,
    ) -> None:
        self.inner = inner
        self.on_started = on_started  # called on the start's thread when it is over, either way
        self.workdir = inner.workdir
        self.services = inner.services
        self._thread: threading.Thread | None = None
        self._result: StartResult | None = None
        self._error: BaseException | None = None

    def begin(self) -> None:
        def start() -> None:
            try:
                self._result = self.inner.start()
            except BaseException as err:  # handed to whoever waits
                self._error = err
            if self.on_started is not None:
                self.on_started(self._result, self._error)

        self._thread = threading.Thread(target=start, name="patchwright-sandbox-start", daemon=True)
        self._thread.start()

    def start(self) -> StartResult:
        if self._thread is None:
            self.begin()
        assert self._thread is not None
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    @property
    def started(self) -> bool:
        """The start is over and it worked (without waiting)."""
        return self._thread is not None and not self._thread.is_alive() and self._result is not None

    def run(self, command: str, timeout: float | None = None) -> CommandResult:
        self.start()
        return self.inner.run(command, timeout)

    def setup_run(self, command: str, timeout: float | None = None) -> CommandResult:
        self.start()
        return self.inner.setup_run(command, timeout)

    def finish_setup(self, save: bool = True) -> None:
        self.start()
        self.inner.finish_setup(save)

    def restart_shell(self) -> None:
        self.start()
        self.inner.restart_shell()

    def execute(
        self,
        argv: list[str],
        timeout: float | None = None,
        env: dict[str, str] | None = None,
        stdin: bytes | None = None,
        output_limit: int | None = None,
    ) -> CommandResult:
        self.start()
        return self.inner.execute(argv, timeout, env, stdin, output_limit)

    def read_file(self, path: str, max_bytes: int = 64 * 1024 * 1024) -> bytes:
        self.start()
        return self.inner.read_file(path, max_bytes)

    def write_file(self, path: str, data: bytes) -> None:
        self.start()
        self.inner.write_file(path, data)

    def file_op(self, request: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
        self.start()
        return self.inner.file_op(request, timeout)

    def diff(self, dest: Path) -> PatchFile:
        self.start()
        return self.inner.diff(dest)

    def stop(self) -> None:
        """Stop, cutting a start under way: what it made so far is removed (so a setup command
        still running fails at once instead of being waited for, which a Ctrl-C during a long
        install would do), the start is awaited, and what it made meanwhile is removed too."""
        if self._thread is not None and self._thread.is_alive():
            self.inner.stop()
            self._thread.join()
        self.inner.stop()
