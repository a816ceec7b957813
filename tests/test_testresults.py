"""Reading per-test outcomes from pytest, go test -v and jest/vitest output."""

from __future__ import annotations

from patchwright.testresults import MAX_TESTS, Outcome, RunResults, parse_output

PYTEST_RA = """\
============================= test session starts ==============================
collected 4 items

tests/test_app.py .F.s                                                    [100%]

=================================== FAILURES ===================================
___________________________________ test_sub ___________________________________
    def test_sub():
>       assert sub(3, 1) == 2
E       assert 4 == 2
=========================== short test summary info ============================
PASSED tests/test_app.py::test_add
PASSED tests/test_app.py::test_mul[2-3-6]
SKIPPED [1] tests/test_app.py:12: no network
FAILED tests/test_app.py::test_sub - assert 4 == 2
ERROR tests/test_db.py::test_conn - ConnectionError: refused
XFAIL tests/test_app.py::test_div - known
==================== 1 failed, 2 passed, 1 skipped in 0.05s ====================
"""


def test_pytest_summary_lines_give_names_and_outcomes() -> None:
    results = parse_output(PYTEST_RA)
    assert results.runners == ["pytest"]
    assert results.passed() == {
        "tests/test_app.py::test_add",
        "tests/test_app.py::test_mul[2-3-6]",
        "tests/test_app.py::test_div",
    }
    assert results.failed() == {"tests/test_app.py::test_sub", "tests/test_db.py::test_conn"}


def test_pytest_verbose_lines_and_collection_errors() -> None:
    out = (
        "tests/test_a.py::test_one PASSED                                [ 50%]\n"
        "tests/test_a.py::TestK::test_two FAILED                         [100%]\n"
        "ERROR tests/test_new.py - ImportError: cannot import name 'parse'\n"
    )
    results = parse_output(out)
    assert results.outcomes == {
        "tests/test_a.py::test_one": Outcome.PASSED,
        "tests/test_a.py::TestK::test_two": Outcome.FAILED,
        "tests/test_new.py": Outcome.FAILED,
    }


def test_a_failure_is_not_hidden_by_a_later_pass_of_the_same_name() -> None:
    out = "tests/t.py::test_x FAILED\nPASSED tests/t.py::test_x\n"
    assert parse_output(out).failed() == {"tests/t.py::test_x"}


def test_go_test_verbose_with_subtests() -> None:
    out = (
        "=== RUN   TestAdd\n"
        "--- PASS: TestAdd (0.00s)\n"
        "=== RUN   TestSplit\n"
        "    --- FAIL: TestSplit/empty (0.01s)\n"
        "    --- PASS: TestSplit/one (0.00s)\n"
        "--- FAIL: TestSplit (0.01s)\n"
        "--- SKIP: TestSlow (0.00s)\n"
        "FAIL\nFAIL\texample.com/m\t0.012s\n"
    )
    results = parse_output(out)
    assert results.runners == ["go"]
    assert results.passed() == {"TestAdd", "TestSplit/one"}
    assert results.failed() == {"TestSplit", "TestSplit/empty"}
    assert results.outcomes["TestSlow"] == Outcome.SKIPPED


def test_jest_verbose_names_carry_their_file() -> None:
    out = (
        "\x1b[1mPASS\x1b[22m src/add.test.js\n"
        "  add\n"
        "    ✓ adds numbers (3 ms)\n"
        "FAIL src/sub.test.ts\n"
        "    ✕ subtracts (12 ms)\n"
        "    ○ skipped later\n"
        "Tests:       1 failed, 1 passed, 2 total\n"
    )
    results = parse_output(out)
    assert results.runners == ["jest/vitest"]
    assert results.passed() == {"src/add.test.js > adds numbers"}
    assert results.failed() == {"src/sub.test.ts > subtracts"}


def test_vitest_verbose_lines() -> None:
    out = " ✓ src/add.test.ts > add > adds 2ms\n × src/add.test.ts > add > carries 5ms\n"
    results = parse_output(out)
    assert results.passed() == {"src/add.test.ts > add > adds"}
    assert results.failed() == {"src/add.test.ts > add > carries"}


def test_unittest_verbose_lines_old_and_new_and_with_docstrings() -> None:
    output = "\n".join(
        [
            "test_avatar (tests.UserModelCase.test_avatar) ... ok",
            "test_follow (tests.UserModelCase) ... FAIL",
            "test_posts (tests.UserModelCase.test_posts)",
            "Posts of followed users come first. ... ERROR",
            "test_later (tests.Other.test_later) ... skipped 'no database'",
            "test_known (tests.Other.test_known) ... expected failure",
            "test_lucky (tests.Other.test_lucky) ... unexpected success",
            "======================================================================",
            "FAIL: test_follow (tests.UserModelCase)",
            "Ran 6 tests in 0.012s",
        ]
    )
    results = parse_output(output)
    assert results.runners == ["unittest"]
    assert results.outcomes == {
        "tests.UserModelCase.test_avatar": Outcome.PASSED,
        "tests.UserModelCase.test_follow": Outcome.FAILED,
        "tests.UserModelCase.test_posts": Outcome.FAILED,
        "tests.Other.test_later": Outcome.SKIPPED,
        "tests.Other.test_known": Outcome.PASSED,
        "tests.Other.test_lucky": Outcome.FAILED,
    }


def test_output_with_no_known_runner_gives_nothing() -> None:
    results = parse_output("Ran 3 tests in 0.001s\n\nOK\nall good\n")
    assert not results and results.runners == []


def test_a_flood_of_results_is_capped() -> None:
    out = "".join(f"PASSED t.py::test_{i}\n" for i in range(MAX_TESTS + 50))
    results = parse_output(out)
    assert len(results.outcomes) == MAX_TESTS


def test_counts_for_the_summary() -> None:
    results = RunResults()
    results.add("a", Outcome.PASSED)
    results.add("b", Outcome.FAILED)
    results.add("c", Outcome.SKIPPED)
    assert results.as_dict() == {"runners": [], "passed": 1, "failed": 1, "skipped": 1}


def test_tap_output_of_node_test_is_read() -> None:
    output = "\n".join(
        [
            "TAP version 13",
            "# Subtest: sums the cents",
            "ok 1 - sums the cents",
            "  ---",
            "  duration_ms: 0.4",
            "  ...",
            "not ok 2 - rounds the tax",
            "ok 3 - later # SKIP not yet",
            "# tests 3",
        ]
    )
    results = parse_output(output)
    assert results.passed() == {"sums the cents"}
    assert results.failed() == {"rounds the tax"}
    assert results.as_dict()["skipped"] == 1
    assert "tap" in results.runners


def test_ok_lines_without_a_tap_header_are_not_results() -> None:
    assert not parse_output("ok 1 - looks like TAP\nnot ok 2 - but is not\n")
