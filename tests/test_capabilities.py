"""What a model can do, from the Models API (the real SDK against the fake), cached on disk, with
the table as the offline fallback and the user's models.toml over both; per-model checks of
effort, --max-cost and the context strategy; the provider extras checked before anything starts."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import anthropic
import pytest

from patchwright.capabilities import (
    CACHE_TTL,
    Capabilities,
    CapabilityCache,
    cache_folder,
    check_model_use,
    choose_effort,
    from_model_info,
    know_model,
    read_user_models,
)
from patchwright.config import Settings, check
from patchwright.context import COMPACT, ContextPolicy
from patchwright.errors import ConfigError, UsageError
from patchwright.model import DEFAULT_CONTEXT_WINDOW, check_credentials, check_provider_extras, model_info

from fakeapi import FakeAnthropic, ModelSpec, message, text, tool_use
from helpers import make_repo

NEW_MODEL = "claude-nova-9"  # in no table: only the (fake) Models API knows it
NEW_SPEC = ModelSpec(
    context=1_000_000,
    max_output=128_000,
    thinking="adaptive",
    efforts=("low", "medium", "high", "xhigh", "max"),
    edits=("clear_thinking_20251015", "clear_tool_uses_20250919"),
)


def env_for(api: FakeAnthropic | None, tmp_path: Path, base_url: str | None = None) -> dict[str, str]:
    env = {
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "ANTHROPIC_API_KEY": "sk-ant-test-capabilities",
    }
    env["ANTHROPIC_BASE_URL"] = base_url or (api.base_url if api else "")
    return env


def closed_port_url() -> str:
    """A local address nothing listens on: the API "unreachable" without waiting for a timeout."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def api_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    """Point the SDK (which reads the process environment) at a fake; returns (api, env)."""
    api = FakeAnthropic(["unused"], models={NEW_MODEL: NEW_SPEC}).start()
    env = env_for(api, tmp_path)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    yield api, env
    api.close()


# --------------------------------------------------------------------------- the SDK's ModelInfo


def test_capabilities_are_read_from_the_sdks_model_info(api_env: Any) -> None:
    api, _ = api_env
    client = anthropic.Anthropic(base_url=api.base_url, api_key="sk-ant-test", max_retries=0)
    caps = from_model_info(client.models.retrieve(NEW_MODEL))
    assert caps == Capabilities(
        context=1_000_000,
        max_output=128_000,
        thinking="adaptive",
        efforts=("low", "medium", "high", "xhigh", "max"),
        context_edits=("clear_thinking_20251015", "clear_tool_uses_20250919"),
    )
    manual = from_model_info(client.models.retrieve("claude-haiku-4-5"))
    assert manual.thinking == "extended" and manual.efforts == ()
    no_xhigh = from_model_info(client.models.retrieve("claude-sonnet-4-6"))
    assert no_xhigh.efforts == ("low", "medium", "high", "max")
    assert [r.path for r in api.model_requests] == [
        f"/v1/models/{m}" for m in (NEW_MODEL, "claude-haiku-4-5", "claude-sonnet-4-6")
    ]
    assert api.requests == []  # the Messages traffic is counted apart
    listed = client.models.list()
    assert NEW_MODEL in [m.id for m in listed.data]


# --------------------------------------------------------------------------- the lookup and its cache


def test_a_cold_cache_is_filled_once_and_a_warm_one_asks_nothing(api_env: Any, tmp_path: Path) -> None:
    api, env = api_env
    knowledge = know_model(NEW_MODEL, "anthropic", tmp_path, env)
    assert knowledge.lookup is not None  # nothing cached: to be asked
    assert knowledge.info.context == DEFAULT_CONTEXT_WINDOW and knowledge.info.thinking is None
    knowledge.lookup.begin()
    assert knowledge.finish() == []
    info = knowledge.info
    assert (info.context, info.max_output, info.thinking) == (1_000_000, 128_000, "adaptive")
    assert info.efforts == NEW_SPEC.efforts and info.source == "models-api"
    assert len(api.model_requests) == 1
    entry = json.loads((tmp_path / "cache" / "patchwright" / "models" / f"{NEW_MODEL}.json").read_text())
    assert entry["base_url"] == api.base_url and entry["capabilities"]["max_output"] == 128_000

    again = know_model(NEW_MODEL, "anthropic", tmp_path, env)
    assert again.lookup is None  # fresh: no thread, no request
    assert again.info == info and again.info.source == "cache"
    assert again.finish() == []
    assert len(api.model_requests) == 1


def test_an_expired_entry_is_used_until_the_api_answers_again(api_env: Any, tmp_path: Path) -> None:
    api, env = api_env
    cache = CapabilityCache(cache_folder(tmp_path, env), api.base_url)
    old = Capabilities(context=500_000, max_output=32_000, thinking="adaptive", efforts=("low",))
    cache.write(NEW_MODEL, old, 1_000.0)
    assert cache.read(NEW_MODEL) is not None
    assert not cache.read(NEW_MODEL).fresh(1_000.0 + CACHE_TTL)  # type: ignore[union-attr]

    stale = know_model(NEW_MODEL, "anthropic", tmp_path, env)
    assert stale.lookup is not None and stale.info.max_output == 32_000  # used until the answer
    stale.lookup.begin()
    stale.finish()
    assert stale.info.max_output == 128_000 and len(api.model_requests) == 1


def test_an_entry_from_another_endpoint_or_damaged_is_a_miss(tmp_path: Path) -> None:
    folder = tmp_path / "models"
    CapabilityCache(folder, "https://a.example").write(NEW_MODEL, Capabilities(context=5), 10.0)
    assert CapabilityCache(folder, "https://a.example").read(NEW_MODEL) is not None
    assert CapabilityCache(folder, "https://b.example").read(NEW_MODEL) is None
    (folder / f"{NEW_MODEL}.json").write_text(
        '{"base_url": "https://a.example", "capabilities": {"efforts": ["turbo"]}}'
    )
    assert CapabilityCache(folder, "https://a.example").read(NEW_MODEL) is None
    (folder / f"{NEW_MODEL}.json").write_text("{not json")
    assert CapabilityCache(folder, "https://a.example").read(NEW_MODEL) is None
    assert CapabilityCache(folder, "x").read("../../etc/passwd") is None  # never a path outside
    CapabilityCache(folder, "x").write("../escape", Capabilities(), 1.0)
    assert not (tmp_path / "escape.json").exists()


def test_unknown_and_unreachable_is_one_warning_and_conservative_defaults(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env = env_for(None, tmp_path, closed_port_url())
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    knowledge = know_model(NEW_MODEL, "anthropic", tmp_path, env)
    assert knowledge.lookup is not None
    knowledge.lookup.begin()
    warnings = knowledge.finish()
    assert len(warnings) == 1 and "\n" not in warnings[0]
    assert NEW_MODEL in warnings[0] and "200,000-token window" in warnings[0]
    info = knowledge.info
    assert (info.context, info.max_output, info.thinking, info.efforts) == (
        DEFAULT_CONTEXT_WINDOW,
        None,
        None,
        None,
    )
    assert not (tmp_path / "cache" / "patchwright" / "models" / f"{NEW_MODEL}.json").exists()


def test_a_stale_entry_is_used_when_the_api_cannot_be_reached(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env = env_for(None, tmp_path, closed_port_url())
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    old = Capabilities(context=500_000, max_output=32_000, thinking="adaptive", efforts=("low", "high"))
    CapabilityCache(cache_folder(tmp_path, env), env["ANTHROPIC_BASE_URL"]).write(NEW_MODEL, old, 1_000.0)
    knowledge = know_model(NEW_MODEL, "anthropic", tmp_path, env)
    assert knowledge.lookup is not None
    knowledge.lookup.begin()
    assert knowledge.finish() == []  # known, if from an old answer: no warning
    assert knowledge.info.max_output == 32_000 and knowledge.info.source == "cache-expired"


def test_a_known_model_offline_falls_back_to_the_table_without_a_warning(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env = env_for(None, tmp_path, closed_port_url())
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    knowledge = know_model("claude-haiku-4-5", "anthropic", tmp_path, env)
    assert knowledge.lookup is not None
    knowledge.lookup.begin()
    assert knowledge.finish() == []
    assert knowledge.info == model_info("claude-haiku-4-5")


def test_bedrock_and_vertex_use_the_table_and_ask_nothing(tmp_path: Path) -> None:
    for provider in ("bedrock", "vertex"):
        knowledge = know_model("us.anthropic.claude-opus-4-5-20251101-v1:0", provider, tmp_path, {})
        assert knowledge.lookup is None
        assert knowledge.info.efforts == ("low", "medium", "high")


# --------------------------------------------------------------------------- the user's models.toml


def write_user_models(tmp_path: Path, text_: str) -> Path:
    path = tmp_path / "config" / "patchwright" / "models.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text_)
    return path


def test_the_users_rows_win_over_the_api_and_the_table(api_env: Any, tmp_path: Path) -> None:
    _, env = api_env
    write_user_models(
        tmp_path,
        f'[models."{NEW_MODEL}"]\ninput = 1.5\noutput = 7.5\nmax_output = 20000\nefforts = ["low"]\n',
    )
    knowledge = know_model(NEW_MODEL, "anthropic", tmp_path, env)
    assert knowledge.info.priced and knowledge.info.efforts == ("low",)
    assert knowledge.lookup is not None
    knowledge.lookup.begin()
    knowledge.finish()
    info = knowledge.info
    assert (info.input, info.output, info.max_output, info.efforts) == (1.5, 7.5, 20_000, ("low",))
    assert info.thinking == "adaptive" and info.context == 1_000_000  # the rest from the API
    assert info.source == "models-api+user"


@pytest.mark.parametrize(
    ("text_", "complaint"),
    [
        ('[models."m"]\nprice = 3\n', "unknown key 'price'"),
        ('[models."m"]\ninput = "three"\n', "input must be int or float"),
        ('[models."m"]\ninput = -1\n', "must not be negative"),
        ('[models."m"]\nefforts = ["turbo"]\n', "efforts holds 'turbo'"),
        ('[models."m"]\nthinking = "deep"\n', "thinking must be one of"),
        ("model = 3\n", 'expected only [models."MODEL-ID"] tables'),
        ("[models\n", "invalid TOML"),
    ],
)
def test_a_bad_models_toml_is_an_input_error(tmp_path: Path, text_: str, complaint: str) -> None:
    path = write_user_models(tmp_path, text_)
    with pytest.raises(ConfigError, match=complaint.replace("[", r"\[").replace("(", r"\(")):
        read_user_models(path)


# --------------------------------------------------------------------------- checked before anything starts


@pytest.mark.parametrize(
    ("model", "effort", "complaint"),
    [
        ("claude-haiku-4-5", "low", "takes no effort setting; leave --effort"),
        ("claude-sonnet-4-6", "xhigh", "it takes low, medium, high, max"),
        ("claude-opus-4-5", "max", "it takes low, medium, high"),
    ],
)
def test_an_effort_the_model_lacks_is_refused_naming_its_levels(
    tmp_path: Path, model: str, effort: str, complaint: str
) -> None:
    info = know_model(model, "bedrock", tmp_path, {}).info
    with pytest.raises(UsageError, match=complaint):
        choose_effort(model, info, effort, None)


def test_an_agent_files_effort_the_model_lacks_is_left_out_with_a_warning(tmp_path: Path) -> None:
    info = know_model("claude-haiku-4-5", "bedrock", tmp_path, {}).info
    effort, warnings = choose_effort("claude-haiku-4-5", info, None, "high")
    assert effort is None and len(warnings) == 1 and "agent file's effort high" in warnings[0]
    assert choose_effort("claude-opus-4-8", model_info("claude-opus-4-8"), "xhigh", "low") == ("xhigh", [])
    unknown = model_info("claude-unknown-1")
    assert choose_effort("claude-unknown-1", unknown, "max", None) == ("max", [])  # not known: as asked


def test_max_cost_on_an_unpriced_model_says_how_to_set_a_price(tmp_path: Path) -> None:
    knowledge = know_model("claude-fable-5-2", "bedrock", tmp_path, {"XDG_CONFIG_HOME": str(tmp_path / "c")})
    with pytest.raises(UsageError) as caught:
        check_model_use(knowledge, 5.0, ContextPolicy())
    message = str(caught.value)
    assert '[models."claude-fable-5-2"] input = USD, output = USD' in message
    assert str(tmp_path / "c" / "patchwright" / "models.toml") in message
    check_model_use(knowledge, None, ContextPolicy())  # without --max-cost it runs (cost unknown)
    path = tmp_path / "c" / "patchwright" / "models.toml"  # a price set there makes it priced
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text('[models."claude-fable-5-2"]\ninput = 8.0\noutput = 40.0\n')
    priced = know_model("claude-fable-5-2", "bedrock", tmp_path, {"XDG_CONFIG_HOME": str(tmp_path / "c")})
    check_model_use(priced, 5.0, ContextPolicy())


def test_compaction_on_a_model_without_it_is_refused(api_env: Any, tmp_path: Path) -> None:
    _, env = api_env
    knowledge = know_model(NEW_MODEL, "anthropic", tmp_path, env)
    assert knowledge.lookup is not None
    knowledge.lookup.begin()
    knowledge.finish()
    with pytest.raises(UsageError, match=COMPACT):
        check_model_use(knowledge, None, ContextPolicy("compact", 100_000))
    check_model_use(knowledge, None, ContextPolicy("clear", 100_000))


def test_the_compaction_trigger_is_bounded_as_documented() -> None:
    with pytest.raises(ConfigError, match="at least 50000 input tokens with context_strategy compact"):
        check(Settings(context_strategy="compact", context_trigger=1_000))
    check(Settings(context_strategy="compact", context_trigger=50_000))
    check(Settings(context_strategy="clear", context_trigger=1_000))  # clearing has no such floor


def test_provider_extras_are_checked_before_anything_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "google.auth", None)
    with pytest.raises(UsageError, match=r"needs extra packages: pip install 'patchwright\[vertex\]'"):
        check_credentials("vertex")
    monkeypatch.setitem(sys.modules, "boto3", None)
    # botocore may be missing too, where the extra was never installed: it is named after boto3
    with pytest.raises(UsageError, match=r"pip install 'patchwright\[bedrock\]' \(missing: boto3[,)]"):
        check_provider_extras("bedrock")
    check_provider_extras("anthropic")


def test_agent_fix_with_a_missing_provider_extra_exits_2_before_anything_starts(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"a.py": "x = 1\n"})
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text("import sys\nsys.modules['google.auth'] = None\n")
    inherited = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "PYTHONPATH": os.pathsep.join([str(hide), *inherited]),
    }
    result = subprocess.run(
        [sys.executable, "-m", "patchwright", "fix", "task", "--repo", str(repo), "--provider", "vertex"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2, result.stderr
    assert "needs extra packages: pip install 'patchwright[vertex]'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert not (repo / ".patchwright" / "runs").exists()  # no run record: nothing started


def test_a_model_only_the_models_api_knows_is_driven_as_it_says(tmp_path: Path, sandbox_image: str) -> None:
    """`agent fix` with a new model: adaptive thinking, 128K output, its effort levels, as the
    request bodies the fake received show; a warm cache then asks nothing."""
    repo = make_repo(tmp_path / "svc", {"notes.txt": "nothing to test here\n"})  # no self-check
    script = [message(text("Looking."), tool_use("bash", {"command": "true"})), message(text("Done."))]
    with FakeAnthropic(script * 2, models={NEW_MODEL: NEW_SPEC}) as api:
        env = _agent_env(api, tmp_path, sandbox_image)
        args = [
            "fix",
            "look",
            "--repo",
            str(repo),
            "--model",
            NEW_MODEL,
            "--max-tokens",
            "200000",
            "--effort",
            "xhigh",
        ]
        first = subprocess.run(
            [sys.executable, "-m", "patchwright", *args], env=env, capture_output=True, text=True, timeout=300
        )
        assert first.returncode == 1, first.stderr  # no changes
        assert "warning" not in first.stderr
        bodies = [r.body for r in api.requests]
        assert len(bodies) == 2 and len(api.model_requests) == 1
        for body in bodies:
            assert body["model"] == NEW_MODEL
            assert body["thinking"] == {"type": "adaptive"}
            assert body["max_tokens"] == 128_000  # cut to the API's max_tokens, not 64000 or 200000
            assert body["output_config"] == {"effort": "xhigh"}
            kinds = [e["type"] for e in body["context_management"]["edits"]]
            assert kinds == ["clear_thinking_20251015", "clear_tool_uses_20250919"]
        run = next((repo / ".patchwright" / "runs").iterdir())
        records = [json.loads(line) for line in (run / "trajectory.jsonl").read_text().splitlines()]
        caps = next(r for r in records if r["event"] == "model_capabilities")
        assert caps["source"] == "models-api" and caps["context"] == 1_000_000 and not caps["priced"]

        second = subprocess.run(
            [sys.executable, "-m", "patchwright", *args], env=env, capture_output=True, text=True, timeout=300
        )
        assert second.returncode == 1, second.stderr
        assert len(api.model_requests) == 1  # the cache answered
        assert api.requests[-1].body["max_tokens"] == 128_000

        bad = subprocess.run(
            [sys.executable, "-m", "patchwright", *args, "--max-cost", "1"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert bad.returncode == 2 and "models.toml" in bad.stderr and len(api.requests) == 4


def _agent_env(api: FakeAnthropic, tmp_path: Path, image: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "PATCHWRIGHT_", "XDG_"))}
    env.update(api.env(api_key="sk-ant-api03-capabilities-test-0000"))
    env.update(
        {
            "PATCHWRIGHT_IMAGE": image,
            "CI": "true",
            "PATCHWRIGHT_MAX_RETRIES": "0",
            "XDG_CACHE_HOME": str(tmp_path / "cache"),
            "XDG_CONFIG_HOME": str(tmp_path / "config"),
        }
    )
    return env


def test_a_model_the_api_does_not_know_gets_the_warning_and_no_cache_entry(
    api_env: Any, tmp_path: Path
) -> None:
    api, env = api_env
    knowledge = know_model("claude-nobody-1", "anthropic", tmp_path, env)
    assert knowledge.lookup is not None
    knowledge.lookup.begin()
    warnings = knowledge.finish()
    assert len(warnings) == 1 and "NotFoundError 404" in warnings[0]
    assert [r.path for r in api.model_requests] == ["/v1/models/claude-nobody-1"]
    assert (
        know_model("claude-nobody-1", "anthropic", tmp_path, env).lookup is not None
    )  # asked again next run


def test_a_trigger_past_the_window_is_a_warning(tmp_path: Path) -> None:
    knowledge = know_model("claude-haiku-4-5", "bedrock", tmp_path, {})  # a 200K window
    (warning,) = check_model_use(knowledge, None, ContextPolicy("clear", 200_000))
    assert "200,000-token window" in warning
    assert check_model_use(knowledge, None, ContextPolicy("clear", 100_000)) == []
    assert check_model_use(knowledge, None, ContextPolicy("off", 500_000)) == []


def test_agent_fix_refuses_an_effort_the_model_lacks_before_anything_starts(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"a.py": "x = 1\n"})
    with FakeAnthropic([]) as api:
        env = {
            k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "PATCHWRIGHT_", "XDG_"))
        }
        env.update({**env_for(api, tmp_path), "PATCHWRIGHT_IMAGE": "patchwright-no-such-image:never"})
        for model, effort, says in (
            (
                "claude-haiku-4-5",
                "high",
                "model claude-haiku-4-5 has no such effort level; it takes no effort setting",
            ),
            ("claude-sonnet-4-6", "xhigh", "it takes low, medium, high, max"),
        ):
            result = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "patchwright",
                    "fix",
                    "x",
                    "--repo",
                    str(repo),
                    "--model",
                    model,
                    "--effort",
                    effort,
                ],
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
            )
            assert result.returncode == 2, result.stderr
            assert says in result.stderr and len(result.stderr.strip().splitlines()) == 1
        assert api.requests == []
    assert not (repo / ".patchwright" / "runs").exists()
