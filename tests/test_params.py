"""Every request body the loop builds, for every model in the installed SDK's `Model` list and
each effort level, is well-formed by the SDK's own MessageCreateParams types (recursively), and
carries what the Models API says the model takes."""

from __future__ import annotations

import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import pytest
from anthropic.types import message_create_params
from anthropic.types.beta import message_create_params as beta_message_create_params

from patchwright.capabilities import choose_effort, from_model_info, merge
from patchwright.context import ContextPolicy
from patchwright.errors import UsageError
from patchwright.model import model_info
from patchwright.params import EFFORTS, request_params
from patchwright.status import RunStatus
from test_loop import Harness

from fakeapi import MODEL_CATALOGUE, FakeAnthropic, message, text, tool_use
from sdk_types import problems


def sdk_models() -> list[str]:
    """The Literal names of `anthropic.types.Model` (a Union of a Literal and str)."""
    literal = next(a for a in typing.get_args(anthropic.types.Model) if typing.get_args(a))
    return list(typing.get_args(literal))


SDK_MODELS = sdk_models()
POLICIES = (ContextPolicy("clear", 50_000), ContextPolicy("compact", 50_000), ContextPolicy("off"))


def test_the_sdk_model_list_is_what_this_test_covers() -> None:
    assert len(SDK_MODELS) >= 20 and "claude-mythos-preview" in SDK_MODELS
    assert set(SDK_MODELS) <= set(MODEL_CATALOGUE)  # the fake serves each one's capabilities


@pytest.fixture(scope="module")
def api() -> Iterator[FakeAnthropic]:
    def script(_: Any, index: int) -> Any:
        return message(text("Looking."), tool_use("echo", {"text": "x"})) if index % 2 == 0 else "Done."

    with FakeAnthropic(script, think=True) as fake:
        yield fake


def run_and_check(
    api: FakeAnthropic, tmp_path: Path, model: str, effort: str | None, policy: ContextPolicy
) -> int:
    """One loop of two turns; returns how many bodies were checked. Asserts every body fits."""
    client = anthropic.Anthropic(base_url=api.base_url, api_key="sk-ant-test", max_retries=0)
    info = merge(model_info(model), from_model_info(client.models.retrieve(model)), None, "models-api")
    spec = MODEL_CATALOGUE[model]
    try:
        chosen, _ = choose_effort(model, info, effort, None)
    except UsageError as err:
        assert effort not in spec.efforts, f"{model} takes {effort} yet it was refused: {err}"
        return 0
    assert effort is None or effort in spec.efforts
    params = request_params(info, chosen, policy)
    before = len(api.requests)
    harness = Harness(api, tmp_path / f"{model}-{effort}-{policy.strategy}", model=model, params=params)
    assert harness.run() == RunStatus.COMPLETED, [r.status for r in api.requests[before:]]
    checked = 0
    for request in api.requests[before:]:
        assert request.status == 200
        beta = bool(request.headers.get("anthropic-beta"))
        params_type = (
            beta_message_create_params.MessageCreateParamsStreaming
            if beta
            else message_create_params.MessageCreateParamsStreaming
        )
        found = problems(request.body, params_type)
        assert not found, f"{model} effort={effort} {policy.strategy}: {found[:5]}"
        assert request.body.get("output_config", {}).get("effort") == chosen
        thinking = request.body.get("thinking")
        assert (thinking == {"type": "adaptive"}) == (spec.thinking == "adaptive")
        edits = [e["type"] for e in (request.body.get("context_management") or {}).get("edits", [])]
        assert set(edits) <= set(spec.edits)
        checked += 1
    return checked


@pytest.mark.parametrize("model", SDK_MODELS)
def test_every_request_body_fits_the_sdks_types(api: FakeAnthropic, tmp_path: Path, model: str) -> None:
    checked = 0
    for n, effort in enumerate((None, *EFFORTS)):
        checked += run_and_check(api, tmp_path, model, effort, POLICIES[n % len(POLICIES)])
    runs = 1 + len(MODEL_CATALOGUE[model].efforts)  # without effort, then each level it takes
    assert checked == 2 * runs  # two turns each


def test_the_checker_catches_what_the_api_would_refuse() -> None:
    """The same check on bodies with the faults it is there to find."""
    good = {
        "model": "claude-sonnet-5-5",
        "max_tokens": 1024,
        "stream": True,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        "thinking": {"type": "adaptive"},
        "output_config": {"effort": "max"},
    }
    streaming = message_create_params.MessageCreateParamsStreaming
    assert problems(good, streaming) == []
    assert problems({**good, "effort": "max"}, streaming) == [
        "$: unknown key 'effort' for MessageCreateParamsStreaming"
    ]
    assert (
        "missing required key 'max_tokens'"
        in problems({k: v for k, v in good.items() if k != "max_tokens"}, streaming)[0]
    )
    assert (
        "'extreme' is not one of" in problems({**good, "output_config": {"effort": "extreme"}}, streaming)[0]
    )
    fallback = {
        "role": "assistant",
        "content": [{"type": "fallback", "from_": {"model": "a"}, "to": {"model": "b"}}],
    }
    found = problems(
        {**good, "messages": [*good["messages"], fallback]},
        beta_message_create_params.MessageCreateParamsStreaming,
    )
    assert any("unknown key 'from_'" in p for p in found) and any(
        "missing required key 'from'" in p for p in found
    )
