"""Model lookup and pricing, run outputs (redaction, trajectory, atomic files, patch paths),
and layered configuration. No network, no Docker: plain files in tmp_path and real git."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import anthropic
import pytest
from anthropic.types import Message

from patchwright.config import (
    FIELD_TYPES,
    Settings,
    check,
    load_settings,
    repo_config,
    user_config_path,
)
from patchwright.errors import ConfigError, ExitCode, OutputError, UsageError
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
from patchwright.outputs import (
    REDACTED,
    Redactor,
    RunSummary,
    TrajectoryWriter,
    files_in_patch,
    read_trajectory,
    write_summary,
    write_text_file,
)

from helpers import git

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


def test_usage_add_and_from_message() -> None:
    total = Usage(1, 2, 3, 4)
    total.add(Usage(10, 20, 30, 40))
    assert total.as_dict() == {
        "input_tokens": 11,
        "output_tokens": 22,
        "cache_creation_input_tokens": 33,
        "cache_read_input_tokens": 44,
        "cache_creation_1h_input_tokens": 0,
    }
    reply = Message.model_validate(
        {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "m",
            "content": [],
            "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {
                "input_tokens": 7,
                "output_tokens": 3,
                "cache_creation_input_tokens": None,
                "cache_read_input_tokens": None,
            },
        }
    )
    assert Usage.from_message(reply) == Usage(7, 3, 0, 0)


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


# --------------------------------------------------------------------------- Redactor


SECRETS = {
    "anthropic key": "sk-ant-api03-AbCdEf_gh-1234567890xyz",
    "github classic": "ghp_" + "A1b2C3d4E5" * 4,
    "github fine-grained": "github_pat_" + "11ABCDEFG0" * 3,
    "aws key id": "AKIAIOSFODNN7EXAMPLE",
    "private key": "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAA\nQyNTUxOQAAACB\n"
    "-----END OPENSSH PRIVATE KEY-----",
}


@pytest.mark.parametrize("name", list(SECRETS))
def test_redactor_replaces_known_secret_shapes(name: str) -> None:
    secret = SECRETS[name]
    out = Redactor().text(f"before {secret} after")
    assert out == f"before {REDACTED} after"


def test_redactor_replaces_bearer_tokens() -> None:
    out = Redactor().text("curl -H 'Authorization: Bearer abcDEF123456789.xyz_-~+/=' https://x")
    assert out == f"curl -H 'Authorization: {REDACTED}' https://x"
    assert "abcDEF" not in Redactor().text("authorization: bearer abcDEF1234567890abcd")


def test_redactor_leaves_ordinary_text_alone() -> None:
    ordinary = (
        "def add(a, b):\n    return a - b  # the key is to return a + b\n"
        "The bearer of bad news asked for a token. sk-ant-short AKIA123 ghp_short "
        "-----BEGIN CERTIFICATE----- stays."
    )
    assert Redactor().text(ordinary) == ordinary


def test_redactor_replaces_exact_values_of_secret_env_vars() -> None:
    env = {
        "MY_SERVICE_TOKEN": "plain-looking-value-1",
        "DB_KEY": "correcthorsebattery",
        "DB_KEY_OLD": "correcthorsebattery99",  # longer, containing the other: replaced whole
        "SHORT_TOKEN": "abc",  # too short to redact safely
        "HOME": "/home/someone/projects",
        "EDITOR": "vim-editor-long",
    }
    redactor = Redactor.from_environment(env)
    assert set(redactor.values) == {"correcthorsebattery99", "plain-looking-value-1", "correcthorsebattery"}
    assert redactor.values[-1] == "correcthorsebattery"  # longest first, so no value is half-replaced
    text = (
        "a plain-looking-value-1 b correcthorsebattery99 c correcthorsebattery d abc /home/someone/projects"
    )
    assert redactor.text(text) == f"a {REDACTED} b {REDACTED} c {REDACTED} d abc /home/someone/projects"
    assert redactor.text("vim-editor-long") == "vim-editor-long"


def test_redactor_from_the_real_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATCHWRIGHT_TEST_SECRET_TOKEN", "value-only-in-the-env-42")
    assert Redactor.from_environment().text("x value-only-in-the-env-42 y") == f"x {REDACTED} y"


def test_redactor_redacts_nested_data() -> None:
    key = SECRETS["anthropic key"]
    data = {
        "command": f"export KEY={key}",
        "nested": [{"deep": ("ok", key)}, 3, None, True, 2.5],
        key: "keys are left as they are",
    }
    out = Redactor().data(data)
    assert out == {
        "command": f"export KEY={REDACTED}",
        "nested": [{"deep": ["ok", REDACTED]}, 3, None, True, 2.5],
        key: "keys are left as they are",
    }
    assert data["command"] == f"export KEY={key}"  # the input is not modified


# --------------------------------------------------------------------------- trajectory


def test_trajectory_writer_writes_redacted_jsonl(tmp_path: Path) -> None:
    path = tmp_path / "runs" / "r1" / "trajectory.jsonl"  # parents created on first write
    writer = TrajectoryWriter(path, Redactor(["my-own-secret-value"]))
    writer.write("tool_call", id="toolu_1", input={"command": f"echo {SECRETS['github classic']}"})
    writer.write("tool_result", content="printed my-own-secret-value\nand ünïcödé", is_error=False)
    # Flushed as it goes: readable before close.
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2
    writer.close()
    writer.close()  # twice is fine

    records = [json.loads(line) for line in lines]
    assert records[0]["event"] == "tool_call"
    assert records[0]["input"] == {"command": f"echo {REDACTED}"}
    assert records[1] == {
        "ts": records[1]["ts"],
        "event": "tool_result",
        "content": f"printed {REDACTED}\nand ünïcödé",
        "is_error": False,
    }
    assert isinstance(records[1]["ts"], float)
    assert read_trajectory(path) == records


def test_trajectory_writer_appends_to_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "trajectory.jsonl"
    for n in range(2):
        writer = TrajectoryWriter(path, Redactor())
        writer.write("run_start", n=n)
        writer.close()
    assert [r["n"] for r in read_trajectory(path)] == [0, 1]


def test_trajectory_writer_unwritable_path_is_an_output_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    writer = TrajectoryWriter(blocker / "trajectory.jsonl", Redactor())
    with pytest.raises(OutputError, match="cannot write the trajectory") as caught:
        writer.write("run_start")
    assert caught.value.exit_code == ExitCode.INFRA


def test_read_trajectory_skips_a_half_written_last_line(tmp_path: Path) -> None:
    path = tmp_path / "trajectory.jsonl"
    writer = TrajectoryWriter(path, Redactor())
    writer.write("message", role="user", content=[{"type": "text", "text": "task"}])
    writer.write("request", step=1)
    writer.close()
    with path.open("a", encoding="utf-8") as fh:
        fh.write('{"ts": 1.0, "event": "response", "content": [{"type": "te')
    records = read_trajectory(path)
    assert [r["event"] for r in records] == ["message", "request"]


# --------------------------------------------------------------------------- write_text_file


def test_write_text_file_replaces_the_file_atomically(tmp_path: Path) -> None:
    path = tmp_path / "out" / "patch.diff"
    write_text_file(path, "first version\n")
    assert path.read_text() == "first version\n"
    with path.open() as old:
        write_text_file(path, "second version\n")
        # A rename, not an overwrite in place: a reader of the old file sees it whole.
        assert old.read() == "first version\n"
    assert path.read_text() == "second version\n"
    assert sorted(p.name for p in path.parent.iterdir()) == ["patch.diff"]  # no temp file left


def test_write_text_file_keeps_undecodable_bytes(tmp_path: Path) -> None:
    raw = b"binary \xff\xfe in a patch\n"
    path = tmp_path / "patch.diff"
    write_text_file(path, raw.decode("utf-8", "surrogateescape"))
    assert path.read_bytes() == raw


def test_write_text_file_unwritable_dir_is_an_output_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(OutputError, match="cannot write"):
        write_text_file(blocker / "sub" / "summary.json", "{}")
    assert blocker.read_text() == "x"


def test_write_text_file_failed_replace_leaves_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "summary.json"
    target.mkdir()
    (target / "keep").write_text("x")
    with pytest.raises(OutputError, match=str(target)):
        write_text_file(target, "{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.json"]
    assert (target / "keep").read_text() == "x"


def test_write_summary_is_redacted_json(tmp_path: Path) -> None:
    summary = RunSummary(
        run_id="r1",
        status="completed",
        exit_code=0,
        repo="/repo",
        run_dir="/repo/.patchwright/runs/r1",
        model="claude-sonnet-5-5",
        agent="backend-developer",
        task=f"use key {SECRETS['aws key id']}",
        files_changed=["app.py"],
        cost_usd=0.5,
    )
    path = tmp_path / "summary.json"
    write_summary(path, summary, Redactor())
    data = json.loads(path.read_text())
    assert data["task"] == f"use key {REDACTED}"
    assert data["files_changed"] == ["app.py"]
    assert data["cost_usd"] == 0.5
    assert set(data) == set(summary.as_dict())


# --------------------------------------------------------------------------- files_in_patch


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    (root / "keep.py").write_text("x = 1\n")
    (root / "gone.py").write_text("y = 2\n")
    (root / "old_name.py").write_text("".join(f"line {n}\n" for n in range(30)))
    git(root, "add", "-A")
    git(root, "commit", "-qm", "initial")
    return root


def test_files_in_patch_new_deleted_renamed_and_modified(repo: Path) -> None:
    (repo / "keep.py").write_text("x = 2\n")
    (repo / "gone.py").unlink()
    (repo / "old_name.py").rename(repo / "new_name.py")
    (repo / "pkg").mkdir()
    (repo / "pkg" / "new file.py").write_text("z = 3\n")
    git(repo, "add", "-A")
    patch = git(repo, "diff", "--cached", "-M", "--binary")

    assert sorted(files_in_patch(patch)) == ["gone.py", "keep.py", "new_name.py", "pkg/new file.py"]


def test_files_in_patch_ignores_text_that_is_not_a_header() -> None:
    patch = (
        "diff --git a/a.py b/a.py\n--- a/a.py\n+++ b/a.py\n@@ -1 +1 @@\n"
        "-diff --git a/fake b/fake\n+ diff --git a/also b/also\n"
    )
    assert files_in_patch(patch) == ["a.py"]
    assert files_in_patch("") == []


def test_files_in_patch_decodes_quoted_paths(repo: Path) -> None:
    (repo / "café.py").write_text("x\n")
    git(repo, "add", "-A")
    patch = git(repo, "diff", "--cached")
    assert '"b/caf\\303\\251.py"' in patch  # git quotes non-ASCII paths by default
    assert files_in_patch(patch) == ["café.py"]


# --------------------------------------------------------------------------- config


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty home; the user config lives under XDG_CONFIG_HOME in tmp."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    path = tmp_path / "home"
    path.mkdir()
    return path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def user_config(tmp_path: Path, text: str) -> Path:
    return write(tmp_path / "xdg" / "patchwright" / "config.toml", text)


def test_defaults_without_any_config(home: Path, tmp_path: Path) -> None:
    settings, sources = load_settings(tmp_path / "empty-repo", home, {}, {})
    assert settings == Settings()
    assert sources == []
    assert settings.timeout == 3600.0 and settings.network is False and settings.max_steps == 100


def test_user_config_path_honours_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    assert user_config_path(tmp_path) == tmp_path / "xdg" / "patchwright" / "config.toml"
    monkeypatch.delenv("XDG_CONFIG_HOME")
    assert user_config_path(tmp_path) == tmp_path / ".config" / "patchwright" / "config.toml"


def test_each_layer_overrides_the_one_before(home: Path, tmp_path: Path) -> None:
    user = user_config(
        tmp_path,
        'model = "user-model"\nmax_steps = 10\nmemory = "1g"\ncpus = 1\nsetup = "make deps"\n',
    )
    repo = tmp_path / "repo"
    repo_file = write(repo / ".patchwright" / "config.toml", 'max_steps = 20\nmemory = "2g"\ncpus = 1.5\n')
    env = {"PATCHWRIGHT_MEMORY": "3g", "PATCHWRIGHT_CPUS": "2.5", "PATCHWRIGHT_NETWORK": "yes", "OTHER": "x"}
    flags = {"cpus": 3.0, "max_steps": None, "max_cost": None}

    settings, sources = load_settings(repo, home, env, flags)

    assert settings.model == "user-model"  # user only
    assert settings.setup == "make deps"
    assert settings.max_steps == 20  # repo over user; a None flag changes nothing
    assert settings.memory == "3g"  # env over repo
    assert settings.network is True
    assert settings.cpus == 3.0  # flag over env
    assert settings.max_cost is None
    assert sources == [str(user), str(repo_file)]


def test_pyproject_tool_section_is_the_repo_layer(home: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    pyproject = write(
        repo / "pyproject.toml",
        '[project]\nname = "demo"\n\n[tool.patchwright]\nmax-steps = 7\ntest_cmd = "pytest -q"\nmax_cost = 2\n',
    )
    settings, sources = load_settings(repo, home, {}, {})
    assert settings.max_steps == 7  # dashes work like underscores
    assert settings.test_cmd is None  # what verifies the patch is not the repo's to say, untrusted
    assert settings.max_cost == 2  # an int is a fine float
    assert sources == [str(pyproject)]
    trusted, _ = load_settings(repo, home, {"PATCHWRIGHT_TRUST_REPO_CONFIG": "1"}, {})
    assert trusted.test_cmd == "pytest -q"


def test_patchwright_config_wins_over_pyproject(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    write(repo / "pyproject.toml", "[tool.patchwright]\nmax_steps = 7\nno_such_key = 1\n")
    own = write(repo / ".patchwright" / "config.toml", "max_steps = 9\n")
    assert repo_config(repo) == ({"max_steps": 9}, str(own))


def test_pyproject_without_a_tool_section_contributes_nothing(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    write(repo / "pyproject.toml", '[project]\nname = "demo"\n\n[tool.ruff]\nline-length = 100\n')
    assert repo_config(repo) == ({}, None)


def test_unknown_key_names_the_file_and_the_key(home: Path, tmp_path: Path) -> None:
    user = user_config(tmp_path, "max_stpes = 10\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(None, home, {}, {})
    message = str(caught.value)
    assert str(user) in message and "'max_stpes'" in message
    assert "max_steps" in message  # the known keys are listed
    assert caught.value.exit_code == ExitCode.USAGE


@pytest.mark.parametrize(
    ("line", "key", "expected_type"),
    [
        ('max_steps = "10"', "max_steps", "int"),
        ("max_steps = true", "max_steps", "int"),  # a bool is not an int here
        ("max_steps = 2.5", "max_steps", "int"),
        ("network = 1", "network", "bool"),
        ('max_cost = "5"', "max_cost", "int or float"),
        ("model = 3", "model", "str"),
    ],
)
def test_wrong_types_name_the_file_and_the_key(
    home: Path, tmp_path: Path, line: str, key: str, expected_type: str
) -> None:
    repo = tmp_path / "repo"
    pyproject = write(repo / "pyproject.toml", f"[tool.patchwright]\n{line}\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(repo, home, {}, {})
    message = str(caught.value)
    assert f"{pyproject} [tool.patchwright]" in message
    assert f"{key!r} must be {expected_type}" in message


def test_invalid_toml_is_a_config_error(home: Path, tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    broken = write(repo / ".patchwright" / "config.toml", "max_steps = = 3\n")
    with pytest.raises(ConfigError, match="invalid TOML") as caught:
        load_settings(repo, home, {}, {})
    assert str(broken) in str(caught.value)


def test_environment_values_are_parsed_by_type(home: Path) -> None:
    env = {
        "PATCHWRIGHT_MAX_STEPS": "42",
        "PATCHWRIGHT_TIMEOUT": "90",
        "PATCHWRIGHT_NETWORK": "FALSE",
        "PATCHWRIGHT_MODEL": "claude-opus-5",
        "PATCHWRIGHT_IMAGE": "",  # empty means unset
    }
    settings, _ = load_settings(None, home, env, {})
    assert settings.max_steps == 42
    assert settings.timeout == 90.0 and isinstance(settings.timeout, float)
    assert settings.network is False
    assert settings.model == "claude-opus-5"
    assert settings.image is None


@pytest.mark.parametrize(
    ("name", "raw"),
    [("PATCHWRIGHT_MAX_STEPS", "ten"), ("PATCHWRIGHT_NETWORK", "maybe"), ("PATCHWRIGHT_CPUS", "two")],
)
def test_bad_environment_values_name_the_variable(home: Path, name: str, raw: str) -> None:
    with pytest.raises(ConfigError, match=f"{name}={raw!r}"):
        load_settings(None, home, {name: raw}, {})


@pytest.mark.parametrize(
    ("changes", "complaint"),
    [
        ({"provider": "openai"}, "provider"),
        ({"max_steps": 0}, "max_steps"),
        ({"max_cost": 0}, "max_cost"),
        ({"max_cost": -1.0}, "max_cost"),
        ({"timeout": 0}, "timeout"),
        ({"command_timeout": -5}, "command_timeout"),
        ({"pids_limit": 8}, "pids_limit"),
        ({"cpus": 0}, "cpus"),
        ({"max_retries": -1}, "max_retries"),
        ({"effort": "extreme"}, "effort must be one of low, medium, high, xhigh, max"),
        ({"max_continues": -1}, "max_continues"),
        ({"context_strategy": "blank"}, "context_strategy"),
        ({"context_trigger": 10}, "context_trigger"),
    ],
)
def test_check_rejects_nonsense_values(changes: dict[str, Any], complaint: str) -> None:
    with pytest.raises(ConfigError, match=complaint):
        check(Settings(**changes))


def test_check_accepts_sensible_values() -> None:
    check(Settings())
    check(
        Settings(provider="bedrock", max_steps=1, max_cost=0.01, timeout=None, pids_limit=16, max_retries=0)
    )


def test_check_rejects_a_non_positive_max_tokens() -> None:
    with pytest.raises(ConfigError, match="max_tokens"):
        check(Settings(max_tokens=0))


def test_load_settings_checks_the_merged_result(home: Path, tmp_path: Path) -> None:
    user_config(tmp_path, 'provider = "azure"\n')
    with pytest.raises(ConfigError, match="provider must be"):
        load_settings(None, home, {}, {})
    # A later layer can fix what an earlier one got wrong.
    settings, _ = load_settings(None, home, {"PATCHWRIGHT_PROVIDER": "vertex"}, {})
    assert settings.provider == "vertex"
    with pytest.raises(ConfigError, match="max_steps"):
        load_settings(None, home, {}, {"provider": "anthropic", "max_steps": 0})


def test_every_setting_can_come_from_the_environment(home: Path) -> None:
    samples = {int: "3", float: "2.5", str: "value", bool: "true", dict: "KEY=value\nOTHER=a,b"}
    env = {}
    for name, kinds in FIELD_TYPES.items():
        kind = bool if bool in kinds else float if float in kinds else kinds[0]
        env[f"PATCHWRIGHT_{name.upper()}"] = samples[kind]
    env["PATCHWRIGHT_PROVIDER"] = "anthropic"
    env["PATCHWRIGHT_PIDS_LIMIT"] = "64"
    env["PATCHWRIGHT_MEMORY"] = "768m"  # check() wants a real size
    env["PATCHWRIGHT_WORKSPACE_SIZE"] = "1g"
    env["PATCHWRIGHT_EFFORT"] = "high"  # and a real level, strategy and trigger
    env["PATCHWRIGHT_CONTEXT_STRATEGY"] = "compact"
    env["PATCHWRIGHT_CONTEXT_TRIGGER"] = "50000"
    settings, _ = load_settings(None, home, env, {})
    assert settings.effort == "high" and settings.max_continues == 3
    assert settings.context_strategy == "compact" and settings.context_trigger == 50_000
    assert settings.max_steps == 3 and settings.cpus == 2.5 and settings.network is True
    assert settings.memory == "768m" and settings.pids_limit == 64 and settings.image == "value"
    assert settings.setup_timeout == 2.5 and settings.snapshots is True and settings.workspace_size == "1g"
    assert settings.env == (("KEY", "value"), ("OTHER", "a,b")) and settings.allow_hosts == ("value",)
    with pytest.raises(ConfigError, match="workspace_size"):
        load_settings(None, home, {"PATCHWRIGHT_WORKSPACE_SIZE": "10m"}, {})
    with pytest.raises(ConfigError, match="setup_timeout"):
        load_settings(None, home, {"PATCHWRIGHT_SETUP_TIMEOUT": "0"}, {})


def test_resolved_model() -> None:
    assert Settings(model="claude-opus-5").resolved_model("claude-haiku-4-5") == "claude-opus-5"
    assert Settings().resolved_model("claude-haiku-4-5") == "claude-haiku-4-5"
    for alias in ("inherit", None, "default"):
        assert Settings().resolved_model(alias) == DEFAULT_MODEL
    assert Settings().resolved_model("sonnet") == "claude-sonnet-5-5"
    assert Settings().resolved_model("opus") == "claude-opus-5-5"
    assert Settings().resolved_model("haiku") == "claude-haiku-5-5"
    assert Settings(model="opus").resolved_model("haiku") == "claude-opus-5-5"  # an alias as --model too
    env = {"ANTHROPIC_DEFAULT_OPUS_MODEL": "claude-opus-5"}
    assert Settings().resolved_model("opus", env) == "claude-opus-5"


def test_unknown_patchwright_variables_are_warned_about_with_a_guess() -> None:
    from patchwright.config import unknown_env

    warnings = unknown_env(
        {"PATCHWRIGHT_MAX_COTS": "1", "PATCHWRIGHT_MAX_COST": "2", "PATCHWRIGHT_ZZZ": "1", "HOME": "/h"}
    )
    assert warnings == [
        "PATCHWRIGHT_MAX_COTS is not a patchwright setting and is ignored; did you mean PATCHWRIGHT_MAX_COST?",
        "PATCHWRIGHT_ZZZ is not a patchwright setting and is ignored",
    ]
    assert unknown_env({"PATCHWRIGHT_TEST_IMAGE": "x", "PATCHWRIGHT_SNAPSHOTS": "0"}) == []


def test_env_is_not_read_from_the_process_environment(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # load_settings takes the environment as data: the caller decides what it sees.
    monkeypatch.setenv("PATCHWRIGHT_MAX_STEPS", "5")
    settings, _ = load_settings(None, home, {}, {})
    assert settings.max_steps == 100
    assert os.environ["PATCHWRIGHT_MAX_STEPS"] == "5"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"command_timeout": float("nan")}, "command_timeout must be a finite number"),
        ({"timeout": float("inf")}, "timeout must be a finite number"),
        ({"memory": "lots"}, "memory must be a size"),
        ({"memory": "1m"}, "memory must be a size"),
    ],
)
def test_check_rejects_values_the_engine_or_clock_would_choke_on(
    changes: dict[str, Any], message: str
) -> None:
    import dataclasses

    with pytest.raises(ConfigError, match=message):
        check(dataclasses.replace(Settings(), **changes))
    check(dataclasses.replace(Settings(), memory="512m"))
