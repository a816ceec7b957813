"""The shell driver's bash started ahead: used by the next command, never stale, never required.

The driver runs here as a local process (as LocalSandbox runs it), over a socket pair.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from patchwright.sandbox.shell import ShellSession, driver_argv
from patchwright.sandbox.stream import RawReader


class Driver:
    def __init__(self, session: ShellSession, process: subprocess.Popen[bytes]) -> None:
        self.session, self.process = session, process

    def run(self, command: str) -> tuple[int | None, str]:
        result = self.session.run(command, timeout=20, output_limit=1 << 20)
        return result.exit_code, result.output

    def waiting(self) -> list[int]:
        """The pids of the driver's children that are a bash waiting for its command."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                stat = (entry / "stat").read_text()
                argv = (entry / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            parent = int(stat.rsplit(")", 1)[1].split()[1])
            if parent == self.process.pid and argv[-2:] == [b"wait", b""]:
                found.append(int(entry.name))
        return found


@pytest.fixture
def driver(tmp_path: Path) -> Iterator[Driver]:
    ours, theirs = socket.socketpair()
    process = subprocess.Popen(
        driver_argv(str(tmp_path), python=sys.executable),
        stdin=theirs.fileno(),
        stdout=theirs.fileno(),
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    theirs.close()
    session = ShellSession.handshake(ours, RawReader(ours))
    try:
        yield Driver(session, process)
    finally:
        session.close()
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def test_the_next_command_runs_in_the_bash_started_after_the_last(driver: Driver) -> None:
    assert driver.waiting() == []  # none before the first command: it gets a bash of its own
    assert driver.run("true") == (0, "")
    deadline = time.monotonic() + 5
    while not (ahead := driver.waiting()) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(ahead) == 1
    assert driver.run("echo $$") == (0, f"{ahead[0]}\n")


def test_the_state_is_restored_when_the_command_comes_not_before(driver: Driver, tmp_path: Path) -> None:
    (tmp_path / "work").mkdir()
    assert driver.run("cd work && export PICKED=yes")[0] == 0
    time.sleep(0.2)  # the bash for the next command is up by now, waiting
    shutil.rmtree(tmp_path / "work")
    (tmp_path / "work").mkdir()  # the same path, a new folder
    (tmp_path / "work" / "new.txt").write_text("")
    assert driver.run("ls; echo $PICKED; exit 3") == (3, "new.txt\nyes\n")


def test_a_killed_waiting_bash_is_replaced_without_a_trace(driver: Driver) -> None:
    assert driver.run("export KEPT=1")[0] == 0
    deadline = time.monotonic() + 5
    while not (ahead := driver.waiting()) and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(ahead[0], signal.SIGKILL)  # as a kill-all of the sandbox user's processes would
    time.sleep(0.05)
    code, output = driver.run("echo $KEPT; echo $$")
    assert code == 0 and output.startswith("1\n") and output != f"1\n{ahead[0]}\n"
    assert driver.run("echo $KEPT") == (0, "1\n")


def test_a_command_longer_than_one_pipe_write_gets_a_bash_of_its_own(driver: Driver) -> None:
    assert driver.run("true")[0] == 0
    long = "X=" + "a" * 20_000 + "\necho ${#X}"
    assert driver.run(long) == (0, "20000\n")
    assert driver.run("echo after") == (0, "after\n")
