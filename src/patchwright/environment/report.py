"""What a run tells the user about its environment: one dict, built here only, for summary.json's
`environment` key and the progress lines (other parts of the run may add their own keys to it)."""

from __future__ import annotations

from typing import Any

from patchwright.environment.detect import Recipe, setup_script
from patchwright.environment.toolchains import Unmet, unmet_from_output

USER_SOURCE = "the user's settings (--setup / config `setup`)"
USER_TEST_SOURCE = "the user's settings (--test-cmd / config `test_cmd`)"


def environment_report(
    recipe: Recipe, setup: str | None, test_cmd: str | None, detected_setup: bool
) -> dict[str, Any]:
    """`sources` (where setup, tests, folder and runtimes came from), `setup` (the script run, or
    None), `test_cmd`, `workdir`, `requirements`, `notes`. `setup` and `test_cmd` are what the run
    uses; `detected_setup`: the setup is the recipe's, not the user's."""
    found = recipe.as_dict()
    sources = [s for s in found["sources"] if not s.startswith(("setup:", "test:"))]
    if setup is not None and not detected_setup:
        sources.insert(0, f"setup: {USER_SOURCE}")
    elif detected_setup:
        sources[:0] = [s for s in found["sources"] if s.startswith("setup:")]
    if test_cmd is not None and test_cmd != recipe.test_command:
        sources.insert(0, f"test: {USER_TEST_SOURCE}")
    else:
        sources[:0] = [s for s in found["sources"] if s.startswith("test:")]
    return {
        "sources": sources,
        "setup": setup,
        "test_cmd": test_cmd,
        "workdir": found["workdir"],
        "requirements": found["requirements"] if detected_setup else [],
        "notes": found["notes"],
    }


def describe(report: dict[str, Any]) -> list[str]:
    """Progress lines: where the setup and the test command came from."""
    lines = [f"environment: {source}" for source in report["sources"]]
    lines += [f"environment note: {note}" for note in report["notes"]]
    return lines


def unmet_in(output: str) -> list[Unmet]:
    """The requirements a setup run reported it could not meet."""
    return unmet_from_output(output)


__all__ = ["Recipe", "describe", "environment_report", "setup_script", "unmet_in"]
