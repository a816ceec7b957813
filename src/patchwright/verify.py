"""Check a patch the way a reviewer would: apply it to the original state and run the tests.

Runs in a fresh sandbox, so nothing the model left behind (installed packages,
stray files outside the patch) can make the tests pass by accident.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from patchwright.patchsplit import SplitParts
from patchwright.sandbox.base import CommandResult, Sandbox
from patchwright.testresults import PYTEST_REPORT_ENV, RunResults, parse_output
from patchwright.verdict import SuiteRun, Verdict, VerdictKind, verdict_of

OUTPUT_TAIL = 2000
APPLY_PIECE = 8 * 1024 * 1024  # bytes of a patch sent into a sandbox at a time


@dataclass(frozen=True)
class SuiteOutcome:
    exit_code: int | None
    timed_out: bool
    output_tail: str
    results: RunResults = field(default_factory=RunResults, compare=False)

    @property
    def passed(self) -> bool:
        return self.exit_code == 0

    def run(self) -> SuiteRun:
        return SuiteRun(self.exit_code, self.timed_out, self.results)

    def as_dict(self) -> dict[str, Any]:
        return {
            "exit_code": self.exit_code,
            "timed_out": self.timed_out,
            "output_tail": self.output_tail,
            "passed": self.passed,
            "tests": self.results.as_dict(),
        }


@dataclass(frozen=True)
class Verification:
    command: str
    applied: bool
    before: SuiteOutcome
    after: SuiteOutcome | None
    tests_only: SuiteOutcome | None = None  # the original code with only the patch's test files
    test_files: tuple[str, ...] = ()  # the patch's files that are tests (patchsplit.py)

    @property
    def verdict(self) -> Verdict:
        after = self.after.run() if self.applied and self.after is not None else None
        tests_only = self.tests_only.run() if self.tests_only is not None else None
        return verdict_of(self.before.run(), tests_only, after)

    @property
    def verified(self) -> bool:
        """Only a proven fix is verified: a test failed before and passes after, none the other way."""
        return self.verdict.kind == VerdictKind.FIXED

    def as_dict(self) -> dict[str, Any]:
        return {
            "command": self.command,
            "applied": self.applied,
            "before": self.before.as_dict(),
            "tests_only": self.tests_only.as_dict() if self.tests_only is not None else None,
            "after": self.after.as_dict() if self.after is not None else None,
            "test_files": list(self.test_files),
            "verified": self.verified,
        }


def apply_in(sandbox: Sandbox, patch_file: Path, reverse: bool = False) -> CommandResult:
    """Apply a patch file (`reverse`: take it back out) to the sandbox's workspace with git
    (binary hunks included).

    A small patch goes to git's stdin; a larger one is first copied into the sandbox APPLY_PIECE
    bytes at a time, so the host never holds it whole."""
    git_apply = ["git", "apply", "--binary", *(["-R"] if reverse else [])]
    if patch_file.stat().st_size <= APPLY_PIECE:
        return sandbox.execute([*git_apply, "-"], timeout=120, stdin=patch_file.read_bytes())
    made = sandbox.execute(["bash", "-c", 'mktemp -d "${TMPDIR:-/tmp}/pwpatch.XXXXXX"'], timeout=60)
    folder = made.output.strip()
    if made.exit_code != 0 or not folder.startswith("/") or len(folder.split()) != 1:
        return made
    target = f"{folder}/patch.diff"
    try:
        with patch_file.open("rb") as fh:
            while piece := fh.read(APPLY_PIECE):
                sent = sandbox.execute(["sh", "-c", 'cat >> "$1"', "sh", target], timeout=120, stdin=piece)
                if sent.exit_code != 0:
                    return sent
        return sandbox.execute([*git_apply, "--", target], timeout=600)
    finally:
        sandbox.execute(["rm", "-rf", "--", folder], timeout=60)


def verify_patch(
    sandbox: Sandbox,
    patch: Path,
    test_command: str,
    timeout: float,
    tests_part: SplitParts | None = None,
    fresh: Callable[[], Sandbox] | None = None,
) -> Verification:
    """Tests on the original code, on the original code with only the patch's tests (when
    `tests_part` has any: they must fail), and with the whole patch (they must pass).

    `sandbox` is started and stopped here. The whole patch is tested in a sandbox of its own
    from `fresh` when given, so nothing the earlier runs left behind can help it pass."""
    sandbox.start()
    tests_only: SuiteOutcome | None = None
    test_files = tuple(tests_part.tests) if tests_part is not None else ()
    try:
        before = _run_tests(sandbox, test_command, timeout)
        if tests_part is not None and tests_part.tests:
            # Nothing the first run left running (the repository's own code) may touch the next.
            sandbox.restart_shell()
            if apply_in(sandbox, tests_part.tests_file).exit_code == 0:
                tests_only = _run_tests(sandbox, test_command, timeout)
            if fresh is not None:
                sandbox.stop()
                sandbox = fresh()
                sandbox.start()
            elif tests_only is not None:
                apply_in(sandbox, tests_part.tests_file, reverse=True)
        sandbox.restart_shell()
        applied = apply_in(sandbox, patch)
        if applied.exit_code != 0:
            return Verification(test_command, False, before, None, tests_only, test_files)
        after = _run_tests(sandbox, test_command, timeout)
        return Verification(test_command, True, before, after, tests_only, test_files)
    finally:
        sandbox.stop()


def _run_tests(sandbox: Sandbox, command: str, timeout: float) -> SuiteOutcome:
    # pytest prints a line per test (-rA) for the per-test verdict; other runners ignore the variable.
    line = f"cd {shlex.quote(sandbox.workdir)} && ( export {PYTEST_REPORT_ENV}; {command} )"
    result = sandbox.run(line, timeout=timeout)
    return SuiteOutcome(
        result.exit_code, result.timed_out, result.output[-OUTPUT_TAIL:], parse_output(result.output)
    )


def cross_check(
    sandbox: Sandbox, tests_part: Path, code_part: Path, test_command: str, timeout: float
) -> SuiteOutcome | None:
    """One attempt's tests against another attempt's code, on the original state in `sandbox`
    (started and stopped here); None when the two do not apply together."""
    sandbox.start()
    try:
        for part in (tests_part, code_part):
            if part.stat().st_size and apply_in(sandbox, part).exit_code != 0:
                return None
        return _run_tests(sandbox, test_command, timeout)
    finally:
        sandbox.stop()
