"""Claude Code's tool names mapped onto the tools patchwright offers in its sandbox.

Users drop agent files written for Claude Code into `.claude/agents/`; their `tools:`
name Claude Code's tools (Read, Edit, Grep...), which map onto ours, or onto nothing
(WebFetch, Task...: recorded as ignored, not an error).
"""

from __future__ import annotations

import re

# Tool name as written in an agent file -> our tool, or None for a Claude Code tool
# that patchwright does not offer (recorded in `ignored_tools`, not an error).
TOOL_NAME_MAP: dict[str, str | None] = {
    # our own names
    "bash": "bash",
    "str_replace_based_edit_tool": "str_replace_based_edit_tool",
    "search_code": "search_code",
    "run_tests": "run_tests",
    "service": "service",  # the run's databases (services/)
    # Claude Code tools we can serve
    "Bash": "bash",
    "Read": "str_replace_based_edit_tool",
    "Edit": "str_replace_based_edit_tool",
    "MultiEdit": "str_replace_based_edit_tool",
    "Write": "str_replace_based_edit_tool",
    "NotebookEdit": "str_replace_based_edit_tool",
    "Grep": "search_code",
    "Glob": "search_code",
    "LS": "search_code",
    # Claude Code tools without a counterpart here (no network, no sub-agents, no user)
    "WebFetch": None,
    "WebSearch": None,
    "Task": None,
    "Agent": None,
    "TodoWrite": None,
    "TodoRead": None,
    "NotebookRead": None,
    "BashOutput": None,
    "KillBash": None,
    "KillShell": None,
    "ExitPlanMode": None,
    "SlashCommand": None,
    "Skill": None,
    "AskUserQuestion": None,
    "ListMcpResourcesTool": None,
    "ReadMcpResourceTool": None,
}

# Claude Code names MCP tools `mcp__<server>__<tool>`; there are no MCP servers in the sandbox.
MCP_TOOL_PREFIX = "mcp__"

# `Bash(git diff:*)` style permission specs: the base name decides the tool.
_TOOL_SPEC = re.compile(r"^(?P<base>[A-Za-z_][A-Za-z0-9_]*)\((?P<spec>.*)\)$")


def map_tool_names(names: list[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(our tool names, ignored Claude Code tools) for the names of a `tools` field.

    A `Bash(git diff:*)` permission spec maps by its base name: the sandbox, not the
    spec, is the security boundary, so the restriction is not enforced. ValueError
    names an unknown tool.
    """
    ours: list[str] = []
    ignored: list[str] = []
    for name in names:
        if not name:
            continue
        spec = _TOOL_SPEC.match(name)
        base = spec.group("base") if spec else name
        if base.startswith(MCP_TOOL_PREFIX):
            mapped: str | None = None
        elif base in TOOL_NAME_MAP:
            mapped = TOOL_NAME_MAP[base]
        else:
            known = ", ".join(sorted(TOOL_NAME_MAP))
            raise ValueError(f"field 'tools' names unknown tool {name!r} (known: {known}, mcp__*)")
        if mapped is None:
            if name not in ignored:
                ignored.append(name)
        elif mapped not in ours:
            ours.append(mapped)
    return tuple(ours), tuple(ignored)
