"""Check a patch the way a reviewer would: apply it to the original state and run the tests.

Runs in a fresh sandbox, so nothing the model left behind (installed packages,
stray files outside the patch) can make the tests pass by accident.
"""

from __future__ import annotations

import shlex
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from patchwright.sandbox.base import CommandResult, Sandbox

OUTPUT_TAIL = 2000
APPLY_PIECE = 8 * 1024 * 1024  # bytes of a patch sent into a sandbox at a time


@dataclass(frozen=True)
class SuiteOutcome:
    exit_code: int | None
    timed_out: bool
    output_tail: str

    @property
    def passed(self) -> bool:
        return self.exit_code == 0


@dataclass(frozen=True)
class Verification:
    command: str
    applied: bool
    before: SuiteOutcome
    after: SuiteOutcome | None

    @property
    def verified(self) -> bool:
        return self.applied and self.after is not None and self.after.passed

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["verified"] = self.verified
        data["before"]["passed"] = self.before.passed
        if self.after is not None:
            data["after"]["passed"] = self.after.passed
        return data


def apply_in(sandbox: Sandbox, patch_file: Path) -> CommandResult:
    """Apply a patch file to the sandbox's workspace with git (binary hunks included).

    A small patch goes to git's stdin; a larger one is first copied into the sandbox APPLY_PIECE
    bytes at a time, so the host never holds it whole."""
    if patch_file.stat().st_size <= APPLY_PIECE:
        return sandbox.execute(["git", "apply", "--binary", "-"], timeout=120, stdin=patch_file.read_bytes())
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
        return sandbox.execute(["git", "apply", "--binary", "--", target], timeout=600)
    finally:
        sandbox.execute(["rm", "-rf", "--", folder], timeout=60)


def verify_patch(sandbox: Sandbox, patch: Path, test_command: str, timeout: float) -> Verification:
    """Tests before and after applying the patch file `patch` in `sandbox` (started and stopped here)."""
    sandbox.start()
    try:
        before = _run_tests(sandbox, test_command, timeout)
        # Nothing the first run left running (the repository's own code) may touch the second.
        sandbox.restart_shell()
        applied = apply_in(sandbox, patch)
        if applied.exit_code != 0:
            return Verification(test_command, False, before, None)
        return Verification(test_command, True, before, _run_tests(sandbox, test_command, timeout))
    finally:
        sandbox.stop()


def _run_tests(sandbox: Sandbox, command: str, timeout: float) -> SuiteOutcome:
    result = sandbox.run(f"cd {shlex.quote(sandbox.workdir)} && ( {command} )", timeout=timeout)
    return SuiteOutcome(result.exit_code, result.timed_out, result.output[-OUTPUT_TAIL:])
