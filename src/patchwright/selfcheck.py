"""A self-check before a run ends: when the model ends its turn and the run knows a test
command, the tests run; if they fail, their output (capped) is the next user turn.

The prompting guidance for unattended agentic runs is to treat a text-only end of turn
as a report and to nudge, a bounded number of times, with what is still open. This is
that nudge, bounded by `max_continues` (0 disables it). It is a hint to the model, not a
verdict: verification of the patch in a fresh sandbox stays the final word.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass

from patchwright.prompt import SELF_CHECK_NUDGE
from patchwright.sandbox.base import CommandResult, Sandbox
from patchwright.tools.base import CommandTime

DEFAULT_MAX_CONTINUES = 2
MAX_FAILURE_CHARS = 8_000  # of test output sent back; head and tail are kept


@dataclass(frozen=True)
class CheckResult:
    passed: bool
    exit_code: int | None
    output: str
    timed_out: bool = False


Check = Callable[[], CheckResult]


@dataclass
class SelfCheck:
    """Runs `check` when the model ends its turn, at most `max_continues` times per run."""

    check: Check
    command: str
    max_continues: int = DEFAULT_MAX_CONTINUES
    rounds: int = 0

    def due(self) -> bool:
        return self.rounds < self.max_continues

    def run(self) -> CheckResult:
        self.rounds += 1
        return self.check()

    def nudge(self, result: CheckResult) -> str:
        """The user turn that sends a failure back."""
        how = "timed out" if result.timed_out else f"exit code {result.exit_code}"
        return SELF_CHECK_NUDGE.format(
            command=self.command,
            how=how,
            round=self.rounds,
            rounds=self.max_continues,
            output=cap(result.output, MAX_FAILURE_CHARS),
        )


def cap(text: str, limit: int) -> str:
    """Head and tail of a long output, with a note of what was cut in between."""
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n[... {len(text) - 2 * half} characters cut ...]\n{text[-half:]}"


def sandbox_check(sandbox: Sandbox, test_command: str, time: CommandTime) -> Check:
    """The test command, run from the repository root in the run's sandbox, within the run's time."""

    def check() -> CheckResult:
        result: CommandResult = sandbox.run(
            f"cd {shlex.quote(sandbox.workdir)} && ( {test_command} )", time.allowed()
        )
        passed = result.exit_code == 0 and not result.timed_out
        return CheckResult(passed, result.exit_code, result.output, result.timed_out)

    return check
