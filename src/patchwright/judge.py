"""`--judge`: one model call that compares fixed attempts the rules cannot tell apart.

Selection's rules (verdict, cross-validation, regressions) leave ties; without a judge the
smaller patch wins. With one, the model reads the task and the tied patches and names the
one it would merge, with its reasoning, which selection.json records. The patches are the
attempts' output, untrusted: a patch can try to talk the judge round, so a judge only ever
chooses among candidates already proven `fixed` and equal on every rule, and its answer is
read as one number that must name one of them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from patchwright.model import ModelClient, Usage
from patchwright.prompt import JUDGE_QUESTION, JUDGE_SYSTEM
from patchwright.selection import AttemptResult

MAX_PATCH_CHARS = 40_000  # of each candidate's patch shown to the judge
MAX_REASONING_CHARS = 4_000  # of the judge's answer kept in selection.json
JUDGE_MAX_TOKENS = 4_000
_CHOICE = re.compile(r"^CHOICE:\s*(\d+)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class JudgeResult:
    choice: int | None  # None: the answer named no candidate; the rules' order stands
    reasoning: str
    usage: Usage

    def as_dict(self, candidates: Sequence[int], cost: float | None) -> dict[str, Any]:
        return {
            "candidates": list(candidates),
            "choice": self.choice,
            "reasoning": self.reasoning[:MAX_REASONING_CHARS],
            "cost_usd": cost,
        }


def tied(ranked: Sequence[AttemptResult]) -> list[AttemptResult]:
    """The leading fixed attempts equal on verdict, cross-validation and regressions (2 or more),
    else []."""
    if not ranked or not ranked[0].fixed or not ranked[0].patch_bytes:
        return []
    lead = ranked[0].key()[:3]
    same = [a for a in ranked if a.key()[:3] == lead and a.patch_bytes]
    return same if len(same) > 1 else []


def prompt(task: str, candidates: Sequence[AttemptResult]) -> str:
    parts = [f"<task>\n{task}\n</task>"]
    for attempt in candidates:
        patch = Path(attempt.folder, "patch.diff").read_text(encoding="utf-8", errors="replace")
        if len(patch) > MAX_PATCH_CHARS:
            patch = patch[:MAX_PATCH_CHARS] + f"\n[... {len(patch) - MAX_PATCH_CHARS} characters cut ...]"
        parts.append(f'<attempt number="{attempt.number}">\n{patch}\n</attempt>')
    numbers = ", ".join(str(a.number) for a in candidates)
    parts.append(JUDGE_QUESTION.format(numbers=numbers))
    return "\n\n".join(parts)


def judge(client: ModelClient, task: str, candidates: Sequence[AttemptResult]) -> JudgeResult:
    """One request, no tools; ModelError when the API fails (the caller keeps the rules' order)."""
    message = client.create(
        [{"type": "text", "text": JUDGE_SYSTEM}], [], [{"role": "user", "content": prompt(task, candidates)}]
    )
    text = message.text()
    found = _CHOICE.findall(text)
    numbers = {a.number for a in candidates}
    choice = int(found[-1]) if found and int(found[-1]) in numbers else None
    return JudgeResult(choice, text.strip(), Usage.from_counts(message.usage))
