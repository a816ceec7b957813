"""environment/readiness.py: whether the tests ran (collected and ran) or why not."""

from __future__ import annotations

from pathlib import Path

from patchwright.environment.detect import detect
from patchwright.environment.probe import probe_result
from patchwright.environment.readiness import Readiness, first_error, report_lines, why_not_run
from patchwright.environment.report import environment_report
from patchwright.sandbox.base import CommandResult
from patchwright.services.plan import plan_services
from patchwright.testresults import parse_output


def verdict(output: str, code: int | None) -> str | None:
    return why_not_run(CommandResult(output=output, exit_code=code))


def test_failing_tests_still_ran() -> None:
    output = "FAILED tests/test_a.py::test_x - assert 1 == 2\n1 failed, 2 passed in 0.1s\n"
    assert verdict(output, 1) is None
    assert verdict("Ran 3 tests in 0.004s\n\nFAILED (failures=1)\n", 1) is None  # unittest / manage.py test
    assert verdict("  3 passing (12ms)\n  1 failing\n", 1) is None  # mocha


def test_an_environment_failure_is_not_a_test_run() -> None:
    assert verdict("bash: line 1: pytest: command not found\n", 127) == "command not found: pytest"
    assert verdict("E   ModuleNotFoundError: No module named 'django'\n", 4) == (
        "ModuleNotFoundError: No module named 'django'"
    )
    assert "could not collect" in str(verdict("==== 1 error during collection ====\n", 2))
    assert "ran no tests" in str(verdict("collected 0 items\n\nno tests ran in 0.01s\n", 5))
    assert verdict("", None) == "the test command ended without an exit status"


def test_agent_setup_and_agent_fix_read_a_test_run_alike() -> None:
    """`agent setup` says what the probe before `agent fix`'s task says, for every kind of output."""
    outputs = [
        ("1 failed, 2 passed in 0.1s\n", 1),
        ("sh: 1: jest: not found\n", 127),
        ("Error: Cannot find module 'express'\n", 1),
        ("collected 0 items\n", 5),
        ("ERROR: file or directory not found: tests/\n", 4),
        ("E   SyntaxError: invalid syntax\n1 error during collection\n", 2),
        ("something broke\n", 3),
    ]
    for output, code in outputs:
        probe = probe_result(CommandResult(output, code))
        assert verdict(output, code) == (None if probe.runnable else probe.reason), output


def test_the_first_error_is_shown_not_the_last_line() -> None:
    output = "\n".join(
        ["Collecting django", "ERROR: No matching distribution found for djangoo"] + ["noise"] * 50
    )
    assert "No matching distribution" in first_error(output)


def test_pytest_error_lines_come_before_the_traceback_noise() -> None:
    output = "\n".join(
        [
            "==== ERRORS ====",
            "ERROR collecting test session",
            *["    frame"] * 30,
            "E   KeyError: 'SECRET_KEY'",
        ]
    )
    assert "KeyError: 'SECRET_KEY'" in first_error(output)


def test_agent_setup_names_a_declared_service_it_cannot_start(tmp_path: Path) -> None:
    (tmp_path / "docker-compose.yml").write_text(
        "services:\n  mongodb:\n    image: mongo:4.2.1-bionic\n  db:\n    image: postgres:15\n"
    )
    services = plan_services(None, tmp_path)
    recipe = detect(tmp_path)
    readiness = Readiness(recipe, environment_report(recipe, None, None, False), services)
    lines = report_lines(readiness)
    warning = [line for line in lines if line.startswith("warning: not started")]
    assert len(warning) == 1 and "mongo" in warning[0].lower(), lines


def test_a_suite_that_hangs_did_not_run_even_with_results_read() -> None:
    """An Express suite waiting on a MongoDB that is not there printed failures, then hung."""
    output = "tests/test_a.py::test_one PASSED\ntests/test_a.py::test_two FAILED\n"
    results = parse_output(output)
    assert results, "the fixture must parse as results"
    hung = CommandResult(output, None, timed_out=True)
    assert why_not_run(hung, 600) == (
        "the test command timed out after 600 s (1 passed, 1 failed before it was stopped); "
        "it is not known whether the tests can run"
    )
    assert why_not_run(CommandResult(output, 1)) is None  # the same results, finished: it ran
