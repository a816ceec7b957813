"""One instance, start to end: a fresh checkout, an `agent fix` process in it, its outputs as bytes.

Each instance is its own process, so one crash, hang or bad repo stays with its
instance, and the batch needs nothing of the fix's internals: flags in, exit code
and `--format json` summary out. The same function runs on the driver's machine
(local workers) and inside a Ray task on another node.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from patchwright.batch.instances import CheckoutError, Instance, checkout, placeholder_repo
from patchwright.config import SPECS
from patchwright.errors import ExitCode
from patchwright.options import as_env

GRACE_SECONDS = 600.0  # beyond the fix's own timeout and setup before the batch kills it
KILL_AFTER = 120.0  # SIGTERM to SIGKILL, time enough to write the partial patch and remove the container
PR_SET_PDEATHSIG = 1
INSTANCE_SETTINGS = tuple(name for name, spec in SPECS.items() if spec.instance)  # Instance fields


@dataclass(frozen=True)
class FixOptions:
    """What a batch applies to every instance: the settings given as batch flags (an instance's
    own fields win), the mirrors folder, and extra environment for the `agent fix` processes."""

    settings: dict[str, Any] = field(default_factory=dict)  # {name: value}; None: not given
    repos_dir: str | None = None
    env: dict[str, str] = field(default_factory=dict)  # on top of the environment the process starts in

    @property
    def timeout(self) -> float | None:
        value = self.settings.get("timeout")
        return float(value) if value is not None else None

    @property
    def attempts(self) -> int:
        return int(self.settings.get("attempts") or 1)


@dataclass
class Outcome:
    """What one instance produced; plain data so a Ray task can hand it back to the driver."""

    instance_id: str
    status: str
    exit_code: int
    error: str | None = None
    patch: str = ""
    summary: dict[str, Any] | None = None
    trajectory: bytes = b""
    duration_s: float = 0.0
    node: str | None = None
    attempts: int = 1
    retries: list[str] = field(default_factory=list)  # why earlier attempts were given up (Ray)


class Children:
    """The `agent fix` processes running now, so a second Ctrl-C can reach each of them."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._procs: set[subprocess.Popen[bytes]] = set()

    def add(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._procs.add(proc)

    def discard(self, proc: subprocess.Popen[bytes]) -> None:
        with self._lock:
            self._procs.discard(proc)

    def signal_all(self, sig: int) -> None:
        with self._lock:
            procs = list(self._procs)
        for proc in procs:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.send_signal(sig)


def fix_argv(instance: Instance, repo: Path, patch: Path) -> list[str]:
    """The `agent fix` command line for one instance: the task goes on stdin, the batch's settings
    in the environment (fix_env), and the instance's own fields as flags, which win over both."""
    argv = [sys.executable, "-m", "patchwright", "fix", "--task-file", "-", "--repo", str(repo)]
    argv += ["--patch", str(patch), "--format", "json", "--quiet"]
    for name in INSTANCE_SETTINGS:
        value = getattr(instance, name)
        flag = str(SPECS[name].flags(name))
        for item in value if isinstance(value, list) else [value] if value else []:
            argv += [flag, str(item)]
    return argv


def fix_env(instance: Instance, options: FixOptions) -> dict[str, str]:
    """The batch's settings as PATCHWRIGHT_* variables: the user's own layer, read back by the
    same code that reads them for any `agent fix`, so every setting reaches every instance."""
    env = {**os.environ, **options.env}
    env.pop("PATCHWRIGHT_IMAGE_WORKSPACE", None)  # where the repo sits in an image is the batch's to say
    env.update(as_env(options.settings))
    # Every checkout is a new path: a snapshot image per instance would only pile up.
    env.setdefault("PATCHWRIGHT_SNAPSHOTS", "false")
    if instance.workspace:
        env["PATCHWRIGHT_IMAGE_WORKSPACE"] = instance.workspace
    return env


def run_instance(
    instance: Instance,
    options: FixOptions,
    children: Children | None = None,
    scratch: Path | None = None,
    node: str | None = None,
) -> Outcome:
    """Check out, run `agent fix`, collect patch, summary and trajectory; never raises for the instance's
    own failures (they are its outcome)."""
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix=f"pw-{instance.instance_id[:40]}-", dir=scratch))
    try:
        outcome = _run_in(instance, options, work, children)
    except CheckoutError as err:
        outcome = Outcome(instance.instance_id, "error", int(ExitCode.USAGE), error=str(err))
    except OSError as err:
        outcome = Outcome(instance.instance_id, "error", int(ExitCode.INFRA), error=f"cannot run: {err}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    outcome.duration_s = round(time.monotonic() - started, 2)
    outcome.node = node
    return outcome


def _run_in(instance: Instance, options: FixOptions, work: Path, children: Children | None) -> Outcome:
    repo = work / "repo"
    if instance.workspace:
        placeholder_repo(repo)
    else:
        checkout(instance, Path(options.repos_dir) if options.repos_dir else None, repo)
    patch_file = work / "patch.diff"
    proc = subprocess.Popen(
        fix_argv(instance, repo, patch_file),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=fix_env(instance, options),
        start_new_session=True,  # the terminal's Ctrl-C reaches the batch only; it decides what to forward
        preexec_fn=_die_with_parent,
    )
    if children is not None:
        children.add(proc)
    try:
        stdout, stderr = _communicate(proc, instance.problem_statement.encode(), _deadline(options))
    finally:
        if children is not None:
            children.discard(proc)
    return _collect(instance, proc.returncode, stdout, stderr, patch_file)


def _deadline(options: FixOptions) -> float:
    """Each attempt has the fix's own timeout; at worst they run one after another."""
    return ((options.timeout or 3600.0) + 900.0) * options.attempts + GRACE_SECONDS


def _communicate(proc: subprocess.Popen[bytes], task: bytes, limit: float) -> tuple[bytes, bytes]:
    """Feed the task, read the outputs; a process that outlives `limit` is stopped as Ctrl-C would."""
    try:
        return proc.communicate(task, timeout=limit)
    except KeyboardInterrupt:  # a cancelled Ray task: the fix writes its partial patch, cleans up
        proc.send_signal(signal.SIGINT)
        return proc.communicate(timeout=KILL_AFTER)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)
        try:
            return proc.communicate(timeout=KILL_AFTER)
        except subprocess.TimeoutExpired:
            proc.kill()
            return proc.communicate()


def _collect(instance: Instance, code: int, stdout: bytes, stderr: bytes, patch_file: Path) -> Outcome:
    summary: dict[str, Any] | None = None
    try:
        parsed = json.loads(stdout.decode("utf-8", "replace") or "null")
        summary = parsed if isinstance(parsed, dict) else None
    except json.JSONDecodeError:
        summary = None
    patch = patch_file.read_bytes().decode("utf-8", "surrogateescape") if patch_file.is_file() else ""
    trajectory = b""
    if summary and summary.get("run_dir"):
        path = Path(str(summary["run_dir"])) / "trajectory.jsonl"
        trajectory = path.read_bytes() if path.is_file() else b""
    error: str | None
    if code < 0:  # killed by a signal (our deadline's SIGKILL, or someone else's)
        status, error = "error", f"agent fix was killed by signal {-code}"
        code = int(ExitCode.INFRA)
    elif summary is not None:
        status = str(summary.get("status", "error"))
        error = str(summary["error"]) if summary.get("error") else None
    else:
        status = "interrupted" if code == ExitCode.INTERRUPTED else "error"
        error = _last_error(stderr) or f"agent fix exited with {code} and no summary"
    return Outcome(instance.instance_id, status, code, error, patch, summary, trajectory)


def _last_error(stderr: bytes) -> str | None:
    lines = [line for line in stderr.decode("utf-8", "replace").splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("agent: error: ")]
    if errors:
        return errors[-1][len("agent: error: ") :][:500]
    return lines[-1][:500] if lines else None


def _die_with_parent() -> None:
    """In the child: SIGTERM when the process that started it dies (a killed Ray worker, a killed
    batch), so `agent fix` still writes its partial patch and removes its container."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        pass
