"""Settings as data, each layer over the one before.

defaults < ~/.config/patchwright/config.toml < the repo's .patchwright/config.toml
(or [tool.patchwright] in pyproject.toml) < PATCHWRIGHT_* environment < flags.

The repository is the code under review, not the user: its layer may narrow a run but
not widen the sandbox or choose what verifies it (REPO_WIDENING) unless the user opts in
with `trust_repo_config` (flag, user config or environment; see docs/security.md).
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

from patchwright.aliases import resolve_model
from patchwright.context import DEFAULT_STRATEGY, DEFAULT_TRIGGER, STRATEGIES
from patchwright.errors import ConfigError
from patchwright.model import DEFAULT_MAX_RETRIES, DEFAULT_MAX_TOKENS, PROVIDERS
from patchwright.params import EFFORTS
from patchwright.persona import DEFAULT_AGENT
from patchwright.sandbox.base import DEFAULT_COMMAND_TIMEOUT
from patchwright.selfcheck import DEFAULT_MAX_CONTINUES

MAX_ATTEMPTS = 20  # --attempts: each is a whole run, with its cost


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
    workspace_size: str = "2g"  # the workspace is a tmpfs of this size, counted in `memory`
    cpus: float = 2.0
    pids_limit: int = 512
    # large repos start from a snapshot image of the repo (sandbox/snapshot.py); None: on, but off
    # under CI=true, where a one-shot runner would pay for a snapshot it never reuses
    snapshots: bool | None = None
    max_retries: int = DEFAULT_MAX_RETRIES
    max_tokens: int = DEFAULT_MAX_TOKENS  # cut to the model's output limit (params.max_tokens_for)
    # --- issue 12 (README "Model settings"): all fixed for the whole run
    effort: str | None = None  # None: the agent file's, else the model's own default
    max_continues: int = DEFAULT_MAX_CONTINUES  # self-check rounds before the end; 0 disables
    context_strategy: str = DEFAULT_STRATEGY  # clear, compact or off (context.py)
    context_trigger: int = DEFAULT_TRIGGER  # input tokens at which the API starts managing context
    # -- security (issue 13): only the user's own layers may set these --------------------
    trust_repo_config: bool = False  # take the repo's widening settings (REPO_WIDENING) too
    proxy_credentials: bool = False  # pass the proxy's user:password into the sandbox
    image_workspace: str | None = None  # the repo's path inside `image` (batch, SWE-bench images)
    # services (issue 11): ["postgres:15", "redis"]; None: detect from the repo; empty: none
    services: tuple[str, ...] | None = None
    # -- attempts (attempts.py): independent attempts at one task, the proven patch kept
    attempts: int = 1  # how many; the repo may lower it, not raise it above 1 untrusted (it costs)
    parallel: int | None = None  # at once; None: what the CPUs and memory hold
    until_fixed: bool = False  # start no new attempt once one is `fixed`
    judge: bool = False  # one model call picks among fixed attempts tied on every rule (judge.py)

    def resolved_model(self, agent_model: str | None, env: dict[str, str] | None = None) -> str:
        # Claude Code agent files may say `model: inherit` or an alias like `sonnet` (aliases.py).
        return resolve_model(self.model, agent_model, env or {})


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
    "workspace_size": (str,),
    "cpus": (int, float),
    "pids_limit": (int,),
    "snapshots": (bool,),
    "max_retries": (int,),
    "max_tokens": (int,),
    "effort": (str,),
    "max_continues": (int,),
    "context_strategy": (str,),
    "context_trigger": (int,),
    "trust_repo_config": (bool,),
    "proxy_credentials": (bool,),
    "image_workspace": (str,),
    "services": (str, list, tuple),  # a list, or one comma-separated string
    "attempts": (int,),
    "parallel": (int,),
    "until_fixed": (bool,),
    "judge": (bool,),
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


# -- the trust model (issue 13) ----------------------------------------------------------------
# Never taken from the repository: they decide whom to trust.
USER_ONLY = frozenset({"trust_repo_config", "proxy_credentials"})
# Taken from the repository only with trust_repo_config: they widen the sandbox, pick its image,
# the API provider (and so the credentials used), or the command that verifies the patch.
REPO_WIDENING = frozenset(
    {"network", "setup", "setup_timeout", "image", "image_workspace", "provider", "test_cmd"}
)
# Limits the repository may lower but, untrusted, not raise above the defaults.
REPO_CAPPED = (
    "memory",
    "workspace_size",
    "cpus",
    "pids_limit",
    "max_steps",
    "timeout",
    "command_timeout",
    "attempts",
    "parallel",
    "judge",  # a model call: it costs
)


def memory_bytes(value: str) -> int | None:
    match = re.fullmatch(r"(\d+)([kmg]?)b?", value.strip().lower())
    if match is None:
        return None
    return int(match.group(1)) * {"": 1, "k": 2**10, "m": 2**20, "g": 2**30}[match.group(2)]


def _raises_limit(name: str, value: Any) -> bool:
    default = getattr(Settings(), name)
    if name in ("memory", "workspace_size"):
        wanted, usual = memory_bytes(str(value)), memory_bytes(default)
        return wanted is None or usual is None or wanted > usual
    return value is None or default is None or value > default


def untrusted_repo_values(values: dict[str, Any], trusted: bool) -> tuple[dict[str, Any], list[str]]:
    """The repo layer as the user's trust allows it: (what is kept, the names left out)."""
    kept: dict[str, Any] = {}
    ignored: list[str] = []
    for name, value in values.items():
        widening = name in REPO_WIDENING or (name in REPO_CAPPED and _raises_limit(name, value))
        if name in USER_ONLY or (widening and not trusted):
            ignored.append(name)
        else:
            kept[name] = value
    return kept, sorted(ignored)


@dataclass(frozen=True)
class LoadedSettings:
    settings: Settings
    sources: list[str]  # the files that contributed
    ignored: list[str]  # the repo's settings left out (untrusted), as "name"
    ignored_from: str | None = None  # the file they came from


def load_settings_checked(
    repo: Path | None, home: Path, env: dict[str, str], flags: dict[str, Any]
) -> LoadedSettings:
    """Merge every layer, the repo's as far as the user trusts it."""
    user_values: dict[str, Any] = {}
    sources: list[str] = []
    user = user_config_path(home)
    if user.is_file():
        user_values = _validate(_read_toml(user), str(user))
        sources.append(str(user))
    env_values = _from_env(env)
    flag_values = {k: v for k, v in flags.items() if v is not None}
    trusted = bool({**user_values, **env_values, **flag_values}.get("trust_repo_config", False))
    merged = dict(user_values)
    ignored: list[str] = []
    repo_source: str | None = None
    if repo is not None:
        values, repo_source = repo_config(repo)
        kept, ignored = untrusted_repo_values(values, trusted)
        merged.update(kept)
        if repo_source:
            sources.append(repo_source)
    merged.update(env_values)
    merged.update(flag_values)
    settings = dataclasses.replace(Settings(), **merged)
    check(settings)
    return LoadedSettings(settings, sources, ignored, repo_source if ignored else None)


def ignored_warning(loaded: LoadedSettings) -> str | None:
    """The one-line warning naming the repo settings left out, or None."""
    if not loaded.ignored:
        return None
    return (
        f"ignored the repository's settings {', '.join(loaded.ignored)} from {loaded.ignored_from} "
        "(they widen the sandbox or choose what verifies the patch); "
        "pass --trust-repo-config or set PATCHWRIGHT_TRUST_REPO_CONFIG=1 to use them"
    )


def load_settings(
    repo: Path | None, home: Path, env: dict[str, str], flags: dict[str, Any]
) -> tuple[Settings, list[str]]:
    """Merge every layer; returns the settings and the files that contributed."""
    loaded = load_settings_checked(repo, home, env, flags)
    return loaded.settings, loaded.sources


def check(settings: Settings) -> None:
    """Values that parse but make no sense are input errors, caught before anything starts."""
    if settings.provider not in PROVIDERS:
        raise ConfigError(f"provider must be one of {', '.join(PROVIDERS)}, not {settings.provider!r}")
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
    for name in ("memory", "workspace_size"):
        value = getattr(settings, name)
        size = memory_bytes(value)
        if size is None or size < 64 * 2**20:
            raise ConfigError(f"{name} must be a size of at least 64m, like 512m or 4g, not {value!r}")
    if settings.pids_limit < 16:
        raise ConfigError("pids_limit must be at least 16")
    if settings.cpus <= 0:
        raise ConfigError("cpus must be positive")
    if settings.max_tokens < 1:
        raise ConfigError("max_tokens must be at least 1")
    if settings.max_retries < 0:
        raise ConfigError("max_retries must be 0 or more")
    if not 1 <= settings.attempts <= MAX_ATTEMPTS:
        raise ConfigError(f"attempts must be from 1 to {MAX_ATTEMPTS}")
    if settings.parallel is not None and settings.parallel < 1:
        raise ConfigError("parallel must be at least 1")
    check_model_settings(settings)


def check_model_settings(settings: Settings) -> None:
    """Issue 12's settings: effort level, self-check rounds, context management."""
    if settings.effort is not None and settings.effort not in EFFORTS:
        raise ConfigError(f"effort must be one of {', '.join(EFFORTS)}, not {settings.effort!r}")
    if settings.max_continues < 0:
        raise ConfigError("max_continues must be 0 or more (0 turns the self-check off)")
    if settings.context_strategy not in STRATEGIES:
        raise ConfigError(
            f"context_strategy must be one of {', '.join(STRATEGIES)}, not {settings.context_strategy!r}"
        )
    if settings.context_trigger < 1_000:
        raise ConfigError("context_trigger must be at least 1000 input tokens")
