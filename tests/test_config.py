"""Layered configuration: defaults, user and repo files, environment, checks."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from patchwright.config import (
    FIELD_TYPES,
    Settings,
    check,
    load_settings,
    repo_config,
    user_config_path,
)
from patchwright.errors import ConfigError, ExitCode
from patchwright.model import (
    DEFAULT_MODEL,
)

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
    repo_file = write(repo / ".patchwright" / "config.toml", 'max_steps = 8\nmemory = "2g"\ncpus = 1.5\n')
    env = {"PATCHWRIGHT_MEMORY": "3g", "PATCHWRIGHT_CPUS": "2.5", "PATCHWRIGHT_NETWORK": "yes", "OTHER": "x"}
    flags = {"cpus": 3.0, "max_steps": None, "max_cost": None}

    settings, sources = load_settings(repo, home, env, flags)

    assert settings.model == "user-model"  # user only
    assert settings.setup == "make deps"
    assert settings.max_steps == 8  # repo over user (lower: a limit); a None flag changes nothing
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
