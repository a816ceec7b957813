"""What a model can do, learnt from the Models API rather than a table kept by hand.

`client.models.retrieve(id)` says a model's window (`max_input_tokens`), output limit
(`max_tokens`) and `capabilities`: thinking types, effort levels, context-management edits.
A new model is then driven right the day it ships. The answer is cached on disk for a day
(CACHE_TTL) under the user's cache folder, so a run with a warm cache asks nothing and the
first request waits for nothing; a cold or stale entry is fetched on a thread of its own while
the run's input is checked and the sandbox engine is looked up.

Precedence, field by field: the user's own ~/.config/patchwright/models.toml, then the Models
API (fresh, or a stale cache entry when the API cannot be reached), then patchwright's table
(prices.toml, also the only source for Bedrock and Vertex, which do not offer the Models API),
then conservative defaults (200K window, no thinking parameter, max_tokens as set). Prices
come only from the table or the user's file: the Models API has none.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import threading
import time
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from patchwright.context import EDIT_TYPES, ContextPolicy
from patchwright.errors import ConfigError, UsageError
from patchwright.model import ModelInfo, model_info, table_row
from patchwright.params import EFFORTS

CACHE_TTL = 24 * 3600.0  # seconds a Models API answer is used without asking again
LOOKUP_TIMEOUT = 10.0  # seconds for the Models API request (one retry)
LOOKUP_WAIT = 15.0  # seconds a run waits for a lookup under way (SDK import included)
DEFAULT_BASE_URL = "https://api.anthropic.com"
THINKING_MODES = ("adaptive", "extended", "none")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:@-]{0,199}$")
_USER_KEYS: dict[str, tuple[type, ...]] = {
    "input": (int, float),
    "output": (int, float),
    "cache_write_5m": (int, float),
    "cache_write_1h": (int, float),
    "cache_read": (int, float),
    "context": (int,),
    "max_output": (int,),
    "thinking": (str,),
    "efforts": (list,),
    "context_edits": (list,),
}


@dataclass(frozen=True)
class Capabilities:
    """What the Models API said; None where it said nothing. `thinking` is "adaptive",
    "extended" (manual budgets only) or "none"."""

    context: int | None = None
    max_output: int | None = None
    thinking: str | None = None
    efforts: tuple[str, ...] | None = None
    context_edits: tuple[str, ...] | None = None

    def as_json(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    @staticmethod
    def from_json(data: Mapping[str, Any]) -> Capabilities:
        """From a cache entry; anything malformed raises ValueError (the entry is then ignored)."""

        def number(key: str) -> int | None:
            value = data.get(key)
            if value is None:
                return None
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(key)
            return value

        def names(key: str, known: tuple[str, ...]) -> tuple[str, ...] | None:
            value = data.get(key)
            if value is None:
                return None
            if not isinstance(value, list) or not all(isinstance(v, str) and v in known for v in value):
                raise ValueError(key)
            return tuple(value)

        thinking = data.get("thinking")
        if thinking is not None and thinking not in THINKING_MODES:
            raise ValueError("thinking")
        return Capabilities(
            number("context"),
            number("max_output"),
            thinking,
            names("efforts", EFFORTS),
            names("context_edits", EDIT_TYPES),
        )


def from_model_info(info: Any) -> Capabilities:
    """The SDK's `ModelInfo` (models.retrieve) as Capabilities."""

    def on(support: Any) -> bool:
        return bool(getattr(support, "supported", False))

    caps = getattr(info, "capabilities", None)
    thinking = efforts = edits = None
    if caps is not None:
        types = caps.thinking.types
        if not caps.thinking.supported:
            thinking = "none"
        elif on(types.adaptive):
            thinking = "adaptive"
        elif on(types.enabled):
            thinking = "extended"
        else:
            thinking = "none"
        effort = caps.effort
        efforts = tuple(level for level in EFFORTS if effort.supported and on(getattr(effort, level, None)))
        management = caps.context_management
        edits = tuple(
            kind for kind in EDIT_TYPES if management.supported and on(getattr(management, kind, None))
        )
    return Capabilities(
        context=_positive(getattr(info, "max_input_tokens", None)),
        max_output=_positive(getattr(info, "max_tokens", None)),
        thinking=thinking,
        efforts=efforts,
        context_edits=edits,
    )


def _positive(value: Any) -> int | None:
    """A token count as the API gave it, or None when it is no positive integer."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


# --------------------------------------------------------------------------- the disk cache


def cache_folder(home: Path, env: Mapping[str, str]) -> Path:
    base = env.get("XDG_CACHE_HOME")
    return (Path(base) if base else home / ".cache") / "patchwright" / "models"


@dataclass(frozen=True)
class CachedCapabilities:
    capabilities: Capabilities
    fetched_at: float

    def fresh(self, now: float, ttl: float = CACHE_TTL) -> bool:
        return 0 <= now - self.fetched_at < ttl


@dataclass(frozen=True)
class CapabilityCache:
    """One small JSON file per model; an entry made against another API endpoint is a miss."""

    folder: Path
    base_url: str

    def _path(self, model: str) -> Path | None:
        return self.folder / f"{model}.json" if _SAFE_NAME.match(model) else None

    def read(self, model: str) -> CachedCapabilities | None:
        path = self._path(model)
        if path is None:
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if not isinstance(data, dict) or data.get("base_url") != self.base_url:
                return None
            return CachedCapabilities(Capabilities.from_json(data["capabilities"]), float(data["fetched_at"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None  # missing or damaged: asked again

    def write(self, model: str, capabilities: Capabilities, now: float) -> None:
        """Atomically (temp file + rename); a cache that cannot be written is no error."""
        path = self._path(model)
        if path is None:
            return
        entry = {"base_url": self.base_url, "fetched_at": now, "capabilities": capabilities.as_json()}
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp.write_text(json.dumps(entry), encoding="utf-8")
            os.replace(tmp, path)
        except OSError:
            with contextlib.suppress(OSError):
                tmp.unlink()


# --------------------------------------------------------------------------- the lookup


class ModelLookup:
    """`client.models.retrieve` on a thread of its own; `wait()` joins it (bounded)."""

    def __init__(self, model: str, cache: CapabilityCache) -> None:
        self.model = model
        self.cache = cache
        self.capabilities: Capabilities | None = None
        self.error: str | None = None
        self._thread: threading.Thread | None = None
        self._client: Callable[[], Any] | None = None

    def begin(self, client: Callable[[], Any] | None = None) -> None:
        """`client`: gives the run's SDK client (preload.py), so the lookup builds no second one."""
        self._client = client
        self._thread = threading.Thread(target=self._fetch, name="patchwright-model-lookup", daemon=True)
        self._thread.start()

    def wait(self, timeout: float = LOOKUP_WAIT) -> Capabilities | None:
        if self._thread is None:
            self._fetch()
        else:
            self._thread.join(timeout)
            if self._thread.is_alive():
                self.error = f"no answer within {timeout:.0f} s"
                return None
        return self.capabilities

    def _fetch(self) -> None:
        try:
            shared = self._client() if self._client is not None else None
            if shared is not None:
                client = shared.with_options(max_retries=1, timeout=LOOKUP_TIMEOUT)
            else:
                import anthropic

                client = anthropic.Anthropic(max_retries=1, timeout=LOOKUP_TIMEOUT)
            capabilities = from_model_info(client.models.retrieve(self.model))
        except Exception as err:  # any failure means "not known from the API": never a crash
            self.error = _describe(err)
            return
        self.cache.write(self.model, capabilities, time.time())
        self.capabilities = capabilities


def _describe(err: Exception) -> str:
    status = getattr(err, "status_code", None)
    text = " ".join(str(err).split())[:160]
    return f"{type(err).__name__}{f' {status}' if status else ''}: {text}"


# --------------------------------------------------------------------------- the user's own rows


def user_models_path(home: Path, env: Mapping[str, str]) -> Path:
    base = env.get("XDG_CONFIG_HOME")
    return (Path(base) if base else home / ".config") / "patchwright" / "models.toml"


def read_user_models(path: Path) -> dict[str, dict[str, Any]]:
    """The user's rows, checked: a wrong key or type is an input error (exit 2), as in config.toml."""
    if not path.is_file():
        return {}
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: invalid TOML: {err}") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot read: {err.strerror}") from None
    models = data.get("models", {})
    unknown_tables = set(data) - {"models"}
    if unknown_tables or not isinstance(models, dict):
        raise ConfigError(f'{path}: expected only [models."MODEL-ID"] tables')
    for name, row in models.items():
        where = f'{path} [models."{name}"]'
        if not isinstance(row, dict):
            raise ConfigError(f"{where}: must be a table")
        for key, value in row.items():
            kinds = _USER_KEYS.get(key)
            if kinds is None:
                raise ConfigError(f"{where}: unknown key {key!r} (known: {', '.join(_USER_KEYS)})")
            if isinstance(value, bool) or not isinstance(value, kinds):
                raise ConfigError(f"{where}: {key} must be {' or '.join(k.__name__ for k in kinds)}")
            if isinstance(value, int | float) and value < 0:
                raise ConfigError(f"{where}: {key} must not be negative")
        _check_names(where, row, "efforts", EFFORTS)
        _check_names(where, row, "context_edits", EDIT_TYPES)
        if row.get("thinking", "none") not in THINKING_MODES:
            raise ConfigError(f"{where}: thinking must be one of {', '.join(THINKING_MODES)}")
    return models


def _check_names(where: str, row: dict[str, Any], key: str, known: tuple[str, ...]) -> None:
    wrong = [v for v in row.get(key, []) if v not in known]
    if wrong:
        raise ConfigError(f"{where}: {key} holds {wrong[0]!r}; known: {', '.join(known)}")


# --------------------------------------------------------------------------- putting it together


def merge(
    table: ModelInfo, api: Capabilities | None, user: Mapping[str, Any] | None, source: str
) -> ModelInfo:
    """The table's row, overlaid with what the API said, overlaid with the user's row."""
    info = table
    if api is not None:
        info = dataclasses.replace(
            info,
            context=api.context or info.context,
            max_output=api.max_output or info.max_output,
            thinking=info.thinking if api.thinking is None else _thinking(api.thinking),
            efforts=info.efforts if api.efforts is None else api.efforts,
            context_edits=info.context_edits if api.context_edits is None else api.context_edits,
            source=source,
        )
    if user:
        changes: dict[str, Any] = {
            k: float(user[k])
            for k in ("input", "output", "cache_write_5m", "cache_write_1h", "cache_read")
            if k in user
        }
        changes.update({k: int(user[k]) for k in ("context", "max_output") if k in user})
        if "thinking" in user:
            changes["thinking"] = _thinking(str(user["thinking"]))
        changes.update({k: tuple(user[k]) for k in ("efforts", "context_edits") if k in user})
        info = dataclasses.replace(info, **changes, source=f"{info.source}+user")
    return info


def _thinking(mode: str) -> str | None:
    return None if mode == "none" else mode


@dataclass
class ModelKnowledge:
    """A run's model as known before anything starts, and the lookup to finish, if any."""

    model: str
    info: ModelInfo
    lookup: ModelLookup | None
    stale: Capabilities | None  # an expired cache entry: used if the API cannot be reached
    user: dict[str, Any] | None
    user_path: Path

    def finish(self, timeout: float = LOOKUP_WAIT) -> list[str]:
        """Wait for the lookup under way and take its answer; returns warnings (one line each)."""
        if self.lookup is None:
            return []
        lookup, self.lookup = self.lookup, None
        fetched = lookup.wait(timeout)
        table = model_info(self.model)
        if fetched is not None:
            self.info = merge(table, fetched, self.user, "models-api")
            return []
        if self.stale is not None:
            self.info = merge(table, self.stale, self.user, "cache-expired")
            return []
        if table.source == "default" and not self.user:
            return [
                f"model {self.model} is unknown to patchwright's table and the Models API could not "
                f"say what it can do ({lookup.error}); using a {self.info.context:,}-token window, "
                "no thinking parameter and max_tokens as set"
            ]
        return []


def know_model(
    model: str, provider: str, home: Path, env: Mapping[str, str], now: float | None = None
) -> ModelKnowledge:
    """What is known without the network (user's rows, cache, table), and a lookup, not yet
    begun, when the cache has no fresh entry and the provider offers the Models API."""
    user_path = user_models_path(home, env)
    user = table_row(read_user_models(user_path), model)
    table = model_info(model)
    if provider != "anthropic":
        return ModelKnowledge(model, merge(table, None, user, "table"), None, None, user, user_path)
    base_url = (env.get("ANTHROPIC_BASE_URL") or DEFAULT_BASE_URL).rstrip("/")
    cache = CapabilityCache(cache_folder(home, env), base_url)
    cached = cache.read(model)
    clock = time.time() if now is None else now
    if cached is not None and cached.fresh(clock):
        return ModelKnowledge(
            model, merge(table, cached.capabilities, user, "cache"), None, None, user, user_path
        )
    stale = cached.capabilities if cached is not None else None
    info = merge(table, stale, user, "cache-expired")
    return ModelKnowledge(model, info, ModelLookup(model, cache), stale, user, user_path)


def choose_effort(
    model: str, info: ModelInfo, asked: str | None, from_agent: str | None
) -> tuple[str | None, list[str]]:
    """The effort level to send, and warnings. A level the model lacks, asked for by the user
    (flag, config, environment), is a usage error naming the levels it has; one from the agent
    file (written for some model) is left out with a warning. Unknown levels: sent as asked."""
    wanted = asked or from_agent
    if wanted is None or info.efforts is None or wanted in info.efforts:
        return wanted, []
    has = f"it takes {', '.join(info.efforts)}" if info.efforts else "it takes no effort setting"
    if asked is not None:  # the flag, PATCHWRIGHT_EFFORT or a config file's `effort`
        hint = "; leave --effort (and the effort setting) out" if not info.efforts else ""
        raise UsageError(f"effort {asked}: model {model} has no such effort level; {has}{hint}")
    return None, [f"the agent file's effort {from_agent} is left out: model {model} has no such level; {has}"]


def check_model_use(knowledge: ModelKnowledge, max_cost: float | None, policy: ContextPolicy) -> list[str]:
    """Input errors found from what is known of the model: --max-cost without a price, a
    context strategy the model lacks. Returns warnings: a trigger the window never reaches."""
    info = knowledge.info
    if max_cost is not None and not info.priced:
        raise UsageError(
            f"--max-cost needs a price for model {knowledge.model}, and none is known; add one as "
            f'[models."{knowledge.model}"] input = USD, output = USD (per million tokens) to '
            f"{knowledge.user_path}"
        )
    refusal = policy.refusal(knowledge.model, info.context_edits)
    if refusal is not None:
        raise UsageError(refusal)
    if policy.strategy != "off" and policy.trigger >= info.context:
        return [
            f"context_trigger {policy.trigger:,} is not below model {knowledge.model}'s "
            f"{info.context:,}-token window: the API will not manage the context before it fills"
        ]
    return []
