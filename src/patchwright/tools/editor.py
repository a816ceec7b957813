"""Anthropic's text editor tool (`str_replace_based_edit_tool`), carried out in the sandbox.

Each command is one request to the sandbox's file helper (sandbox/filehelper.py), which
resolves the path, confines it to the workspace and reads or edits in the same step.
Files are handled as text with their bytes kept: tabs are never expanded, CRLF
files stay CRLF (the model's `\n` is matched and written as `\r\n`), and bytes
that are not UTF-8 survive a round trip.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from patchwright.sandbox.base import Sandbox
from patchwright.tools.base import ToolError, ToolResult, shown

EDITOR_NAME = "str_replace_based_edit_tool"
LEGACY_EDITOR_NAME = "str_replace_editor"
DEFAULT_MAX_CHARACTERS = 30_000
SNIPPET_LINES = 4


def editor_definition(model: str, max_characters: int = DEFAULT_MAX_CHARACTERS) -> dict[str, Any]:
    """The server-defined tool type the model was trained on: older Claude 3.7 differs."""
    if "claude-3-7" in model or "claude-3-5" in model:
        return {"type": "text_editor_20250124", "name": LEGACY_EDITOR_NAME}
    return {"type": "text_editor_20250728", "name": EDITOR_NAME, "max_characters": max_characters}


def _numbered(text: str, first_line: int) -> str:
    lines = shown(text).split("\n")
    return "\n".join(f"{number:6}\t{line.rstrip(chr(13))}" for number, line in enumerate(lines, first_line))


@dataclass
class EditorTool:
    """view, create, str_replace, insert (and undo_edit for the older tool type)."""

    sandbox: Sandbox
    model: str
    max_characters: int = DEFAULT_MAX_CHARACTERS
    history: dict[str, list[str | None]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return str(self.definition()["name"])

    def definition(self) -> dict[str, Any]:
        return editor_definition(self.model, self.max_characters)

    def run(self, tool_input: dict[str, Any]) -> ToolResult:
        command = tool_input.get("command")
        handlers = {
            "view": self._view,
            "create": self._create,
            "str_replace": self._str_replace,
            "insert": self._insert,
            "undo_edit": self._undo,
        }
        if command not in handlers:
            raise ToolError(f"unknown command {command!r}; use one of: {', '.join(handlers)}")
        return handlers[command](tool_input)

    def _ask(self, op: str, tool_input: dict[str, Any], **args: Any) -> dict[str, Any]:
        """One round trip to the file helper; its refusal becomes the tool's error."""
        reply = self.sandbox.file_op({"op": op, "path": tool_input.get("path", ""), **args})
        if not reply.get("ok"):
            raise ToolError(str(reply.get("error", "the file operation failed")))
        return reply

    def _remember(self, path: str, previous: str | None) -> None:
        """For undo_edit: the content before an edit (None: the edit created the file)."""
        self.history.setdefault(path, []).append(previous)

    def _snippet(self, text: str, around_line: int, lines_changed: int) -> str:
        lines = text.split("\n")
        start = max(0, around_line - SNIPPET_LINES)
        end = min(len(lines), around_line + lines_changed + SNIPPET_LINES)
        return _numbered("\n".join(lines[start:end]), start + 1)

    # -- commands --------------------------------------------------------------------------

    def _view(self, tool_input: dict[str, Any]) -> ToolResult:
        view_range = tool_input.get("view_range")
        if view_range is not None and (
            not isinstance(view_range, list)
            or len(view_range) != 2
            or not all(isinstance(n, int) for n in view_range)
        ):
            raise ToolError("view_range must be a list of two integers, e.g. [10, 40] or [10, -1]")
        reply = self._ask("view", tool_input)
        path = reply["path"]
        if reply["kind"] == "directory":
            if view_range:
                raise ToolError("view_range applies to files, not directories")
            listing = "".join(f"{shown(entry)}\n" for entry in reply["listing"])
            return ToolResult(
                f"Files and directories up to 2 levels deep in {path}, hidden items excluded:\n{path}\n{listing}"
            )
        lines = reply["text"].split("\n")
        first = 1
        if view_range is not None:
            first, last = view_range
            if not 1 <= first <= max(len(lines), 1):
                raise ToolError(f"view_range start {first} is outside the file's lines 1..{len(lines)}")
            if last != -1 and not first <= last:
                raise ToolError(f"view_range end {last} must be -1 or at least the start {first}")
            lines = lines[first - 1 :] if last == -1 else lines[first - 1 : last]
        body = _numbered("\n".join(lines), first)
        limit = int(tool_input.get("max_characters") or self.max_characters)
        if len(body) > limit:
            body = body[:limit] + f"\n[... cut at {limit} characters; use view_range to see the rest ...]"
        return ToolResult(f"Here's the result of running `cat -n` on {path}:\n{body}\n")

    def _create(self, tool_input: dict[str, Any]) -> ToolResult:
        file_text = tool_input.get("file_text")
        if not isinstance(file_text, str):
            raise ToolError("`file_text` is required for create")
        reply = self._ask("write", tool_input, text=file_text)
        self._remember(reply["path"], reply["previous"])
        verb = "overwritten" if reply["previous"] is not None else "created"
        return ToolResult(f"File {verb} successfully at: {reply['path']}")

    def _str_replace(self, tool_input: dict[str, Any]) -> ToolResult:
        old = tool_input.get("old_str")
        new = tool_input.get("new_str", "")
        if not isinstance(old, str) or old == "":
            raise ToolError("`old_str` is required for str_replace and must not be empty")
        if not isinstance(new, str):
            raise ToolError("`new_str` must be a string")
        reply = self._ask("str_replace", tool_input, old=old, new=new)
        return self._edited(reply)

    def _insert(self, tool_input: dict[str, Any]) -> ToolResult:
        line = tool_input.get("insert_line")
        new = tool_input.get("insert_text", tool_input.get("new_str"))
        if not isinstance(line, int) or isinstance(line, bool):
            raise ToolError("`insert_line` (an integer) is required for insert")
        if not isinstance(new, str):
            raise ToolError("`insert_text` is required for insert")
        return self._edited(self._ask("insert", tool_input, line=line, text=new))

    def _edited(self, reply: dict[str, Any]) -> ToolResult:
        self._remember(reply["path"], reply["previous"])
        snippet = self._snippet(reply["text"], reply["line"], reply["changed"])
        return ToolResult(
            f"The file {reply['path']} has been edited. Here's a snippet of the edited file:\n{snippet}\n"
        )

    def _undo(self, tool_input: dict[str, Any]) -> ToolResult:
        path = self._ask("resolve", tool_input)["path"]
        stack = self.history.get(path)
        if not stack:
            raise ToolError(f"no edit to undo for {path}")
        previous = stack.pop()
        if previous is None:  # the edit created the file
            self._ask("remove", tool_input)
            return ToolResult(f"Last edit to {path} undone: the file it created was removed.")
        self._ask("write", tool_input, text=previous)
        return ToolResult(f"Last edit to {path} undone successfully.")
