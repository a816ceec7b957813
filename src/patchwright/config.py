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
from dataclasses import dataclass, field, fields
from enum import StrEnum
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

from patchwright.aliases import resolve_model
from patchwright.context import (
    DEFAULT_STRATEGY,
    DEFAULT_TRIGGER,
    MIN_COMPACT_TRIGGER,
    MIN_TRIGGER,
    STRATEGIES,
)
from patchwright.errors import ConfigError
from patchwright.model import DEFAULT_MAX_RETRIES, DEFAULT_MAX_TOKENS, PROVIDERS
from patchwright.params import EFFORTS
from patchwright.persona import DEFAULT_AGENT
from patchwright.saferead import read_bytes
from patchwright.sandbox.allowlist import bad_host as _bad_host
from patchwright.sandbox.base import DEFAULT_COMMAND_TIMEOUT
from patchwright.selfcheck import DEFAULT_MAX_CONTINUES


class Trust(StrEnum):
    """Whether the repository's own config may set a setting (see docs/security.md)."""

    REPO = "repo"  # the repository may set it
    CAPPED = "capped"  # a limit: the repository may lower it but, untrusted, not raise it
    WIDENING = "widening"  # widens the sandbox or chooses what verifies the patch: only if trusted
    USER = "user"  # decides whom to trust: never from the repository


MAX_ATTEMPTS = 20  # --attempts: each is a whole run, with its cost


@dataclass(frozen=True)
class Spec:
    """How one setting meets the user: its help, flag, trust class, and batch override."""

    help: str
    trust: Trust = Trust.REPO
    flag: str | None = ""  # "" derives --name-with-dashes; None: config and environment only
    instance: bool = False  # a batch instance's own field may override the batch's value
    doc: str = ""  # the README's longer text, when the help line is not enough
    default_doc: str = ""  # the README's words for the default, when the value alone misleads
    choices: tuple[str, ...] = ()  # the values a flag accepts, where they are fixed

    def flags(self, name: str) -> str | None:
        return f"--{name.replace('_', '-')}" if self.flag == "" else self.flag


def setting(default: Any, spec: Spec) -> Any:
    """A Settings field: its default and how it meets the user, in one place."""
    return field(default=default, metadata={"spec": spec})


@dataclass(frozen=True)
class Settings:
    """Every setting of a run, declared once: flags of `fix` and `batch`, config keys,
    PATCHWRIGHT_* variables and the README's settings table are all derived from here."""

    model: str | None = setting(
        None,
        Spec(
            "Model ID (default: the agent file's, else claude-sonnet-5-5).",
            instance=True,
            doc="model ID",
            default_doc="the agent file's `model:`, else `claude-sonnet-5-5`",
        ),
    )
    provider: str = setting(
        "anthropic",
        Spec(
            "API provider.",
            Trust.WIDENING,
            choices=PROVIDERS,
            doc="`anthropic`, `bedrock` or `vertex` (`pip install 'patchwright[bedrock]'`); with Bedrock or "
            "Vertex pass `--model` with that platform's model ID, credentials come from the platform's SDK",
        ),
    )
    agent: str = setting(
        DEFAULT_AGENT,
        Spec("Agent (persona) file name.", instance=True, doc="agent (persona) file, see below"),
    )
    max_steps: int = setting(100, Spec("Stop after N model turns (exit 3).", Trust.CAPPED))
    max_cost: float | None = setting(
        None,
        Spec(
            "Stop when the run's cost reaches USD (exit 3).",
            Trust.CAPPED,
            doc="stop when the run's cost reaches USD (exit 3); refuses models without a known price",
        ),
    )
    timeout: float | None = setting(
        3600.0,
        Spec(
            "Stop after SEC seconds of wall clock (exit 3).",
            Trust.CAPPED,
            doc="stop after SEC seconds of wall clock (exit 3); checked when each model turn ends, and a "
            "command running when it comes is killed then (so only a model reply in flight can overrun "
            "it); it also bounds verification",
        ),
    )
    command_timeout: float = setting(
        DEFAULT_COMMAND_TIMEOUT,
        Spec(
            "Kill one command (and its children) after SEC; the shell stays usable.",
            Trust.CAPPED,
        ),
    )
    setup: str | None = setting(
        None,
        Spec(
            "Command run in the sandbox before the model starts (package registries reachable).",
            Trust.WIDENING,
            instance=True,
            doc="run CMD in the sandbox before the model starts, with the network limited to package "
            "registries (see `allow_hosts`), then cut the network (e.g. `pip install -e .`, `npm ci`)",
        ),
    )
    setup_timeout: float = setting(900.0, Spec("Kill the setup command after SEC.", Trust.WIDENING))
    repair_steps: int = setting(
        30,
        Spec(
            "Model turns for getting the test suite running when setup fails or the tests cannot start "
            "(0: no repair).",
            Trust.CAPPED,
            doc="when setup fails or the test command cannot even start, the model gets up to N turns of "
            "its own, with the network as setup has it, to get the suite running; the commands that worked "
            "become the run's setup recipe (summary.json `environment.recipe`); `0` turns it off",
        ),
    )
    repair_max_cost: float = setting(
        1.0,
        Spec(
            "Stop the setup repair when its cost reaches USD (counted apart from --max-cost).", Trust.CAPPED
        ),
    )
    detect_setup: bool = setting(
        True,
        Spec(
            "Without --setup, install the project as its CI, lockfiles and manifests say (package registries only).",
            Trust.WIDENING,
            flag="--detect-setup/--no-detect-setup",
            doc="without `setup`, work out the project's setup, toolchains and test command from its CI "
            "job, lockfiles and manifests and run that setup with the network limited to package registries (`allow_hosts`); see "
            "[How patchwright prepares your project](#how-patchwright-prepares-your-project)",
        ),
    )
    test_cmd: str | None = setting(
        None,
        Spec(
            "Test command for the run_tests tool and verification.",
            Trust.WIDENING,
            instance=True,
            doc="the repo's test command: offered to the model as `run_tests`, and used to verify the patch",
            default_doc="detected (pytest, `npm test`, `go test ./...`, `cargo test`, `make test`)",
        ),
    )
    image: str | None = setting(
        None,
        Spec(
            "Sandbox image (default: patchwright's, built on first use).",
            Trust.WIDENING,
            instance=True,
            doc="sandbox image (needs bash, git, coreutils with GNU grep and dd, python3 3.8+ with ctypes "
            "(the shell driver and file helper); see `sandbox/`)",
            default_doc="patchwright's own, built on first use",
        ),
    )
    image_workspace: str | None = setting(
        None,
        Spec(
            "The repository's path inside --image, for images that hold the repo (SWE-bench's /testbed).",
            Trust.WIDENING,
        ),
    )
    network: bool = setting(
        False,
        Spec("Give the model's commands a network.", Trust.WIDENING, flag="--network/--no-network"),
    )
    services: tuple[str, ...] | None = setting(
        None,
        Spec(
            "Start a database beside the sandbox: postgres, mysql, mariadb or redis, with an optional "
            ":VERSION or NAME= (repeatable; --no-services: none).",
            flag="--service",
            instance=True,
            doc="start a database beside the sandbox: `postgres`, `mysql`/`mariadb`, `redis`, with an "
            "optional `:VERSION` and `NAME=` (repeatable; `--no-services` starts and detects none); see "
            "[Databases and other services](#databases-and-other-services)",
            default_doc="those the repo's compose file and workflows declare",
        ),
    )
    memory: str = setting(
        "4g", Spec("The sandbox's memory limit (the workspace tmpfs counts in it).", Trust.CAPPED)
    )
    workspace_size: str = setting(
        "2g", Spec("Size of the workspace tmpfs, counted in --memory.", Trust.CAPPED)
    )
    cpus: float = setting(2.0, Spec("How many CPUs the sandbox may use.", Trust.CAPPED))
    pids_limit: int = setting(512, Spec("Processes the sandbox may hold at once.", Trust.CAPPED))
    snapshots: bool | None = setting(
        None,
        Spec(
            "Start large repos from a snapshot image of the repo.",
            flag="--snapshots/--no-snapshots",
            default_doc="on, but off under `CI`",
        ),
    )
    max_retries: int = setting(
        DEFAULT_MAX_RETRIES,
        Spec("Retries of a failed API request (429, 5xx, connection errors).", Trust.CAPPED),
    )
    max_tokens: int = setting(
        DEFAULT_MAX_TOKENS,
        Spec("Output budget per turn, thinking included; cut to the model's output limit.", Trust.CAPPED),
    )
    effort: str | None = setting(
        None,
        Spec(
            "low, medium, high, xhigh or max (default: the agent file's, else the model's).",
            doc="`low`, `medium`, `high`, `xhigh` or `max`, sent as `output_config.effort` on every request "
            "of the run",
            default_doc="the agent file's `effort:`, else the model's own default",
        ),
    )
    max_continues: int = setting(
        DEFAULT_MAX_CONTINUES,
        Spec(
            "Times a failing test run before the end goes back to the model (0: off).",
            Trust.CAPPED,
            doc="self-check: when the model ends its turn and a test command is known, the tests run; if "
            "they fail, the failure goes back to the model, at most N times; `0` turns it off",
        ),
    )
    context_strategy: str = setting(
        DEFAULT_STRATEGY,
        Spec('How the API manages a long context (see "Model settings").', choices=STRATEGIES),
    )
    context_trigger: int = setting(
        DEFAULT_TRIGGER,
        Spec('Input tokens at which the API starts clearing old tool results (see "Model settings").'),
    )
    trust_repo_config: bool = setting(
        False,
        Spec(
            "Also take the repo's own settings that widen the sandbox (network, setup, image, test_cmd, "
            "provider, higher limits); see docs/security.md.",
            Trust.USER,
            flag="--trust-repo-config",
        ),
    )
    allow_hosts: tuple[str, ...] = setting(
        (),
        Spec(
            "Another host setup may reach besides the package registries (repeatable; *.DOMAIN for its "
            "subdomains).",
            Trust.USER,
            flag="--allow-host",
            doc="a host the setup may reach besides the package registries (repeatable; `*.example.com` "
            "admits its subdomains); see [the allowlist](#network-during-setup-package-registries-only)",
            default_doc="none: PyPI, npm, Go, crates.io, RubyGems and the Debian/Ubuntu archives only",
        ),
    )
    env: tuple[tuple[str, str], ...] = setting(
        (),
        Spec(
            "Set KEY=VALUE in the sandbox for setup, the tests and the model (repeatable); never written "
            "by patchwright.",
            Trust.USER,
            flag="--env",
            doc="`KEY=VALUE` set in the sandbox for setup, the tests and the model's shell (repeatable; in "
            "the user config an `[env]` table): for secrets you choose to pass; the values are redacted "
            "from every file and line patchwright writes",
            default_doc="none",
        ),
    )
    proxy_credentials: bool = setting(
        False,
        Spec(
            "Pass the proxy's user:password into the sandbox during setup.",
            Trust.USER,
            flag="--proxy-credentials",
        ),
    )

    attempts: int = setting(
        1,
        Spec(
            "Independent attempts, each in its own sandbox; the proven patch is kept.",
            Trust.CAPPED,  # each is a whole run, with its cost
            doc="run N independent attempts, each in its own sandbox with its own services and run folder, "
            "and keep the proven one (see [Several attempts](#several-attempts)); 1 to 20",
        ),
    )
    parallel: int | None = setting(
        None,
        Spec(
            "Attempts at once.",
            Trust.CAPPED,
            default_doc="a core and the sandbox's `memory` for each, as `agent batch`'s workers; 1 with "
            "`--until-fixed`",
        ),
    )
    until_fixed: bool = setting(
        False,
        Spec(
            "Start no new attempt once one is fixed.",
            flag="--until-fixed",
            doc="start no new attempt once one is `fixed`; attempts then run one after another unless "
            "`--parallel` says otherwise (the cost-conscious mode for CI)",
        ),
    )
    judge: bool = setting(
        False,
        Spec(
            "With --attempts: one model call picks among fixed attempts tied on the rules.",
            Trust.CAPPED,  # a model call: it costs
            flag="--judge",
            doc="with `--attempts`: one model call picks among `fixed` attempts tied on the selection rules "
            "(see [Several attempts](#several-attempts))",
        ),
    )

    def resolved_model(self, agent_model: str | None, env: dict[str, str] | None = None) -> str:
        # Claude Code agent files may say `model: inherit` or an alias like `sonnet` (aliases.py).
        return resolve_model(self.model, agent_model, env or {})


SPECS: dict[str, Spec] = {f.name: f.metadata["spec"] for f in fields(Settings)}
_HINTS = get_type_hints(Settings)


def base_type(name: str) -> type:
    """The setting's value type without `None`: str, int, float, bool, tuple (a list of strings)
    or dict (KEY=VALUE pairs, kept as a tuple of (key, value) tuples)."""
    hint = _HINTS[name]
    kinds = (
        [hint] if get_origin(hint) is tuple else [k for k in get_args(hint) or (hint,) if k is not type(None)]
    )
    kind = kinds[0]
    if get_origin(kind) is tuple:
        return dict if get_origin(get_args(kind)[0]) is tuple else tuple
    assert isinstance(kind, type)
    return kind


def _accepted(name: str) -> tuple[type, ...]:
    kind = base_type(name)
    # a list, or "a,b"; pairs: a table, or a list of "KEY=VALUE"
    return {float: (int, float), tuple: (str, list, tuple), dict: (dict, list, tuple)}.get(kind, (kind,))


_ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def parse_pairs(items: Any, source: str) -> tuple[tuple[str, str], ...]:
    """KEY=VALUE pairs from a table, a list of "KEY=VALUE" strings or of pairs; ConfigError
    naming `source` otherwise. Later keys win; the message never holds a value (they are secrets)."""
    raw: list[tuple[Any, Any]] = []
    if isinstance(items, dict):
        raw = list(items.items())
    else:
        for item in items:
            if isinstance(item, str):
                key, sep, value = item.partition("=")
                if not sep:
                    raise ConfigError(f"{source}: {key[:40]!r} is not KEY=VALUE")
                raw.append((key, value))
            elif isinstance(item, list | tuple) and len(item) == 2:
                raw.append((item[0], item[1]))
            else:
                raise ConfigError(f"{source}: expected KEY=VALUE items")
    pairs: dict[str, str] = {}
    for key, value in raw:
        if not isinstance(key, str) or not _ENV_KEY.fullmatch(key):
            raise ConfigError(f"{source}: {str(key)[:40]!r} is not a variable name (letters, digits, _)")
        if not isinstance(value, str) or "\0" in value:
            raise ConfigError(f"{source}: the value of {key} must be a string")
        pairs[key] = value
    return tuple(pairs.items())


def pairs_text(pairs: tuple[tuple[str, str], ...]) -> str:
    """Pairs as the PATCHWRIGHT_* variable holds them: one KEY=VALUE a line ("none": empty)."""
    return "\n".join(f"{key}={value}" for key, value in pairs) if pairs else "none"


FIELD_TYPES: dict[str, tuple[type, ...]] = {name: _accepted(name) for name in SPECS}
USER_ONLY = frozenset(n for n, s in SPECS.items() if s.trust is Trust.USER)
REPO_WIDENING = frozenset(n for n, s in SPECS.items() if s.trust is Trust.WIDENING)
REPO_CAPPED = tuple(n for n, s in SPECS.items() if s.trust is Trust.CAPPED)


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
        if base_type(name) is dict:
            value = parse_pairs(value, f"{source}: setting {key!r}")
        elif base_type(name) is tuple:  # a list of strings
            if isinstance(value, str):
                value = [item.strip() for item in value.split(",") if item.strip()]
            if not isinstance(value, list | tuple) or not all(isinstance(item, str) for item in value):
                raise ConfigError(f"{source}: setting {key!r} must be a list of strings")
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
            if base_type(name) is dict:  # one KEY=VALUE a line; "none" for no pairs
                lines = [line for line in raw.split("\n") if line.strip()]
                out[name] = () if lines == ["none"] else parse_pairs(lines, f"PATCHWRIGHT_{name.upper()}")
            elif base_type(name) is tuple:  # comma-separated; "none" for an empty list
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


ENV_NOT_SETTINGS = frozenset(
    {"PATCHWRIGHT_TEST_IMAGE", "PATCHWRIGHT_ATTEMPT_ENV"}
)  # the test suite's; an attempt's `env` values, from its parent (attempts.py)


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


MAX_REPO_CONFIG_BYTES = 4 * 2**20


def _read_repo_toml(repo: Path, relative: str) -> dict[str, Any] | None:
    """A TOML file of the repository, read without following a symlink anywhere on its path
    (saferead.py): a linked `pyproject.toml` or `.patchwright` is as good as absent."""
    path = repo / relative
    try:
        raw = read_bytes(repo, relative, MAX_REPO_CONFIG_BYTES)
    except OSError as err:
        raise ConfigError(f"{path}: cannot read: {err.strerror}") from None
    if raw is None:
        return None
    if len(raw) > MAX_REPO_CONFIG_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_REPO_CONFIG_BYTES // 2**20} MiB")
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: invalid TOML: {err}") from None


def repo_config(repo: Path) -> tuple[dict[str, Any], str | None]:
    """The repo's own settings: .patchwright/config.toml wins over [tool.patchwright]."""
    own = _read_repo_toml(repo, ".patchwright/config.toml")
    if own is not None:
        return _validate(own, str(repo / ".patchwright" / "config.toml")), str(
            repo / ".patchwright" / "config.toml"
        )
    pyproject = _read_repo_toml(repo, "pyproject.toml")
    if pyproject is not None:
        section = pyproject.get("tool", {}).get("patchwright")
        if isinstance(section, dict):
            where = repo / "pyproject.toml"
            return _validate(section, f"{where} [tool.patchwright]"), str(where)
    return {}, None


def memory_bytes(value: str) -> int | None:
    match = re.fullmatch(r"(\d+)([kmg]?)b?", value.strip().lower())
    if match is None:
        return None
    return int(match.group(1)) * {"": 1, "k": 2**10, "m": 2**20, "g": 2**30}[match.group(2)]


# Limits where no value means "no limit": any value the repository sets lowers them.
UNBOUNDED_WHEN_NONE = frozenset({"max_cost", "timeout"})


def _raises_limit(name: str, value: Any, baseline: Any) -> bool:
    """Whether the repository's `value` for a limit is above the user's `baseline` (the merged
    default, user config, environment and flag value): only lowering is taken untrusted."""
    if name in ("memory", "workspace_size"):
        wanted, usual = memory_bytes(str(value)), memory_bytes(str(baseline))
        return wanted is None or usual is None or wanted > usual
    if baseline is None:
        return name not in UNBOUNDED_WHEN_NONE or value is None
    return value is None or value > baseline


def untrusted_repo_values(
    values: dict[str, Any], trusted: bool, baseline: Settings | None = None
) -> tuple[dict[str, Any], list[str]]:
    """The repo layer as the user's trust allows it: (what is kept, the names left out). A limit
    is compared with `baseline`, the user's own value of it (defaults when not given)."""
    base = baseline or Settings()
    kept: dict[str, Any] = {}
    ignored: list[str] = []
    for name, value in values.items():
        widening = name in REPO_WIDENING or (
            name in REPO_CAPPED and _raises_limit(name, value, getattr(base, name))
        )
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
        baseline = dataclasses.replace(Settings(), **{**user_values, **env_values, **flag_values})
        kept, ignored = untrusted_repo_values(values, trusted, baseline)
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


def secret_values(settings: Settings) -> list[str]:
    """What no file or line patchwright writes may hold: the values the user passed with `env`."""
    return [value for _, value in settings.env]


def settings_record(settings: Settings) -> dict[str, Any]:
    """The settings as a run writes them down (run_start, an attempt's settings.json): `env`
    keeps its names, never its values."""
    record = dataclasses.asdict(settings)
    record["env"] = [[key, "[REDACTED]"] for key, _ in settings.env]
    return record


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
    if settings.repair_steps < 0:
        raise ConfigError("repair_steps must be 0 or more (0 turns the setup repair off)")
    if not (math.isfinite(settings.repair_max_cost) and settings.repair_max_cost > 0):
        raise ConfigError("repair_max_cost must be a positive number of USD")
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
    for host in settings.allow_hosts:
        if (problem := _bad_host(host)) is not None:
            raise ConfigError(f"allow_hosts: {problem}")
    check_model_settings(settings)


def check_model_settings(settings: Settings) -> None:
    """The model settings: effort level, self-check rounds, context management."""
    if settings.effort is not None and settings.effort not in EFFORTS:
        raise ConfigError(f"effort must be one of {', '.join(EFFORTS)}, not {settings.effort!r}")
    if settings.max_continues < 0:
        raise ConfigError("max_continues must be 0 or more (0 turns the self-check off)")
    if settings.context_strategy not in STRATEGIES:
        raise ConfigError(
            f"context_strategy must be one of {', '.join(STRATEGIES)}, not {settings.context_strategy!r}"
        )
    if settings.context_trigger < MIN_TRIGGER:
        raise ConfigError(f"context_trigger must be at least {MIN_TRIGGER} input tokens")
    if settings.context_strategy == "compact" and settings.context_trigger < MIN_COMPACT_TRIGGER:
        raise ConfigError(
            f"context_trigger must be at least {MIN_COMPACT_TRIGGER} input tokens with context_strategy "
            f"compact (the least the API takes for compaction), not {settings.context_trigger}"
        )
