"""Anthropic's bash tool (`bash_20250124`) on the sandbox's persistent shell."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from patchwright.sandbox.base import CommandResult, Sandbox
from patchwright.tools.base import CommandTime, ToolError, ToolResult


def describe(result: CommandResult, timeout: float, limit: float | None = None) -> ToolResult:
    """Turn a command's result into the text the model reads: output, then how it ended.
    `limit`: the command's own limit, when the run's remaining time cut `timeout` below it."""
    text = result.output
    if result.timed_out:
        why = " (the run's time limit is nearly reached)" if limit is not None and timeout < limit else ""
        note = (
            f"[command timed out after {timeout:g} s{why} and was killed with its child processes; "
            "the shell is still usable. Run long jobs with a shorter scope or in the background.]"
        )
        return ToolResult(f"{text}\n{note}" if text else note, is_error=True)
    if result.exit_code not in (0, None):
        return ToolResult(
            f"{text}\n[exit code: {result.exit_code}]" if text else f"[exit code: {result.exit_code}]"
        )
    return ToolResult(text if text else "(no output)")


@dataclass
class BashTool:
    """Runs commands in one shell whose cwd and exported variables persist; `restart` resets it."""

    sandbox: Sandbox
    time: CommandTime
    name: str = "bash"

    def definition(self) -> dict[str, Any]:
        return {"type": "bash_20250124", "name": self.name}

    def run(self, tool_input: dict[str, Any]) -> ToolResult:
        if tool_input.get("restart"):
            self.sandbox.restart_shell()
            return ToolResult(
                f"The shell has been restarted; the working directory is back to {self.sandbox.workdir}."
            )
        command = tool_input.get("command")
        if not isinstance(command, str) or not command.strip():
            raise ToolError("`command` is required (or `restart: true`)")
        if "\0" in command:
            raise ToolError("the command contains a NUL byte, which a shell command cannot hold")
        timeout = self.time.allowed()
        return describe(self.sandbox.run(command, timeout), timeout, self.time.limit)
