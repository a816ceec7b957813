"""Anthropic's text editor tool (`str_replace_based_edit_tool`), carried out in the sandbox.

Files are handled as text with their bytes kept: tabs are never expanded, CRLF
files stay CRLF (the model's `\n` is matched and written as `\r\n`), and bytes
that are not UTF-8 survive a round trip.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any

from patchwright.sandbox.base import Sandbox
from patchwright.tools.base import ToolError, ToolResult
from patchwright.tools.paths import resolve_path

EDITOR_NAME = "str_replace_based_edit_tool"
LEGACY_EDITOR_NAME = "str_replace_editor"
DEFAULT_MAX_CHARACTERS = 30_000
MAX_FILE_BYTES = 10 * 1024 * 1024
SNIPPET_LINES = 4


def editor_definition(model: str, max_characters: int = DEFAULT_MAX_CHARACTERS) -> dict[str, Any]:
    """The server-defined tool type the model was trained on: older Claude 3.7 differs."""
    if "claude-3-7" in model or "claude-3-5" in model:
        return {"type": "text_editor_20250124", "name": LEGACY_EDITOR_NAME}
    return {"type": "text_editor_20250728", "name": EDITOR_NAME, "max_characters": max_characters}


def _decode(data: bytes) -> str:
    return data.decode("utf-8", "surrogateescape")


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _shown(text: str) -> str:
    """Text for the model: bytes that are not UTF-8 shown as U+FFFD (the API rejects surrogates)."""
    return text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _numbered(text: str, first_line: int) -> str:
    lines = _shown(text).split("\n")
    return "\n".join(f"{number:6}\t{line.rstrip(chr(13))}" for number, line in enumerate(lines, first_line))


@dataclass
class EditorTool:
    """view, create, str_replace, insert (and undo_edit for the older tool type)."""

    sandbox: Sandbox
    model: str
    max_characters: int = DEFAULT_MAX_CHARACTERS
    history: dict[str, list[bytes | None]] = field(default_factory=dict)

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
        path = resolve_path(self.sandbox, str(tool_input.get("path", "")))
        return handlers[command](path, tool_input)

    # -- helpers ---------------------------------------------------------------------------

    def _kind(self, path: str) -> str:
        result = self.sandbox.execute(["stat", "-c", "%F %s", "--", path], timeout=15)
        if result.exit_code != 0:
            return "missing"
        kind = result.output.strip()
        if kind.startswith("directory"):
            return "directory"
        if kind.startswith("regular"):
            if int(kind.rsplit(" ", 1)[-1]) > MAX_FILE_BYTES:
                raise ToolError(
                    f"{path} is larger than {MAX_FILE_BYTES // (1024 * 1024)} MB; use bash (head, sed -n) to read parts of it"
                )
            return "file"
        return "other"

    def _read_text(self, path: str) -> str:
        kind = self._kind(path)
        if kind == "missing":
            raise ToolError(f"{path} does not exist")
        if kind == "directory":
            raise ToolError(f"{path} is a directory; only `view` works on directories")
        if kind != "file":
            raise ToolError(f"{path} is not a regular file")
        data = self.sandbox.read_file(path)
        if b"\0" in data[:8192]:
            raise ToolError(f"{path} looks binary; the editor works on text files")
        return _decode(data)

    def _write_text(self, path: str, text: str, remember: bytes | None, record: bool = True) -> None:
        """Write a file; with `record`, remember `remember` (None: the file did not exist) for undo."""
        if record:
            self.history.setdefault(path, []).append(remember)
        try:
            self.sandbox.write_file(path, _encode(text))
        except OSError as err:
            raise ToolError(f"cannot write {path}: {err}") from None

    @staticmethod
    def _match_line_endings(text: str, fragment: str) -> str:
        if "\r\n" in text and "\r\n" not in fragment:
            return fragment.replace("\n", "\r\n")
        return fragment

    def _snippet(self, text: str, around_line: int, lines_changed: int) -> str:
        lines = text.split("\n")
        start = max(0, around_line - SNIPPET_LINES)
        end = min(len(lines), around_line + lines_changed + SNIPPET_LINES)
        return _numbered("\n".join(lines[start:end]), start + 1)

    # -- commands --------------------------------------------------------------------------

    def _view(self, path: str, tool_input: dict[str, Any]) -> ToolResult:
        kind = self._kind(path)
        view_range = tool_input.get("view_range")
        if kind == "directory":
            if view_range:
                raise ToolError("view_range applies to files, not directories")
            listing = self.sandbox.execute(
                [
                    "bash",
                    "-c",
                    f"find {shlex.quote(path)} -mindepth 1 -maxdepth 2 -name '.*' -prune -o -print | sort | head -n 2000",
                ],
                timeout=30,
            )
            return ToolResult(
                f"Files and directories up to 2 levels deep in {path}, hidden items excluded:\n{path}\n{listing.output}"
            )
        text = self._read_text(path)
        lines = text.split("\n")
        first = 1
        if view_range is not None:
            if (
                not isinstance(view_range, list)
                or len(view_range) != 2
                or not all(isinstance(n, int) for n in view_range)
            ):
                raise ToolError("view_range must be a list of two integers, e.g. [10, 40] or [10, -1]")
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

    def _create(self, path: str, tool_input: dict[str, Any]) -> ToolResult:
        file_text = tool_input.get("file_text")
        if not isinstance(file_text, str):
            raise ToolError("`file_text` is required for create")
        kind = self._kind(path)
        if kind == "directory":
            raise ToolError(f"{path} is a directory")
        previous = self.sandbox.read_file(path) if kind == "file" else None
        parent = path.rsplit("/", 1)[0] or "/"
        self.sandbox.execute(["mkdir", "-p", "--", parent], timeout=15)
        self._write_text(path, file_text, previous)
        verb = "overwritten" if previous is not None else "created"
        return ToolResult(f"File {verb} successfully at: {path}")

    def _str_replace(self, path: str, tool_input: dict[str, Any]) -> ToolResult:
        old = tool_input.get("old_str")
        new = tool_input.get("new_str", "")
        if not isinstance(old, str) or old == "":
            raise ToolError("`old_str` is required for str_replace and must not be empty")
        if not isinstance(new, str):
            raise ToolError("`new_str` must be a string")
        text = self._read_text(path)
        old_m, new_m = self._match_line_endings(text, old), self._match_line_endings(text, new)
        count = text.count(old_m)
        if count == 0:
            raise ToolError(
                f"No replacement was performed: old_str did not appear verbatim in {path}. "
                "View the file and copy the exact text, whitespace included."
            )
        if count > 1:
            starts, at = [], text.find(old_m)
            while at >= 0:
                starts.append(text.count("\n", 0, at) + 1)
                at = text.find(old_m, at + 1)
            raise ToolError(
                f"No replacement was performed: old_str occurs {count} times in {path} (lines {starts}). "
                "Include more surrounding lines to make it unique."
            )
        at = text.find(old_m)
        updated = text[:at] + new_m + text[at + len(old_m) :]
        self._write_text(path, updated, _encode(text))
        line = text.count("\n", 0, at)
        snippet = self._snippet(updated, line, new_m.count("\n"))
        return ToolResult(
            f"The file {path} has been edited. Here's a snippet of the edited file:\n{snippet}\n"
        )

    def _insert(self, path: str, tool_input: dict[str, Any]) -> ToolResult:
        line = tool_input.get("insert_line")
        new = tool_input.get("insert_text", tool_input.get("new_str"))
        if not isinstance(line, int) or isinstance(line, bool):
            raise ToolError("`insert_line` (an integer) is required for insert")
        if not isinstance(new, str):
            raise ToolError("`insert_text` is required for insert")
        text = self._read_text(path)
        lines = text.split("\n") if text else []
        if text.endswith("\n"):
            lines = lines[:-1]
        if not 0 <= line <= len(lines):
            raise ToolError(
                f"insert_line {line} is outside 0..{len(lines)} (the file has {len(lines)} lines)"
            )
        eol = "\r\n" if "\r\n" in text else "\n"
        fragment = self._match_line_endings(text, new).rstrip("\r\n").split(eol) if new else [""]
        body = [ln.rstrip("\r") if eol == "\r\n" else ln for ln in lines]
        merged = body[:line] + fragment + body[line:]
        updated = eol.join(merged) + (eol if text.endswith("\n") or not text else "")
        self._write_text(path, updated, _encode(text))
        snippet = self._snippet(updated, line, len(fragment))
        return ToolResult(
            f"The file {path} has been edited. Here's a snippet of the edited file:\n{snippet}\n"
        )

    def _undo(self, path: str, _: dict[str, Any]) -> ToolResult:
        stack = self.history.get(path)
        if not stack:
            raise ToolError(f"no edit to undo for {path}")
        previous = stack.pop()
        if previous is None:  # the edit created the file
            self.sandbox.execute(["rm", "-f", "--", path], timeout=15)
            return ToolResult(f"Last edit to {path} undone: the file it created was removed.")
        self._write_text(path, _decode(previous), None, record=False)
        return ToolResult(f"Last edit to {path} undone successfully.")
