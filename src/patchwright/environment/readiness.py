"""`agent setup`: make the project's tests runnable in a sandbox, without a model, and say whether
they ran. "Ran" means the runner collected and ran tests, passing or failing; a command that is
not found, an import or collection error, or no tests collected is not "ran"."""

from __future__ import annotations

import re
import shlex
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from patchwright.config import Settings
from patchwright.environment.detect import Recipe, detect, setup_script
from patchwright.environment.probe import probe_result
from patchwright.environment.report import environment_report
from patchwright.environment.toolchains import Unmet, unmet_from_output
from patchwright.errors import PatchwrightError
from patchwright.sandbox.base import CommandResult, SetupFailed
from patchwright.services.plan import ServicePlan, plan_services
from patchwright.testresults import PYTEST_REPORT_ENV, RunResults, parse_output
from patchwright.workspace import Workspace

OUTPUT_SHOWN = 4000


@dataclass
class Readiness:
    """What `agent setup` found and did."""

    recipe: Recipe
    report: dict[str, Any]  # summary.json's `environment` shape (report.py)
    services: ServicePlan
    setup: CommandResult | None = None
    tests: CommandResult | None = None
    results: RunResults = field(default_factory=RunResults)
    unmet: list[Unmet] = field(default_factory=list)
    reason: str | None = None  # why the tests did not run; None when they did

    @property
    def runnable(self) -> bool:
        return self.tests is not None and self.reason is None

    @property
    def failed_output(self) -> CommandResult | None:
        """The command whose output says why the tests did not run (setup's or the tests')."""
        if self.runnable:
            return None
        if self.setup is not None and self.setup.exit_code != 0:
            return self.setup
        return self.tests


def why_not_run(result: CommandResult, limit: float | None = None) -> str | None:
    """None when the output shows tests that ran (passing or failing), else why not: the same
    reading `agent fix` makes before the task (probe.py), so both commands agree."""
    probe = probe_result(result, limit)
    return None if probe.runnable else probe.reason


def prepare_environment(
    workspace: Workspace, settings: Settings, progress: Callable[[str], None], factory: Any = None
) -> Readiness:
    """Detect the recipe, run setup in a fresh sandbox (network on), run the tests once offline."""
    services = plan_services(settings.services, workspace.root)
    recipe = detect(workspace.root, "", [spec.kind for spec in services.specs])
    test_cmd = settings.test_cmd or recipe.test_command
    setup = settings.setup or (setup_script(recipe) if settings.detect_setup else None)
    report = environment_report(recipe, setup, test_cmd, setup is not None and settings.setup is None)
    readiness = Readiness(recipe, report, services)
    if test_cmd is None:
        readiness.reason = "no test command found: pass --test-cmd"
        return readiness
    if factory is None:
        from patchwright.sandbox.factory import open_factory

        factory = open_factory(
            replace(settings, setup=setup), progress, workspace.root, tuple(services.specs)
        )
    sandbox = factory.create(f"setup-{uuid.uuid4().hex[:8]}", workspace, progress)
    try:
        try:
            started = sandbox.start()
            readiness.setup = started.setup
        except SetupFailed as err:
            readiness.setup = err.result
            readiness.unmet = unmet_from_output(err.result.output)
            readiness.reason = readiness.unmet[0].message() if readiness.unmet else f"setup failed: {err}"
            return readiness
        progress(f"running the tests once: {test_cmd}")
        line = f"cd {shlex.quote(sandbox.workdir)} && ( export {PYTEST_REPORT_ENV}; {test_cmd} )"
        limit = settings.command_timeout * 5
        readiness.tests = sandbox.run(line, timeout=limit)
        readiness.results = parse_output(readiness.tests.output)
        readiness.reason = why_not_run(readiness.tests, limit)
    except PatchwrightError as err:
        readiness.reason = str(err)
    finally:
        sandbox.stop()
    return readiness


def first_error(output: str, limit: int = OUTPUT_SHOWN) -> str:
    """The useful part of a failed command's output: around the first line that states an error
    (pytest's `E   ` lines first, then an `...Error:` line, then any line saying error), else the tail."""
    lines = output.splitlines()
    for pattern in (
        r"^E\s{2,}\S",
        r"\b\w*(Error|Exception):",
        r"\b(error|ERROR|Error|not found|No matching distribution)\b",
    ):
        for index, line in enumerate(lines):
            if re.search(pattern, line):
                return "\n".join(lines[max(0, index - 3) : index + 12])[:limit]
    return "\n".join(lines[-15:])[-limit:]


def report_lines(readiness: Readiness) -> list[str]:
    """What `agent setup` prints: the recipe, the services, the test command, what happened."""
    report = readiness.report
    lines = [f"source: {source}" for source in report["sources"]] or ["source: nothing found"]
    lines.append(f"workdir: {report['workdir']}")
    for req in report["requirements"]:
        lines.append(f"needs: {req['tool']} {req['version'] or 'any'} ({req['source']})")
    services = readiness.services.describe() if readiness.services.specs else "none"
    lines.append(f"services: {services}")
    if (missing := readiness.services.unsupported_warning()) is not None:
        lines.append(f"warning: {missing}")
    lines += [f"note: {note}" for note in [*readiness.services.notes, *report["notes"]]]
    lines.append("setup:" + ("\n" + _indent(report["setup"]) if report["setup"] else " none"))
    lines.append(f"test command: {report['test_cmd'] or 'none found'}")
    if readiness.setup is not None:
        status = "ok" if readiness.setup.exit_code == 0 else f"exit {readiness.setup.exit_code}"
        lines.append(f"setup ran: {status} in {readiness.setup.duration:.0f}s")
        if readiness.setup.exit_code != 0 and not readiness.unmet:
            lines.append("setup output (first error):\n" + _indent(first_error(readiness.setup.output)))
    if readiness.tests is not None:
        counts = readiness.results.as_dict()
        ran = "ran" if readiness.runnable else "did not run"
        lines.append(
            f"tests {ran}: exit {readiness.tests.exit_code}, {counts['passed']} passed, "
            f"{counts['failed']} failed, {counts['skipped']} skipped"
        )
        if not readiness.runnable:
            lines.append("test output (first error):\n" + _indent(first_error(readiness.tests.output)))
    lines.append(
        "result: the tests ran"
        if readiness.runnable
        else f"result: the tests could not run: {readiness.reason}"
    )
    return lines


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.rstrip().splitlines())
