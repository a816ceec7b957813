"""Did the tests run, or could they not even start? Read from the test command's own output.

A failing suite and a suite that cannot start end alike (a non-zero exit), but they mean
opposite things: the first is evidence about the code, the second about the environment
(a missing package, a missing runner, a wrong test command). Only the first may pass for a
result: "no changes" after a suite that never ran is not a finding. A suite that times out
proved nothing either, so it never counts as having run.

The output is the repository's code speaking: it is matched, capped and quoted, never run.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from enum import StrEnum

from patchwright.sandbox.base import CommandResult
from patchwright.sanitize import clean_line
from patchwright.testresults import parse_output

MAX_DETAIL = 300  # characters of the line quoted as the reason


class Cause(StrEnum):
    RAN = "ran"  # the tests ran (and passed or failed)
    COMMAND_NOT_FOUND = "command_not_found"  # exit 127, "jest: not found"
    MISSING_MODULE = "missing_module"  # ModuleNotFoundError, node's "Cannot find module"
    COLLECTION_ERROR = "collection_error"  # pytest could not collect (an import failing, a bad conftest)
    NO_TESTS = "no_tests"  # the runner started and found nothing to run
    USAGE_ERROR = "usage_error"  # the runner refused its arguments (pytest exit 4: no such file)
    TIMED_OUT = "timed_out"  # unknown: never counted as having run
    SETUP_FAILED = "setup_failed"  # the setup command failed, so the tests were never tried


# Worth a setup repair: the environment is missing something an install can provide.
REPAIRABLE = frozenset(
    {
        Cause.COMMAND_NOT_FOUND,
        Cause.MISSING_MODULE,
        Cause.COLLECTION_ERROR,
        Cause.NO_TESTS,
        Cause.SETUP_FAILED,
    }
)


@dataclass(frozen=True)
class Probe:
    """What one run of the test command says about the environment."""

    cause: Cause
    reason: str  # one line, escaped: what was seen
    exit_code: int | None = None
    passed: bool = False  # ran, and exited 0

    @property
    def runnable(self) -> bool:
        return self.cause is Cause.RAN

    @property
    def repairable(self) -> bool:
        return self.cause in REPAIRABLE

    def as_dict(self) -> dict[str, object]:
        return {"tests_runnable": self.runnable, "cause": str(self.cause), "reason": self.reason}


# "bash: jest: command not found", "sh: 1: jest: not found", "/bin/sh: line 1: bun: not found"
_NOT_FOUND = re.compile(
    r"^(?:\S*(?:sh|bash|dash|zsh)|env|make(?:\[\d+\])?)\b[^\n]*?:\s*(?:line \d+:\s*|\d+:\s*)?"
    r"([^\s:]+):\s*(?:command )?not found\s*$"
)
_NO_SUCH_RUNNER = re.compile(r"^(?:\S*python[\d.]*|\S*node): (?:No module named|can't open file) (.+)$")
_MISSING_PY = re.compile(r"\b(ModuleNotFoundError: No module named \S+|No module named \S+)")
_MISSING_JS = re.compile(r"\b(Error: Cannot find module '[^']+'|Cannot find module '[^']+')")
_COLLECTION = re.compile(r"\b(\d+ errors?) during collection\b|^_{3,} ERROR collecting (\S+) _{3,}$")
# An exception of the code itself stopping collection (not a missing package or plugin).
_CODE_ERROR = re.compile(
    r"^(?:SyntaxError|IndentationError|TabError|NameError|AttributeError|TypeError|ValueError|KeyError|"
    r"ZeroDivisionError|AssertionError|RecursionError|ImportError: cannot import name)\b"
)
_EXCEPTION = re.compile(r"^[A-Za-z_][\w.]*: ")
_FIRST_E = re.compile(r"^E\s+(\S.*)$")
_PYTEST_NO_TESTS = re.compile(r"\bno tests ran\b|\bcollected 0 items\b", re.IGNORECASE)
_JS_NO_TESTS = re.compile(r"\bNo tests found\b|\bNo test files found\b|\bno test files\b")
_UNITTEST_NO_TESTS = re.compile(r"^(?:NO TESTS RAN|Ran 0 tests in )")
_PYTEST_USAGE = re.compile(r"^ERROR: ((?:file or directory not found|not found|usage).*)$", re.IGNORECASE)


def classify(
    output: str, exit_code: int | None, timed_out: bool = False, limit: float | None = None
) -> Probe:
    """Whether this output of the test command shows tests that ran; `limit`: the timeout, for the reason."""
    results = parse_output(output)
    if timed_out:  # a suite that hangs (on a server it waits for) never counts, whatever it printed
        after = f" after {limit:g} s" if limit else ""
        read = (
            f" ({len(results.passed())} passed, {len(results.failed())} failed before it was stopped)"
            if results
            else ""
        )
        return Probe(
            Cause.TIMED_OUT,
            f"the test command timed out{after}{read}; it is not known whether the tests can run",
        )
    lines = [line.rstrip() for line in output.splitlines()]
    # Named results other than a module that would not import: the tests ran.
    ran = {name for name in results.outcomes if "::" in name or not name.endswith(".py")}
    collection = _first(_COLLECTION, lines)
    if ran and collection is None:
        return Probe(Cause.RAN, "the tests ran", exit_code, exit_code == 0)
    if collection is not None:
        error = _first_pytest_error(lines)
        if error and "No module named" in error:
            return Probe(
                Cause.MISSING_MODULE, _line(f"pytest could not collect the tests: {error}"), exit_code
            )
        if error and _CODE_ERROR.search(error):  # the code under test is broken: evidence, maybe the task
            return Probe(
                Cause.RAN,
                _line(f"the runner started; collecting the tests failed on the code: {error}"),
                exit_code,
            )
        return Probe(
            Cause.COLLECTION_ERROR,
            _line(f"pytest could not collect the tests: {error or collection}"),
            exit_code,
        )
    if exit_code == 0 and not ran:
        if (
            _first(_PYTEST_NO_TESTS, lines)
            or _first(_UNITTEST_NO_TESTS, lines)
            or _first(_JS_NO_TESTS, lines)
        ):
            return Probe(Cause.NO_TESTS, "the test command ran no tests", exit_code)
        return Probe(Cause.RAN, "the test command exited 0", exit_code, True)
    if (found := _first(_NOT_FOUND, lines)) is not None:
        return Probe(Cause.COMMAND_NOT_FOUND, _line(f"command not found: {found}"), exit_code)
    if (found := _first(_NO_SUCH_RUNNER, lines)) is not None:
        return Probe(Cause.COMMAND_NOT_FOUND, _line(f"the test runner is missing: {found}"), exit_code)
    if exit_code == 127:
        return Probe(
            Cause.COMMAND_NOT_FOUND, _line(f"command not found (exit 127): {_last(lines)}"), exit_code
        )
    if (found := _first(_MISSING_PY, lines)) is not None:
        return Probe(Cause.MISSING_MODULE, _line(found), exit_code)
    if (found := _first(_MISSING_JS, lines)) is not None:
        return Probe(Cause.MISSING_MODULE, _line(found), exit_code)
    if exit_code == 4 and (found := _first(_PYTEST_USAGE, lines)) is not None:
        return Probe(Cause.USAGE_ERROR, _line(f"the test runner refused its arguments: {found}"), exit_code)
    if exit_code == 5 or _first(_PYTEST_NO_TESTS, lines) or _first(_JS_NO_TESTS, lines):
        return Probe(Cause.NO_TESTS, "the test command ran no tests (none were collected)", exit_code)
    if _first(_UNITTEST_NO_TESTS, lines):
        return Probe(Cause.NO_TESTS, "the test command ran no tests", exit_code)
    if exit_code is None:  # killed, or its status lost: nothing says the tests ran
        return Probe(Cause.TIMED_OUT, "the test command ended without an exit status", exit_code)
    # A runner's failure with no result we can read still ran: a failing suite is evidence.
    return Probe(Cause.RAN, f"the tests ran and failed (exit {exit_code})", exit_code)


def probe_result(result: CommandResult, limit: float | None = None) -> Probe:
    return classify(result.output, result.exit_code, result.timed_out, limit)


_PYTEST = (("pytest",), ("py.test",), ("python", "-m", "pytest"), ("python3", "-m", "pytest"))
_SHELL = re.compile(r"[;&|<>`$(){}\n]")
_COLLECTED = re.compile(r"^(?:(\d+) tests? collected\b|collected (\d+) items?\b)", re.MULTILINE)
_PER_FILE = re.compile(r"^\S+\.py: (\d+)$", re.MULTILINE)


def collect_only(test_command: str) -> str | None:
    """The test command asked only to collect, where that is sure to mean the same run: a plain
    pytest command (no shell around it). Collecting imports every test module and conftest, so
    it fails for exactly what "cannot start" means (a missing runner, package or plugin, a
    collection error), in a fraction of the suite's time, and a suite that hangs on a server
    it waits for does not hold the model's first turn. None for anything else: the whole
    suite runs then."""
    if _SHELL.search(test_command):
        return None
    try:
        words = shlex.split(test_command)
    except ValueError:
        return None
    if not any(tuple(words[: len(start)]) == start for start in _PYTEST):
        return None
    if any(word in ("--collect-only", "--co", "--help", "-h") for word in words):
        return None
    return f"{test_command} --collect-only -q"


def collected(probe: Probe, output: str) -> Probe:
    """A collection-only probe that found tests says so, not "exited 0" (pytest exits 0 from a
    collection only when it collected tests without an error; 5 when none)."""
    if not probe.runnable or probe.exit_code != 0:  # a collection stopped by the code's own error
        return probe
    # -q: "2 tests collected"; the default: "collected 2 items"; -qq: "tests/test_a.py: 2" per file
    counts = [int(a or b) for a, b in _COLLECTED.findall(output)]
    counts = counts or [int(n) for n in _PER_FILE.findall(output)]
    what = f"{sum(counts)} test{'s' * (sum(counts) != 1)}" if counts else "the tests"
    return Probe(Cause.RAN, f"pytest collected {what} (collection only)", probe.exit_code)


def setup_failed(result: CommandResult) -> Probe:
    """A setup command that failed: the reason quotes its first error, not its last line."""
    how = "timed out" if result.timed_out else f"exited with {result.exit_code}"
    error = first_error(result.output)
    return Probe(
        Cause.SETUP_FAILED,
        _line(f"the setup command {how}" + (f": {error}" if error else "")),
        result.exit_code,
    )


# A line that states an error (installers print the cause first, consequences after it).
_ERROR_WORDS = re.compile(
    r"^(?:[\w./\[\]-]+: )?(?:error|fatal|npm ERR!|E:)\b|(?:command )?not found$|No such file or directory"
    r"|\bCould not (?:find|build|install|open)\b|\bcannot (?:find|open|import)\b",
    re.IGNORECASE,
)


def first_error(output: str) -> str:
    """The first line that reads like an error (installers print the cause first and the
    consequences after it); else the last non-empty line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for line in lines:
        if _ERROR_WORDS.search(line):
            return line
    return lines[-1] if lines else ""


def error_excerpt(output: str, count: int = 5) -> list[str]:
    """A few lines from the first error on: the useful part of a long install log."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    for index, line in enumerate(lines):
        if _ERROR_WORDS.search(line):
            return [clean_line(text, MAX_DETAIL) for text in lines[index : index + count]]
    return [clean_line(text, MAX_DETAIL) for text in lines[-count:]]


def _first(pattern: re.Pattern[str], lines: list[str]) -> str | None:
    for line in lines:
        if m := pattern.search(line):
            groups = [g for g in m.groups() if g]
            return groups[0] if groups else m.group(0)
    return None


def _first_pytest_error(lines: list[str]) -> str | None:
    """The first exception pytest quotes ("E   SyntaxError: ..."), else its first E line."""
    quoted = [m.group(1) for line in lines if (m := _FIRST_E.match(line))]
    return next((line for line in quoted if _EXCEPTION.match(line)), quoted[0] if quoted else None)


def _last(lines: list[str]) -> str:
    found = [line for line in lines if line.strip()]
    return found[-1] if found else ""


def _line(text: str) -> str:
    return clean_line(text, MAX_DETAIL)
