"""One exception hierarchy; each error knows the exit code the CLI reports for it."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Documented exit codes of `agent fix` (README and `agent fix --help`)."""

    PATCHED = 0  # finished with a non-empty patch
    NO_CHANGES = 1  # finished without changes
    USAGE = 2  # bad usage or input: caught before any container starts
    LIMIT = 3  # a limit was hit (steps, cost, time); partial patch written
    INFRA = 4  # Docker, image build, the API after retries, a rejected key
    ENVIRONMENT = 5  # the project's tests could not be made to run (setup failed, the tests cannot start)
    INTERRUPTED = 130  # Ctrl-C or SIGTERM; partial patch written


class PatchwrightError(Exception):
    """Base of every error patchwright raises on purpose; `str(err)` is the one-line message."""

    exit_code: ExitCode = ExitCode.INFRA


class UsageError(PatchwrightError):
    """The user's input is wrong (flags, repo, task, agent file, config, key missing)."""

    exit_code = ExitCode.USAGE


class ConfigError(UsageError):
    """A configuration file or value is malformed."""


class AgentFileError(UsageError):
    """An agent (persona) file cannot be read or its front matter is invalid."""


class WorkspaceError(UsageError):
    """The target directory is not a usable git repository."""


class SuiteCannotRun(PatchwrightError):
    """The run's setup failed, even after the repair, so the tests were never going to run."""

    exit_code = ExitCode.ENVIRONMENT


class InfraError(PatchwrightError):
    """Something outside the user's input failed: Docker, the image, the API."""

    exit_code = ExitCode.INFRA


class SandboxError(InfraError):
    """The sandbox (container runtime) failed or is unreachable."""


class ImageBuildError(SandboxError):
    """Building the sandbox image failed."""


class ModelError(InfraError):
    """The model API failed after retries, or rejected the credentials."""


class OutputError(InfraError):
    """Writing run outputs (patch, trajectory, summary) failed, e.g. a full disk."""
