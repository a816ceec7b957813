"""The fake Messages API, driven by the real `anthropic` SDK over real HTTP.

These tests pin down both the fake and the SDK behaviour the agent relies on: how the
SDK retries, which exception a dropped stream raises, how streamed tool input is
reassembled, and how prompt-cache usage is reported.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx2
import pytest

from fakeapi import (
    FakeAnthropic,
    RecordedRequest,
    Reply,
    cut_stream,
    delay,
    error,
    estimate_tokens,
    last_tool_results,
    last_user_text,
    message,
    text,
    thinking,
    tool_use,
)

MODEL = "claude-fake-1"  # any name: the fake echoes it, the SDK has no warnings for it
API_KEY = "sk-ant-test-fakeapi"
BASH = {"type": "bash_20250124", "name": "bash"}
EDITOR = {"type": "text_editor_20250728", "name": "str_replace_based_edit_tool", "max_characters": 10000}
# Long enough (about 1,600 fake tokens) to pass the default 1,024-token caching minimum.
BIG_SYSTEM = "You are a careful coding agent that fixes bugs in a git repository. " * 100
FAST_RETRY = {"retry-after-ms": "1"}


@pytest.fixture
def fake() -> Iterator[type[FakeAnthropic]]:
    """FakeAnthropic, closed at the end of the test even if the test forgets."""
    started: list[FakeAnthropic] = []

    class Tracked(FakeAnthropic):
        def start(self) -> FakeAnthropic:
            started.append(self)
            return super().start()

    yield Tracked
    for api in started:
        api.close()


def client(api: FakeAnthropic, **kwargs: Any) -> anthropic.Anthropic:
    kwargs.setdefault("max_retries", 0)
    return anthropic.Anthropic(base_url=api.base_url, api_key=API_KEY, **kwargs)


def user(content: Any) -> dict[str, Any]:
    return {"role": "user", "content": content}


def create(c: anthropic.Anthropic, messages: list[dict[str, Any]], **kwargs: Any) -> anthropic.types.Message:
    kwargs.setdefault("max_tokens", 1024)
    return c.messages.create(model=MODEL, messages=messages, **kwargs)  # type: ignore[no-any-return]


def post_raw(
    api: FakeAnthropic, body: Any, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, Any]]:
    """POST without the SDK, for requests the SDK refuses to build."""
    hdrs = {"content-type": "application/json", "x-api-key": API_KEY, "anthropic-version": "2023-06-01"}
    hdrs.update(headers or {})
    hdrs = {k: v for k, v in hdrs.items() if v}
    req = urllib.request.Request(f"{api.base_url}/v1/messages", data=json.dumps(body).encode(), headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


# --------------------------------------------------------------------------- replies


def test_non_streaming_text(fake: type[FakeAnthropic]) -> None:
    with fake([message(text("Hello from the fake."))]) as api:
        reply = create(client(api), [user("hi")])

    assert isinstance(reply, anthropic.types.Message)
    assert [b.type for b in reply.content] == ["text"]
    assert reply.content[0].text == "Hello from the fake."  # type: ignore[union-attr]
    assert reply.stop_reason == "end_turn"
    assert reply.model == MODEL
    assert reply.id.startswith("msg_")
    assert reply._request_id and reply._request_id.startswith("req_")
    assert reply.usage.input_tokens == estimate_tokens({"type": "text", "text": "hi"})
    assert reply.usage.cache_read_input_tokens == 0
    assert reply.usage.output_tokens > 0
    (seen,) = api.requests
    assert seen.status == 200
    assert seen.body["messages"] == [user("hi")]
    assert seen.headers["anthropic-version"]


def test_streaming_text_arrives_in_several_deltas(fake: type[FakeAnthropic]) -> None:
    words = "The quick brown fox jumps over the lazy dog."
    with (
        fake([message(text(words))]) as api,
        client(api).messages.stream(model=MODEL, max_tokens=100, messages=[user("hi")]) as stream,
    ):
        pieces = list(stream.text_stream)
        final = stream.get_final_message()

    assert len(pieces) > 1
    assert "".join(pieces) == words
    assert final.content[0].text == words  # type: ignore[union-attr]
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens > 1  # message_delta's count replaced message_start's placeholder
    assert api.requests[0].body["stream"] is True


def test_streaming_tool_use_input_is_reassembled(fake: type[FakeAnthropic]) -> None:
    tool_input = {"command": "pytest -q tests/test_parser.py", "restart": False, "args": [1, "two", None]}
    with fake([message(text("Running the tests."), tool_use("bash", tool_input))]) as api:
        c = client(api)
        with c.messages.stream(model=MODEL, max_tokens=100, messages=[user("go")], tools=[BASH]) as stream:
            json_events = [e for e in stream if e.type == "input_json"]
            final = stream.get_final_message()

    assert len([e for e in json_events if e.partial_json]) >= 3  # the input really came in pieces
    call = final.content[1]
    assert isinstance(call, anthropic.types.ToolUseBlock)
    assert call.input == tool_input
    assert call.name == "bash"
    assert call.id.startswith("toolu_")
    assert final.stop_reason == "tool_use"


def test_non_streaming_tool_use(fake: type[FakeAnthropic]) -> None:
    with fake(
        [message(tool_use("str_replace_based_edit_tool", {"command": "view", "path": "/repo/a.py"}))]
    ) as api:
        reply = create(client(api), [user("look")], tools=[EDITOR])

    (call,) = reply.content
    assert isinstance(call, anthropic.types.ToolUseBlock)
    assert call.input == {"command": "view", "path": "/repo/a.py"}
    assert reply.stop_reason == "tool_use"


@pytest.mark.parametrize("stop_reason", ["max_tokens", "pause_turn", "refusal"])
def test_explicit_stop_reasons(fake: type[FakeAnthropic], stop_reason: str) -> None:
    with (
        fake([message(text("partial"), stop_reason=stop_reason)]) as api,
        client(api).messages.stream(model=MODEL, max_tokens=5, messages=[user("hi")]) as stream,
    ):
        assert stream.get_final_message().stop_reason == stop_reason


def test_thinking_round_trips_and_tampering_is_rejected(fake: type[FakeAnthropic]) -> None:
    script = [
        message(thinking("The bug is probably in parse()."), tool_use("bash", {"command": "ls"})),
        "done",
    ]
    with fake(script) as api:
        c = client(api)
        kwargs: dict[str, Any] = {"tools": [BASH], "thinking": {"type": "enabled", "budget_tokens": 1024}}
        with c.messages.stream(model=MODEL, max_tokens=2048, messages=[user("fix")], **kwargs) as stream:
            first = stream.get_final_message()
        block = first.content[0]
        assert isinstance(block, anthropic.types.ThinkingBlock)
        assert block.thinking == "The bug is probably in parse()."
        assert block.signature

        call_id = first.content[1].id  # type: ignore[union-attr]
        result = user([{"type": "tool_result", "tool_use_id": call_id, "content": "a.py"}])
        history = [user("fix"), first.to_param(), result]
        assert create(c, history, max_tokens=2048, **kwargs).content[0].text == "done"  # type: ignore[union-attr]

        tampered = {
            "role": "assistant",
            "content": [{**block.model_dump(), "thinking": "edited"}, first.content[1]],
        }
        with pytest.raises(anthropic.BadRequestError, match="signature"):
            create(c, [user("fix"), tampered, result], max_tokens=2048, **kwargs)


# --------------------------------------------------------------------------- errors and retries


@pytest.mark.parametrize(
    ("status", "error_type", "headers"),
    [
        (429, "rate_limit_error", {"retry-after": "0"}),  # the SDK treats 0 as "unset": ~0.5 s backoff
        (529, "overloaded_error", FAST_RETRY),
        (500, "api_error", FAST_RETRY),
    ],
)
def test_sdk_retries_transient_errors(
    fake: type[FakeAnthropic], status: int, error_type: str, headers: dict[str, str]
) -> None:
    with fake([error(status, error_type, "try again", headers), message(text("ok"))]) as api:
        reply = create(client(api, max_retries=2), [user("hi")])

    assert reply.content[0].text == "ok"  # type: ignore[union-attr]
    assert [r.status for r in api.requests] == [status, 200]
    assert [r.headers["x-stainless-retry-count"] for r in api.requests] == ["0", "1"]


def test_retries_exhausted_raise_the_typed_error(fake: type[FakeAnthropic]) -> None:
    with (
        fake([error(529, "overloaded_error", "Overloaded", FAST_RETRY)] * 3) as api,
        pytest.raises(anthropic.OverloadedError) as caught,
    ):
        create(client(api, max_retries=2), [user("hi")])

    assert len(api.requests) == 3
    assert caught.value.status_code == 529
    assert caught.value.body == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
        "request_id": caught.value.request_id,
    }


def test_401_is_not_retried(fake: type[FakeAnthropic]) -> None:
    with (
        fake([error(401, "authentication_error", "invalid x-api-key"), "never sent"]) as api,
        pytest.raises(anthropic.AuthenticationError, match="invalid x-api-key"),
    ):
        create(client(api, max_retries=3), [user("hi")])

    assert [r.status for r in api.requests] == [401]


def test_server_checks_credentials_and_version_headers(fake: type[FakeAnthropic]) -> None:
    body = {"model": MODEL, "max_tokens": 10, "messages": [user("hi")]}
    with fake(["with x-api-key", "with bearer"]) as api:
        status, payload = post_raw(api, body, {"x-api-key": ""})
        assert (status, payload["error"]["type"]) == (401, "authentication_error")
        status, payload = post_raw(api, body, {"anthropic-version": ""})
        assert (status, payload["error"]["type"]) == (400, "invalid_request_error")
        assert post_raw(api, body)[0] == 200
        assert post_raw(api, body, {"x-api-key": "", "authorization": "Bearer sk-ant-test"})[0] == 200

    assert [r.status for r in api.requests] == [401, 400, 200, 200]


def test_a_cut_stream_reaches_the_caller_without_a_retry(fake: type[FakeAnthropic]) -> None:
    # The SDK does not retry a stream cut off mid-body. Before anthropic 2.17 httpx2's
    # RemoteProtocolError escapes as it is; from 2.17 it is the cause of an APIConnectionError.
    with fake([cut_stream(after_events=4), "never sent"]) as api:
        c = client(api, max_retries=2)
        with (
            pytest.raises((httpx2.RemoteProtocolError, anthropic.APIConnectionError)) as raised,
            c.messages.stream(model=MODEL, max_tokens=100, messages=[user("hi")]) as stream,
        ):
            stream.get_final_message()

    cause = raised.value if isinstance(raised.value, httpx2.RemoteProtocolError) else raised.value.__cause__
    assert isinstance(cause, httpx2.RemoteProtocolError) and "incomplete chunked read" in str(cause)
    assert len(api.requests) == 1


def test_cut_non_streaming_body_is_retried_as_connection_error(fake: type[FakeAnthropic]) -> None:
    with fake([cut_stream(after_events=0), cut_stream(after_events=0), message(text("third time"))]) as api:
        with pytest.raises(anthropic.APIConnectionError):
            create(client(api, max_retries=0), [user("hi")])
        reply = create(client(api, max_retries=1), [user("hi")])

    assert reply.content[0].text == "third time"  # type: ignore[union-attr]
    assert len(api.requests) == 3


def test_delay_makes_the_client_time_out(fake: type[FakeAnthropic]) -> None:
    with fake([delay(2.0, message(text("too late")))]) as api, pytest.raises(anthropic.APITimeoutError):
        create(client(api, timeout=0.2), [user("hi")])


def test_script_running_out_is_a_clear_unretried_error(fake: type[FakeAnthropic]) -> None:
    with fake(["only one"]) as api:
        c = client(api, max_retries=2)
        create(c, [user("hi")])
        with pytest.raises(anthropic.InternalServerError, match="script ran out"):
            create(c, [user("hi again")])

    assert [r.status for r in api.requests] == [200, 500]


def test_script_exception_is_reported(fake: type[FakeAnthropic]) -> None:
    def script(request: RecordedRequest, index: int) -> Reply:
        raise KeyError("no reply for you")

    with fake(script) as api, pytest.raises(anthropic.InternalServerError, match="no reply for you"):
        create(client(api, max_retries=2), [user("hi")])


# --------------------------------------------------------------------------- validation


def test_missing_tool_result_is_a_bad_request(fake: type[FakeAnthropic]) -> None:
    call = {"type": "tool_use", "id": "toolu_1", "name": "bash", "input": {"command": "ls"}}
    history = [user("go"), {"role": "assistant", "content": [call]}, user("well?")]
    with (
        fake(["never sent"]) as api,
        pytest.raises(anthropic.BadRequestError, match="without `tool_result` blocks") as caught,
    ):
        create(client(api), history, tools=[BASH])

    assert caught.value.type == "invalid_request_error"
    assert api.requests[0].status == 400


@pytest.mark.parametrize(
    ("messages", "tools", "complaint"),
    [
        ([{"role": "assistant", "content": "hi"}], None, "first message"),
        ([user("a"), user("b")], None, "roles must alternate"),
        ([user("")], None, "non-empty content"),
        ([user([{"type": "tool_result", "tool_use_id": "toolu_x", "content": "?"}])], [BASH], "unexpected"),
        (
            [
                user("go"),
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "t1", "name": "bash", "input": {}}],
                },
                user([{"type": "text", "text": "first"}, {"type": "tool_result", "tool_use_id": "t1"}]),
            ],
            [BASH],
            "must come first",
        ),
        (
            [
                user("go"),
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "t1", "name": "x", "input": {}}],
                },
                user([{"type": "tool_result", "tool_use_id": "t1", "content": "ok"}]),
            ],
            None,
            "must define tools",
        ),
        ([user("hi")], [BASH, {"name": "bash", "input_schema": {"type": "object"}}], "unique"),
        ([user("hi")], [{"type": "bash_20991231", "name": "bash"}], "does not match"),
        ([user("hi")], [{"type": "bash_20250124", "name": "shell"}], "should be 'bash'"),
        ([user("hi")], [{"name": "no_schema"}], "input_schema"),
    ],
)
def test_invalid_requests_are_rejected(
    fake: type[FakeAnthropic],
    messages: list[dict[str, Any]],
    tools: list[dict[str, Any]] | None,
    complaint: str,
) -> None:
    with fake(["never sent"]) as api:
        kwargs = {"tools": tools} if tools else {}
        with pytest.raises(anthropic.BadRequestError, match=complaint):
            create(client(api), messages, **kwargs)


def test_required_fields(fake: type[FakeAnthropic]) -> None:
    with fake(["never sent"]) as api:
        for missing in ("model", "max_tokens", "messages"):
            body = {"model": MODEL, "max_tokens": 10, "messages": [user("hi")]}
            del body[missing]
            status, payload = post_raw(api, body)
            assert status == 400
            assert payload["error"] == {
                "type": "invalid_request_error",
                "message": f"{missing}: Field required",
            }
        # Rejected requests consume no script: the reply is still there.
        assert create(client(api), [user("hi")]).content[0].text == "never sent"  # type: ignore[union-attr]


def test_server_defined_tools_are_accepted(fake: type[FakeAnthropic]) -> None:
    tools = [
        BASH,
        EDITOR,
        {"type": "text_editor_20250124", "name": "str_replace_editor"},
        {"name": "submit", "description": "Finish.", "input_schema": {"type": "object", "properties": {}}},
    ]
    with fake(["ok"]) as api:
        assert create(client(api), [user("hi")], tools=tools).content[0].text == "ok"  # type: ignore[union-attr]
    assert api.requests[0].body["tools"] == tools


# --------------------------------------------------------------------------- scripts that react


def test_callable_script_sees_the_previous_tool_results(fake: type[FakeAnthropic]) -> None:
    seen: list[list[dict[str, Any]]] = []

    def script(request: RecordedRequest, index: int) -> Reply:
        if index == 0:
            assert last_user_text(request) == "count the files"
            return message(tool_use("bash", {"command": "ls | wc -l"}))
        seen.append(last_tool_results(request))
        return message(text(f"There are {seen[-1][0]['text'].strip()} files."))

    with fake(script) as api:
        c = client(api)
        history: list[Any] = [user("count the files")]
        first = create(c, history, tools=[BASH])
        call = first.content[0]
        assert isinstance(call, anthropic.types.ToolUseBlock)
        history += [
            first.to_param(),
            user(
                [
                    {
                        "type": "tool_result",
                        "tool_use_id": call.id,
                        "content": [{"type": "text", "text": "42\n"}],
                    }
                ]
            ),
        ]
        second = create(c, history, tools=[BASH])

    assert second.content[0].text == "There are 42 files."  # type: ignore[union-attr]
    assert seen == [[{"tool_use_id": call.id, "is_error": False, "text": "42\n"}]]


def test_concurrent_requests_are_all_recorded(fake: type[FakeAnthropic]) -> None:
    with fake(lambda request, index: message(text(last_user_text(request)))) as api:
        c = client(api)
        answers: dict[int, str] = {}

        def ask(n: int) -> None:
            answers[n] = create(c, [user(f"question {n}")]).content[0].text  # type: ignore[union-attr]

        threads = [threading.Thread(target=ask, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    assert answers == {n: f"question {n}" for n in range(8)}
    assert len(api.requests) == 8
    assert {r.status for r in api.requests} == {200}


def test_subprocess_client_uses_base_url_from_env(fake: type[FakeAnthropic]) -> None:
    code = (
        "import anthropic; c = anthropic.Anthropic(max_retries=0);"
        f"print(c.messages.create(model={MODEL!r}, max_tokens=10,"
        " messages=[{'role': 'user', 'content': 'hi'}]).content[0].text)"
    )
    with fake(["from the fake"]) as api:
        env = {**os.environ, **api.env()}
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=30
        )

    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "from the fake"


# --------------------------------------------------------------------------- prompt caching


def test_no_cache_control_bills_everything_as_input(fake: type[FakeAnthropic]) -> None:
    with fake(["a", "b"]) as api:
        c = client(api)
        first = create(c, [user("hi")], system=BIG_SYSTEM)
        second = create(c, [user("hi")], system=BIG_SYSTEM)

    for reply in (first, second):
        assert reply.usage.cache_read_input_tokens == 0
        assert reply.usage.cache_creation_input_tokens == 0
    assert second.usage.input_tokens == first.usage.input_tokens > 1024


def test_shared_prefix_is_read_from_cache(fake: type[FakeAnthropic]) -> None:
    system = [{"type": "text", "text": BIG_SYSTEM, "cache_control": {"type": "ephemeral"}}]
    turn2 = [user("fix the bug"), {"role": "assistant", "content": "Looking."}, user("Any luck?")]
    with fake(["a", "b", "c"]) as api:
        c = client(api)
        uncached = create(c, turn2, system=BIG_SYSTEM).usage
        first = create(c, [user("fix the bug")], system=system).usage
        second = create(c, turn2, system=system).usage

    assert first.cache_read_input_tokens == 0
    assert first.cache_creation_input_tokens == estimate_tokens({"type": "text", "text": BIG_SYSTEM})
    assert second.cache_read_input_tokens == first.cache_creation_input_tokens
    assert second.cache_creation_input_tokens == 0  # the only breakpoint was already cached
    assert 0 < second.input_tokens < uncached.input_tokens
    assert second.input_tokens + second.cache_read_input_tokens == uncached.input_tokens
    assert api.total_usage()["cache_read_input_tokens"] == second.cache_read_input_tokens


def test_moving_breakpoint_hits_via_lookback(fake: type[FakeAnthropic]) -> None:
    """The agent-loop pattern: one breakpoint on the newest block of each turn."""

    def marked(s: str) -> dict[str, Any]:
        return user([{"type": "text", "text": s, "cache_control": {"type": "ephemeral"}}])

    with fake(["a", "b"]) as api:
        c = client(api)
        first = create(c, [marked("fix the bug")], system=BIG_SYSTEM).usage
        turn2 = [user("fix the bug"), {"role": "assistant", "content": "Looking."}, marked("Any luck?")]
        with c.messages.stream(model=MODEL, max_tokens=10, messages=turn2, system=BIG_SYSTEM) as stream:
            second = stream.get_final_message().usage

    assert first.cache_creation_input_tokens > 1024 and first.input_tokens == 0
    assert second.cache_read_input_tokens == first.cache_creation_input_tokens
    assert second.cache_creation_input_tokens == estimate_tokens(
        {"type": "text", "text": "Looking."}
    ) + estimate_tokens({"type": "text", "text": "Any luck?"})
    assert second.input_tokens == 0


def test_lookback_is_limited_to_20_blocks(fake: type[FakeAnthropic]) -> None:
    def turn(n: int) -> list[dict[str, Any]]:
        blocks: list[dict[str, Any]] = [{"type": "text", "text": f"note {i}"} for i in range(n)]
        blocks[-1] = {**blocks[-1], "cache_control": {"type": "ephemeral"}}
        return [user(blocks)]

    with fake(["a", "b", "c"], min_cacheable_tokens=1) as api:
        c = client(api)
        create(c, turn(5))
        near = create(c, turn(25)).usage  # the entry at block 5 is 20 blocks back: found
        far = create(c, turn(50)).usage  # the newest entry (block 25) is 25 blocks back: missed

    assert near.cache_read_input_tokens > 0
    assert far.cache_read_input_tokens == 0
    assert far.cache_creation_input_tokens > 0


def test_short_prefixes_are_not_cached(fake: type[FakeAnthropic]) -> None:
    system = [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}]
    with fake(["a", "b"]) as api:
        c = client(api)
        replies = [create(c, [user("hi")], system=system).usage for _ in range(2)]

    for usage in replies:
        assert usage.cache_creation_input_tokens == 0
        assert usage.cache_read_input_tokens == 0


def test_tool_and_top_level_breakpoints(fake: type[FakeAnthropic]) -> None:
    big_tool = {"name": "lookup", "description": BIG_SYSTEM, "input_schema": {"type": "object"}}
    with fake(["a", "b"]) as api:
        c = client(api)
        first = create(c, [user("hi")], tools=[{**big_tool, "cache_control": {"type": "ephemeral"}}]).usage
        second = create(c, [user("hi")], tools=[big_tool], cache_control={"type": "ephemeral"}).usage

    assert first.cache_creation_input_tokens == estimate_tokens(big_tool)
    assert second.cache_read_input_tokens == estimate_tokens(big_tool)
    assert second.cache_creation_input_tokens == estimate_tokens({"type": "text", "text": "hi"})


def test_more_than_four_breakpoints_is_a_bad_request(fake: type[FakeAnthropic]) -> None:
    cc = {"cache_control": {"type": "ephemeral"}}
    blocks = [{"type": "text", "text": f"part {i}", **cc} for i in range(5)]
    with fake(["never sent"]) as api, pytest.raises(anthropic.BadRequestError, match="maximum of 4"):
        create(client(api), [user(blocks)])
