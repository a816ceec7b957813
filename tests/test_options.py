"""Settings declared once (config.Settings) reach the user the same way everywhere: flags of
`agent fix` and `agent batch`, PATCHWRIGHT_* variables a batch hands its instances, the README."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest
import typer

from patchwright.batch.execute import INSTANCE_SETTINGS, FixOptions, fix_argv, fix_env
from patchwright.batch.instances import Instance
from patchwright.cli import app
from patchwright.config import SPECS, Settings, Trust, base_type, load_settings, untrusted_repo_values
from patchwright.errors import ConfigError, UsageError
from patchwright.options import as_env, flag_values, readme_table

README = Path(__file__).resolve().parents[1] / "README.md"

# A valid value other than the default for every setting; a new setting must add one here.
SAMPLES: dict[str, Any] = {
    "model": "claude-opus-5",
    "provider": "vertex",
    "agent": "reviewer",
    "max_steps": 7,
    "max_cost": 1.5,
    "timeout": 600.0,
    "command_timeout": 30.0,
    "setup": "pip install -e .",
    "setup_timeout": 300.0,
    "repair_steps": 5,
    "repair_max_cost": 0.25,
    "detect_setup": False,
    "test_cmd": "python3 -m pytest -q tests",
    "image": "my-image:1",
    "image_workspace": "/testbed",
    "network": True,
    "services": ("postgres:15", "redis"),
    "memory": "1g",
    "workspace_size": "512m",
    "cpus": 1.5,
    "pids_limit": 128,
    "snapshots": False,
    "max_retries": 2,
    "max_tokens": 32000,
    "effort": "high",
    "max_continues": 0,
    "context_strategy": "compact",
    "context_trigger": 150000,
    "trust_repo_config": True,
    "allow_hosts": ("git.corp.example", "*.artifacts.example"),
    "env": (("API_TOKEN", "s3cret=value,with commas"), ("REGION", "eu")),
    "proxy_credentials": True,
    "attempts": 3,
    "parallel": 2,
    "until_fixed": True,
    "judge": True,
}


def command(name: str) -> Any:
    """The click command typer builds (typer may vendor its own click, so no isinstance)."""
    return typer.main.get_command(app).commands[name]  # type: ignore[attr-defined]


def argv_for(values: dict[str, Any]) -> list[str]:
    """Command-line flags that set each setting to `values[name]`, as a user would type them."""
    argv: list[str] = []
    for name, value in values.items():
        flag = SPECS[name].flags(name)
        assert flag is not None
        if isinstance(value, bool):
            argv.append(flag.split("/")[0] if value else flag.split("/")[1])
        elif isinstance(value, tuple):
            for item in value:
                argv += [flag, "=".join(item) if isinstance(item, tuple) else item]
        else:
            argv += [flag, str(value)]
    return argv


def test_every_setting_has_a_sample() -> None:
    assert set(SAMPLES) == set(SPECS)
    for name, value in SAMPLES.items():
        assert value != getattr(Settings(), name), name


def test_the_readme_table_is_the_declaration() -> None:
    text = README.read_text()
    begin, end = "<!-- settings table: begin -->\n", "<!-- settings table: end -->"
    assert begin in text and end in text
    shown = text.split(begin, 1)[1].split(end, 1)[0]
    assert shown == readme_table(), "README's settings table is stale: paste `python -m patchwright.options`"
    for name in SPECS:
        assert f"| `{name}` |" in shown


@pytest.mark.parametrize("name", ["fix", "batch"])
def test_fix_and_batch_take_every_setting_as_a_flag(name: str) -> None:
    # flags without a value (booleans) are given only in their "on" spelling in SAMPLES
    values = flag_values(command(name).make_context(name, [*_positional(name), *argv_for(SAMPLES)]).params)
    assert values == SAMPLES


def _positional(name: str) -> list[str]:
    return ["the task"] if name == "fix" else ["instances.jsonl", "--out", "out"]


def test_a_flag_not_given_leaves_the_setting_to_the_layers_below() -> None:
    values = flag_values(command("fix").make_context("fix", ["the task"]).params)
    assert set(values) == set(SPECS) and all(v is None for v in values.values())


def test_no_services_is_an_empty_list_and_both_is_a_usage_error() -> None:
    ctx = command("fix").make_context("fix", ["t", "--no-services"])
    assert flag_values(ctx.params)["services"] == ()
    ctx = command("batch").make_context("batch", ["i", "--out", "o", "--service", "redis", "--no-services"])
    with pytest.raises(UsageError, match="not both"):
        flag_values(ctx.params)


def test_a_choice_outside_the_declared_ones_is_a_usage_error() -> None:
    with pytest.raises(Exception) as caught:
        command("batch").make_context("batch", ["i", "--out", "o", "--context-strategy", "forget"])
    assert "UsageError" in {cls.__name__ for cls in type(caught.value).__mro__}
    assert "forget" in caught.value.format_message()  # type: ignore[attr-defined]


def test_every_batch_setting_reaches_the_instance_through_its_environment(tmp_path: Path) -> None:
    """batch flags -> FixOptions -> the child's PATCHWRIGHT_* -> the child's Settings, for every setting."""
    params = command("batch").make_context("batch", ["i", "--out", "o", *argv_for(SAMPLES)]).params
    env = fix_env(Instance("i1", "task", repo="r"), FixOptions(settings=flag_values(params)))
    settings, _ = load_settings(None, tmp_path, env, {})
    for name, value in SAMPLES.items():
        if name == "snapshots":
            continue
        assert getattr(settings, name) == value, name
    assert settings.snapshots is False  # a batch's default, which a flag may still change


def test_as_env_round_trips_through_the_environment_layer(tmp_path: Path) -> None:
    settings, _ = load_settings(None, tmp_path, as_env(SAMPLES), {})
    assert dataclasses.asdict(settings) == {**dataclasses.asdict(Settings()), **SAMPLES}
    empty, _ = load_settings(None, tmp_path, as_env({"services": ()}), {})
    assert empty.services == ()


def test_an_instances_own_fields_win_as_flags_of_its_fix(tmp_path: Path) -> None:
    instance = Instance(
        "i1",
        "task",
        repo="r",
        model="claude-haiku-4-5",
        agent="a1",
        setup="make deps",
        test_cmd="make test",
        image="img:2",
        services=["postgres:16", "redis"],
    )
    assert set(INSTANCE_SETTINGS) == {"model", "agent", "setup", "test_cmd", "image", "services"}
    argv = fix_argv(instance, tmp_path / "repo", tmp_path / "p.diff")
    fix_args = argv[argv.index("fix") + 1 :]
    values = flag_values(command("fix").make_context("fix", fix_args).params)
    assert values["model"] == "claude-haiku-4-5" and values["agent"] == "a1"
    assert values["setup"] == "make deps" and values["test_cmd"] == "make test" and values["image"] == "img:2"
    assert values["services"] == ("postgres:16", "redis")
    # and flags beat the batch's variables for the same setting
    env = fix_env(instance, FixOptions(settings={"model": "claude-opus-5", "max_steps": 9}))
    settings, _ = load_settings(None, tmp_path, env, {k: v for k, v in values.items() if v is not None})
    assert settings.model == "claude-haiku-4-5" and settings.max_steps == 9


def test_trust_classes_come_from_the_declaration() -> None:
    widening = {n for n, s in SPECS.items() if s.trust is Trust.WIDENING}
    assert {"network", "setup", "image", "test_cmd", "provider"} <= widening
    kept, ignored = untrusted_repo_values({"network": True, "max_steps": 5, "trust_repo_config": True}, False)
    assert kept == {"max_steps": 5} and ignored == ["network", "trust_repo_config"]
    assert all(base_type(n) in (str, int, float, bool, tuple, dict) for n in SPECS)


def test_a_repository_can_neither_widen_the_allowlist_nor_set_variables(tmp_path: Path) -> None:
    """Even trusted: which hosts setup reaches and which secrets enter the sandbox are the user's."""
    repo_values = {"allow_hosts": ("evil.example",), "env": (("A", "b"),), "max_steps": 5}
    for trusted in (False, True):
        kept, ignored = untrusted_repo_values(repo_values, trusted)
        assert kept == {"max_steps": 5} and ignored == ["allow_hosts", "env"]
    repo = tmp_path / "repo"
    (repo / ".patchwright").mkdir(parents=True)
    (repo / ".patchwright" / "config.toml").write_text(
        'allow_hosts = ["evil.example"]\ntrust_repo_config = true\n[env]\nTOKEN = "from-repo"\n'
    )
    settings, _ = load_settings(repo, tmp_path, {"PATCHWRIGHT_TRUST_REPO_CONFIG": "1"}, {})
    assert settings.allow_hosts == () and settings.env == ()


def test_the_user_config_env_table_and_flags_give_pairs(tmp_path: Path) -> None:
    config = tmp_path / ".config" / "patchwright" / "config.toml"
    config.parent.mkdir(parents=True)
    config.write_text('allow_hosts = ["git.corp.example"]\n[env]\nTOKEN = "s3cret"\nEMPTY = ""\n')
    settings, _ = load_settings(None, tmp_path, {}, {})
    assert settings.env == (("TOKEN", "s3cret"), ("EMPTY", "")) and settings.allow_hosts == (
        "git.corp.example",
    )
    values = flag_values(command("fix").make_context("fix", ["t", "--env", "A=1=2", "--env", "A=3"]).params)
    assert values["env"] == (("A", "3"),)  # the last one wins; a value may hold "="
    for bad in ("NOVALUE", "1X=2", "A-B=c"):
        with pytest.raises(UsageError, match="--env"):
            flag_values(command("fix").make_context("fix", ["t", "--env", bad]).params)
    config.write_text('allow_hosts = ["pypi.org/simple"]\n')
    with pytest.raises(ConfigError, match=r"allow_hosts: 'pypi\.org/simple' is not a host name"):
        load_settings(None, tmp_path, {}, {})
