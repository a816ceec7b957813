"""The verdict of a patch from its test runs: by test names when the runner printed them,
by exit codes otherwise."""

from __future__ import annotations

from patchwright.testresults import Outcome, RunResults
from patchwright.verdict import SuiteRun, VerdictKind, verdict_of


def run(exit_code: int | None, timed_out: bool = False, **tests: str) -> SuiteRun:
    results = RunResults()
    for name, outcome in tests.items():
        results.add(name, Outcome(outcome))
    return SuiteRun(exit_code, timed_out, results)


def test_by_exit_codes_failing_then_passing_is_fixed() -> None:
    verdict = verdict_of(run(1), None, run(0))
    assert verdict.kind == VerdictKind.FIXED and not verdict.by_test_names


def test_by_exit_codes_passing_before_and_after_is_not_reproduced_and_says_so() -> None:
    verdict = verdict_of(run(0), None, run(0))
    assert verdict.kind == VerdictKind.NOT_REPRODUCED
    assert "no test shows the bug" in verdict.reason and "add one" in verdict.reason


def test_by_exit_codes_the_patchs_own_failing_test_makes_it_fixed() -> None:
    assert verdict_of(run(0), run(1), run(0)).kind == VerdictKind.FIXED


def test_the_patchs_test_passing_on_the_original_code_proves_nothing() -> None:
    verdict = verdict_of(run(0), run(0), run(0))
    assert verdict.kind == VerdictKind.NOT_REPRODUCED and "also pass on the original" in verdict.reason


def test_by_exit_codes_regressed_and_not_fixed() -> None:
    assert verdict_of(run(0), None, run(1)).kind == VerdictKind.REGRESSED
    assert verdict_of(run(1), None, run(1)).kind == VerdictKind.NOT_FIXED
    assert verdict_of(run(0), None, run(None, timed_out=True)).kind == VerdictKind.REGRESSED


def test_tests_that_cannot_run_on_the_original_code() -> None:
    assert verdict_of(run(127), None, run(127)).kind == VerdictKind.TESTS_NOT_RUNNABLE
    assert verdict_of(run(None, timed_out=True), None, run(0)).kind == VerdictKind.TESTS_NOT_RUNNABLE


def test_a_patch_that_does_not_apply_is_not_fixed() -> None:
    verdict = verdict_of(run(1), None, None)
    assert verdict.kind == VerdictKind.NOT_FIXED and "does not apply" in verdict.reason


def test_by_names_fail_to_pass_and_pass_to_pass_are_recorded() -> None:
    before = run(1, a="passed", b="failed")
    tests_only = run(1, a="passed", b="failed", c="failed")
    after = run(0, a="passed", b="passed", c="passed")
    verdict = verdict_of(before, tests_only, after)
    assert verdict.kind == VerdictKind.FIXED and verdict.by_test_names
    assert verdict.fail_to_pass == ["b", "c"] and verdict.pass_to_pass == ["a"]
    assert verdict.as_dict()["FAIL_TO_PASS"] == ["b", "c"]


def test_by_names_an_unrelated_failure_left_failing_does_not_block_fixed() -> None:
    verdict = verdict_of(run(1, a="failed", flaky="failed"), None, run(1, a="passed", flaky="failed"))
    assert verdict.kind == VerdictKind.FIXED and verdict.fail_to_pass == ["a"]


def test_by_names_one_pass_to_fail_is_a_regression_even_with_a_fix() -> None:
    verdict = verdict_of(run(1, a="failed", b="passed"), None, run(1, a="passed", b="failed"))
    assert verdict.kind == VerdictKind.REGRESSED and verdict.pass_to_fail == ["b"]


def test_by_names_a_new_test_not_collectable_on_the_original_code_counts_as_failing() -> None:
    before = run(0, a="passed")
    tests_only = run(2, a="passed", **{"tests/test_new.py": "failed"})  # import error
    after = run(0, a="passed", **{"tests/test_new.py::test_parse": "passed"})
    verdict = verdict_of(before, tests_only, after)
    assert verdict.kind == VerdictKind.FIXED and verdict.fail_to_pass == ["tests/test_new.py::test_parse"]


def test_by_names_a_new_passing_test_with_no_failure_anywhere_is_not_reproduced() -> None:
    verdict = verdict_of(run(0, a="passed"), run(0, a="passed", n="passed"), run(0, a="passed", n="passed"))
    assert verdict.kind == VerdictKind.NOT_REPRODUCED and verdict.fail_to_pass == []


def test_by_names_still_failing_is_not_fixed() -> None:
    verdict = verdict_of(run(1, a="failed"), None, run(1, a="failed"))
    assert verdict.kind == VerdictKind.NOT_FIXED


def test_by_names_a_broken_build_whose_tests_vanish_is_a_regression() -> None:
    before = run(0, **{"tests/test_calc.py::test_mul": "passed"})
    after = run(2, **{"tests/test_calc.py": "failed"})  # collection error: SyntaxError in calc.py
    verdict = verdict_of(before, None, after)
    assert verdict.kind == VerdictKind.REGRESSED and verdict.pass_to_fail == ["tests/test_calc.py::test_mul"]
