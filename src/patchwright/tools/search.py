"""`search_code`: ripgrep over the workspace, cheaper for the model than a bash round of grep."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from patchwright.sandbox.base import Sandbox
from patchwright.tools.base import ToolError, ToolResult, shown

MAX_MATCHES = 200


@dataclass
class SearchTool:
    sandbox: Sandbox
    name: str = "search_code"

    def definition(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": (
                "Search the repository's files with a regular expression (ripgrep syntax). Returns "
                "matching lines as path:line:text, ignoring files git ignores. Use it to find "
                "definitions and usages before viewing files."
            ),
            "input_schema": {
                "type": "object",
                "properties": {
                    "pattern": {"type": "string", "description": "Regular expression to search for."},
                    "path": {
                        "type": "string",
                        "description": "File or directory to search; default the whole repo.",
                    },
                    "glob": {"type": "string", "description": "Only files matching this glob, e.g. '*.py'."},
                    "ignore_case": {"type": "boolean"},
                },
                "required": ["pattern"],
            },
        }

    def run(self, tool_input: dict[str, Any]) -> ToolResult:
        pattern = tool_input.get("pattern")
        if not isinstance(pattern, str) or not pattern:
            raise ToolError("`pattern` is required")
        request: dict[str, Any] = {
            "op": "search",
            "path": str(tool_input.get("path") or "."),
            "pattern": pattern,
            "max_count": MAX_MATCHES,
            "ignore_case": bool(tool_input.get("ignore_case")),
        }
        if isinstance(tool_input.get("glob"), str):
            request["glob"] = tool_input["glob"]
        reply = self.sandbox.file_op(request)
        if not reply.get("ok"):
            raise ToolError(str(reply.get("error")))
        if reply["exit_code"] == 1:
            return ToolResult("No matches.")
        if reply["exit_code"] != 0:
            raise ToolError(f"search failed: {reply['output'].strip()[:500]}")
        lines = reply["output"].splitlines()
        if len(lines) > MAX_MATCHES:
            return ToolResult(
                "\n".join(lines[:MAX_MATCHES])
                + f"\n[... {len(lines) - MAX_MATCHES} more matches; narrow the search]"
            )
        return ToolResult(shown(reply["output"]))
