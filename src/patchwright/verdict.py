"""What verification showed, in one word: a test failed before and passes after, or not.

"verified" used to mean "the tests pass after the patch", which a patch that touches
nothing the tests check also earns. A verdict says what the runs prove instead:

    fixed               a test that fails on the original code passes with the patch,
                        and no test that passed before fails after
    not_reproduced      everything passed before and after: no test shows the bug
    not_fixed           tests still fail (or the patch does not apply)
    regressed           a test that passed before fails with the patch
    tests_not_runnable  the tests did not run on the original code (timeout, command missing)

Names come from the runner's output (testresults.py) and decide when both sides have
them; otherwise the suites' exit codes do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from patchwright.testresults import Outcome, RunResults

MAX_NAMES = 1_000  # test names kept in each list of summary.json
NOT_RUNNABLE_EXIT = frozenset({126, 127})  # the shell found no such command, or could not run it


class VerdictKind(StrEnum):
    FIXED = "fixed"
    NOT_REPRODUCED = "not_reproduced"
    NOT_FIXED = "not_fixed"
    REGRESSED = "regressed"
    TESTS_NOT_RUNNABLE = "tests_not_runnable"


# Best first: the order selection ranks attempts by.
RANK = (
    VerdictKind.FIXED,
    VerdictKind.NOT_REPRODUCED,
    VerdictKind.NOT_FIXED,
    VerdictKind.TESTS_NOT_RUNNABLE,
    VerdictKind.REGRESSED,
)


@dataclass(frozen=True)
class SuiteRun:
    """One run of the test command: its exit code and the per-test results read from its output."""

    exit_code: int | None
    timed_out: bool
    results: RunResults = field(default_factory=RunResults)

    @property
    def passed(self) -> bool:
        return self.exit_code == 0 and not self.timed_out

    @property
    def runnable(self) -> bool:
        return not self.timed_out and self.exit_code is not None and self.exit_code not in NOT_RUNNABLE_EXIT


@dataclass(frozen=True)
class Verdict:
    kind: VerdictKind
    reason: str
    fail_to_pass: list[str] = field(default_factory=list)
    pass_to_pass: list[str] = field(default_factory=list)
    pass_to_fail: list[str] = field(default_factory=list)
    by_test_names: bool = False  # decided on named results rather than exit codes

    def as_dict(self) -> dict[str, object]:
        return {
            "verdict": str(self.kind),
            "reason": self.reason,
            "by_test_names": self.by_test_names,
            "FAIL_TO_PASS": self.fail_to_pass[:MAX_NAMES],
            "PASS_TO_PASS": self.pass_to_pass[:MAX_NAMES],
            "PASS_TO_FAIL": self.pass_to_fail[:MAX_NAMES],
        }


def verdict_of(before: SuiteRun, tests_only: SuiteRun | None, after: SuiteRun | None) -> Verdict:
    """The verdict of a patch from the runs on the original code (`before`), the original code with
    only the patch's tests (`tests_only`, None when the patch has none) and the whole patch (`after`,
    None when it did not apply)."""
    if not before.runnable:
        how = "timed out" if before.timed_out else f"exited {before.exit_code}"
        return Verdict(VerdictKind.TESTS_NOT_RUNNABLE, f"the test command {how} on the original code")
    if after is None:
        return Verdict(VerdictKind.NOT_FIXED, "the patch does not apply to the original code")
    baseline = tests_only if tests_only is not None else before
    if before.results and after.results and baseline.results:
        return _by_names(before, tests_only, after, baseline)
    if not after.passed:
        if before.passed:
            return Verdict(VerdictKind.REGRESSED, "the tests passed before the patch and fail with it")
        return Verdict(VerdictKind.NOT_FIXED, "the tests fail before and after the patch")
    if not baseline.passed:
        where = "with the patch's tests on the original code" if tests_only is not None else "before"
        return Verdict(VerdictKind.FIXED, f"the tests fail {where} and pass with the patch")
    return _not_reproduced(tests_only)


def _by_names(before: SuiteRun, tests_only: SuiteRun | None, after: SuiteRun, baseline: SuiteRun) -> Verdict:
    base = dict(before.results.outcomes)
    if tests_only is not None:
        base.update(
            tests_only.results.outcomes
        )  # the original code with the patch's tests: SWE-bench's "before"
    # A test the patch adds that could not even be collected on the original code counts as failing there.
    new_failing = tests_only is not None and not tests_only.passed
    passed_after, failed_after = after.results.passed(), after.results.failed()
    fail_to_pass = sorted(
        t for t in passed_after if base.get(t) == Outcome.FAILED or (t not in base and new_failing)
    )
    passed_before = {t for t, o in base.items() if o == Outcome.PASSED}
    pass_to_pass = sorted(passed_after & passed_before)
    # A test that passed before and is gone from a failing run (the module no longer imports,
    # the build broke) did not pass either.
    gone = set() if after.passed else passed_before - set(after.results.outcomes)
    pass_to_fail = sorted((failed_after & passed_before) | gone)
    if after.timed_out and before.passed:
        pass_to_fail = pass_to_fail or ["(the test command timed out)"]
    lists = {"fail_to_pass": fail_to_pass, "pass_to_pass": pass_to_pass, "pass_to_fail": pass_to_fail}
    if pass_to_fail:
        reason = f"{len(pass_to_fail)} test(s) that passed before fail with the patch"
        return Verdict(VerdictKind.REGRESSED, reason, **lists, by_test_names=True)
    if fail_to_pass:
        reason = f"{len(fail_to_pass)} test(s) fail on the original code and pass with the patch"
        return Verdict(VerdictKind.FIXED, reason, **lists, by_test_names=True)
    if after.passed and baseline.passed:
        return _not_reproduced(tests_only, lists)
    return Verdict(
        VerdictKind.NOT_FIXED, "no failing test passes with the patch", **lists, by_test_names=True
    )


def _not_reproduced(tests_only: SuiteRun | None, lists: dict[str, list[str]] | None = None) -> Verdict:
    reason = (
        "the patch's tests also pass on the original code, so no test shows the bug"
        if tests_only is not None
        else "the tests pass before and after and no test shows the bug; add one that fails without the fix"
    )
    return Verdict(VerdictKind.NOT_REPRODUCED, reason, **(lists or {}), by_test_names=lists is not None)
