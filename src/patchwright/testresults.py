"""Which tests passed and which failed, read from a test runner's own output.

Verification needs names, not only an exit code: "fixed" means a named test went from
failing to passing and none went the other way, as the SWE-bench harness records
FAIL_TO_PASS and PASS_TO_PASS. Runners print results in their own shapes; each parser
here reads one of them and ignores every other line, so a run of several runners (or
noise around them) still yields what can be read. Nothing here trusts the output: it is
the repository's code speaking, so names are capped and counted, never executed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum

MAX_TESTS = 20_000  # results kept from one run; a flood of lines stops here
MAX_NAME = 500  # characters of one test name


class Outcome(StrEnum):
    PASSED = "passed"
    FAILED = "failed"  # failed or errored: the test did not pass
    SKIPPED = "skipped"


@dataclass
class RunResults:
    """Test name -> outcome, as one run reported them; `runner` names the parsers that matched."""

    outcomes: dict[str, Outcome] = field(default_factory=dict)
    runners: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.outcomes)

    def passed(self) -> set[str]:
        return {name for name, outcome in self.outcomes.items() if outcome == Outcome.PASSED}

    def failed(self) -> set[str]:
        return {name for name, outcome in self.outcomes.items() if outcome == Outcome.FAILED}

    def add(self, name: str, outcome: Outcome) -> None:
        """A later report of the same test wins unless it would hide a failure (reruns, -v and -rA)."""
        name = name.strip()[:MAX_NAME]
        if not name or (name not in self.outcomes and len(self.outcomes) >= MAX_TESTS):
            return
        if self.outcomes.get(name) == Outcome.FAILED and outcome != Outcome.FAILED:
            return
        self.outcomes[name] = outcome

    def as_dict(self) -> dict[str, object]:
        return {
            "runners": self.runners,
            "passed": len(self.passed()),
            "failed": len(self.failed()),
            "skipped": sum(1 for o in self.outcomes.values() if o == Outcome.SKIPPED),
        }


# -- pytest: `-rA` summary lines ("PASSED tests/x.py::test_a") and `-v` lines ("tests/x.py::test_a PASSED")
_PYTEST_WORDS = {
    "PASSED": Outcome.PASSED,
    "XFAIL": Outcome.PASSED,  # expected to fail and did: the suite is green
    "FAILED": Outcome.FAILED,
    "ERROR": Outcome.FAILED,
    "XPASS": Outcome.FAILED,  # strict or not, an unexpected pass is not the recorded behaviour
    "SKIPPED": Outcome.SKIPPED,
}
_PYTEST_SUMMARY = re.compile(r"^(PASSED|FAILED|ERROR|XFAIL|XPASS) (\S+::\S.*?)(?: - .*)?$")
_PYTEST_VERBOSE = re.compile(r"^(\S+::\S.*?) (PASSED|FAILED|ERROR|XFAIL|XPASS|SKIPPED)(?:\s+\[\s*\d+%\])?$")
# A module that does not even import: "ERROR tests/test_x.py - ImportError ..." (no "::")
_PYTEST_COLLECT = re.compile(r"^ERROR (\S+\.py)(?: - .*)?$")


def parse_pytest(lines: Iterable[str], results: RunResults) -> bool:
    found = False
    for line in lines:
        if m := _PYTEST_SUMMARY.match(line):
            results.add(_pytest_name(m.group(2)), _PYTEST_WORDS[m.group(1)])
        elif m := _PYTEST_VERBOSE.match(line):
            results.add(_pytest_name(m.group(1)), _PYTEST_WORDS[m.group(2)])
        elif m := _PYTEST_COLLECT.match(line):
            results.add(m.group(1), Outcome.FAILED)
        else:
            continue
        found = True
    return found


def _pytest_name(name: str) -> str:
    return name.strip()


# -- go test -v: "--- PASS: TestAdd (0.00s)", subtests "    --- FAIL: TestAdd/negative (0.00s)"
_GO = re.compile(r"^\s*--- (PASS|FAIL|SKIP): (\S+) \(\d+(?:\.\d+)?s\)$")
_GO_WORDS = {"PASS": Outcome.PASSED, "FAIL": Outcome.FAILED, "SKIP": Outcome.SKIPPED}


def parse_go(lines: Iterable[str], results: RunResults) -> bool:
    found = False
    for line in lines:
        if m := _GO.match(line):
            results.add(m.group(2), _GO_WORDS[m.group(1)])
            found = True
    return found


# -- jest --verbose / vitest: "  ✓ adds numbers (3 ms)", "  ✕ adds numbers", "  × adds", "  ↓ skipped"
# jest prints the file on a line of its own ("PASS src/add.test.js"); vitest's verbose reporter
# prints "✓ src/add.test.ts > suite > adds numbers". The file is kept in the name when known.
_JS_FILE = re.compile(r"^\s*(PASS|FAIL)\s+(\S+\.(?:[cm]?[jt]sx?))(?:\s.*)?$")
_JS_TEST = re.compile(r"^\s*([✓✔√×✕✗↓○])\s+(.+?)(?:\s+\(?\d+(?:\.\d+)?\s*m?s\)?)?\s*$")
_JS_MARKS = {
    "✓": Outcome.PASSED,
    "✔": Outcome.PASSED,
    "√": Outcome.PASSED,
    "×": Outcome.FAILED,
    "✕": Outcome.FAILED,
    "✗": Outcome.FAILED,
    "↓": Outcome.SKIPPED,
    "○": Outcome.SKIPPED,
}


def parse_js(lines: Iterable[str], results: RunResults) -> bool:
    found = False
    current_file = ""
    for line in lines:
        if m := _JS_FILE.match(line):
            current_file = m.group(2)
        elif m := _JS_TEST.match(line):
            name = m.group(2)
            if current_file and " > " not in name:
                name = f"{current_file} > {name}"
            results.add(name, _JS_MARKS[m.group(1)])
            found = True
    return found


# -- TAP (node --test, tap, tape): "ok 1 - adds numbers", "not ok 2 - adds # TODO", indented subtests;
# read only after a "TAP version" line, so a program that prints "ok 1 - ..." is not taken for it
_TAP_TEST = re.compile(r"^\s*(not ok|ok) \d+(?: - (.+?))?(?: # (SKIP|TODO)\b.*)?$", re.IGNORECASE)


def parse_tap(lines: Iterable[str], results: RunResults) -> bool:
    found = False
    started = False
    for line in lines:
        if line.startswith("TAP version"):
            started = True
        elif started and (m := _TAP_TEST.match(line)) and m.group(2):
            outcome = (
                Outcome.SKIPPED if m.group(3) else Outcome.PASSED if m.group(1) == "ok" else Outcome.FAILED
            )
            results.add(m.group(2), outcome)
            found = True
    return found


# -- unittest -v (and Django's `manage.py test -v 2`): "test_add (tests.Calc.test_add) ... ok";
# before Python 3.12 "test_add (tests.Calc) ... ok"; a test with a docstring puts it, and the
# outcome, on the next line
_UNITTEST_TEST = re.compile(r"^(\w+) \(([\w.]+)\)(?: \.\.\. (.*))?$")
_UNITTEST_LATER = re.compile(r"^.* \.\.\. (.*)$")
_UNITTEST_WORDS = {
    "ok": Outcome.PASSED,
    "expected failure": Outcome.PASSED,  # as pytest's XFAIL
    "FAIL": Outcome.FAILED,
    "ERROR": Outcome.FAILED,
    "unexpected success": Outcome.FAILED,  # as pytest's XPASS
}


def _unittest_outcome(said: str) -> Outcome | None:
    return Outcome.SKIPPED if said.startswith("skipped") else _UNITTEST_WORDS.get(said.strip())


def parse_unittest(lines: Iterable[str], results: RunResults) -> bool:
    found = False
    pending = ""  # a test whose outcome is on a later line
    for line in lines:
        if m := _UNITTEST_TEST.match(line):
            method, where, said = m.groups()
            name = where if where.endswith(f".{method}") else f"{where}.{method}"
            if said is None:
                pending = name
                continue
        elif pending and (m := _UNITTEST_LATER.match(line)):
            name, said = pending, m.group(1)
        else:
            continue
        pending = ""
        if (outcome := _unittest_outcome(said)) is not None:
            results.add(name, outcome)
            found = True
    return found


PARSERS: dict[str, Callable[[Iterable[str], RunResults], bool]] = {
    "pytest": parse_pytest,
    "unittest": parse_unittest,
    "go": parse_go,
    "jest/vitest": parse_js,
    "tap": parse_tap,
}


def parse_output(output: str) -> RunResults:
    """Every result any known runner printed in `output`; empty when none could be read."""
    lines = [_strip_ansi(line).rstrip() for line in output.splitlines()]
    results = RunResults()
    for runner, parser in PARSERS.items():
        if parser(lines, results):
            results.runners.append(runner)
    return results


_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _strip_ansi(line: str) -> str:
    return _ANSI.sub("", line)


# Asks pytest for the one-line-per-test summary (-rA) without changing the user's command.
PYTEST_REPORT_ENV = 'PYTEST_ADDOPTS="${PYTEST_ADDOPTS:+$PYTEST_ADDOPTS }-rA"'
