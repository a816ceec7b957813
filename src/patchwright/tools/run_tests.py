"""`run_tests`: the repository's test command, known to patchwright, run in the persistent shell."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from typing import Any

from patchwright.sandbox.base import Sandbox
from patchwright.tools.base import CommandTime, ToolResult
from patchwright.tools.bash import describe


@dataclass
class RunTestsTool:
    sandbox: Sandbox
    test_command: str
    time: CommandTime
    name: str = "run_tests"

    def definition(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": (
                f"Run the project's test suite (`{self.test_command}`) from the repository root and return "
                "its output and exit code. Optional extra arguments narrow the run (e.g. a test file)."
            ),
            "input_schema": {
                "type": "object",
                "properties": {
                    "args": {"type": "string", "description": "Extra arguments appended to the command."}
                },
            },
        }

    def run(self, tool_input: dict[str, Any]) -> ToolResult:
        extra = tool_input.get("args") or ""
        command = f"cd {shlex.quote(self.sandbox.workdir)} && {self.test_command} {extra}".rstrip()
        timeout = self.time.allowed()
        return describe(self.sandbox.run(f"( {command} )", timeout), timeout, self.time.limit)
