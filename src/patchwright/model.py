"""The model behind the loop: an Anthropic SDK client, its prices, and one streamed turn.

Retries are the SDK's own (408/409/429/5xx/529 and connection errors, honouring
retry-after) with a budget fit for unattended runs; whatever still fails becomes
a `ModelError` with one line a user can act on.
"""

from __future__ import annotations

import os
import re
import time
import tomllib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any, Literal

from patchwright.errors import ModelError, UsageError
from patchwright.reply import Reply, StreamCut, assemble

if TYPE_CHECKING:  # imported where used: the SDK takes a second to import, which a run overlaps
    import anthropic

    AnyClient = anthropic.Anthropic | anthropic.AnthropicBedrock | anthropic.AnthropicVertex

DEFAULT_MODEL = "claude-sonnet-5-5"
DEFAULT_MAX_RETRIES = 6
DEFAULT_MAX_TOKENS = 64_000  # thinking and tool calls share it; see README "Output budget"
DEFAULT_CONTEXT_WINDOW = 200_000
STREAM_RETRIES = 2  # a stream cut mid-message is not retried by the SDK
CACHE_WRITE_FACTOR = 1.25
CACHE_READ_FACTOR = 0.1
CACHE_WRITE_1H_FACTOR = 2.0  # pricing page: 1-hour cache writes cost 2x base input
Provider = Literal["anthropic", "bedrock", "vertex"]
PROVIDERS: tuple[Provider, ...] = ("anthropic", "bedrock", "vertex")
_DATE_SUFFIX = re.compile(r"-\d{8}$")


@dataclass(frozen=True)
class ModelInfo:
    """Prices in USD per million tokens, context window and output limit; None when unknown.

    Cache prices are per model (prices.toml): recent models read the cache at 0.05x or
    0.025x input, not 0.1x, and a 1-hour cache write costs 2x input against 1.25x for 5 minutes.
    """

    input: float | None
    output: float | None
    context: int
    cache_write_5m: float | None = None
    cache_write_1h: float | None = None
    cache_read: float | None = None
    max_output: int | None = None
    thinking: str | None = None  # "adaptive", "extended" or None (see prices.toml)
    efforts: tuple[str, ...] | None = None  # effort levels it takes; () none; None: not known
    context_edits: tuple[str, ...] | None = None  # context-management edit types; None: not known
    # where the capabilities came from (table, models-api, cache, +user): provenance, not compared
    source: str = field(default="default", compare=False)

    @property
    def priced(self) -> bool:
        return self.input is not None and self.output is not None

    def factors(self) -> tuple[float, float, float]:
        """(5m write, 1h write, read) as multiples of the input price."""
        if self.input is None or self.input == 0:
            return CACHE_WRITE_FACTOR, CACHE_WRITE_1H_FACTOR, CACHE_READ_FACTOR
        return (
            CACHE_WRITE_FACTOR if self.cache_write_5m is None else self.cache_write_5m / self.input,
            CACHE_WRITE_1H_FACTOR if self.cache_write_1h is None else self.cache_write_1h / self.input,
            CACHE_READ_FACTOR if self.cache_read is None else self.cache_read / self.input,
        )


def model_info(model: str) -> ModelInfo:
    """Look a model up in prices.toml; dated IDs and provider prefixes fall back to the alias."""
    table = tomllib.loads(resources.files("patchwright").joinpath("prices.toml").read_text())["models"]
    row = table_row(table, model)
    return _info_from_row(row) if row is not None else ModelInfo(None, None, DEFAULT_CONTEXT_WINDOW)


def table_row(table: dict[str, Any], model: str) -> dict[str, Any] | None:
    """A model's row in a table keyed by alias: exact ID first, then without provider prefixes
    (bedrock "us.anthropic.claude-...-v1:0", vertex "claude-...@20250929") and date suffix."""
    if model in table:
        return dict(table[model])
    name = model.rsplit("/", 1)[-1]
    name = re.sub(r"^(?:[a-z-]+\.)?anthropic\.", "", name)
    name = re.sub(r"-v\d+(:\d+)?$", "", name)
    name = name.split("@", 1)[0]
    for candidate in (name, _DATE_SUFFIX.sub("", name)):
        if candidate in table:
            return dict(table[candidate])
    return None


def _info_from_row(row: dict[str, Any]) -> ModelInfo:
    def price(key: str) -> float | None:
        return float(row[key]) if key in row else None

    return ModelInfo(
        input=price("input"),
        output=price("output"),
        context=int(row.get("context", DEFAULT_CONTEXT_WINDOW)),
        cache_write_5m=price("cache_write_5m"),
        cache_write_1h=price("cache_write_1h"),
        cache_read=price("cache_read"),
        max_output=int(row["max_output"]) if "max_output" in row else None,
        thinking=str(row["thinking"]) if "thinking" in row else None,
        efforts=tuple(str(e) for e in row["efforts"]) if "efforts" in row else None,
        context_edits=tuple(str(e) for e in row["context_edits"]) if "context_edits" in row else None,
        source="table",
    )


@dataclass
class Usage:
    """Token counts as the API reports them, summed over a run.

    `cache_creation_1h_input_tokens` is the part of `cache_creation_input_tokens` written
    with the 1-hour TTL (usage.cache_creation.ephemeral_1h_input_tokens), priced at 2x.
    Server-side compaction runs as its own sampling iteration whose tokens are not in the
    top-level counts (usage.iterations, type "compaction"); they are added here, as billed.
    """

    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_1h_input_tokens: int = 0

    def add(self, other: Usage) -> None:
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cache_creation_input_tokens += other.cache_creation_input_tokens
        self.cache_read_input_tokens += other.cache_read_input_tokens
        self.cache_creation_1h_input_tokens += other.cache_creation_1h_input_tokens

    @property
    def prompt_tokens(self) -> int:
        """Everything the model read this turn: the figure that must fit the context window."""
        return self.input_tokens + self.cache_creation_input_tokens + self.cache_read_input_tokens

    def billed_input_equivalent(self, info: ModelInfo | None = None) -> float:
        """Input tokens weighted by their price factor: the model's own (prices.toml), or
        1.25x / 2x / 0.1x when the model is unknown."""
        write_5m, write_1h, read = (info or ModelInfo(None, None, 0)).factors()
        one_hour = min(self.cache_creation_1h_input_tokens, self.cache_creation_input_tokens)
        return (
            self.input_tokens
            + write_5m * (self.cache_creation_input_tokens - one_hour)
            + write_1h * one_hour
            + read * self.cache_read_input_tokens
        )

    def cost(self, info: ModelInfo) -> float | None:
        if info.input is None or info.output is None:
            return None
        return (
            self.billed_input_equivalent(info) * info.input + self.output_tokens * info.output
        ) / 1_000_000

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    @staticmethod
    def from_dict(data: dict[str, Any]) -> Usage:
        """A recorded `as_dict()` (the trajectory's), for counting a resumed run's earlier turns."""
        return Usage(**{f.name: int(data.get(f.name) or 0) for f in fields(Usage)})

    @staticmethod
    def from_counts(counts: dict[str, Any]) -> Usage:
        """A reply's `usage` (the API's JSON), compaction iterations included."""
        usage = _counted(counts)
        for iteration in counts.get("iterations") or []:
            if isinstance(iteration, dict) and iteration.get("type") == "compaction":
                usage.add(_counted(iteration))
        return usage


def _counted(counts: dict[str, Any]) -> Usage:
    breakdown = counts.get("cache_creation")
    one_hour = breakdown.get("ephemeral_1h_input_tokens") if isinstance(breakdown, dict) else 0
    return Usage(
        input_tokens=int(counts.get("input_tokens") or 0),
        output_tokens=int(counts.get("output_tokens") or 0),
        cache_creation_input_tokens=int(counts.get("cache_creation_input_tokens") or 0),
        cache_read_input_tokens=int(counts.get("cache_read_input_tokens") or 0),
        cache_creation_1h_input_tokens=int(one_hour or 0),
    )


@cache
def transport_errors() -> tuple[type[Exception], ...]:
    """The HTTP library's transport errors; the SDK lets them escape when a stream is cut."""
    found: list[type[Exception]] = [OSError, ConnectionError]
    for module_name in ("httpx2", "httpx"):
        try:
            module = __import__(module_name)
        except ImportError:
            continue
        error = getattr(module, "TransportError", None)
        if isinstance(error, type) and issubclass(error, Exception):
            found.append(error)
    return tuple(found)


# What each cloud provider's SDK client imports when it makes its first request (the anthropic
# package's `bedrock` and `vertex` extras): missing, the run would fail only after it started.
PROVIDER_MODULES: dict[str, tuple[str, ...]] = {
    "bedrock": ("boto3", "botocore"),
    "vertex": ("google.auth", "google.auth.transport.requests", "requests"),
}


def check_provider_extras(provider: str) -> None:
    """UsageError before anything starts when the provider's extra packages are not installed."""
    missing = [name for name in PROVIDER_MODULES.get(provider, ()) if not _importable(name)]
    if missing:
        raise UsageError(
            f"--provider {provider} needs extra packages: pip install 'patchwright[{provider}]' "
            f"(missing: {', '.join(missing)})"
        )


def _importable(name: str) -> bool:
    """Whether `name` can be imported, found without importing it (boto3 takes a while)."""
    import importlib.util
    import sys

    if name in sys.modules:
        return sys.modules[name] is not None
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a parent package missing, or a module without a spec
        return False


def check_credentials(provider: Provider) -> None:
    """UsageError now, before anything starts, if the provider's extra packages or its
    credentials are missing."""
    check_provider_extras(provider)
    if provider == "anthropic":
        if not (os.environ.get("ANTHROPIC_API_KEY") or os.environ.get("ANTHROPIC_AUTH_TOKEN")):
            raise UsageError(
                "no API key: set ANTHROPIC_API_KEY (or ANTHROPIC_AUTH_TOKEN), or use --provider bedrock|vertex"
            )
        return
    make_client(provider)  # the cloud SDKs find their credentials as they are made


def make_client(
    provider: Provider,
    max_retries: int = DEFAULT_MAX_RETRIES,
    timeout: float = 600.0,
    preloaded: Any = None,
) -> AnyClient:
    """The SDK client for a provider; credentials are read the SDK's way, and checked up front.
    `preloaded`: an `anthropic.Anthropic` made at launch (preload.py), whose connection pool
    and SSL context this one shares rather than building its own."""
    if provider == "anthropic":
        check_credentials(provider)
        if preloaded is not None:
            return preloaded.with_options(max_retries=max_retries, timeout=timeout)  # type: ignore[no-any-return]
    import anthropic

    if provider == "anthropic":
        return anthropic.Anthropic(max_retries=max_retries, timeout=timeout)
    try:
        if provider == "bedrock":
            return anthropic.AnthropicBedrock(max_retries=max_retries, timeout=timeout)
        if provider == "vertex":
            return anthropic.AnthropicVertex(max_retries=max_retries, timeout=timeout)
    except ImportError as err:
        raise UsageError(
            f"--provider {provider} needs extra packages: pip install 'patchwright[{provider}]' ({err})"
        ) from None
    except Exception as err:  # the provider SDKs raise their own types for missing credentials
        raise UsageError(f"cannot set up --provider {provider}: {err}") from None
    raise UsageError(f"unknown provider {provider!r}; use {', '.join(PROVIDERS)}")


def _describe_api_error(err: anthropic.APIError) -> ModelError:
    import anthropic

    if isinstance(err, anthropic.AuthenticationError):
        return ModelError("the API rejected the credentials (401): check ANTHROPIC_API_KEY")
    if isinstance(err, anthropic.PermissionDeniedError):
        return ModelError(f"the API denied access (403): {_message_of(err)}")
    if isinstance(err, anthropic.NotFoundError):
        return ModelError(f"the API does not know this model or endpoint (404): {_message_of(err)}")
    if isinstance(err, anthropic.BadRequestError):
        return ModelError(f"the API refused the request (400): {_message_of(err)}")
    if isinstance(err, anthropic.APIStatusError) and err.status_code < 400:  # an `error` event mid-stream
        return ModelError(
            f"the API stream kept failing after retries ({_error_type_of(err)}): {_message_of(err)}"
        )
    if isinstance(err, anthropic.APIStatusError):
        return ModelError(f"the API kept failing after retries ({err.status_code}): {_message_of(err)}")
    if isinstance(err, anthropic.APITimeoutError):
        return ModelError("the API timed out after retries")
    if isinstance(err, anthropic.APIConnectionError):
        return ModelError(f"cannot reach the API after retries: {err.__cause__ or err}")
    return ModelError(f"the API failed: {err}")


def _error_type_of(err: anthropic.APIStatusError) -> str:
    body = err.body
    inner = body.get("error") if isinstance(body, dict) else None
    return str(inner.get("type")) if isinstance(inner, dict) else "error"


def _message_of(err: anthropic.APIStatusError) -> str:
    body = err.body
    if isinstance(body, dict):
        inner = body.get("error")
        if isinstance(inner, dict) and isinstance(inner.get("message"), str):
            return str(inner["message"])[:300]
    return str(err.message)[:300]


@dataclass
class ModelClient:
    """Sends one turn and returns the whole message; text is passed on as it streams.

    `params` (thinking, effort, context management; see params.py) go with every request;
    when they need a beta header the request goes through `client.beta.messages`.
    """

    client: AnyClient
    model: str
    max_tokens: int = DEFAULT_MAX_TOKENS
    params: Any = None  # params.RequestParams; Any here so model.py does not import params.py

    def create(
        self,
        system: list[dict[str, Any]],
        tools: list[dict[str, Any]],
        messages: list[dict[str, Any]],
        on_text: Callable[[str], None] | None = None,
    ) -> Reply:
        """One turn. The SDK retries failed requests; a stream cut mid-message is retried here."""
        import anthropic

        for attempt in range(STREAM_RETRIES + 1):
            try:
                return self._stream_once(system, tools, messages, on_text)
            except anthropic.APIStatusError as err:
                # An `error` event inside a 200 stream (e.g. overloaded) escapes the SDK's retries.
                if err.status_code < 400 and attempt < STREAM_RETRIES:
                    time.sleep(1.0 * (attempt + 1))
                    continue
                raise _describe_api_error(err) from err
            except anthropic.APIError as err:
                raise _describe_api_error(err) from err
            except transport_errors() as err:  # the connection dropped mid-stream
                if attempt == STREAM_RETRIES:
                    raise ModelError(
                        f"the API stream kept breaking off ({type(err).__name__}: {err})"
                    ) from err
                time.sleep(0.5 * (attempt + 1))
        raise AssertionError("unreachable")

    def _stream_once(
        self,
        system: list[dict[str, Any]],
        tools: list[dict[str, Any]],
        messages: list[dict[str, Any]],
        on_text: Callable[[str], None] | None,
    ) -> Reply:
        import anthropic

        betas: list[str] = list(self.params.betas) if self.params is not None else []
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": self.max_tokens,
            "system": system,
            "tools": tools,
            "messages": messages,
            "stream": True,
            **(self.params.body() if self.params is not None else {}),
        }
        # The SDK's own request, retries and error events; its events left as JSON (reply.py).
        stream = self.client.post(
            "/v1/messages",
            body=body,
            cast_to=object,
            stream=True,
            stream_cls=anthropic.Stream[object],
            options={"headers": {"anthropic-beta": ",".join(betas)}} if betas else {},
        )
        with stream:
            try:
                message = assemble(stream, on_text, betas)
            except anthropic.APIConnectionError as err:
                # From anthropic 2.17 the SDK wraps a body cut off mid-stream (a transport error or
                # a read timeout) in this, without a retry; before, the transport's error escaped.
                raise StreamCut(str(err.__cause__ or err)) from err
        if message.stop_reason is None:  # the stream ended without message_delta/message_stop
            raise StreamCut("the stream ended before the message was complete")
        return message
