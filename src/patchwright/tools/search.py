"""`search_code`: ripgrep over the workspace, cheaper for the model than a bash round of grep."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from patchwright.sandbox.base import Sandbox
from patchwright.tools.base import ToolError, ToolResult
from patchwright.tools.paths import resolve_path

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
        path = resolve_path(self.sandbox, str(tool_input.get("path") or "."))
        argv = [
            "rg",
            "--line-number",
            "--no-heading",
            "--color=never",
            "--max-columns=300",
            f"--max-count={MAX_MATCHES}",
        ]
        if tool_input.get("ignore_case"):
            argv.append("--ignore-case")
        if isinstance(tool_input.get("glob"), str):
            argv += ["--glob", tool_input["glob"]]
        argv += ["--regexp", pattern, "--", path]
        result = self.sandbox.execute(argv, timeout=60)
        if result.exit_code == 1:
            return ToolResult("No matches.")
        if result.exit_code != 0:
            raise ToolError(f"search failed: {result.output.strip()[:500]}")
        lines = result.output.splitlines()
        if len(lines) > MAX_MATCHES:
            return ToolResult(
                "\n".join(lines[:MAX_MATCHES])
                + f"\n[... {len(lines) - MAX_MATCHES} more matches; narrow the search]"
            )
        return ToolResult(result.output)
