"""How a run ended, in one vocabulary, and the exit code each ending gives."""

from __future__ import annotations

from enum import StrEnum

from patchwright.errors import ExitCode


class RunStatus(StrEnum):
    COMPLETED = "completed"  # the model ended its turn
    REFUSED = "refused"  # the model declined (stop_reason "refusal")
    MAX_STEPS = "max_steps"
    MAX_COST = "max_cost"
    TIMEOUT = "timeout"
    CONTEXT_EXCEEDED = "context_window_exceeded"  # stop_reason model_context_window_exceeded
    STOPPED = "stopped"  # a stop_reason this version does not know: not taken as a finished run
    ENVIRONMENT = "environment"  # the test command could not run (exit 5); any patch is unproven
    ERROR = "error"  # infrastructure or input failure; the error's own exit code applies
    INTERRUPTED = "interrupted"  # Ctrl-C or SIGTERM

    @property
    def is_limit(self) -> bool:
        """Ended without the model finishing: exit 3, partial patch written."""
        return self in (
            RunStatus.MAX_STEPS,
            RunStatus.MAX_COST,
            RunStatus.TIMEOUT,
            RunStatus.CONTEXT_EXCEEDED,
            RunStatus.STOPPED,
        )


def exit_code_for(status: RunStatus, patched: bool) -> ExitCode:
    """The exit code of a run that ended on its own (not by an error or a signal); `patched`:
    it wrote a non-empty patch."""
    if status.is_limit:
        return ExitCode.LIMIT
    if status is RunStatus.ENVIRONMENT:
        return ExitCode.ENVIRONMENT
    return ExitCode.PATCHED if patched else ExitCode.NO_CHANGES
