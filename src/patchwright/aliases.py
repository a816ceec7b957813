"""Claude Code's model aliases in agent files (`model: sonnet`), resolved to current model IDs.

Claude Code's model-config page (docs corpus, as stored when this was written): `sonnet` is the
latest Sonnet, `opus` the latest Opus, `haiku` the fast Haiku model, `default` the
recommended model, `sonnet[1m]` Sonnet with a 1M-token window, `opusplan` Opus while
planning and Sonnet while executing; ANTHROPIC_DEFAULT_OPUS_MODEL /
ANTHROPIC_DEFAULT_SONNET_MODEL / ANTHROPIC_DEFAULT_HAIKU_MODEL (full model names) change
what an alias maps to. A subagent's `model: inherit` takes the main conversation's model;
patchwright has no parent conversation, so it takes the run's model (--model / config, else
the default). The current IDs come from the models pages (the comparison tables on
models/sonnet-5-5/overview and about-claude/models/whats-new-opus-5 list Claude Opus 5.5,
Claude Sonnet 5.5 and Claude Haiku 5.5 as the current Opus, Sonnet and Haiku).
"""

from __future__ import annotations

from collections.abc import Mapping

from patchwright.model import DEFAULT_MODEL

# alias -> (current model ID, the environment variable that overrides it, or None)
ALIASES: dict[str, tuple[str, str | None]] = {
    "opus": ("claude-opus-5-5", "ANTHROPIC_DEFAULT_OPUS_MODEL"),
    "sonnet": ("claude-sonnet-5-5", "ANTHROPIC_DEFAULT_SONNET_MODEL"),
    "haiku": ("claude-haiku-5-5", "ANTHROPIC_DEFAULT_HAIKU_MODEL"),
    "sonnet[1m]": ("claude-sonnet-5-5", "ANTHROPIC_DEFAULT_SONNET_MODEL"),  # 1M is its standard window
    "opusplan": ("claude-sonnet-5-5", "ANTHROPIC_DEFAULT_SONNET_MODEL"),  # an unattended run only executes
    "default": (DEFAULT_MODEL, None),
}
INHERIT = "inherit"


def resolve_model(run_model: str | None, agent_model: str | None, env: Mapping[str, str]) -> str:
    """The model a run uses: --model (or config) first, then the agent file's, then the default.

    An alias in either place becomes its current ID; `inherit` in an agent file defers to
    the run's model.
    """
    for wanted in (run_model, agent_model):
        if not wanted or wanted.strip().lower() == INHERIT:
            continue
        return resolve_alias(wanted.strip(), env)
    return DEFAULT_MODEL


def resolve_alias(name: str, env: Mapping[str, str]) -> str:
    entry = ALIASES.get(name.lower())
    if entry is None:
        return name
    model, variable = entry
    override = env.get(variable, "").strip() if variable else ""
    return override or model
