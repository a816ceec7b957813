"""The agent loop, driven by the real `anthropic` SDK over real HTTP against tests/fakes/fakeapi.py.

The tools are small real Python objects implementing the Tool protocol (no Docker);
the SDK is neither patched nor mocked. Every request the loop sends is validated by
the fake server the way the real API validates it, so a malformed conversation
(a missing tool_result, a fifth cache breakpoint, ...) fails the test with a 400.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import pytest

from patchwright.errors import ExitCode, ModelError
from patchwright.loop import (
    MAX_TOOL_RESULT_CHARS,
    AgentLoop,
    Limits,
    LoopState,
    first_message,
    messages_from_trajectory,
    truncate,
    with_cache_breakpoints,
)
from patchwright.model import STREAM_RETRIES, ModelClient, ModelInfo, Usage, model_info
from patchwright.outputs import Redactor, TrajectoryWriter, read_trajectory
from patchwright.prompt import CACHE, RunFacts, run_notes, system_blocks
from patchwright.status import RunStatus
from patchwright.tools import ToolError, ToolResult, Toolset

from fakeapi import (
    FakeAnthropic,
    RecordedRequest,
    ToolUse,
    cut_stream,
    delay,
    error,
    estimate_tokens,
    last_tool_results,
    last_user_text,
    message,
    stream_error,
    text,
    tool_use,
)

FACTS = RunFacts("/workspace", False, ("bash",))
MODEL = "claude-fake-1"  # not in prices.toml: cost unknown, default context window
PRICED_MODEL = "claude-sonnet-5-5"  # $2 / $10 per million tokens
API_KEY = "sk-ant-test-0000000000"
TASK = "Fix the failing test in app.py."
PERSONA = "You are a careful coding agent that fixes bugs in a git repository. "
# About 1,600 fake tokens: past the fake server's default 1,024-token caching minimum.
BIG_PERSONA = PERSONA * 100
FAST_RETRY = {"retry-after-ms": "1"}


# --------------------------------------------------------------------------- tools


class EchoTool:
    """Returns its `text` input; `times` repeats it (to make long outputs)."""

    def __init__(self) -> None:
        self.inputs: list[dict[str, Any]] = []

    @property
    def name(self) -> str:
        return "echo"

    def definition(self) -> dict[str, Any]:
        return {
            "name": "echo",
            "description": "Echo the text back.",
            "input_schema": {
                "type": "object",
                "properties": {"text": {"type": "string"}, "times": {"type": "integer"}},
                "required": ["text"],
            },
        }

    def run(self, tool_input: dict[str, Any]) -> ToolResult:
        self.inputs.append(tool_input)
        value = tool_input.get("text")
        if not isinstance(value, str):
            raise ToolError(f"`text` must be a string, got {type(value).__name__}")
        return ToolResult(value * int(tool_input.get("times", 1)))


class CounterTool:
    """Counts its calls; the count is the result."""

    def __init__(self) -> None:
        self.calls = 0

    @property
    def name(self) -> str:
        return "counter"

    def definition(self) -> dict[str, Any]:
        return {
            "name": "counter",
            "description": "Increment a counter and return it.",
            "input_schema": {"type": "object", "properties": {}},
        }

    def run(self, tool_input: dict[str, Any]) -> ToolResult:
        self.calls += 1
        return ToolResult(f"count={self.calls}")


class FailingTool:
    @property
    def name(self) -> str:
        return "fail"

    def definition(self) -> dict[str, Any]:
        return {
            "name": "fail",
            "description": "Always fails.",
            "input_schema": {"type": "object", "properties": {}},
        }

    def run(self, tool_input: dict[str, Any]) -> ToolResult:
        raise ToolError("the disk is on fire")


class Interrupted(BaseException):
    """Stands in for Ctrl-C arriving while a tool runs."""


class InterruptingTool(FailingTool):
    @property
    def name(self) -> str:
        return "interrupt"

    def definition(self) -> dict[str, Any]:
        return {**super().definition(), "name": "interrupt", "description": "Gets interrupted."}

    def run(self, tool_input: dict[str, Any]) -> ToolResult:
        raise Interrupted()


# --------------------------------------------------------------------------- harness


class Harness:
    """An AgentLoop wired to a fake server, with the events and trajectory it produced."""

    def __init__(
        self,
        api: FakeAnthropic,
        tmp_path: Path,
        *,
        model: str = MODEL,
        info: ModelInfo | None = None,
        limits: Limits | None = None,
        persona: str = PERSONA,
        max_retries: int = 0,
        timeout: float = 30.0,
        redactor: Redactor | None = None,
        params: Any = None,
        selfcheck: Any = None,
    ) -> None:
        self.api = api
        self.echo, self.counter = EchoTool(), CounterTool()
        self.toolset = Toolset(
            {t.name: t for t in (self.echo, self.counter, FailingTool(), InterruptingTool())}
        )
        self.client = anthropic.Anthropic(
            base_url=api.base_url, api_key=API_KEY, max_retries=max_retries, timeout=timeout
        )
        self.trajectory_path = tmp_path / "run" / "trajectory.jsonl"
        self.trajectory = TrajectoryWriter(self.trajectory_path, redactor or Redactor())
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.loop = AgentLoop(
            model=ModelClient(self.client, model, max_tokens=1024, params=params),
            info=info or model_info(model),
            tools=self.toolset,
            system=[{"type": "text", "text": persona, "cache_control": CACHE}],
            limits=limits or Limits(),
            trajectory=self.trajectory,
            on_event=lambda kind, data: self.events.append((kind, data)),
            selfcheck=selfcheck,
        )
        # As fixer.py does: the task is the first message, and the first trajectory record.
        self.state = LoopState(messages=[first_message(TASK)])
        self.trajectory.write("message", role="user", content=self.state.messages[0]["content"])

    def run(self) -> str:
        try:
            return self.loop.run(self.state)
        finally:
            self.trajectory.close()

    def records(self) -> list[dict[str, Any]]:
        return read_trajectory(self.trajectory_path)


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Any]:
    """harness(script, **options) starts a FakeAnthropic and wires a loop to it; both closed after."""
    started: list[FakeAnthropic] = []

    def make(
        script: Any,
        *,
        min_cacheable_tokens: int = 1024,
        think: bool = False,
        context_window: int | None = None,
        **options: Any,
    ) -> Harness:
        api = FakeAnthropic(
            script, min_cacheable_tokens=min_cacheable_tokens, think=think, context_window=context_window
        ).start()
        started.append(api)
        return Harness(api, tmp_path, **options)

    yield make
    for api in started:
        api.close()


def messages_of(request: RecordedRequest) -> list[dict[str, Any]]:
    return request.body["messages"]  # type: ignore[no-any-return]


def strip_cache(value: Any) -> Any:
    """A request body part without cache_control, to compare it with the loop's own state."""
    if isinstance(value, dict):
        return {k: strip_cache(v) for k, v in value.items() if k != "cache_control"}
    if isinstance(value, list):
        return [strip_cache(v) for v in value]
    return value


def count_breakpoints(value: Any) -> int:
    if isinstance(value, dict):
        return ("cache_control" in value) + sum(count_breakpoints(v) for v in value.values())
    if isinstance(value, list):
        return sum(count_breakpoints(v) for v in value)
    return 0


def endless_tool_calls(_: RecordedRequest, index: int) -> Any:
    return message(text(f"step {index + 1}"), tool_use("counter", {}))


# --------------------------------------------------------------------------- how a run ends


def test_end_turn_completes_with_the_final_text(harness: Any) -> None:
    h = harness([message(text("Looking at app.py."), tool_use("echo", {"text": "hi"})), "All fixed."])
    status = h.run()

    assert status == RunStatus.COMPLETED
    assert h.state.final_text == "All fixed."
    assert h.state.steps == 2
    assert len(h.api.requests) == 2
    assert [r.status for r in h.api.requests] == [200, 200]
    # The request carried the loop's system prompt, tools and max_tokens as given.
    body = h.api.requests[0].body
    assert body["model"] == MODEL and body["max_tokens"] == 1024 and body["stream"] is True
    assert [t["name"] for t in body["tools"]] == ["echo", "counter", "fail", "interrupt"]
    assert strip_cache(body["system"]) == [{"type": "text", "text": PERSONA}]
    # The conversation in the state: task, assistant, tool result, final answer.
    assert [m["role"] for m in h.state.messages] == ["user", "assistant", "user", "assistant"]
    assert h.state.messages[-1]["content"] == [{"type": "text", "text": "All fixed."}]
    kinds = [kind for kind, _ in h.events]
    assert kinds.count("step") == 2 and kinds.count("tool") == 1 and kinds.count("tool_done") == 1
    assert ("text", {"text": "All fixed."}) in h.events


def test_stop_sequence_also_completes(harness: Any) -> None:
    h = harness([message(text("done END"), stop_reason="stop_sequence", stop_sequence="END")])
    assert h.run() == RunStatus.COMPLETED
    assert h.state.final_text == "done END"


def test_refusal_ends_the_run_as_refused(harness: Any) -> None:
    h = harness([message(text("I can't help with that."), stop_reason="refusal"), "never sent"])
    assert h.run() == RunStatus.REFUSED
    assert len(h.api.requests) == 1
    assert h.state.final_text == "I can't help with that."
    assert h.state.messages[-1]["role"] == "assistant"


def test_max_steps_stops_a_model_that_never_ends(harness: Any) -> None:
    h = harness(endless_tool_calls, limits=Limits(max_steps=3))
    assert h.run() == RunStatus.MAX_STEPS
    assert h.state.steps == 3
    assert len(h.api.requests) == 3
    assert h.counter.calls == 3  # the last step's tools still ran before the limit was checked
    assert h.state.messages[-1]["role"] == "user"  # a resumable conversation


def test_max_cost_stops_once_the_priced_usage_crosses_the_limit(harness: Any) -> None:
    # ~50,000 fake tokens of system prompt: $0.125 to write to the cache at $2/M x 1.25,
    # then ~$0.01 to read back each turn. $0.13 is crossed on the second step.
    h = harness(endless_tool_calls, model=PRICED_MODEL, persona="x" * 200_000, limits=Limits(max_cost=0.13))
    assert h.run() == RunStatus.MAX_COST

    assert len(h.api.requests) == 2
    info = model_info(PRICED_MODEL)
    costs = []
    total = Usage()
    for request in h.api.requests:
        assert request.usage is not None
        total.add(Usage.from_dict(request.usage))
        costs.append(total.cost(info))
    assert costs[0] is not None and costs[1] is not None
    assert costs[0] < 0.13 <= costs[1]
    # The loop's running figure is the server's billing, priced with the cache factors.
    assert h.state.usage == total
    assert h.loop.cost(h.state) == pytest.approx(costs[1])
    assert h.events[-1][0] == "tool_done"
    usage_events = [data for kind, data in h.events if kind == "usage"]
    assert usage_events[-1]["cost"] == pytest.approx(costs[1])


def test_max_cost_does_not_apply_to_an_unpriced_model(harness: Any) -> None:
    h = harness(
        [message(tool_use("counter", {})), message(tool_use("counter", {})), "done"],
        persona="x" * 200_000,
        limits=Limits(max_cost=0.0001),
    )
    assert h.run() == RunStatus.COMPLETED
    assert h.loop.cost(h.state) is None
    assert len(h.api.requests) == 3


def test_timeout_already_elapsed_sends_nothing(harness: Any) -> None:
    h = harness(["never sent"], limits=Limits(timeout=5))
    h.state.started = time.monotonic() - 10
    assert h.run() == RunStatus.TIMEOUT
    assert h.api.requests == []
    assert h.state.steps == 0


def test_timeout_after_a_slow_reply(harness: Any) -> None:
    h = harness([delay(0.5, message(tool_use("counter", {}))), "never sent"], limits=Limits(timeout=0.3))
    assert h.run() == RunStatus.TIMEOUT
    assert len(h.api.requests) == 1
    assert h.counter.calls == 0  # past the wall clock, the tools of the late reply are not run


def test_the_tools_get_the_runs_deadline(harness: Any) -> None:
    h = harness([message(tool_use("counter", {})), "done"], limits=Limits(timeout=600))
    assert h.toolset.command_time.deadline is None
    assert h.run() == RunStatus.COMPLETED
    assert h.toolset.command_time.deadline == h.state.started + 600
    assert h.toolset.command_time.allowed() == min(h.toolset.command_time.limit, 600)  # far from the deadline


def test_a_command_is_cut_to_the_runs_remaining_time() -> None:
    from patchwright.tools import CommandTime

    unlimited = CommandTime(120)
    assert unlimited.allowed() == 120
    soon = CommandTime(120, deadline=time.monotonic() + 10)
    assert 8 < soon.allowed() <= 10
    late = CommandTime(120, deadline=time.monotonic() + 500)
    assert late.allowed() == 120
    past = CommandTime(120, deadline=time.monotonic() - 5)
    assert past.allowed() == 1.0  # the loop stops before tools once the time is up; never 0 or less


# --------------------------------------------------------------------------- stop reasons mid-run


def test_pause_turn_sends_the_turn_back_unchanged(harness: Any) -> None:
    h = harness([message(text("Searching, one moment."), stop_reason="pause_turn"), "Found it."])
    assert h.run() == RunStatus.COMPLETED

    assert len(h.api.requests) == 2
    sent = messages_of(h.api.requests[1])
    assert [m["role"] for m in sent] == ["user", "assistant"]
    assert sent[-1]["content"] == [{"type": "text", "text": "Searching, one moment."}]
    assert strip_cache(sent[0]) == first_message(TASK)
    assert h.state.final_text == "Found it."


def test_pause_turn_then_tool_use_keeps_the_conversation_valid(harness: Any) -> None:
    h = harness(
        [
            message(text("Thinking it over."), stop_reason="pause_turn"),
            message(tool_use("counter", {})),
            "done",
        ]
    )
    assert h.run() == RunStatus.COMPLETED
    assert [r.status for r in h.api.requests] == [200, 200, 200]


def test_max_tokens_without_a_tool_call_asks_to_continue(harness: Any) -> None:
    h = harness([message(text("The bug is in the"), stop_reason="max_tokens"), "add function."])
    assert h.run() == RunStatus.COMPLETED

    second = h.api.requests[1]
    assert [m["role"] for m in messages_of(second)] == ["user", "assistant", "user"]
    assert "cut at the output limit" in last_user_text(second)
    assert messages_of(second)[1]["content"] == [{"type": "text", "text": "The bug is in the"}]


def test_max_tokens_inside_a_tool_call_returns_an_error_for_the_cut_call(harness: Any) -> None:
    first = tool_use("echo", {"text": "complete"})
    cut = tool_use("counter", {})
    h = harness([message(text("Two calls."), first, cut, stop_reason="max_tokens"), "ok"])
    assert h.run() == RunStatus.COMPLETED

    results = last_tool_results(h.api.requests[1])
    assert [r["tool_use_id"] for r in results] == [first.id, cut.id]
    assert results[0] == {"tool_use_id": first.id, "is_error": False, "text": "complete"}
    assert results[1]["is_error"] is True
    assert "output limit" in results[1]["text"]
    assert h.counter.calls == 0  # the cut call was never run


# --------------------------------------------------------------------------- tool calls


def test_parallel_tool_calls_get_their_results_in_one_message_in_order(harness: Any) -> None:
    calls = [
        tool_use("echo", {"text": "one"}),
        tool_use("counter", {}),
        tool_use("echo", {"text": "three"}),
        tool_use("counter", {}),
    ]
    h = harness([message(text("Four at once."), *calls), "done"])
    assert h.run() == RunStatus.COMPLETED

    second = messages_of(h.api.requests[1])
    assert [m["role"] for m in second] == ["user", "assistant", "user"]
    assert [b["id"] for b in second[1]["content"] if b["type"] == "tool_use"] == [c.id for c in calls]
    results = last_tool_results(h.api.requests[1])
    assert results == [
        {"tool_use_id": calls[0].id, "is_error": False, "text": "one"},
        {"tool_use_id": calls[1].id, "is_error": False, "text": "count=1"},
        {"tool_use_id": calls[2].id, "is_error": False, "text": "three"},
        {"tool_use_id": calls[3].id, "is_error": False, "text": "count=2"},
    ]
    assert len(second[2]["content"]) == 4  # nothing but the four results
    assert [data["name"] for kind, data in h.events if kind == "tool"] == [
        "echo",
        "counter",
        "echo",
        "counter",
    ]


def test_unknown_tool_and_tool_error_are_error_results_and_the_loop_goes_on(harness: Any) -> None:
    unknown = tool_use("no_such_tool", {"x": 1})
    failing = tool_use("fail", {})
    ok = tool_use("counter", {})
    h = harness([message(unknown, failing, ok), message(tool_use("counter", {})), "done"])
    assert h.run() == RunStatus.COMPLETED

    results = last_tool_results(h.api.requests[1])
    assert results[0]["is_error"] is True
    assert "unknown tool 'no_such_tool'" in results[0]["text"] and "echo" in results[0]["text"]
    assert results[1] == {"tool_use_id": failing.id, "is_error": True, "text": "the disk is on fire"}
    assert results[2] == {"tool_use_id": ok.id, "is_error": False, "text": "count=1"}
    assert h.counter.calls == 2
    assert len(h.api.requests) == 3
    done = [data for kind, data in h.events if kind == "tool_done"]
    assert [d["is_error"] for d in done] == [True, True, False, False]


@pytest.mark.filterwarnings("ignore:Pydantic serializer warnings")
def test_bad_input_types_are_error_results(harness: Any) -> None:
    wrong_field = tool_use("echo", {"text": 42})
    not_an_object = ToolUse("echo", [1, 2])  # type: ignore[arg-type]
    h = harness([message(wrong_field, not_an_object), "done"])
    assert h.run() == RunStatus.COMPLETED

    results = last_tool_results(h.api.requests[1])
    assert results[0] == {
        "tool_use_id": wrong_field.id,
        "is_error": True,
        "text": "`text` must be a string, got int",
    }
    assert results[1]["is_error"] is True
    assert "must be a JSON object, got list" in results[1]["text"]
    assert h.echo.inputs == [{"text": 42}]  # the list never reached the tool


def test_toolset_call_never_raises_for_bad_calls() -> None:
    toolset = Toolset({"echo": EchoTool(), "fail": FailingTool()})
    assert toolset.call("echo", {"text": "a", "times": 2}) == ToolResult("aa")
    assert toolset.call("echo", "a string").is_error
    assert toolset.call("echo", None).is_error
    assert toolset.call("fail", {}) == ToolResult("the disk is on fire", True)
    assert toolset.call("nope", {}).is_error
    assert [d["name"] for d in toolset.definitions()] == ["echo", "fail"]


def test_long_tool_output_is_truncated_with_a_note(harness: Any) -> None:
    long = tool_use("echo", {"text": "0123456789", "times": 10_000})  # 100,000 characters
    h = harness([message(long), "done"])
    assert h.run() == RunStatus.COMPLETED

    result = last_tool_results(h.api.requests[1])[0]
    body = result["text"]
    half = MAX_TOOL_RESULT_CHARS // 2
    cut = 100_000 - 2 * half
    assert f"[... {cut} characters cut ...]" in body
    assert body.startswith("0123456789" * 10)
    assert body.endswith("0123456789" * 10)
    assert len(body) < 100_000
    assert len(body) == 2 * half + len(f"\n[... {cut} characters cut ...]\n")
    recorded = [r for r in h.records() if r["event"] == "tool_result"]
    assert recorded[0]["content"] == body


def test_truncate_keeps_head_and_tail() -> None:
    assert truncate("short", 10) == "short"
    assert truncate("x" * 10, 10) == "x" * 10
    out = truncate("a" * 5 + "b" * 10 + "c" * 5, 10)
    assert out == "aaaaa\n[... 10 characters cut ...]\nccccc"


# --------------------------------------------------------------------------- prompt caching


def test_cache_breakpoints_on_every_request(harness: Any) -> None:
    script = [
        message(tool_use("echo", {"text": "a"})),
        message(tool_use("echo", {"text": "b"}), tool_use("counter", {})),
        message(tool_use("counter", {})),
        "done",
    ]
    h = harness(script)
    h.loop.system = [
        {"type": "text", "text": PERSONA},
        {"type": "text", "text": "Project rules: run the tests.", "cache_control": CACHE},
    ]
    assert h.run() == RunStatus.COMPLETED
    assert len(h.api.requests) == 4

    for request in h.api.requests:
        body = request.body
        system = body["system"]
        assert [("cache_control" in b) for b in system] == [False, True]
        assert system[-1]["cache_control"] == CACHE
        messages = messages_of(request)
        user_indexes = [i for i, m in enumerate(messages) if m["role"] == "user"]
        marked = user_indexes[-2:]
        for i, msg in enumerate(messages):
            for j, block in enumerate(msg["content"]):
                expect = i in marked and j == len(msg["content"]) - 1
                assert ("cache_control" in block) == expect, (i, j)
        assert count_breakpoints(body["tools"]) == 0
        assert count_breakpoints(body) == 1 + len(marked) <= 4
    # The breakpoints are added to copies: the loop's own conversation has none.
    assert count_breakpoints(h.state.messages) == 0


def test_cache_is_read_from_the_second_turn(harness: Any) -> None:
    script = [message(tool_use("echo", {"text": "a"})), message(tool_use("counter", {})), "done"]
    h = harness(script, persona=BIG_PERSONA)
    assert h.run() == RunStatus.COMPLETED

    usages = [r.usage for r in h.api.requests]
    assert all(u is not None for u in usages)
    assert usages[0]["cache_read_input_tokens"] == 0  # type: ignore[index]
    assert usages[0]["cache_creation_input_tokens"] > 1024  # type: ignore[index]
    for usage in usages[1:]:
        assert usage["cache_read_input_tokens"] > 1024  # type: ignore[index]
        assert usage["input_tokens"] == 0  # type: ignore[index]  # the whole prompt is behind breakpoints
    # Turn 3 reads what turn 2 wrote: a longer prefix than turn 2 read.
    assert usages[2]["cache_read_input_tokens"] > usages[1]["cache_read_input_tokens"]  # type: ignore[index]
    # The loop sums exactly what the server billed.
    total = h.api.total_usage()
    assert h.state.usage.as_dict() == {
        "input_tokens": total["input_tokens"],
        "output_tokens": total["output_tokens"],
        "cache_creation_input_tokens": total["cache_creation_input_tokens"],
        "cache_read_input_tokens": total["cache_read_input_tokens"],
        "cache_creation_1h_input_tokens": 0,  # the loop's breakpoints use the default 5-minute TTL
    }
    responses = [r for r in h.records() if r["event"] == "response"]
    assert responses[1]["usage"]["cache_read_input_tokens"] == usages[1]["cache_read_input_tokens"]  # type: ignore[index]


def test_with_cache_breakpoints_marks_copies_of_the_last_two_user_turns() -> None:
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": "plain string task"},
        {"role": "assistant", "content": [{"type": "text", "text": "a"}]},
        {"role": "user", "content": [{"type": "text", "text": "b1"}, {"type": "text", "text": "b2"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "c"}]},
        {"role": "user", "content": [{"type": "text", "text": "d"}]},
    ]
    before = json.dumps(messages)
    marked = with_cache_breakpoints(messages)

    assert json.dumps(messages) == before  # the input is untouched
    assert marked[0] == messages[0]
    assert marked[2]["content"] == [
        {"type": "text", "text": "b1"},
        {"type": "text", "text": "b2", "cache_control": CACHE},
    ]
    assert marked[4]["content"] == [{"type": "text", "text": "d", "cache_control": CACHE}]
    assert count_breakpoints(marked) == 2
    # A string task is turned into a block so it can carry the breakpoint.
    only = with_cache_breakpoints([messages[0]])
    assert only[0]["content"] == [{"type": "text", "text": "plain string task", "cache_control": CACHE}]


def test_system_blocks_mark_only_the_last_block() -> None:
    persona = "persona" + run_notes(FACTS)
    assert system_blocks("persona", FACTS, None) == [
        {"type": "text", "text": persona, "cache_control": CACHE}
    ]
    both = system_blocks("persona", FACTS, "instructions")
    assert both == [
        {"type": "text", "text": persona},
        {"type": "text", "text": "instructions", "cache_control": CACHE},
    ]
    assert system_blocks("persona", FACTS, "") == system_blocks("persona", FACTS, None)


def test_run_notes_say_where_the_repo_is_and_which_tools_there_are() -> None:
    offline = run_notes(RunFacts("/workspace", False, ("bash", "run_tests"), "pytest -q"))
    assert "/workspace" in offline and "no network" in offline
    assert "`run_tests` (runs `pytest -q`)" in offline and "search_code" not in offline
    online = run_notes(RunFacts("/src", True, ("bash", "search_code")))
    assert "/src" in online and "with network access" in online and "`search_code`" in online


# --------------------------------------------------------------------------- context: never rewritten here


def test_the_loop_never_rewrites_old_tool_results_even_near_the_window(harness: Any) -> None:
    """Context is managed by the API (tests/test_platform.py); the client history stays append-only."""
    calls = [tool_use("echo", {"text": f"result number {n} " * 20}) for n in range(1, 6)]
    script = [message(call) for call in calls] + ["done"]
    h = harness(script, info=ModelInfo(None, None, 100), persona=BIG_PERSONA)  # a 100-token window
    assert h.run() == RunStatus.COMPLETED

    last = messages_of(h.api.requests[-1])
    results = [
        b for msg in last if msg["role"] == "user" for b in msg["content"] if b["type"] == "tool_result"
    ]
    assert [b["content"] for b in results] == [c.input["text"] for c in calls]
    for earlier in h.api.requests[:-1]:  # every request's history is a prefix of the next one's
        sent = strip_cache(messages_of(earlier))
        assert strip_cache(last[: len(sent)]) == sent
    assert not [r for r in h.records() if r["event"].startswith("context_")]


# --------------------------------------------------------------------------- trajectory and resume


def test_trajectory_records_every_event_in_order(harness: Any) -> None:
    call = tool_use("echo", {"text": "key sk-ant-api03-abcdefghijklmnopqrstuvwxyz"})
    h = harness([message(text("Checking."), call), "Done."])
    assert h.run() == RunStatus.COMPLETED

    records = h.records()
    assert [r["event"] for r in records] == [
        "message",  # the task
        "request",
        "response",
        "message",
        "tool_call",
        "tool_result",
        "message",
        "request",
        "response",
        "message",
    ]
    request, response = records[1], records[2]
    assert request["step"] == 1 and request["messages"] == 1
    assert records[0]["content"] == first_message(TASK)["content"]
    assert response["stop_reason"] == "tool_use"
    assert response["usage"] == h.api.requests[0].usage
    assert records[4]["id"] == records[5]["id"] == call.id
    assert records[4]["name"] == "echo"
    assert records[5]["is_error"] is False and isinstance(records[5]["seconds"], float)
    assert records[7]["step"] == 2 and records[7]["messages"] == 3
    assert records[-1]["content"] == [{"type": "text", "text": "Done."}]
    assert all(isinstance(r["ts"], float) for r in records)
    # Secrets are redacted in the record, not in what the model saw.
    raw = h.trajectory_path.read_text()
    assert "sk-ant-api03" not in raw and "[REDACTED]" in raw
    assert "sk-ant-api03" in last_tool_results(h.api.requests[1])[0]["text"]


def test_messages_from_a_finished_trajectory_are_accepted(harness: Any) -> None:
    h = harness([message(text("Checking."), tool_use("echo", {"text": "x"})), "Done.", "Resumed."])
    assert h.run() == RunStatus.COMPLETED

    rebuilt = messages_from_trajectory(h.records())
    assert rebuilt[:-1] == h.state.messages
    assert rebuilt[-1] == {"role": "user", "content": [{"type": "text", "text": "Continue."}]}
    reply = h.loop.model.create(h.loop.system, h.toolset.definitions(), with_cache_breakpoints(rebuilt))
    assert reply.content[0]["text"] == "Resumed."  # type: ignore[union-attr]
    assert h.api.requests[-1].status == 200


def test_messages_from_a_trajectory_interrupted_mid_turn_are_accepted(harness: Any) -> None:
    calls = [tool_use("counter", {}), tool_use("interrupt", {}), tool_use("echo", {"text": "later"})]
    h = harness([message(text("Three calls."), *calls), "Picking up again."])
    with pytest.raises(Interrupted):
        h.run()

    records = h.records()
    assert [r["event"] for r in records][-4:] == ["message", "tool_call", "tool_result", "tool_call"]
    rebuilt = messages_from_trajectory(records)
    assert [m["role"] for m in rebuilt] == ["user", "assistant", "user"]
    assert [b["tool_use_id"] for b in rebuilt[-1]["content"]] == [c.id for c in calls]
    # the counter ran and keeps its recorded result; the calls that never ran say so
    assert [b["is_error"] for b in rebuilt[-1]["content"]] == [False, True, True]

    # A resumed loop carries on from the rebuilt conversation, and the server accepts it.
    h.state = LoopState(messages=rebuilt, steps=1)
    assert h.loop.run(h.state) == RunStatus.COMPLETED
    assert [r.status for r in h.api.requests] == [200, 200]
    assert h.state.final_text == "Picking up again."
    assert "interrupted" in last_tool_results(h.api.requests[1])[1]["text"]


def test_resume_keeps_the_results_of_calls_that_ran_before_the_interruption(harness: Any) -> None:
    ran = tool_use("counter", {})
    h = harness([message(ran, tool_use("interrupt", {}))])
    with pytest.raises(Interrupted):
        h.run()
    assert h.counter.calls == 1  # the first call did run, and its result is in the trajectory

    rebuilt = messages_from_trajectory(h.records())
    first = rebuilt[-1]["content"][0]
    assert first["tool_use_id"] == ran.id
    assert (first["content"], first["is_error"]) == ("count=1", False)


def test_messages_from_trajectory_edge_cases() -> None:
    assert messages_from_trajectory([]) == []
    user_last = [{"event": "message", "role": "user", "content": [{"type": "text", "text": "t"}]}]
    assert messages_from_trajectory(user_last) == [
        {"role": "user", "content": [{"type": "text", "text": "t"}]}
    ]
    # Records that are not messages are ignored.
    noise = [{"event": "request", "step": 1}, *user_last, {"event": "run_end"}]
    assert messages_from_trajectory(noise) == messages_from_trajectory(user_last)


# --------------------------------------------------------------------------- model errors and retries


def test_429_with_retry_after_zero_is_retried(harness: Any) -> None:
    h = harness([error(429, "rate_limit_error", "slow down", {"retry-after": "0"}), "ok"], max_retries=2)
    assert h.run() == RunStatus.COMPLETED
    assert [r.status for r in h.api.requests] == [429, 200]
    assert h.state.final_text == "ok"
    assert h.state.steps == 1


def test_500s_beyond_max_retries_raise_model_error(harness: Any) -> None:
    h = harness([error(500, "api_error", "boom", FAST_RETRY)] * 3 + ["never sent"], max_retries=2)
    with pytest.raises(ModelError, match=r"kept failing after retries \(500\): boom") as caught:
        h.run()
    assert len(h.api.requests) == 3
    assert caught.value.exit_code == ExitCode.INFRA


def test_401_is_a_model_error_about_credentials_without_retries(harness: Any) -> None:
    h = harness([error(401, "authentication_error", "invalid x-api-key"), "never sent"], max_retries=3)
    with pytest.raises(ModelError, match="credentials") as caught:
        h.run()
    assert len(h.api.requests) == 1
    assert "ANTHROPIC_API_KEY" in str(caught.value)
    assert caught.value.exit_code == ExitCode.INFRA


@pytest.mark.parametrize(
    ("status", "error_type", "expected"),
    [
        (400, "invalid_request_error", r"refused the request \(400\): bad thing"),
        (403, "permission_error", r"denied access \(403\): bad thing"),
        (404, "not_found_error", r"does not know this model or endpoint \(404\): bad thing"),
    ],
)
def test_client_errors_become_one_line_model_errors(
    harness: Any, status: int, error_type: str, expected: str
) -> None:
    h = harness([error(status, error_type, "bad thing"), "never sent"], max_retries=2)
    with pytest.raises(ModelError, match=expected):
        h.run()
    assert len(h.api.requests) == 1


def test_api_timeout_is_a_model_error(harness: Any) -> None:
    h = harness([delay(2.0, message(text("too late")))], timeout=0.2)
    with pytest.raises(ModelError, match="timed out"):
        h.run()


def test_a_cut_stream_is_retried(harness: Any) -> None:
    # The SDK does not retry a stream that breaks off mid-message; ModelClient does.
    h = harness([cut_stream(after_events=4), "ok"], max_retries=0)
    assert h.run() == RunStatus.COMPLETED
    assert len(h.api.requests) == 2
    assert h.api.requests[0].body == h.api.requests[1].body  # the same turn, sent again
    assert h.state.final_text == "ok"
    assert h.state.steps == 1
    assert [r["event"] for r in h.records()].count("response") == 1


def test_a_stream_that_keeps_breaking_is_a_model_error(harness: Any) -> None:
    attempts = STREAM_RETRIES + 1
    h = harness([cut_stream(after_events=4)] * attempts + ["never sent"], max_retries=2)
    with pytest.raises(ModelError, match="stream kept breaking off") as caught:
        h.run()
    assert not isinstance(caught.value.__cause__, anthropic.APIError)  # a transport error, wrapped
    assert len(h.api.requests) == attempts
    assert caught.value.exit_code == ExitCode.INFRA


def test_model_client_streams_text_to_the_callback(harness: Any) -> None:
    long = "streamed text arrives in several pieces " * 3
    h = harness([message(text(long))])
    pieces: list[str] = []
    reply = h.loop.model.create(h.loop.system, [], [first_message(TASK)], on_text=pieces.append)
    assert len(pieces) > 1
    assert "".join(pieces) == long
    assert reply.content[0]["text"] == long
    assert Usage.from_counts(reply.usage).output_tokens == estimate_tokens([{"type": "text", "text": long}])


def test_an_error_event_mid_stream_is_retried(harness: Any) -> None:
    """The API can answer 200 and then send an `error` event (overloaded); the SDK does not retry that."""
    h = harness([stream_error(after_events=3), "Recovered."])
    assert h.run() == RunStatus.COMPLETED
    assert h.state.final_text == "Recovered."
    assert len(h.api.requests) == 2


def test_error_events_beyond_the_retries_end_the_run_as_a_model_error(harness: Any) -> None:
    h = harness([stream_error(after_events=2)] * 3)
    with pytest.raises(ModelError, match=r"(?i)overloaded"):
        h.run()
    assert len(h.api.requests) == 3
