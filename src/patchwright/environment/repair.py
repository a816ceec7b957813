"""The model's setup phase: a bounded loop, before the task, that gets the test suite running.

When setup fails or the tests cannot start, an engineer reads the CI file and the README,
tries the install, reads the error and fixes it; so does the model here, with one tool that
runs a command in the setup window (the network as setup has it) and its own step and cost
budget. It never sees the task: it may not start on it. The commands that worked, in order,
become the run's setup recipe, replayed for verification and offered to the user to commit.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from patchwright.loop import AgentLoop, Limits, LoopState
from patchwright.model import ModelClient, ModelInfo
from patchwright.outputs import TrajectoryWriter
from patchwright.sandbox.base import Sandbox
from patchwright.status import RunStatus
from patchwright.tools import Toolset
from patchwright.tools.base import CommandTime, ToolError, ToolResult
from patchwright.tools.bash import describe

TOOL_NAME = "setup_command"
MAX_RECIPE = 50  # commands kept in a recipe; a longer one is not a setup line anyone would commit

SYSTEM_PROMPT = """\
You prepare a software project's environment so that its test suite can run. You do not fix \
bugs and you do not change the project's source code or tests: you install what the project \
itself asks for (dependencies, test runners, tools) and nothing else.

Work as an engineer would: read how the project installs itself (its CI workflow in \
.github/workflows or .gitlab-ci.yml, the README, Makefile, lockfiles and manifests), try the \
install, read the first error, fix that, and try again. Prefer the project's own commands and \
lockfiles to guesses.

The `setup_command` tool runs one command with `bash -c` in {workdir}, as an unprivileged user \
(no root, no sudo), with network access to package registries. Only files persist between \
commands, not `cd` or `export`, so chain them: `cd backend && pip install -r requirements.txt`. \
Install for this user: `pip install --user ...` or a virtual environment inside the workspace, \
`npm ci` in the project. The test command is:

    {test_command}

When it runs (the tests execute, whether they pass or fail), end your turn with a short summary \
of what you installed. If it cannot run here, end your turn saying exactly what is missing \
(a runtime version, a system library, a service) and where the project asks for it."""


@dataclass(frozen=True)
class Attempted:
    """One command of the repair and how it ended."""

    command: str
    exit_code: int | None
    timed_out: bool = False


@dataclass
class SetupTool:
    """Runs a command in the sandbox's setup window and keeps the log the recipe is cut from."""

    sandbox: Sandbox
    time: CommandTime
    log: list[Attempted] = field(default_factory=list)
    name: str = TOOL_NAME

    def definition(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": "Run one shell command (bash -c) in the repository, with the network on, "
            "to install what the test suite needs. cd and export do not persist between calls.",
            "input_schema": {
                "type": "object",
                "properties": {"command": {"type": "string", "description": "The command to run."}},
                "required": ["command"],
            },
        }

    def run(self, tool_input: dict[str, Any]) -> ToolResult:
        command = tool_input.get("command")
        if not isinstance(command, str) or not command.strip():
            raise ToolError("`command` is required")
        if "\0" in command:
            raise ToolError("the command contains a NUL byte, which a shell command cannot hold")
        timeout = self.time.allowed()
        result = self.sandbox.setup_run(command, timeout)
        self.log.append(Attempted(command, result.exit_code, result.timed_out))
        return describe(result, timeout, self.time.limit)


@dataclass(frozen=True)
class RepairOutcome:
    """What the repair did: its commands, its own steps and cost, how its loop ended."""

    attempted: tuple[Attempted, ...]
    steps: int
    cost_usd: float | None
    status: str
    error: str | None = None  # the loop failed (the API, the sandbox): the run goes on without it

    def as_dict(self) -> dict[str, Any]:
        return {
            "steps": self.steps,
            "cost_usd": self.cost_usd,
            "status": self.status,
            "commands": len(self.attempted),
            **({"error": self.error} if self.error else {}),
        }


# Commands that look and read: never part of a recipe.
READ_ONLY = frozenset(
    {
        "cat", "ls", "head", "tail", "grep", "rg", "find", "pwd", "echo", "printf", "which", "type",
        "command", "env", "printenv", "wc", "file", "stat", "tree", "less", "more", "id", "whoami",
        "uname", "true", "test", "[", "sort", "uniq", "du", "df", "realpath", "readlink", "diff",
    }
)  # fmt: skip
_VERSION_ONLY = re.compile(r"^\S+\s+(?:-V|--version|-v|version)$")
_WRITES = re.compile(r">|\btee\b|\bsed\s+-i|\bmv\b|\bcp\b|\brm\b|\bmkdir\b|\bln\b|\btouch\b|\bchmod\b")
_SEGMENTS = re.compile(r"&&|\|\||;|\|")
_READ_ONLY_GIT = re.compile(r"^git\s+(?:status|log|diff|show|ls-files|branch|remote)\b")


def changes_something(command: str) -> bool:
    """False for a command made only of reads (cat, ls, grep, `x --version`, git log ...)."""
    if _WRITES.search(command):
        return True
    for segment in _SEGMENTS.split(command):
        part = segment.strip()
        if not part or _VERSION_ONLY.match(part) or _READ_ONLY_GIT.match(part):
            continue
        try:
            words = shlex.split(part)
        except ValueError:
            return True
        if words and words[0] not in READ_ONLY and words[0] != "cd":
            return True
    return False


def recipe_of(attempted: list[Attempted] | tuple[Attempted, ...], test_command: str) -> list[str]:
    """The commands that worked (exit 0), in order, that changed the environment; the test
    command itself and repeats of the command just before are left out."""
    recipe: list[str] = []
    for step in attempted:
        command = step.command.strip()
        if step.exit_code != 0 or step.timed_out or not changes_something(command):
            continue
        if test_command.strip() in command or (recipe and recipe[-1] == command):
            continue
        recipe.append(command)
    return recipe[:MAX_RECIPE]


@dataclass(frozen=True)
class RepairBudget:
    steps: int
    max_cost: float
    command_timeout: float  # one command's limit (an install may need the setup's)
    timeout: float | None = None  # wall clock for the whole repair (the run's own bounds it)


Repairer = Callable[[Sandbox, str, str], RepairOutcome]  # (sandbox, test command, what went wrong)


def model_repairer(
    model: ModelClient,
    info: ModelInfo,
    budget: RepairBudget,
    trajectory: TrajectoryWriter,
    on_event: Callable[[str, dict[str, Any]], None],
) -> Repairer:
    """A Repairer driven by the run's model, in a loop of its own recorded in `trajectory`."""

    def repair(sandbox: Sandbox, test_command: str, problem: str) -> RepairOutcome:
        tool = SetupTool(sandbox, CommandTime(budget.command_timeout))
        system = [
            {
                "type": "text",
                "text": SYSTEM_PROMPT.format(workdir=sandbox.workdir, test_command=test_command),
                "cache_control": {"type": "ephemeral"},
            }
        ]
        state = LoopState(messages=[{"role": "user", "content": [{"type": "text", "text": problem}]}])
        trajectory.write("message", role="user", content=state.messages[0]["content"])
        loop = AgentLoop(
            model=model,
            info=info,
            tools=Toolset({tool.name: tool}, tool.time),
            system=system,
            limits=Limits(budget.steps, budget.max_cost, budget.timeout),
            trajectory=trajectory,
            on_event=on_event,
        )
        error = None
        try:
            status = str(loop.run(state))
        except Exception as err:  # the API or the sandbox failed: the run goes on, the reason is kept
            status, error = str(RunStatus.ERROR), f"{type(err).__name__}: {err}"
            trajectory.write("error", stage="repair", error=error)
        return RepairOutcome(tuple(tool.log), state.steps, state.usage.cost(info), status, error)

    return repair


def problem_text(setup: str | None, reason: str, excerpt: list[str], output_tail: str) -> str:
    """The repair's first user turn: what was tried, and what went wrong (the repository's own
    output, quoted as data)."""
    tried = f"The setup command `{setup}` was run first.\n" if setup else "No setup command was given.\n"
    lines = "\n".join(excerpt)
    return (
        f"{tried}The test suite cannot run yet: {reason}\n\n"
        f"First error lines:\n```\n{lines}\n```\n\nEnd of the output:\n```\n{output_tail}\n```\n\n"
        "Get the test command running. Do not change the project's code or tests."
    )
