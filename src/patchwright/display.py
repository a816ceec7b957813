"""What the user sees while a run goes: live progress on a terminal, log lines in CI, JSON for scripts.

Progress goes to stderr; stdout carries only machine output (`--format json`
summary, `stream-json` events) or the final text summary, so pipes stay clean.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from typing import IO, TYPE_CHECKING, Any, Protocol

from patchwright.outputs import RunSummary
from patchwright.sanitize import clean_line, clean_lines

if TYPE_CHECKING:  # rich is imported by the terminal display only: CI and --quiet runs skip it
    from rich.console import Console
    from rich.status import Status


class Display(Protocol):
    def status(self, message: str) -> None: ...

    def event(self, kind: str, data: dict[str, Any]) -> None: ...

    def finish(self, summary: RunSummary) -> None: ...

    def close(self) -> None: ...


def clean(text: str) -> str:
    """Model-made text made one safe line: escapes shown, not obeyed (sanitize.py)."""
    return clean_line(text)


def describe_tool(name: str, tool_input: Any) -> str:
    """A short human line for a tool call: the command, or the editor action and path."""
    if not isinstance(tool_input, dict):
        return name
    if name == "bash":
        if tool_input.get("restart"):
            return "bash: restart"
        return "bash: " + " ".join(str(tool_input.get("command", "")).split())[:100]
    if "command" in tool_input and "path" in tool_input:
        return f"{tool_input['command']} {tool_input['path']}"
    if name == "search_code":
        return f"search: {tool_input.get('pattern', '')}"[:100]
    return name


def format_tokens(usage: dict[str, int]) -> str:
    total = sum(usage.values())
    return f"{total / 1000:.1f}k tok" if total >= 1000 else f"{total} tok"


def format_cost(cost: float | None) -> str:
    return "cost unknown" if cost is None else f"${cost:.4f}"


def summary_lines(summary: RunSummary) -> list[str]:
    """The text summary; every field the model or repo could shape is one escaped line, and the
    model's last words are indented under it, so no line of theirs can pass for one of ours."""
    lines = [f"status: {summary.status} (exit {summary.exit_code})"]
    if summary.error:
        lines.append(clean_line(f"error: {summary.error}"))
    if summary.ignored_repo_settings:
        lines.append(f"ignored repo settings: {', '.join(summary.ignored_repo_settings)}")
    if summary.patch:
        names = ", ".join(clean_line(name) for name in summary.files_changed[:8])
        lines.append(
            clean_line(f"patch: {summary.patch} ({len(summary.files_changed)} files: ") + names + ")"
        )
    elif summary.partial_patch:  # past the patch limits: the files that fit (names already escaped)
        left = ", ".join(summary.files_left_out_first[:8])
        lines.append(
            clean_line(
                f"partial patch, not applied: {summary.partial_patch} ({len(summary.files_changed)} files; "
            )
            + f"{summary.files_left_out} left out: {clean_line(left)})"
        )
    elif summary.files_left_out:
        lines.append(f"patch: none ({summary.files_left_out} files changed, past the patch limits)")
    elif summary.status in ("error", "environment"):  # the error says why; not for want of changes
        lines.append("patch: none")
    else:
        lines.append("patch: none (no changes)")
    if summary.late_changes:  # names already escaped
        shown = ", ".join(summary.late_changes[:8]) + (", ..." if len(summary.late_changes) > 8 else "")
        lines.append(
            f"changed after the model's last command (no tool result showed it; --apply refuses them): "
            f"{len(summary.late_changes)}: {clean_line(shown)}"
        )
    if summary.verification:  # the verdict says what the tests showed (verdict.py)
        verdict = summary.verification.get("verdict")
        lines.append(f"verified: {'yes' if summary.verified else 'no'} ({verdict})")
        if verdict != "fixed":
            lines.append(f"  {clean_line(str(summary.verification.get('reason', '')))}")
    elif summary.verified is not None:
        lines.append(f"verified: {'yes' if summary.verified else 'no'}")
    lines += environment_lines(summary.environment)
    if summary.attempts:  # --attempts N: each one's verdict, and which was kept (selection.json)
        kept = [
            f"#{a['attempt']} {a['verdict'] or a['status']}"
            + (" (chosen)" if a["attempt"] == summary.chosen_attempt else "")
            for a in summary.attempts
        ]
        lines.append(clean_line(f"attempts: {', '.join(kept)}; see {summary.selection}"))
    lines.append(
        f"steps: {summary.steps}  tokens: {format_tokens(summary.tokens)}  {format_cost(summary.cost_usd)}  "
        f"time: {summary.duration_s:.0f}s"
    )
    lines.append(f"run dir: {summary.run_dir}")
    if summary.final_message:
        lines += ["", *(f"  {line}" for line in clean_lines(summary.final_message.strip()))]
    return lines


def environment_lines(environment: dict[str, Any] | None) -> list[str]:
    """Whether the tests could run, what to try when not, and a repaired setup to commit."""
    if not environment:
        return []
    lines: list[str] = []
    if not environment.get("tests_runnable"):
        lines.append(clean_line(f"tests: could not run: {environment.get('reason', '')}"))
        lines += [clean_line(f"  {line}") for line in environment.get("setup_error") or []]
        lines += [clean_line(f"  try {hint}") for hint in environment.get("hints") or []]
    if environment.get("reused"):
        lines.append("setup: started from the state an earlier run kept for this tree (no installs)")
    repair = environment.get("repair")
    if repair:
        lines.append(
            f"setup repair: {repair.get('steps', 0)} steps, {format_cost(repair.get('cost_usd'))} "
            "(apart from the run's own cost)"
        )
    setup_line = environment.get("setup_line")
    if repair and setup_line:
        lines.append(clean_line(f"setup recipe: {setup_line}"))
        lines.append(
            clean_line(f"  to keep it, add to .patchwright/config.toml: setup = {toml_string(setup_line)}")
        )
    return lines


def toml_string(text: str) -> str:
    """A TOML basic string (JSON's escapes are TOML's for these characters)."""
    return json.dumps(text, ensure_ascii=False)


class PlainDisplay:
    """Plain log lines on stderr: for CI, pipes, and anything that is not a terminal."""

    def __init__(
        self, stream: IO[str] | None = None, quiet: bool = False, summary_to: IO[str] | None = None
    ) -> None:
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.summary_to = summary_to
        self.started = time.monotonic()

    def _line(self, text: str) -> None:
        if not self.quiet:
            write_line(
                f"[patchwright {time.monotonic() - self.started:6.1f}s] {clean_line(text)}", self.stream
            )

    def status(self, message: str) -> None:
        first, *rest = message.split("\n") or [""]
        self._line(first)
        for line in rest:  # e.g. `git apply --stat`: each line escaped on its own, indented
            self._line(f"  {line}")

    def event(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "step":
            self._line(f"step {data['step']}")
        elif kind == "tool":
            self._line(f"  {describe_tool(data['name'], data.get('input'))}")
        elif kind == "usage":
            self._line(f"  {format_tokens(data['usage'])}, {format_cost(data.get('cost'))}")
        elif kind == "text":
            first = data["text"].strip().splitlines()[:1]
            if first:
                self._line(f"  model: {first[0][:200]}")
        elif kind == "context_edited":  # the API cleared old tool uses or thinking
            what = data.get("cleared_tool_uses", data.get("cleared_thinking_turns", "?"))
            self._line(
                f"  the API cleared {what} old {data.get('type', 'context')} items ({data.get('cleared_input_tokens', '?')} tokens)"
            )
        elif kind == "context_compacted":
            self._line(
                f"  the API compacted the conversation into a {data.get('summary_chars', 0)}-character summary"
            )
        elif kind == "self_check":
            verdict = "pass" if data.get("passed") else "fail; sent back to the model"
            self._line(f"  self-check {data.get('round')}: tests {verdict}")

    def finish(self, summary: RunSummary) -> None:
        out = self.summary_to or self.stream
        if self.quiet and out is self.stream:
            return
        for line in summary_lines(summary):
            write_line(line, out)  # summary_lines escaped what needs it

    def close(self) -> None:
        pass


class RichDisplay(PlainDisplay):
    """A live status line (step, tool, tokens, cost, time) above the scrolling log, on a terminal."""

    def __init__(self, console: Console | None = None, summary_to: IO[str] | None = None) -> None:
        from rich.console import Console

        super().__init__(summary_to=summary_to)
        self.console = console or Console(stderr=True)
        self._status: Status | None = self.console.status("starting")
        self._status.start()
        self.step = 0
        self.tool = ""
        self.tokens = "0 tok"
        self.cost = ""

    def _refresh(self) -> None:
        if self._status is not None:
            elapsed = time.monotonic() - self.started
            line = (
                f"step {self.step} · {self.tool or 'thinking'} · {self.tokens} · {self.cost} · {elapsed:.0f}s"
            )
            from rich.text import Text

            self._status.update(Text(line))  # Text, not markup: tool input must not be parsed

    def status(self, message: str) -> None:
        for line in message.split("\n"):
            self.console.print(clean(line), style="dim", markup=False, highlight=False)
        self.tool = clean(message.split("\n")[0])
        self._refresh()

    def event(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "step":
            self.step, self.tool = data["step"], "thinking"
        elif kind == "tool":
            self.tool = clean(describe_tool(data["name"], data.get("input")))
            self.console.print(f"step {self.step} {self.tool}", style="cyan", highlight=False, markup=False)
        elif kind == "usage":
            self.tokens, self.cost = format_tokens(data["usage"]), format_cost(data.get("cost"))
        elif kind == "text":
            first = data["text"].strip().splitlines()[:1]
            if first:
                self.console.print(clean(first[0][:160]), style="dim", highlight=False, markup=False)
        self._refresh()

    def finish(self, summary: RunSummary) -> None:
        self.close()
        colour = "green" if summary.exit_code == 0 else "yellow" if summary.exit_code in (1, 3) else "red"
        lines = summary_lines(summary)
        self.console.print(lines[0], style=f"bold {colour}", highlight=False, markup=False)
        for line in lines[1:]:
            self.console.print(line, highlight=False, markup=False)

    def close(self) -> None:
        if self._status is not None:
            self._status.stop()
            self._status = None


class JsonDisplay(PlainDisplay):
    """`--format json`: progress lines on stderr (unless quiet), the summary as JSON on stdout."""

    def __init__(self, quiet: bool, stdout: IO[str] | None = None) -> None:
        super().__init__(quiet=quiet)
        self.stdout = stdout or sys.stdout

    def finish(self, summary: RunSummary) -> None:
        write_line(json.dumps(summary.as_dict(), indent=2), self.stdout)


class StreamJsonDisplay:
    """`--format stream-json`: one JSON object a line on stdout as things happen, the summary last."""

    def __init__(self, stdout: IO[str] | None = None) -> None:
        self.stdout = stdout or sys.stdout

    def _emit(self, record: dict[str, Any]) -> None:
        write_line(json.dumps({"ts": round(time.time(), 3), **record}, default=str), self.stdout)

    def status(self, message: str) -> None:
        self._emit({"type": "status", "message": message})

    def event(self, kind: str, data: dict[str, Any]) -> None:
        self._emit({"type": kind, **data})

    def finish(self, summary: RunSummary) -> None:
        self._emit({"type": "result", **summary.as_dict()})

    def close(self) -> None:
        pass


def write_line(text: str, stream: IO[str]) -> None:
    """Print a line. A reader that went away (`agent fix ... | head -1`) must not end the run,
    which still writes its patch and record: the stream is pointed at /dev/null instead."""
    try:
        print(text, file=stream, flush=True)
    except BrokenPipeError:
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, stream.fileno())
            os.close(devnull)


def make_display(fmt: str, quiet: bool, is_tty: bool, ci: bool) -> Display:
    if fmt == "json":
        return JsonDisplay(quiet=quiet)
    if fmt == "stream-json":
        return StreamJsonDisplay()
    if quiet:
        return PlainDisplay(quiet=True, summary_to=sys.stdout)
    if is_tty and not ci:
        return RichDisplay(summary_to=None)
    return PlainDisplay(summary_to=sys.stdout)
