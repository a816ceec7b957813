"""Model lookup and pricing, usage and cost, and the client made from the environment."""

from __future__ import annotations

from pathlib import Path

import anthropic
import pytest

from patchwright.errors import ExitCode, UsageError
from patchwright.model import (
    CACHE_READ_FACTOR,
    CACHE_WRITE_FACTOR,
    DEFAULT_CONTEXT_WINDOW,
    DEFAULT_MODEL,
    ModelInfo,
    Usage,
    make_client,
    model_info,
)

# --------------------------------------------------------------------------- model_info


SONNET_5_5 = ModelInfo(2.0, 10.0, 1_000_000, 2.5, 4.0, 0.2, 128_000, "adaptive")
SONNET_4_5 = ModelInfo(3.0, 15.0, 200_000, 3.75, 6.0, 0.3, None, "extended", efforts=())


def test_model_info_exact_id() -> None:
    info = model_info("claude-sonnet-5-5")
    assert info == SONNET_5_5
    assert info.priced
    assert model_info("claude-haiku-4-5") == ModelInfo(
        1.0, 5.0, 200_000, 1.25, 2.0, 0.1, 64_000, "extended", efforts=()
    )
    assert model_info(DEFAULT_MODEL).priced  # the default model must have a price


def test_model_info_dated_id_falls_back_to_the_alias() -> None:
    assert model_info("claude-sonnet-4-5-20250929") == SONNET_4_5
    assert model_info("claude-opus-4-5-20251101") == ModelInfo(
        5.0, 25.0, 200_000, 6.25, 10.0, 0.5, None, "extended", ("low", "medium", "high")
    )


@pytest.mark.parametrize(
    "model",
    [
        "anthropic.claude-sonnet-4-5-20250929-v1:0",
        "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
        "eu.anthropic.claude-sonnet-4-5-20250929-v1:0",
        "apac.anthropic.claude-sonnet-4-5-20250929-v1:0",
        "global.anthropic.claude-sonnet-4-5-20250929-v1:0",
        "us.anthropic.claude-sonnet-4-5-v1",
        "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-sonnet-4-5-20250929-v1:0",
        "claude-sonnet-4-5@20250929",
        "projects/p/locations/us-east5/publishers/anthropic/models/claude-sonnet-4-5@20250929",
    ],
)
def test_model_info_bedrock_and_vertex_ids(model: str) -> None:
    assert model_info(model) == SONNET_4_5


@pytest.mark.parametrize(
    "model",
    [
        "gpt-4o",
        "",
        "claude-unknown-9-20990101",
        "@@@",
        "a/b/",
        "us.anthropic.",
        "claude-sonnet-4-5x",
        "x" * 500,
    ],
)
def test_unknown_model_is_unpriced_and_never_raises(model: str) -> None:
    info = model_info(model)
    assert info == ModelInfo(None, None, DEFAULT_CONTEXT_WINDOW)
    assert not info.priced
    assert Usage(input_tokens=1_000_000).cost(info) is None


# --------------------------------------------------------------------------- Usage


def test_usage_cost_applies_the_cache_factors() -> None:
    usage = Usage(
        input_tokens=1_000,
        output_tokens=500,
        cache_creation_input_tokens=2_000,
        cache_read_input_tokens=10_000,
    )
    # By hand, at $2 / $10 per million: input 1,000 + writes 2,000 x 1.25 + reads 10,000 x 0.1
    # = 4,500 input-equivalent tokens -> $0.009; 500 output tokens -> $0.005.
    assert (CACHE_WRITE_FACTOR, CACHE_READ_FACTOR) == (1.25, 0.1)
    assert usage.billed_input_equivalent() == pytest.approx(4_500)
    assert usage.cost(SONNET_5_5) == pytest.approx(0.014)
    assert usage.prompt_tokens == 13_000
    # Without caching the same prompt would have cost 13,000 x $2/M + $0.005.
    assert Usage(input_tokens=13_000, output_tokens=500).cost(SONNET_5_5) == pytest.approx(0.031)
    assert usage.cost(ModelInfo(None, 10.0, 1)) is None


def test_usage_add_and_from_counts() -> None:
    total = Usage(1, 2, 3, 4)
    total.add(Usage(10, 20, 30, 40))
    assert total.as_dict() == {
        "input_tokens": 11,
        "output_tokens": 22,
        "cache_creation_input_tokens": 33,
        "cache_read_input_tokens": 44,
        "cache_creation_1h_input_tokens": 0,
    }
    # counts the API leaves empty are 0; a compaction's iteration is counted with the turn
    counts = {
        "input_tokens": 7,
        "output_tokens": 3,
        "cache_creation_input_tokens": None,
        "cache_read_input_tokens": None,
        "cache_creation": {"ephemeral_1h_input_tokens": 2, "ephemeral_5m_input_tokens": 0},
        "iterations": [
            {"type": "compaction", "input_tokens": 100, "output_tokens": 20},
            {"type": "message", "input_tokens": 7, "output_tokens": 3},
        ],
    }
    assert Usage.from_counts(counts) == Usage(107, 23, 0, 0, 2)


# --------------------------------------------------------------------------- make_client


def test_make_client_without_credentials_is_a_usage_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.delenv("ANTHROPIC_AUTH_TOKEN", raising=False)
    with pytest.raises(UsageError, match="ANTHROPIC_API_KEY") as caught:
        make_client("anthropic")
    assert caught.value.exit_code == ExitCode.USAGE


def test_make_client_accepts_an_api_key_or_an_auth_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    monkeypatch.setenv("ANTHROPIC_AUTH_TOKEN", "sk-ant-oat-test-token")
    client = make_client("anthropic", max_retries=3, timeout=12.0)
    assert isinstance(client, anthropic.Anthropic)
    assert client.max_retries == 3
    assert client.timeout == 12.0
    monkeypatch.delenv("ANTHROPIC_AUTH_TOKEN")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-key")
    assert isinstance(make_client("anthropic"), anthropic.Anthropic)


def test_make_client_reports_unusable_providers(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unknown provider 'openai'"):
        make_client("openai")  # type: ignore[arg-type]
    # No region anywhere: the provider SDK's own error becomes a UsageError (or missing extras do).
    for name in ("CLOUD_ML_REGION", "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    for provider in ("bedrock", "vertex"):
        with pytest.raises(UsageError, match=f"--provider {provider}"):
            make_client(provider)  # type: ignore[arg-type]
