"""The environment phase of a run: between the sandbox's setup and the model's task.

In the setup window (network as setup has it) the test command is tried once. When setup
failed or the tests cannot even start, a bounded repair (repair.py) may fix it; the test
command is tried again, the window is closed (network cut, state saved) and the run learns
whether its tests can run, why not, and the recipe that got them there.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from patchwright.environment.probe import (
    Probe,
    collect_only,
    collected,
    error_excerpt,
    probe_result,
    setup_failed,
)
from patchwright.environment.repair import Repairer, RepairOutcome, problem_text, recipe_of
from patchwright.sandbox.base import CommandResult, Sandbox, StartResult
from patchwright.sanitize import clean_line
from patchwright.selfcheck import cap

OUTPUT_TAIL = 2_000  # characters of the test command's output handed to the repair


@dataclass(frozen=True)
class Environment:
    """summary.json's `environment`: can the tests run, why not, and the setup that got there."""

    tests_runnable: bool
    reason: str
    cause: str
    test_command: str
    recipe: list[str] = field(default_factory=list)
    setup_failed: bool = False  # the run's setup command failed (and no repair replaced it)
    setup_error: list[str] = field(default_factory=list)  # its first error lines, escaped
    repair: RepairOutcome | None = None
    hints: list[str] = field(default_factory=list)
    reused: str | None = None  # started from the state an earlier run kept under this key (reuse.py)

    @staticmethod
    def reloaded(saved: dict[str, Any], key: str) -> Environment:
        """The environment an earlier run saved with its state (the repair's figures were its own)."""
        return Environment(
            tests_runnable=bool(saved.get("tests_runnable")),
            reason=str(saved.get("reason", "")),
            cause=str(saved.get("cause", "")),
            test_command=str(saved.get("test_command", "")),
            recipe=[str(c) for c in saved.get("recipe") or []],
            reused=key,
        )

    @property
    def setup_line(self) -> str | None:
        """The recipe as one `setup` value to commit in .patchwright/config.toml."""
        return " && ".join(self.recipe) if self.recipe else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "tests_runnable": self.tests_runnable,
            "reason": self.reason,
            "cause": self.cause,
            "test_command": self.test_command,
            "recipe": self.recipe,
            "setup_line": self.setup_line,
            "setup_failed": self.setup_failed,
            "setup_error": self.setup_error,
            "repair": self.repair.as_dict() if self.repair is not None else None,
            "hints": self.hints,
            "reused": self.reused,
        }


@dataclass(frozen=True)
class Plan:
    """What the phase is given: the setup start() ran, the test command, the probe's time."""

    setup: str | None
    test_command: str
    probe_timeout: float


Progress = Callable[[str], None]


def probe_tests(sandbox: Sandbox, test_command: str, timeout: float) -> tuple[Probe, CommandResult]:
    """Run the test command once from the repository root, in the model's own shell (what it
    will see), and with no more network than setup already opened; a plain pytest command only
    collects (probe.collect_only: the model runs the suite itself, and verification does)."""
    quick = collect_only(test_command)
    result = sandbox.run(f"cd {shlex.quote(sandbox.workdir)} && ( {quick or test_command} )", timeout)
    probe = probe_result(result, timeout)
    return (collected(probe, result.output) if quick else probe), result


def prepare_environment(
    sandbox: Sandbox,
    started: StartResult,
    plan: Plan,
    repairer: Repairer | None,
    progress: Progress,
) -> Environment:
    """Probe, repair when worth it, probe again, close the setup window. The sandbox must have
    been started with its setup window open (SandboxSpec.setup_repairable)."""
    setup = started.setup
    failed = setup is not None and (setup.timed_out or setup.exit_code != 0)
    base = [plan.setup] if plan.setup and not failed else []
    excerpt: list[str] = []
    if failed:
        assert setup is not None
        probe, output = setup_failed(setup), setup.output
        excerpt = error_excerpt(setup.output)
        progress(f"setup failed: {probe.reason}")
    else:
        how = " (collecting only)" if collect_only(plan.test_command) else ""
        progress(f"checking that the tests can run{how}: {plan.test_command}")
        probe, result = probe_tests(sandbox, plan.test_command, plan.probe_timeout)
        output = result.output
    repair: RepairOutcome | None = None
    if not probe.runnable and probe.repairable and repairer is not None:
        progress(f"the tests cannot run ({probe.reason}); the model tries to repair the setup")
        problem = problem_text(
            plan.setup, probe.reason, excerpt or error_excerpt(output), cap(output, OUTPUT_TAIL)
        )
        repair = repairer(sandbox, plan.test_command, problem)
        probe, result = probe_tests(sandbox, plan.test_command, plan.probe_timeout)
        output = result.output
    recipe = base + (recipe_of(repair.attempted, plan.test_command) if repair is not None else [])
    sandbox.finish_setup(save=bool(recipe))  # for verification, and for the next run (reuse.py)
    if probe.runnable:
        if recipe and repair is not None:
            progress(f"the tests can run (setup recipe: {clean_line(' && '.join(recipe), 200)})")
        elif failed:
            progress("the tests can run without the failed setup (the repair changed nothing)")
        else:  # what was seen: the suite ran, or (collection only) pytest collected it
            progress(f"the tests can run ({probe.reason})")
    return Environment(
        tests_runnable=probe.runnable,
        reason=probe.reason,
        cause=str(probe.cause),
        test_command=plan.test_command,
        recipe=recipe,
        setup_failed=failed and not (repair is not None and probe.runnable),
        setup_error=excerpt,
        repair=repair,
        hints=[] if probe.runnable else hints(plan.test_command),
    )


def hints(test_command: str) -> list[str]:
    """What the user can try when the tests cannot run."""
    return [
        "--setup CMD: the command that installs the project (or `setup = ...` in .patchwright/config.toml)",
        "--image IMAGE: a sandbox image with the toolchain the project needs",
        f"--test-cmd CMD: the command that runs the tests (this run used: {clean_line(test_command, 200)})",
    ]
