"""The narrow interface every sandbox runtime implements (local Docker today; remote later).

Callers (the run, the tools, verification) know a sandbox only through `Sandbox`;
`factory.py` is the one place that picks and builds a runtime. docs/architecture.md
describes the contract, and tests/sandbox/test_contract.py holds every backend to it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from patchwright.errors import SandboxError

if TYPE_CHECKING:
    from patchwright.sandbox.egress import EgressSpec

WORKSPACE = "/workspace"  # the one stable path of the repository inside every sandbox
DEFAULT_COMMAND_TIMEOUT = 120.0
DEFAULT_OUTPUT_LIMIT = 32 * 1024  # bytes kept of one command's output (head + tail), under the loop's cap


def default_manifest_dir() -> str:
    """The user's cache (XDG_CACHE_HOME, else ~/.cache), where snapshot manifests live."""
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(cache, "patchwright", "snapshots")


@dataclass(frozen=True)
class SandboxSpec:
    """Everything needed to start one sandbox; plain data so it can come from config."""

    image: str
    run_id: str
    network: bool = False  # the model's commands never get a network unless asked
    setup_command: str | None = None  # runs with the network on, before the model starts
    # start() leaves the setup window open: a failed setup is returned, not raised, the network
    # stays as setup has it, and setup_run() may run more; finish_setup() closes it. Without a
    # setup command the network is off until the first setup_run() (run() stays offline till then).
    setup_repairable: bool = False
    memory: str = "4g"
    cpus: float = 2.0
    pids_limit: int = 512
    tmp_size: str = "1g"
    home_size: str = "1g"
    # The workspace is a tmpfs of this size (counted in `memory`): copying in is fast, removing it
    # instant, and a disk fill stops there. A snapshot's container keeps the repo in its own layer.
    workspace_size: str = "2g"
    command_timeout: float = DEFAULT_COMMAND_TIMEOUT
    output_limit: int = DEFAULT_OUTPUT_LIMIT
    setup_timeout: float = 900.0
    host_ca_bundle: str | None = None  # host CA file trusted during setup (corporate/TLS proxies)
    proxy_env: dict[str, str] = field(
        default_factory=dict
    )  # HTTP(S)_PROXY etc., only while the network is on
    labels: dict[str, str] = field(default_factory=dict)
    snapshots: bool = True  # large repos: start from a committed image of the repo (snapshot.py)
    snapshot_min_files: int = 2000  # below this the whole copy takes well under a second
    # save the state right after setup here (a folder), for verification to start from
    checkpoint_to: str | None = None
    # start from a saved post-setup state (a folder checkpoint_to wrote): no copy, no setup, no network
    restore_from: str | None = None
    # with restore_from: run setup_command again over the restored state, with setup's network, the
    # services up: their databases start empty (their data is never in a saved state), and what
    # setup put there (migrations, fixtures) must be there again; installs find their work done
    replay_setup: bool = False
    # where snapshot manifests are kept (snapshot.py); None: list the snapshot in the container instead
    manifest_dir: str | None = field(default_factory=lambda: default_manifest_dir())
    # batch hook: the repo is already in the image at this absolute path (SWE-bench's
    # /testbed); it is copied from there into WORKSPACE instead of from the host. No snapshots then.
    image_workspace: str | None = None
    # setup's network: package registries only, through a proxy (egress.py); None: setup gets the
    # engine's bridge (full access), as with `network`
    egress: EgressSpec | None = None
    # variables the user passes to setup, the tests and the model's shell (`--env`, `[env]`): secrets
    # the user chose to give the sandbox, never written by patchwright
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class CommandResult:
    """What one command produced. `output` is stdout and stderr interleaved, capped."""

    output: str
    exit_code: int | None  # None when the command was killed for its timeout
    timed_out: bool = False
    truncated: bool = False  # the middle of the output was cut
    output_bytes: int = 0  # how many bytes the command printed in all
    duration: float = 0.0


@dataclass(frozen=True)
class StartResult:
    """What a started sandbox tells its caller: the setup command's outcome, when there was one."""

    setup: CommandResult | None = None


@dataclass(frozen=True)
class PatchFile:
    """What `Sandbox.diff` wrote on the host: the patch is in `path`, never in memory.

    Past the patch limits (`over_limit`) `path` holds a partial patch: the whole changes of the
    files that fit, in path order; `left_out` names the first few of the others (as git wrote
    them: untrusted text, escaped before it reaches a terminal). A partial patch is never applied.
    """

    path: Path
    size: int  # bytes in `path`
    total_files: int = 0  # files the changes touch in all (the partial patch holds fewer)
    total_bytes: int | None = None  # the whole patch's size, when it was measured
    over_limit: bool = False
    reason: str = ""  # past the limits: how big the changes are, and which limit they pass
    left_out_count: int = 0
    left_out: tuple[str, ...] = ()
    # Paths in the workspace changed after the model's last tool call ended (no tool result showed
    # the change): files, and folders with a trailing "/" (an entry made or removed in them).
    late_changes: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return self.size == 0


class SetupFailed(SandboxError):
    """The setup command failed or timed out; `result` holds its output for the run's record."""

    def __init__(self, message: str, result: CommandResult) -> None:
        super().__init__(message)
        self.result = result


class NamedService(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def names(self) -> tuple[str, ...]: ...


class ServiceControl(Protocol):
    """What the tool needs of the run's services (services.ServiceSet on Docker)."""

    @property
    def log_limit(self) -> int: ...

    @property
    def specs(self) -> Sequence[NamedService]: ...

    def status(self) -> list[dict[str, Any]]: ...

    def spec(self, name: str) -> NamedService: ...

    def logs(self, name: str, limit: int = ...) -> str: ...

    def stop_one(self, name: str) -> None: ...

    def start_one(self, name: str) -> float: ...

    def restart_one(self, name: str) -> float: ...

    def describe(self) -> list[dict[str, Any]]:
        """What ran, for summary.json and the trajectory."""
        ...


class Sandbox(Protocol):
    """Start, run, read, write, diff, stop: all the loop and tools ever need.

    Paths are the sandbox's own; `workdir` is where the repository is (WORKSPACE in a container).
    """

    workdir: str

    @property
    def services(self) -> ServiceControl | None:
        """The run's databases beside the sandbox, if it has any."""
        ...

    def start(self) -> StartResult:
        """Bring the repository in and run setup; SetupFailed or SandboxError when that fails,
        and then nothing is left running."""
        ...

    def setup_run(self, command: str, timeout: float | None = None) -> CommandResult:
        """One more command of the setup window (SandboxSpec.setup_repairable): `bash -c` in `workdir`,
        with the network and variables setup has; nothing persists but what it writes.
        SandboxError once the window is closed."""
        ...

    def finish_setup(self, save: bool = True) -> None:
        """Close the setup window: cut the network (unless the run keeps one), save the state for
        verification (`save`, when the spec asks for a checkpoint) and take the starting state that
        diff() compares against. Nothing to do when start() closed it already; safe to call twice."""
        ...

    def run(self, command: str, timeout: float | None = None) -> CommandResult:
        """Run in the persistent shell: cwd and exported variables persist between calls."""
        ...

    def restart_shell(self) -> None:
        """Replace the persistent shell with a fresh one (cwd back to the workspace); a backend
        that owns its processes (docker) also stops every process earlier commands left running."""
        ...

    def execute(
        self,
        argv: list[str],
        timeout: float | None = None,
        env: dict[str, str] | None = None,
        stdin: bytes | None = None,
        output_limit: int | None = None,
    ) -> CommandResult:
        """Run one process outside the persistent shell, in `workdir`; its state does not persist."""
        ...

    def read_file(self, path: str, max_bytes: int = ...) -> bytes:
        """A file's bytes; FileNotFoundError when it cannot be read, OSError past `max_bytes`."""
        ...

    def write_file(self, path: str, data: bytes) -> None:
        """Create or replace a file (and its parent folders) as the sandbox user; OSError if refused."""
        ...

    def file_op(self, request: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
        """One file operation of the file helper (sandbox/filehelper.py: view, read, write, remove,
        str_replace, insert, search), carried out in the sandbox, confined to `workdir`, in one
        round trip. A refusal is {"ok": False, "error": "..."}; SandboxError if the helper fails."""
        ...

    def diff(self, dest: Path) -> PatchFile:
        """Write a unified, binary-safe patch of all changes since start to `dest` on the host,
        streamed in pieces (memory does not grow with the patch); `git apply` takes it. Past the
        patch limits `dest` gets the partial patch (PatchFile.over_limit)."""
        ...

    def stop(self) -> None:
        """Remove the container and everything it owns. Safe to call twice."""
        ...
