"""What every tool shares: its result type and the error it raises for bad input."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class ToolResult:
    """The text the model gets back; `is_error` marks a failed call, which never ends the loop."""

    content: str
    is_error: bool = False


class ToolError(Exception):
    """A tool call that cannot be carried out; becomes an is_error result with this message."""


class Tool(Protocol):
    @property
    def name(self) -> str: ...

    def definition(self) -> dict[str, Any]:
        """The entry for the Messages API `tools` list."""
        ...

    def run(self, tool_input: dict[str, Any]) -> ToolResult: ...
