"""What the system prompt tells the model about how its patch is proven."""

from __future__ import annotations

from patchwright.prompt import RunFacts, run_notes


def test_with_a_test_command_the_model_is_told_a_fix_needs_a_test_that_fails_first() -> None:
    notes = run_notes(RunFacts("/workspace", False, ("bash",), "pytest -q"))
    assert "runs `pytest -q` on the original code" in notes
    assert "only if a test fails before and passes after" in notes and "first add a test" in notes


def test_without_a_test_command_nothing_is_said_about_proof() -> None:
    assert "fails before" not in run_notes(RunFacts("/workspace", False, ("bash",)))


def test_when_the_tests_cannot_run_the_model_is_told_why_and_not_asked_for_proof() -> None:
    blocked = RunFacts("/workspace", False, ("bash",), "npm test", tests_blocked="command not found: jest")
    notes = run_notes(blocked)
    assert "`npm test` cannot run in this sandbox (command not found: jest)" in notes
    assert "counts as fixed" not in notes
