"""The text summary names the verdict, says why a patch is not proven, and lists the attempts."""

from __future__ import annotations

from patchwright.display import summary_lines
from patchwright.outputs import RunSummary


def summary(**fields: object) -> RunSummary:
    return RunSummary("r", "completed", 0, "/repo", "/repo/.patchwright/runs/r", "m", "a", "t", **fields)  # type: ignore[arg-type]


def test_a_proven_fix_says_verified_and_fixed() -> None:
    lines = summary_lines(
        summary(verified=True, verification={"verdict": "fixed", "reason": "1 test(s) ..."})
    )
    assert "verified: yes (fixed)" in lines and not any("1 test(s)" in line for line in lines)


def test_an_unproven_patch_says_why() -> None:
    reason = "the tests pass before and after and no test shows the bug; add one"
    lines = summary_lines(
        summary(verified=False, verification={"verdict": "not_reproduced", "reason": reason})
    )
    at = lines.index("verified: no (not_reproduced)")
    assert lines[at + 1] == f"  {reason}"


def test_attempts_are_listed_with_the_chosen_one() -> None:
    attempts = [
        {"attempt": 1, "status": "completed", "verdict": "not_reproduced", "cost_usd": 0.1},
        {"attempt": 2, "status": "completed", "verdict": "fixed", "cost_usd": 0.1},
        {"attempt": 3, "status": "killed", "verdict": None, "cost_usd": 0.0},
    ]
    lines = summary_lines(summary(attempts=attempts, chosen_attempt=2, selection="/x/selection.json"))
    assert "attempts: #1 not_reproduced, #2 fixed (chosen), #3 killed; see /x/selection.json" in lines


def test_tests_that_could_not_run_say_why_and_what_to_try() -> None:
    environment = {
        "tests_runnable": False,
        "reason": "the setup command exited with 1: error: pg_config executable not found",
        "setup_error": ["error: pg_config executable not found", "\x1b[31mnote\x1b[0m"],
        "hints": ["--setup CMD: the install", "--image IMAGE: a toolchain"],
        "repair": None,
        "setup_line": None,
    }
    ended = RunSummary(
        "r", "environment", 5, "/repo", "/repo/.patchwright/runs/r", "m", "a", "t", environment=environment
    )
    lines = summary_lines(ended)
    assert lines[0] == "status: environment (exit 5)" and "patch: none" in lines
    assert (
        "tests: could not run: the setup command exited with 1: error: pg_config executable not found"
        in lines
    )
    assert "  try --setup CMD: the install" in lines and not any("\x1b" in line for line in lines)


def test_a_repaired_setup_shows_its_cost_and_the_line_to_commit() -> None:
    environment = {
        "tests_runnable": True,
        "repair": {"steps": 4, "cost_usd": 0.0312},
        "setup_line": 'pip install --user "psycopg2-binary"',
    }
    lines = summary_lines(summary(environment=environment))
    assert "setup repair: 4 steps, $0.0312 (apart from the run's own cost)" in lines
    assert 'setup recipe: pip install --user "psycopg2-binary"' in lines
    assert (
        '  to keep it, add to .patchwright/config.toml: setup = "pip install --user \\"psycopg2-binary\\""'
        in lines
    )
