"""What every request of a run carries besides the conversation: thinking, effort, context
management and the betas they need. Built once and fixed for the whole run: changing any
of them mid-run changes the prompt the cache and the thinking blocks are bound to.

Sources (docs corpus, as stored when this was written):
- build-with-claude/effort (en/de/zh-CN copies): `output_config: {effort: ...}`, no beta
  header; without a value the model's default applies (high on most models, medium on
  Opus 5.5 and Haiku 5.5); levels low, medium, high, xhigh, max, not every level on
  every model (the API answers 400, reported as a one-line error).
- build-with-claude/thinking via the SDK's ThinkingConfigParam docs: `{"type": "adaptive"}`
  lets the model decide how much to think; `{"type": "enabled", "budget_tokens": N}` is
  manual (N >= 1024 and < max_tokens); thinking tokens count toward max_tokens. The model
  pages: Sonnet 5/5.5 think adaptively by default and refuse manual thinking with 400;
  Opus 5.5 and Fable 5.1 think always.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from patchwright.context import ContextPolicy
from patchwright.model import ModelInfo

EFFORTS = ("low", "medium", "high", "xhigh", "max")


@dataclass(frozen=True)
class RequestParams:
    """Request fields beyond model, max_tokens, system, tools and messages."""

    thinking: dict[str, Any] | None = None
    effort: str | None = None
    context_management: dict[str, Any] | None = None
    betas: tuple[str, ...] = ()

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.thinking is not None:
            out["thinking"] = self.thinking
        if self.effort is not None:
            out["output_config"] = {"effort": self.effort}
        if self.context_management is not None:
            out["context_management"] = self.context_management
        return out


def thinking_for(info: ModelInfo) -> dict[str, Any] | None:
    """Adaptive thinking where the model has it; none where only manual thinking exists
    (patchwright does not pick a token budget for the model)."""
    return {"type": "adaptive"} if info.thinking == "adaptive" else None


def max_tokens_for(info: ModelInfo, wanted: int) -> int:
    """The output budget, cut to the model's output limit when prices.toml knows it."""
    return min(wanted, info.max_output) if info.max_output else wanted


def request_params(info: ModelInfo, effort: str | None, context: ContextPolicy) -> RequestParams:
    """`effort` as chosen for the model (capabilities.choose_effort): sent as given."""
    thinking = thinking_for(info)
    return RequestParams(
        thinking=thinking,
        effort=effort,
        context_management=context.config(thinking is not None, info.context_edits),
        betas=context.betas(info.context_edits),
    )
