"""What every tool shares: its result type and the error it raises for bad input."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True)
class ToolResult:
    """The text the model gets back; `is_error` marks a failed call, which never ends the loop."""

    content: str
    is_error: bool = False


@dataclass
class CommandTime:
    """How long one command may run: its own limit, cut short when the run's wall clock
    (`--timeout`) ends sooner, so no command carries a run past its deadline."""

    limit: float
    deadline: float | None = None  # time.monotonic() at which the run's time is up

    def allowed(self) -> float:
        if self.deadline is None:
            return self.limit
        return max(1.0, min(self.limit, self.deadline - time.monotonic()))


def shown(text: str) -> str:
    """Text for the model: bytes that are not UTF-8 shown as U+FFFD (the API rejects lone surrogates)."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


class ToolError(Exception):
    """A tool call that cannot be carried out; becomes an is_error result with this message."""


class Tool(Protocol):
    @property
    def name(self) -> str: ...

    def definition(self) -> dict[str, Any]:
        """The entry for the Messages API `tools` list."""
        ...

    def run(self, tool_input: dict[str, Any]) -> ToolResult: ...
