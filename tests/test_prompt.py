"""What the system prompt tells the model about how its patch is proven."""

from __future__ import annotations

from patchwright.prompt import RunFacts, run_notes


def test_with_a_test_command_the_model_is_told_a_fix_needs_a_test_that_fails_first() -> None:
    notes = run_notes(RunFacts("/workspace", False, ("bash",), "pytest -q"))
    assert "runs `pytest -q` on the original code" in notes
    assert "only if a test fails before and passes after" in notes and "first add a test" in notes


def test_without_a_test_command_nothing_is_said_about_proof() -> None:
    assert "fails before" not in run_notes(RunFacts("/workspace", False, ("bash",)))
