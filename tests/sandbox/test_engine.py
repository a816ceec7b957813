"""The engine's exec streams against the real engine: no byte of a process's output is lost.

The docker SDK parses an exec's response headers through a buffered reader and then hands over
the socket under it. Output that arrived before the headers were parsed sits in that buffer. A
thread kept waiting (for the GIL, behind the SDK's import) is what makes it arrive first; here
the parsing is held back on purpose, the same way each time. Also: teardowns side by side.
"""

from __future__ import annotations

import http.client
import threading
import time
from typing import Any

import pytest

from patchwright.errors import SandboxError
from patchwright.sandbox.docker import DockerSandbox
from patchwright.sandbox.engine import side_by_side

HELD = 0.3  # seconds each response's parsing waits: longer than the process takes to write


@pytest.fixture
def slow_headers(monkeypatch: pytest.MonkeyPatch) -> None:
    begin = http.client.HTTPResponse.begin

    def late_begin(self: http.client.HTTPResponse) -> Any:
        time.sleep(HELD)
        return begin(self)

    monkeypatch.setattr(http.client.HTTPResponse, "begin", late_begin)


def test_output_that_came_with_the_headers_is_kept(sandbox: DockerSandbox, slow_headers: None) -> None:
    result = sandbox.execute(["printf", "hello"])
    assert (result.exit_code, result.output) == (0, "hello")


def test_a_shell_whose_ready_frame_came_with_the_headers_starts(
    sandbox: DockerSandbox, slow_headers: None
) -> None:
    started = time.monotonic()
    sandbox.restart_shell()  # the driver and the file helper each send a ready frame at once
    assert time.monotonic() - started < 20  # not the handshake's 30 s timeout
    assert sandbox.run("echo ok").output == "ok\n"
    assert sandbox.read_file("/workspace/README.md") == b"demo\n"


def test_side_by_side_runs_the_steps_at_once() -> None:
    meet = threading.Barrier(3, timeout=5)  # broken, and raised, if the steps ran one by one
    side_by_side(meet.wait, meet.wait, meet.wait)


def test_side_by_side_finishes_every_step_before_raising_the_first_error() -> None:
    finished: list[str] = []

    def fails() -> None:
        raise SandboxError("first")

    def slow() -> None:
        time.sleep(0.2)
        finished.append("slow")

    with pytest.raises(SandboxError, match="first"):
        side_by_side(fails, slow)
    assert finished == ["slow"]
