"""Claude Code subagent front matter beyond name/description/tools/model: `disallowedTools`,
`maxTurns` and `effort`, parsed into what patchwright does with them.

- disallowedTools: tool names (a comma-separated string or a list, like `tools`) taken away
  from the agent. Claude Code's names map onto patchwright's tools (persona.TOOL_NAME_MAP);
  one patchwright tool can serve several Claude Code tools (the editor serves Read, Edit and
  Write), and it is taken away when any of them is disallowed: the safe reading.
- maxTurns: the agent's turn limit; the run's step limit is the smaller of it and --max-steps.
- effort: the run's effort when neither --effort nor config sets one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from patchwright.errors import AgentFileError
from patchwright.params import EFFORTS


def _fail(path: Path, message: str) -> AgentFileError:
    return AgentFileError(f"{path}: {message}")


def parse_max_turns(path: Path, data: dict[str, Any]) -> int | None:
    value = data.get("maxTurns")
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _fail(path, f"field 'maxTurns' must be a whole number of at least 1, got {value!r}")
    return value


def parse_effort(path: Path, data: dict[str, Any]) -> str | None:
    value = data.get("effort")
    if value is None:
        return None
    if not isinstance(value, str) or value.strip().lower() not in EFFORTS:
        raise _fail(path, f"field 'effort' must be one of {', '.join(EFFORTS)}, got {value!r}")
    return value.strip().lower()


def without_disallowed(
    path: Path, tools: tuple[str, ...] | None, disallowed: tuple[str, ...] | None, all_tools: tuple[str, ...]
) -> tuple[str, ...] | None:
    """The agent's tools (None = all) less the ones its `disallowedTools` maps to."""
    if not disallowed:
        return tools
    remaining = tuple(t for t in (all_tools if tools is None else tools) if t not in disallowed)
    return remaining
