"""Settings as data, each layer over the one before.

defaults < ~/.config/patchwright/config.toml < the repo's .patchwright/config.toml
(or [tool.patchwright] in pyproject.toml) < PATCHWRIGHT_* environment < flags.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import os
import re
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from patchwright.errors import ConfigError
from patchwright.model import DEFAULT_MAX_RETRIES, DEFAULT_MODEL
from patchwright.persona import DEFAULT_AGENT
from patchwright.sandbox.base import DEFAULT_COMMAND_TIMEOUT


@dataclass(frozen=True)
class Settings:
    model: str | None = None  # None: the agent file's model, else DEFAULT_MODEL
    provider: str = "anthropic"
    agent: str = DEFAULT_AGENT
    max_steps: int = 100
    max_cost: float | None = None
    timeout: float | None = 3600.0
    command_timeout: float = DEFAULT_COMMAND_TIMEOUT
    setup: str | None = None
    setup_timeout: float = 900.0
    test_cmd: str | None = None
    image: str | None = None
    network: bool = False
    memory: str = "4g"
    cpus: float = 2.0
    pids_limit: int = 512
    snapshots: bool = True  # large repos start from a committed image of the repo (sandbox/snapshot.py)
    max_retries: int = DEFAULT_MAX_RETRIES
    max_tokens: int = 16_000
    # services (issue 11): ["postgres:15", "redis"]; None: detect from the repo; empty: none
    services: tuple[str, ...] | None = None

    def resolved_model(self, agent_model: str | None) -> str:
        # Claude Code agent files may say `model: inherit` or an alias like `sonnet`.
        if self.model:
            return self.model
        if agent_model and agent_model not in ("inherit", "sonnet", "opus", "haiku"):
            return agent_model
        return DEFAULT_MODEL


FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "model": (str,),
    "provider": (str,),
    "agent": (str,),
    "max_steps": (int,),
    "max_cost": (int, float),
    "timeout": (int, float),
    "command_timeout": (int, float),
    "setup": (str,),
    "setup_timeout": (int, float),
    "test_cmd": (str,),
    "image": (str,),
    "network": (bool,),
    "memory": (str,),
    "cpus": (int, float),
    "pids_limit": (int,),
    "snapshots": (bool,),
    "max_retries": (int,),
    "max_tokens": (int,),
    "services": (str, list, tuple),  # a list, or one comma-separated string
}
assert set(FIELD_TYPES) == {f.name for f in fields(Settings)}


def user_config_path(home: Path) -> Path:
    base = os.environ.get("XDG_CONFIG_HOME")
    return (Path(base) if base else home / ".config") / "patchwright" / "config.toml"


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: invalid TOML: {err}") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot read: {err.strerror}") from None


def _validate(values: dict[str, Any], source: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        name = key.replace("-", "_")
        if name not in FIELD_TYPES:
            raise ConfigError(f"{source}: unknown setting {key!r} (known: {', '.join(sorted(FIELD_TYPES))})")
        kinds = FIELD_TYPES[name]
        if (isinstance(value, bool) and bool not in kinds) or not isinstance(value, kinds):
            raise ConfigError(f"{source}: setting {key!r} must be {' or '.join(k.__name__ for k in kinds)}")
        if name == "services":  # services (issue 11): a list of strings
            if isinstance(value, str):
                value = [item.strip() for item in value.split(",") if item.strip()]
            if not isinstance(value, list | tuple) or not all(isinstance(item, str) for item in value):
                raise ConfigError(
                    f"{source}: setting 'services' must be a list of strings like \"postgres:15\""
                )
            value = tuple(value)
        out[name] = value
    return out


def _from_env(env: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, kinds in FIELD_TYPES.items():
        raw = env.get(f"PATCHWRIGHT_{name.upper()}")
        if raw is None or raw == "":
            continue
        try:
            if name == "services":  # services (issue 11): comma-separated
                items = [item.strip() for item in raw.split(",") if item.strip()]
                out[name] = () if items == ["none"] else tuple(items)
            elif bool in kinds:
                if raw.lower() not in ("1", "0", "true", "false", "yes", "no"):
                    raise ValueError(raw)
                out[name] = raw.lower() in ("1", "true", "yes")
            elif int in kinds and float not in kinds:
                out[name] = int(raw)
            elif float in kinds:
                out[name] = float(raw)
            else:
                out[name] = raw
        except ValueError:
            raise ConfigError(
                f"PATCHWRIGHT_{name.upper()}={raw!r} is not a valid {kinds[0].__name__}"
            ) from None
    return out


ENV_NOT_SETTINGS = frozenset({"PATCHWRIGHT_TEST_IMAGE"})  # read by patchwright's own test suite


def unknown_env(env: dict[str, str]) -> list[str]:
    """Warnings for PATCHWRIGHT_* variables that are no setting (a typo would be ignored silently)."""
    known = {f"PATCHWRIGHT_{name.upper()}" for name in FIELD_TYPES}
    warnings = []
    for name in sorted(env):
        if name.startswith("PATCHWRIGHT_") and name not in known and name not in ENV_NOT_SETTINGS:
            close = difflib.get_close_matches(
                name.removeprefix("PATCHWRIGHT_"), [n.upper() for n in FIELD_TYPES], n=1
            )
            hint = f"; did you mean PATCHWRIGHT_{close[0]}?" if close else ""
            warnings.append(f"{name} is not a patchwright setting and is ignored{hint}")
    return warnings


def repo_config(repo: Path) -> tuple[dict[str, Any], str | None]:
    """The repo's own settings: .patchwright/config.toml wins over [tool.patchwright]."""
    own = repo / ".patchwright" / "config.toml"
    if own.is_file():
        return _validate(_read_toml(own), str(own)), str(own)
    pyproject = repo / "pyproject.toml"
    if pyproject.is_file():
        section = _read_toml(pyproject).get("tool", {}).get("patchwright")
        if isinstance(section, dict):
            return _validate(section, f"{pyproject} [tool.patchwright]"), str(pyproject)
    return {}, None


def load_settings(
    repo: Path | None, home: Path, env: dict[str, str], flags: dict[str, Any]
) -> tuple[Settings, list[str]]:
    """Merge every layer; returns the settings and the files that contributed."""
    merged: dict[str, Any] = {}
    sources: list[str] = []
    user = user_config_path(home)
    if user.is_file():
        merged.update(_validate(_read_toml(user), str(user)))
        sources.append(str(user))
    if repo is not None:
        values, source = repo_config(repo)
        merged.update(values)
        if source:
            sources.append(source)
    merged.update(_from_env(env))
    merged.update({k: v for k, v in flags.items() if v is not None})
    settings = dataclasses.replace(Settings(), **merged)
    check(settings)
    return settings, sources


def check(settings: Settings) -> None:
    """Values that parse but make no sense are input errors, caught before anything starts."""
    if settings.provider not in ("anthropic", "bedrock", "vertex"):
        raise ConfigError(f"provider must be anthropic, bedrock or vertex, not {settings.provider!r}")
    if settings.max_steps < 1:
        raise ConfigError("max_steps must be at least 1")
    if settings.max_cost is not None and settings.max_cost <= 0:
        raise ConfigError("max_cost must be a positive number of USD")
    for name in ("max_cost", "timeout", "command_timeout", "setup_timeout", "cpus"):
        value = getattr(settings, name)
        if value is not None and not math.isfinite(value):
            raise ConfigError(f"{name} must be a finite number, not {value}")
    if settings.timeout is not None and settings.timeout <= 0:
        raise ConfigError("timeout must be a positive number of seconds")
    if settings.command_timeout <= 0:
        raise ConfigError("command_timeout must be a positive number of seconds")
    if settings.setup_timeout <= 0:
        raise ConfigError("setup_timeout must be a positive number of seconds")
    match = re.fullmatch(r"(\d+)([kmg]?)b?", settings.memory.strip().lower())
    if (
        match is None
        or int(match.group(1)) * {"": 1, "k": 2**10, "m": 2**20, "g": 2**30}[match.group(2)] < 64 * 2**20
    ):
        raise ConfigError(f"memory must be a size of at least 64m, like 512m or 4g, not {settings.memory!r}")
    if settings.pids_limit < 16:
        raise ConfigError("pids_limit must be at least 16")
    if settings.cpus <= 0:
        raise ConfigError("cpus must be positive")
    if settings.max_tokens < 1:
        raise ConfigError("max_tokens must be at least 1")
    if settings.max_retries < 0:
        raise ConfigError("max_retries must be 0 or more")
