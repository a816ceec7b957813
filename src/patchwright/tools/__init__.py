"""The tools the model can call, all carried out inside the sandbox."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from patchwright.sandbox.base import Sandbox
from patchwright.tools.base import CommandTime, Tool, ToolError, ToolResult
from patchwright.tools.bash import BashTool
from patchwright.tools.editor import LEGACY_EDITOR_NAME, EditorTool
from patchwright.tools.run_tests import RunTestsTool
from patchwright.tools.search import SearchTool
from patchwright.tools.service import ServiceTool

ALL_TOOLS = ("bash", "str_replace_based_edit_tool", "search_code", "run_tests", "service")

__all__ = ["ALL_TOOLS", "CommandTime", "Tool", "ToolError", "ToolResult", "Toolset", "build_toolset"]


@dataclass
class Toolset:
    """The tools of one run, by the name the model calls them."""

    tools: dict[str, Tool]
    command_time: CommandTime = field(default_factory=lambda: CommandTime(120.0))  # shared by the tools

    def definitions(self) -> list[dict[str, Any]]:
        return [tool.definition() for tool in self.tools.values()]

    def call(self, name: str, tool_input: object) -> ToolResult:
        """Run one call; every failure comes back as an is_error result, never an exception."""
        tool = self.tools.get(name)
        if tool is None:
            return ToolResult(f"unknown tool {name!r}; available: {', '.join(self.tools)}", is_error=True)
        if not isinstance(tool_input, dict):
            return ToolResult(
                f"tool input must be a JSON object, got {type(tool_input).__name__}", is_error=True
            )
        try:
            return tool.run(tool_input)
        except ToolError as err:
            return ToolResult(str(err), is_error=True)
        except (OSError, ValueError) as err:  # a file that vanished or cannot be read, bad input values
            return ToolResult(f"{name} failed: {err}", is_error=True)


def build_toolset(
    sandbox: Sandbox,
    model: str,
    command_timeout: float,
    allowed: tuple[str, ...] | None = None,
    test_command: str | None = None,
) -> Toolset:
    """The run's tools; `allowed` (our names, from an agent file's `tools:`) restricts them."""
    wanted = set(ALL_TOOLS if allowed is None else allowed)
    command_time = CommandTime(command_timeout)
    tools: list[Tool] = []
    if "bash" in wanted:
        tools.append(BashTool(sandbox, command_time))
    if "str_replace_based_edit_tool" in wanted or LEGACY_EDITOR_NAME in wanted:
        tools.append(EditorTool(sandbox, model))
    if "search_code" in wanted:
        tools.append(SearchTool(sandbox))
    if "run_tests" in wanted and test_command:
        tools.append(RunTestsTool(sandbox, test_command, command_time))
    services = sandbox.services
    if "service" in wanted and services is not None and services.specs:  # the run's databases
        tools.append(ServiceTool(services))
    return Toolset({tool.name: tool for tool in tools}, command_time)
