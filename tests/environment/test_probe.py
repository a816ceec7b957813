"""The probe tells a suite that ran (and passed or failed) from one that could not start.

The outputs below were printed by the real runners (pytest 8, Python 3.11's unittest, npm 10 with
dash, node 20); the shell and node cases are produced live."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from patchwright.environment.probe import (
    Cause,
    classify,
    collect_only,
    collected,
    error_excerpt,
    first_error,
    probe_result,
    setup_failed,
)
from patchwright.sandbox.base import CommandResult

PYTEST_FAILED = """\
.F                                                                       [100%]
=================================== FAILURES ===================================
____________________________________ test_b ____________________________________

>   def test_b(): assert 0
E   assert 0

ok/test_ok.py:2: AssertionError
=========================== short test summary info ============================
FAILED ok/test_ok.py::test_b - assert 0
1 failed, 1 passed in 3.75s
"""

PYTEST_COLLECTION = """\
==================================== ERRORS ====================================
__________________________ ERROR collecting test_x.py __________________________
ImportError while importing test module '/tmp/probex/test_x.py'.
Hint: make sure your test modules/packages have valid Python names.
Traceback:
/usr/lib/python3.11/importlib/__init__.py:126: in import_module
    return _bootstrap._gcd_import(name[level:], package, level)
test_x.py:1: in <module>
    import django
E   ModuleNotFoundError: No module named 'django'
=========================== short test summary info ============================
ERROR test_x.py
!!!!!!!!!!!!!!!!!!!! Interrupted: 1 error during collection !!!!!!!!!!!!!!!!!!!!
1 error in 3.28s
"""

PYTEST_SYNTAX = """\
==================================== ERRORS ====================================
_______________________ ERROR collecting tests/test_a.py _______________________
E     File "/workspace/app.py", line 3
E       def broken(:
E                  ^
E   SyntaxError: invalid syntax
=========================== short test summary info ============================
ERROR tests/test_a.py
!!!!!!!!!!!!!!!!!!!! Interrupted: 1 error during collection !!!!!!!!!!!!!!!!!!!!
"""

PYTEST_DJANGO = """\
==================================== ERRORS ====================================
_________________________ ERROR collecting tests/test_models.py _________________________
tests/test_models.py:1: in <module>
    from shop.models import Order
shop/models.py:3: in <module>
    class Order(models.Model):
E   django.core.exceptions.ImproperlyConfigured: Requested setting DATABASES, but settings are not configured.
=========================== short test summary info ============================
ERROR tests/test_models.py - django.core.exceptions.ImproperlyConfigured: Requested setting DATABASES
!!!!!!!!!!!!!!!!!!!! Interrupted: 1 error during collection !!!!!!!!!!!!!!!!!!!!
"""


def test_failing_tests_ran() -> None:
    probe = classify(PYTEST_FAILED, 1)
    assert probe.runnable and probe.cause is Cause.RAN and not probe.passed


def test_passing_tests_ran_and_passed() -> None:
    probe = classify("..\n2 passed in 0.01s\n", 0)
    assert probe.runnable and probe.passed


def test_a_missing_module_at_collection_cannot_run() -> None:
    probe = classify(PYTEST_COLLECTION, 2)
    assert not probe.runnable and probe.cause is Cause.MISSING_MODULE and probe.repairable
    assert "No module named 'django'" in probe.reason


def test_a_collection_error_of_the_code_itself_is_evidence_about_the_code() -> None:
    # a SyntaxError in the code may be the very bug to fix: the runner works, so the suite "ran"
    probe = classify(PYTEST_SYNTAX, 2)
    assert probe.runnable and not probe.passed
    assert (
        probe.reason
        == "the runner started; collecting the tests failed on the code: SyntaxError: invalid syntax"
    )


def test_another_collection_error_cannot_run_and_names_the_first_error() -> None:
    probe = classify(PYTEST_DJANGO, 2)
    assert probe.cause is Cause.COLLECTION_ERROR and not probe.runnable and probe.repairable
    assert probe.reason.endswith(
        "ImproperlyConfigured: Requested setting DATABASES, but settings are not configured."
    )


def test_pytest_with_no_tests_collected() -> None:
    assert classify("\nno tests ran in 3.25s\n", 5).cause is Cause.NO_TESTS


def test_pytest_usage_error_is_not_no_tests() -> None:
    out = "\nno tests ran in 2.95s\nERROR: file or directory not found: nothere\n\n"
    probe = classify(out, 4)
    assert probe.cause is Cause.USAGE_ERROR and "nothere" in probe.reason


def test_unittest_running_nothing_exits_0_but_did_not_run() -> None:
    out = "\n----------------------------------------------------------------------\nRan 0 tests in 0.000s\n\nOK\n"
    assert classify(out, 0).cause is Cause.NO_TESTS


def test_npm_test_without_jest() -> None:
    probe = classify("sh: 1: jest: not found\n", 127)
    assert probe.cause is Cause.COMMAND_NOT_FOUND and probe.reason == "command not found: jest"


def test_python_without_pytest() -> None:
    probe = classify("/usr/bin/python3: No module named pytest\n", 1)
    assert probe.cause is Cause.COMMAND_NOT_FOUND and "pytest" in probe.reason


def test_a_timeout_never_counts_as_ran() -> None:
    probe = probe_result(CommandResult(PYTEST_FAILED, None, timed_out=True), limit=600)
    assert not probe.runnable and probe.cause is Cause.TIMED_OUT and not probe.repairable
    assert "600 s" in probe.reason


def test_a_command_that_exits_0_without_a_runner_ran() -> None:
    assert classify("all good\n", 0).runnable


def test_an_unreadable_failure_still_ran() -> None:
    # a failing suite whose runner we cannot parse is evidence about the code, not the environment
    assert classify("make: *** [test] Error 1\n", 2).runnable


def test_bash_command_not_found_live() -> None:
    done = subprocess.run(["bash", "-c", "no-such-runner-xyz --ci"], capture_output=True, text=True)
    probe = classify(done.stdout + done.stderr, done.returncode)
    assert done.returncode == 127 and probe.cause is Cause.COMMAND_NOT_FOUND
    assert "no-such-runner-xyz" in probe.reason


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_node_cannot_find_module_live() -> None:
    done = subprocess.run(
        ["node", "-e", "require('express-not-installed-xyz')"], capture_output=True, text=True, cwd="/"
    )
    probe = classify(done.stdout + done.stderr, done.returncode)
    assert probe.cause is Cause.MISSING_MODULE and "express-not-installed-xyz" in probe.reason


PIP_LOG = """\
Collecting psycopg2==2.9.9
  Downloading psycopg2-2.9.9.tar.gz (384 kB)
  Preparing metadata (setup.py): started
  Preparing metadata (setup.py): finished with status 'error'
  error: subprocess-exited-with-error
  Error: pg_config executable not found.
  note: This error originates from a subprocess, and is likely not a problem with pip.
error: metadata-generation-failed
"""


def test_a_failed_setup_quotes_its_first_error_not_its_last_line() -> None:
    probe = setup_failed(CommandResult(PIP_LOG, 1))
    assert probe.cause is Cause.SETUP_FAILED and probe.repairable
    assert probe.reason == "the setup command exited with 1: error: subprocess-exited-with-error"
    assert first_error("ok\n\nlast words\n") == "last words"
    assert error_excerpt(PIP_LOG, 2) == [
        "error: subprocess-exited-with-error",
        "Error: pg_config executable not found.",
    ]


def test_escapes_what_it_quotes() -> None:
    probe = classify("bash: \x1b[31mevil\x1b[0m: command not found\n", 127)
    assert "\x1b" not in probe.reason


@pytest.mark.parametrize(
    ("command", "quick"),
    [
        ("pytest", "pytest --collect-only -q"),
        ("python3 -m pytest -x tests/", "python3 -m pytest -x tests/ --collect-only -q"),
        ("py.test -k 'a or b'", "py.test -k 'a or b' --collect-only -q"),
        ("cd backend && pytest", None),  # a shell around it: the whole command runs
        ("pytest | tee log", None),
        ("DJANGO_SETTINGS_MODULE=x pytest", None),
        ("npm test", None),
        ("python manage.py test", None),
        ("pytest --co", None),
        ("pytest 'unclosed", None),
    ],
)
def test_only_a_plain_pytest_command_is_probed_by_collection(command: str, quick: str | None) -> None:
    assert collect_only(command) == quick


def test_a_collection_that_found_tests_says_how_many() -> None:
    output = "t.py::test_a\nt.py::test_b\n\n2 tests collected in 0.01s\n"
    probe = collected(classify(output, 0), output)
    assert probe.runnable and probe.reason == "pytest collected 2 tests (collection only)"
    terse = "t.py: 2\nu.py: 1\n"  # -qq (the command's own -q and the probe's)
    assert collected(classify(terse, 0), terse).reason == "pytest collected 3 tests (collection only)"
    empty = "\nno tests collected in 0.01s\n"
    assert not collected(classify(empty, 5), empty).runnable
    code = "E   SyntaxError: invalid syntax\n1 error during collection\n"  # the code's own: evidence
    assert collected(classify(code, 2), code).reason == classify(code, 2).reason
    broken = "E   ModuleNotFoundError: No module named 'x'\n1 error during collection\n"
    assert collected(classify(broken, 2), broken).cause is Cause.MISSING_MODULE
