"""The agent loop: ask the model, run the tools it calls, send the results back, until done.

Readable in one sitting on purpose. Every request, response, tool call and result
goes to the trajectory as it happens. Limits (steps, cost, wall time) end the
run with their own status; tool failures never do.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from patchwright.context import clearing_keep, context_events, with_boundary_breakpoint
from patchwright.model import ModelClient, ModelInfo, Usage
from patchwright.outputs import TrajectoryWriter
from patchwright.prompt import CACHE, OUTPUT_CUT
from patchwright.prompt import CONTINUE as CONTINUE_TEXT
from patchwright.reply import Reply, as_param
from patchwright.selfcheck import SelfCheck
from patchwright.status import RunStatus
from patchwright.tools import ToolResult, Toolset

MAX_TOOL_RESULT_CHARS = 40_000
RESEND_STOPS = frozenset({"pause_turn", "compaction"})  # send the turn back as it is
FINAL_STOPS = frozenset({"end_turn", "stop_sequence"})


@dataclass(frozen=True)
class Limits:
    max_steps: int = 100
    max_cost: float | None = None  # USD
    timeout: float | None = None  # seconds of wall clock for the whole run


@dataclass
class LoopState:
    """Everything that changes while the loop runs; enough to resume it."""

    messages: list[dict[str, Any]]
    steps: int = 0
    usage: Usage = field(default_factory=Usage)
    final_text: str = ""
    started: float = field(default_factory=time.monotonic)


Event = Callable[[str, dict[str, Any]], None]


def _ignore(_: str, __: dict[str, Any]) -> None:
    pass


@dataclass
class AgentLoop:
    model: ModelClient
    info: ModelInfo
    tools: Toolset
    system: list[dict[str, Any]]
    limits: Limits
    trajectory: TrajectoryWriter
    on_event: Event = _ignore
    cache: bool = True  # prompt caching; off only to measure what it saves (benchmarks/)
    selfcheck: SelfCheck | None = None  # run the tests before accepting an end of turn

    def cost(self, state: LoopState) -> float | None:
        return state.usage.cost(self.info)

    def run(self, state: LoopState) -> RunStatus:
        """Run until the model ends its turn or a limit is hit; returns the status."""
        tool_defs = self.tools.definitions()
        if self.limits.timeout is not None:  # commands are cut short rather than run past it
            self.tools.command_time.deadline = state.started + self.limits.timeout
        while True:
            stopped = self._limit_reached(state)
            if stopped:
                return stopped
            state.steps += 1
            self.on_event("step", {"step": state.steps})
            request = self._with_breakpoints(state.messages) if self.cache else state.messages
            # the messages themselves are in the `message` records; sent again, they were redacted
            # and written a second time on every turn
            self.trajectory.write("request", step=state.steps, messages=len(state.messages))
            system = self.system if self.cache else without_cache_control(self.system)
            message = self.model.create(system, tool_defs, request)
            usage = Usage.from_counts(message.usage)
            state.usage.add(usage)
            content = [as_param(block) for block in message.content]
            self.trajectory.write(
                "response",
                step=state.steps,
                stop_reason=message.stop_reason,
                content=content,
                usage=usage.as_dict(),
            )
            self.on_event(
                "usage", {"usage": state.usage.as_dict(), "cost": self.cost(state), "step": state.steps}
            )
            self._record_context(message, state.steps)
            text = message.text()
            if text:
                state.final_text = text
                self.on_event("text", {"text": text})
            self._append(state, "assistant", content)

            if message.stop_reason == "refusal":
                return RunStatus.REFUSED
            if message.stop_reason in RESEND_STOPS:
                continue  # the API asks us to send the turn back as it is (after compaction too)
            if message.stop_reason == "model_context_window_exceeded":
                return (
                    RunStatus.CONTEXT_EXCEEDED
                )  # server-side context management could not keep it in the window
            tool_uses = [block for block in content if block["type"] == "tool_use"]
            if tool_uses and self._limit_reached(state) == RunStatus.TIMEOUT:
                return RunStatus.TIMEOUT  # the wall clock ran out while the model was answering
            if tool_uses:
                self._append(state, "user", self._run_tools(tool_uses, message.stop_reason == "max_tokens"))
            elif message.stop_reason == "max_tokens":
                self._append(
                    state,
                    "user",
                    [{"type": "text", "text": OUTPUT_CUT}],
                )
            elif message.stop_reason not in FINAL_STOPS:
                self.trajectory.write(
                    "unknown_stop_reason", step=state.steps, stop_reason=message.stop_reason
                )
                return RunStatus.STOPPED
            else:
                nudge = self._self_check(state)
                if nudge is None:
                    return RunStatus.COMPLETED
                self._append(state, "user", [{"type": "text", "text": nudge}])

    # --- server-side context management and the self-check, recorded as they happen
    def _with_breakpoints(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        marked = with_cache_breakpoints(messages)
        keep = clearing_keep(self.model.params)
        return marked if keep is None else with_boundary_breakpoint(marked, keep, CACHE)

    def _record_context(self, message: Reply, step: int) -> None:
        for kind, data in context_events(message):
            self.trajectory.write(kind, step=step, **data)
            self.on_event(kind, data)

    def _self_check(self, state: LoopState) -> str | None:
        """None when the run may end; else the failure to send back as the next user turn."""
        check = self.selfcheck
        if check is None or not check.due() or self._limit_reached(state):
            return None
        result = check.run()
        self.trajectory.write(
            "self_check",
            round=check.rounds,
            command=check.command,
            passed=result.passed,
            exit_code=result.exit_code,
            timed_out=result.timed_out,
            output=truncate(result.output, MAX_TOOL_RESULT_CHARS),
        )
        self.on_event("self_check", {"round": check.rounds, "passed": result.passed})
        return None if result.passed else check.nudge(result)

    def _limit_reached(self, state: LoopState) -> RunStatus | None:
        if state.steps >= self.limits.max_steps:
            return RunStatus.MAX_STEPS
        cost = self.cost(state)
        if self.limits.max_cost is not None and cost is not None and cost >= self.limits.max_cost:
            return RunStatus.MAX_COST
        if self.limits.timeout is not None and time.monotonic() - state.started >= self.limits.timeout:
            return RunStatus.TIMEOUT
        return None

    def _append(self, state: LoopState, role: str, content: list[dict[str, Any]]) -> None:
        """Add a turn; a continuation of the same role (after pause_turn) joins the previous one."""
        merge_with_last(state.messages, role, content)
        self.trajectory.write("message", role=role, content=content)

    def _run_tools(self, tool_uses: list[dict[str, Any]], cut: bool) -> list[dict[str, Any]]:
        """Run each call in order; all results go back in one user message, in the same order."""
        results = []
        for index, call in enumerate(tool_uses):
            self.on_event("tool", {"name": call["name"], "input": call.get("input")})
            self.trajectory.write("tool_call", id=call["id"], name=call["name"], input=call.get("input"))
            started = time.monotonic()
            if cut and index == len(tool_uses) - 1:
                result = ToolResult(
                    "Your reply hit the output limit inside this call; send a smaller call.", True
                )
            else:
                result = self.tools.call(call["name"], call.get("input"))
            content = truncate(result.content, MAX_TOOL_RESULT_CHARS)
            self.trajectory.write(
                "tool_result",
                id=call["id"],
                is_error=result.is_error,
                content=content,
                seconds=round(time.monotonic() - started, 3),
            )
            self.on_event("tool_done", {"name": call["name"], "is_error": result.is_error})
            results.append(
                {
                    "type": "tool_result",
                    "tool_use_id": call["id"],
                    "content": content,
                    "is_error": result.is_error,
                }
            )
        return results


def truncate(text: str, limit: int) -> str:
    """Keep the head and tail of a long text with a note of what was cut in between."""
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n[... {len(text) - 2 * half} characters cut ...]\n{text[-half:]}"


def with_cache_breakpoints(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A copy of the messages with cache breakpoints on the last block of the last two user turns.

    With the system prompt's own breakpoint that makes three of the four allowed:
    each turn reads the prefix the previous turn wrote and writes a longer one.
    """
    marked = list(messages)
    user_indexes = [i for i, m in enumerate(messages) if m["role"] == "user"][-2:]
    for i in user_indexes:
        content = messages[i]["content"]
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else list(content)
        if not blocks:
            continue
        blocks[-1] = {**blocks[-1], "cache_control": CACHE}
        marked[i] = {**messages[i], "content": blocks}
    return marked


def without_cache_control(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in block.items() if k != "cache_control"} for block in blocks]


def first_message(task: str) -> dict[str, Any]:
    return {"role": "user", "content": [{"type": "text", "text": task}]}


def merge_with_last(messages: list[dict[str, Any]], role: str, content: list[dict[str, Any]]) -> None:
    """Append a message, or extend the last one when it has the same role (roles must alternate)."""
    if messages and messages[-1]["role"] == role:
        messages[-1] = {"role": role, "content": [*messages[-1]["content"], *content]}
    else:
        messages.append({"role": role, "content": list(content)})


CONTINUE = [{"type": "text", "text": CONTINUE_TEXT}]  # the user turn after a finished assistant turn


def messages_from_trajectory(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rebuild the conversation from `message` records, for --resume.

    A last assistant turn whose results were never sent (the run stopped mid-turn)
    gets the results that were recorded, and for calls that never ran a result
    saying so, so the API accepts the conversation and nothing runs twice.
    """
    messages: list[dict[str, Any]] = []
    results: dict[str, dict[str, Any]] = {}
    for record in records:
        if record.get("event") == "message":
            merge_with_last(messages, record["role"], record["content"])
            results = {}
        elif record.get("event") == "tool_result":
            results[record["id"]] = record
    if messages and messages[-1]["role"] == "assistant":
        calls = [b for b in messages[-1]["content"] if b.get("type") == "tool_use"]
        if calls:
            messages.append({"role": "user", "content": [_recorded_result(c["id"], results) for c in calls]})
        else:
            messages.append({"role": "user", "content": list(CONTINUE)})
    return messages


def _recorded_result(call_id: str, results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    record = results.get(call_id)
    if record is None:
        return {
            "type": "tool_result",
            "tool_use_id": call_id,
            "content": "The run was interrupted before this call ran; run it again if needed.",
            "is_error": True,
        }
    return {
        "type": "tool_result",
        "tool_use_id": call_id,
        "content": record.get("content", ""),
        "is_error": bool(record.get("is_error")),
    }
