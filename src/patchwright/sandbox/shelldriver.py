"""The shell driver: one long-lived Python process in the sandbox that runs the model's commands.

The host sends this file's text (behind programs.py's prologue) to `python3 -I -S -B -c` once
per shell. Each command then runs
in a fresh bash (its own process group), restored to the state the one before left (working
directory and exported variables), as Anthropic's bash tool promises.

The bash for the next command is started as soon as a command ends, and waits on a pipe for a
go line: starting bash is a third of a short command's time (1.3 of 3 ms for `ls`), and the
model's thinking hides it. The state is restored only after the go line, so a working directory removed
and made again meanwhile is the new one. A command too long for the pipe, or a waiting bash
that was killed meanwhile (a kill-all), gets a bash started for it as before. The first
command of a driver never finds one waiting: when the driver starts, the only process of the
sandbox user is the driver itself (the file helper starts beside it; docs/security.md).

Why a driver the commands cannot reach: the host must learn where a
command's output ends and what its exit code was, and no process of the model or of the
repository may forge either. So:

- The driver is non-dumpable from its first statement (programs.py's prologue): a process of
  the same uid can neither read nor write its memory, nor open its descriptors through /proc.
- A command writes only to a pipe of its own; the driver alone writes to the channel to the
  host, in length-prefixed frames. No byte a command prints can end a frame.
- The exit code is the one `waitpid` gives for the command's bash, not a line it printed.
- The command's text and the state restored before it reach bash as sealed in-memory files
  (no file in a folder the sandbox user can write), and the state a command leaves comes
  back over a pipe made for that command.

What this does not cover: the command's bash is an ordinary process of the sandbox user, so a
process the model left running can interfere with later commands (trace them, write to their
descriptors), as it can change files or put programs on the PATH. That is why the diff and
the verification's second test run start only after every process of the user is killed.

Wire format. Host to driver: an ASCII length, a newline, then that many bytes of JSON
({"command": str, "timeout": seconds, "nonce": str}; bytes travel decoded with surrogateescape).
Driver to host: frames of one type byte, a 4-byte big-endian length and the payload: R (ready;
the driver's pid), O (output bytes, at most 64 KiB a frame), X (exit: JSON {"code": int|null,
"timed_out": bool, "nonce": the request's, "now": the sandbox's clock}), E (the driver's own
error, as text).
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import struct
import subprocess
import sys
import time

KILL_GRACE = 2.0  # seconds between TERM and KILL for a command past its timeout
CHUNK = 1 << 16
MODEL_PATH_VARIABLE = "PW_MODEL_PATH"  # the PATH the model's commands start with
MAX_STATE = 4 << 20  # bytes of exported variables a command may leave for the next
MAX_LINGERING = 64  # output pipes kept open for processes earlier commands left running

# Runs one command. $1: restored state (file descriptor), $2: the command, $3: where the state
# goes on any exit (a pipe of this command's own, read by the driver until this bash exits),
# $4: "wait" for a bash started ahead, whose command comes on a pipe behind a go line.
RUNNER = r"""
__pw_state=$1 __pw_cmd=$2 __pw_out=$3
if [ "$4" = wait ]; then IFS= read -r __pw_go <&"$__pw_cmd" || exit 0; fi
set --
. "/dev/fd/$__pw_state" >/dev/null 2>&1
eval "exec $__pw_state<&-"
trap '__pw_rc=$?; { export -p; printf "cd -- %q\n" "$PWD"; } 2>/dev/null >&"$__pw_out"; exit $__pw_rc' EXIT
. "/dev/fd/$__pw_cmd"
"""


def sealed(data: bytes) -> int:
    """A read-only in-memory file holding `data`; a pipe where memfd is not available."""
    if hasattr(os, "memfd_create"):
        import fcntl

        fd = os.memfd_create("pw", os.MFD_ALLOW_SEALING)
        os.write(fd, data)
        os.lseek(fd, 0, os.SEEK_SET)
        seals = fcntl.F_SEAL_WRITE | fcntl.F_SEAL_GROW | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_SEAL
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, seals)
        return fd
    read_end, write_end = os.pipe()
    if len(data) > 60000:
        os.close(read_end)
        os.close(write_end)
        raise OSError("this sandbox's python3 has no memfd_create; commands are limited to 60000 bytes")
    os.write(write_end, data)
    os.close(write_end)
    return read_end


class Runner:
    """A command's bash and the driver's ends of its pipes; `go` is set for one started ahead,
    waiting for its command on that pipe."""

    def __init__(self, child: subprocess.Popen[bytes], out_read: int, state_read: int, go: int) -> None:
        self.child, self.out_read, self.state_read, self.go = child, out_read, state_read, go

    def discard(self) -> None:
        """A bash started ahead that will not be used: killed before its go pipe closes (at the
        pipe's end it would run what the pipe held)."""
        with contextlib.suppress(OSError):
            os.killpg(self.child.pid, signal.SIGKILL)
        self.child.wait()
        for fd in (self.go, self.out_read, self.state_read):
            with contextlib.suppress(OSError):
                os.close(fd)


class Driver:
    def __init__(self, out: int, workdir: str) -> None:
        self.out = out
        self.lingering: list[int] = []  # output pipes still held open by background processes
        self.state = self.initial_state(workdir)
        self.ahead: Runner | None = None  # the next command's bash, waiting (none before the first)

    def send(self, kind: bytes, payload: bytes) -> None:
        frame = kind + struct.pack(">L", len(payload)) + payload
        view = memoryview(frame)
        while view:
            view = view[os.write(self.out, view) :]

    @staticmethod
    def initial_state(workdir: str) -> bytes:
        """The driver's own environment, minus its PW_ variables; commands get the PATH meant for them
        (the driver itself was started on one without folders the sandbox user can write)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PW_")}
        if MODEL_PATH_VARIABLE in os.environ:
            env["PATH"] = os.environ[MODEL_PATH_VARIABLE]
        script = 'export -p; printf "cd -- %q\\n" "$PWD"'
        done = subprocess.run(
            ["/bin/bash", "--noprofile", "--norc", "-c", script],
            env=env,
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            check=True,
        )
        return done.stdout

    def run(self, command: str, limit: float, nonce: object = None) -> None:
        text = command.encode("utf-8", "surrogateescape")
        runner = self.handed(text) or self.spawn(sealed(text))
        state = bytearray()
        code, timed_out = self.follow(runner.child, runner.out_read, runner.state_read, state, limit)
        if state and not timed_out and len(state) <= MAX_STATE:
            self.state = bytes(state)
        os.close(runner.state_read)
        ending = {"code": code, "timed_out": timed_out, "nonce": nonce, "now": file_clock()}
        self.send(b"X", json.dumps(ending).encode())
        with contextlib.suppress(OSError):  # none ahead (no pipes or processes left): spawned then
            self.ahead = self.spawn()

    def spawn(self, text: int | None = None) -> Runner:
        """A bash for the command in the sealed file `text`; without one, a bash that waits for
        its command on a pipe (`handed`)."""
        go, wait = -1, "now"
        if text is None:
            text, go = os.pipe()
            os.set_blocking(go, False)
            wait = "wait"
        state_in = sealed(self.state)
        state_read, state_write = os.pipe()
        out_read, out_write = os.pipe()
        fds = (state_in, text, state_write)
        try:
            child = subprocess.Popen(
                ["/bin/bash", "--noprofile", "--norc", "-c", RUNNER, "runner", *map(str, fds), wait],
                env={},
                stdin=subprocess.DEVNULL,
                stdout=out_write,
                stderr=out_write,
                pass_fds=fds,
                start_new_session=True,
            )
        except BaseException:
            for fd in (go, out_read, state_read):
                if fd >= 0:
                    os.close(fd)
            raise
        finally:
            for fd in (state_in, text, state_write, out_write):
                os.close(fd)
        return Runner(child, out_read, state_read, go)

    def handed(self, text: bytes) -> Runner | None:
        """The bash started ahead, given `text`; None if there is none, it has exited (killed
        meanwhile), or the command is longer than one atomic write to a pipe (PIPE_BUF bytes:
        the bash must never see part of a command)."""
        runner, self.ahead = self.ahead, None
        if runner is None:
            return None
        data = b"\n" + text
        try:
            if len(data) <= select.PIPE_BUF and runner.child.poll() is None:
                os.write(runner.go, data)  # all of it or nothing (EAGAIN), being at most PIPE_BUF
                os.close(runner.go)
                return runner
        except OSError:  # EPIPE: it exited after the poll
            pass
        runner.discard()
        return None

    def follow(
        self, child: subprocess.Popen[bytes], out_read: int, state_read: int, state: bytearray, limit: float
    ) -> tuple[int | None, bool]:
        """Forward output until the command's bash exits (its group killed past `limit`)."""
        poller = select.poll()
        open_fds = {out_read, state_read, *self.lingering}
        for fd in open_fds:
            poller.register(fd, select.POLLIN)
        exited = None  # readable once the command's bash exits (Linux 5.3+)
        with contextlib.suppress(AttributeError, OSError):
            exited = os.pidfd_open(child.pid)
        if exited is not None:
            poller.register(exited, select.POLLIN)
        deadline = time.monotonic() + limit
        signalled = 0
        while child.poll() is None:
            now = time.monotonic()
            if now >= deadline:
                signalled += 1
                if signalled > 2:  # KILLed and still not reaped: should not happen
                    child.wait()
                    break
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(child.pid, signal.SIGTERM if signalled == 1 else signal.SIGKILL)
                deadline = now + KILL_GRACE
            wait = min(deadline - now, 0.25 if exited is not None else 0.01)
            for fd, _ in poller.poll(max(1, int(wait * 1000))):
                if fd != exited and not self.forward(fd, state_read, state):
                    poller.unregister(fd)
                    open_fds.discard(fd)
        if exited is not None:
            os.close(exited)
        # What was written just before the end is in the pipes: take it without waiting (bounded,
        # as a background process may write on and on).
        for fd in list(open_fds):
            for _ in range(64):
                if not select.select([fd], [], [], 0)[0]:
                    break
                if not self.forward(fd, state_read, state):
                    open_fds.discard(fd)
                    break
        lingering = [fd for fd in [*self.lingering, out_read] if fd in open_fds]
        for fd in lingering[:-MAX_LINGERING]:  # the oldest go: their writers get EPIPE from now on
            os.close(fd)
        self.lingering = lingering[-MAX_LINGERING:]
        if signalled:
            return None, True
        code = child.wait()
        return (code if code >= 0 else 128 - code), False

    def forward(self, fd: int, state_read: int, state: bytearray) -> bool:
        """Move what `fd` has to the host (or into `state`); False at its end (then it is closed)."""
        try:
            data = os.read(fd, CHUNK)
        except BlockingIOError:
            return True
        if not data:
            if fd != state_read:
                os.close(fd)
            return False
        if fd == state_read:
            if len(state) <= MAX_STATE:  # past it the state is dropped: the one before stays
                state += data
        else:
            self.send(b"O", data)
        return True


def file_clock() -> float:
    """The sandbox's wall clock, which the kernel stamps files from: a file changed before this
    instant never gets a later ctime. (The kernel's stamp may be coarse, lagging by up to a
    scheduler tick, so a change within a few milliseconds after it may look earlier.)"""
    return time.time()


def read_request(stdin: int, pending: bytearray) -> dict[str, object] | None:
    """The next request, or None at the end of input."""
    while b"\n" not in pending:
        data = os.read(stdin, CHUNK)
        if not data:
            return None
        pending += data
    header, _, rest = bytes(pending).partition(b"\n")
    size = int(header)
    pending[:] = rest
    while len(pending) < size:
        data = os.read(stdin, CHUNK)
        if not data:
            return None
        pending += data
    body = bytes(pending[:size])
    del pending[:size]
    request = json.loads(body)
    return request if isinstance(request, dict) else None


def main() -> int:
    out = os.dup(1)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (1, 2):  # nothing but frames may reach the host's channel
        os.dup2(null, fd)
    sys.stdout = sys.stderr = open(os.devnull, "w")  # noqa: SIM115
    try:
        driver = Driver(out, sys.argv[1] if len(sys.argv) > 1 else "/")
        driver.send(b"R", str(os.getpid()).encode())
        pending = bytearray()
        while (request := read_request(0, pending)) is not None:
            command, limit = request.get("command"), request.get("timeout")
            if not isinstance(command, str) or not isinstance(limit, (int, float)):
                raise ValueError("malformed request")
            driver.run(command, float(limit), request.get("nonce"))
    except Exception as err:
        frame = f"{type(err).__name__}: {err}".encode("utf-8", "replace")
        os.write(out, b"E" + struct.pack(">L", len(frame)) + frame)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
