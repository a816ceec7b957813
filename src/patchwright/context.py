"""Context management done by the platform, not by rewriting our own history.

The client keeps the conversation whole and append-only; the API clears old tool results
(`clear_tool_uses_20250919`) or compacts the conversation into a summary (`compact_20260112`)
before the prompt reaches the model, and says so in the response. Rewriting history
ourselves would throw the prompt cache away at every clearing and, on models with
preserved thinking, invalidate every thinking block after the change.

Sources (docs corpus, as stored when this was written):
- build-with-claude/context-editing(.md): beta header `context-management-2025-06-27`;
  strategies clear_tool_uses_20250919 and clear_thinking_20251015; edits are applied
  server-side and "your client maintains the full, unmodified conversation history";
  clearing tool results invalidates the cached prefix from the cleared point, so
  `clear_at_least` should make each clearing worth it; clear_thinking keep "all"
  maximises cache hits; supported models include the 5.x and 4.5+ lines.
  Defaults (trigger 100,000 input tokens, keep 3 tool uses) as reproduced by third-party
  mirrors of that page (LangChain's ClearToolUsesEdit, adk-rust); the English page's
  parameter table itself was not among the stored excerpts.
- build-with-claude/compaction (es/it copies): beta header `compact-2026-01-12`, strategy
  `compact_20260112` in `context_management.edits`, trigger default 150,000 tokens; the
  response carries a `compaction` block that later requests send back, and the API drops
  every block before it.
- anthropic SDK 2.14.0 types (BetaContextManagementConfigParam, BetaClearToolUses20250919EditParam,
  BetaCompact20260112EditParam, BetaContextManagementResponse, BetaCompactionBlock): field names.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from patchwright.reply import Reply

CONTEXT_MANAGEMENT_BETA = "context-management-2025-06-27"
COMPACT_BETA = "compact-2026-01-12"
STRATEGIES = ("clear", "compact", "off")
DEFAULT_STRATEGY = "clear"
DEFAULT_TRIGGER = 100_000  # input tokens; the API's own default for clear_tool_uses (see README)
MIN_TRIGGER = 1_000  # below this, clearing would start on the first turns of any run
# The compaction docs give 50,000 input tokens as the least trigger compact_20260112 takes (the
# figure as the docs were quoted when this was written; the stored copies searched did not show
# the parameter table): a lower one is refused before anything starts, not by the API mid-run.
MIN_COMPACT_TRIGGER = 50_000
CLEAR_THINKING = "clear_thinking_20251015"
CLEAR_TOOL_USES = "clear_tool_uses_20250919"
COMPACT = "compact_20260112"
EDIT_TYPES = (CLEAR_THINKING, CLEAR_TOOL_USES, COMPACT)
KEEP_TOOL_USES = 3  # the API's default: the last three tool uses stay whole
COMPACT_INSTRUCTIONS = (
    "This is an unattended coding run. Keep, word for word, the user's original task and any later "
    "instructions from the user. Also keep: the files changed so far and why, the test command and its "
    "latest result, and what remains to be done."
)


@dataclass(frozen=True)
class ContextPolicy:
    """Which server-side strategy a run uses and when it starts (fixed for the whole run).

    `clear` clears old tool results once a request reads `trigger` input tokens, at least
    `trigger // 2` tokens at a time, so each clearing (which costs a cache write of the
    rest of the prompt) frees enough to pay for itself; the system prompt (persona) and
    the task message are never touched. `compact` replaces the conversation by a summary
    told to keep the task verbatim; the persona is in `system` and is never compacted.
    """

    strategy: str = DEFAULT_STRATEGY
    trigger: int = DEFAULT_TRIGGER

    def edits(self, thinking: bool, available: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
        """The request's edits; `available`: the edit types the model takes (None: all)."""
        trigger = {"type": "input_tokens", "value": self.trigger}

        def has(kind: str) -> bool:
            return available is None or kind in available

        if self.strategy == "clear" and has(CLEAR_TOOL_USES):
            edits: list[dict[str, Any]] = []
            if thinking and has(CLEAR_THINKING):  # first when combined; "all" keeps the cache intact
                edits.append({"type": CLEAR_THINKING, "keep": "all"})
            edits.append(
                {
                    "type": CLEAR_TOOL_USES,
                    "trigger": trigger,
                    "keep": {"type": "tool_uses", "value": KEEP_TOOL_USES},
                    "clear_at_least": {"type": "input_tokens", "value": self.trigger // 2},
                }
            )
            return edits
        if self.strategy == "compact" and has(COMPACT):
            return [{"type": COMPACT, "trigger": trigger, "instructions": COMPACT_INSTRUCTIONS}]
        return []

    def config(self, thinking: bool, available: tuple[str, ...] | None = None) -> dict[str, Any] | None:
        """The request's `context_management`, or None when the run manages no context."""
        edits = self.edits(thinking, available)
        return {"edits": edits} if edits else None

    def betas(self, available: tuple[str, ...] | None = None) -> tuple[str, ...]:
        if not self.edits(False, available):
            return ()
        if self.strategy == "clear":
            return (CONTEXT_MANAGEMENT_BETA,)
        if self.strategy == "compact":
            return (COMPACT_BETA,)
        return ()

    def refusal(self, model: str, available: tuple[str, ...] | None) -> str | None:
        """Why the model cannot run this policy, or None. Compaction is asked for by name, so a
        model without it is an input error; clearing is the default, and is left off quietly."""
        if self.strategy == "compact" and available is not None and COMPACT not in available:
            return (
                f"model {model} does not take server-side compaction ({COMPACT}); "
                "set context_strategy to clear or off"
            )
        return None


def context_events(message: Reply) -> list[tuple[str, dict[str, Any]]]:
    """What the server did to the context for this response, as trajectory events.

    `context_edited`: one per applied edit (cleared tool uses or thinking turns, and the
    input tokens that freed). `context_compacted`: a compaction block came back (its
    summary's length; the block itself is in the response's content and goes back as is).
    """
    events: list[tuple[str, dict[str, Any]]] = []
    management = message.context_management or {}
    for edit in management.get("applied_edits") or []:
        if isinstance(edit, dict):
            events.append(("context_edited", {k: v for k, v in edit.items() if v is not None}))
    for block in message.content:
        if block.get("type") == "compaction":
            content = block.get("content")
            events.append(
                (
                    "context_compacted",
                    {"summary_chars": len(content) if content else 0, "failed": content is None},
                )
            )
    return events


def clearing_keep(params: Any) -> int | None:
    """How many recent tool uses the request's tool-result clearing keeps, or None without one."""
    management = getattr(params, "context_management", None) or {}
    for edit in management.get("edits", []):
        if edit.get("type") == "clear_tool_uses_20250919":
            return int((edit.get("keep") or {}).get("value", KEEP_TOOL_USES))
    return None


def with_boundary_breakpoint(
    messages: list[dict[str, Any]], keep: int, cache: dict[str, Any]
) -> list[dict[str, Any]]:
    """A cache breakpoint on the user turn holding the newest tool result that clearing takes.

    Past the trigger the API clears every tool result but the last `keep` on each request,
    so the cleared boundary moves one turn per step, and every cache entry written at the
    last turns (where the newest results were still whole) stops matching. A breakpoint at
    the boundary writes the prefix as it looks cleared; the next request finds it within
    the 20-block lookback and reads everything up to there from the cache. Under the
    trigger it is one more entry on a prefix written anyway. The fourth of four breakpoints:
    system, the last two user turns, this one.
    """
    turns = [
        i
        for i, message in enumerate(messages)
        if message["role"] == "user" and isinstance(message["content"], list)
        for block in message["content"]
        if block.get("type") == "tool_result"
    ]
    if len(turns) <= keep:
        return messages
    boundary = turns[-keep - 1]
    last_two = [i for i, m in enumerate(messages) if m["role"] == "user"][-2:]
    if boundary in last_two:
        return messages
    marked = list(messages)
    blocks = list(messages[boundary]["content"])
    blocks[-1] = {**blocks[-1], "cache_control": cache}
    marked[boundary] = {**messages[boundary], "content": blocks}
    return marked
