"""Which of several attempts' patches to keep, by rules a reviewer can follow in selection.json.

1. the verdict: fixed, then not_reproduced, not_fixed, tests_not_runnable, regressed, then
   attempts that were never verified (no patch, an error, killed);
2. among those, cross-validation: how many of the OTHER attempts' failing tests (tests that
   fail on the original code) pass with this attempt's code; a patch that only satisfies the
   test it wrote itself ranks below one that also satisfies the tests others wrote;
3. fewer tests that passed before and fail after;
4. a patch at all, then the smaller patch (bytes); with --judge, fixed attempts equal on
   1-3 are ordered by one model call first (judge.py, `prefer`);
5. the earlier attempt.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from patchwright.verdict import RANK, VerdictKind

RULES = [
    "verdict: fixed > not_reproduced > not_fixed > tests_not_runnable > regressed > not verified",
    "cross-validation: more of the other attempts' fail-to-pass tests pass with this patch's code",
    "fewer regressions (PASS_TO_FAIL)",
    "a non-empty patch; among fixed attempts equal on the rules above, --judge's choice; then the smaller patch",
    "the earlier attempt",
]


@dataclass
class AttemptResult:
    """One attempt as its run folder tells it."""

    number: int
    folder: str
    status: str  # the run's status, or "killed" / "crashed" when its process died
    exit_code: int | None
    verdict: str | None = None
    reason: str | None = None
    fail_to_pass: list[str] = field(default_factory=list)
    pass_to_fail: list[str] = field(default_factory=list)
    patch_bytes: int = 0
    cost_usd: float = 0.0
    shows_bug: bool = False  # its own tests fail on the original code: a test set for the others
    error: str | None = None
    cross_passed: list[int] = field(default_factory=list)  # attempts whose failing tests pass with this code
    cross_failed: list[int] = field(default_factory=list)

    @property
    def fixed(self) -> bool:
        return self.verdict == VerdictKind.FIXED

    def key(self) -> tuple[int, int, int, int, int, int]:
        rank = RANK.index(VerdictKind(self.verdict)) if self.verdict in set(RANK) else len(RANK)
        return (
            rank,
            -len(self.cross_passed),
            len(self.pass_to_fail),
            0 if self.patch_bytes else 1,
            self.patch_bytes,
            self.number,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "attempt": self.number,
            "folder": self.folder,
            "status": self.status,
            "exit_code": self.exit_code,
            "verdict": self.verdict,
            "reason": self.reason,
            "fail_to_pass": len(self.fail_to_pass),
            "pass_to_fail": len(self.pass_to_fail),
            "patch_bytes": self.patch_bytes,
            "cost_usd": self.cost_usd,
            "tests_show_the_bug": self.shows_bug,
            "cross_validation": {"passed": self.cross_passed, "failed": self.cross_failed},
            "error": self.error,
        }


def cross_pairs(attempts: list[AttemptResult]) -> list[tuple[int, int]]:
    """(candidate, test set) pairs to run: each fixed attempt's code against each other
    attempt's tests that fail on the original code."""
    candidates = [a.number for a in attempts if a.fixed]
    test_sets = [a.number for a in attempts if a.shows_bug]
    return [(c, t) for c in candidates for t in test_sets if c != t]


def rank(attempts: list[AttemptResult]) -> list[AttemptResult]:
    """Best first."""
    return sorted(attempts, key=AttemptResult.key)


@dataclass
class Selection:
    chosen: AttemptResult | None
    ranked: list[AttemptResult]
    not_started: list[dict[str, Any]] = field(default_factory=list)
    judge: dict[str, Any] | None = None  # --judge: candidates, choice, reasoning, cost
    judge_cost: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "chosen": self.chosen.number if self.chosen else None,
            "chosen_verdict": self.chosen.verdict if self.chosen else None,
            "rules": RULES,
            "order": [a.number for a in self.ranked],
            "attempts": [a.as_dict() for a in sorted(self.ranked, key=lambda a: a.number)],
            "not_started": self.not_started,
            "total_cost_usd": round(sum(a.cost_usd for a in self.ranked) + self.judge_cost, 6),
            "judge": self.judge,
        }


def select(attempts: list[AttemptResult], not_started: list[dict[str, Any]] | None = None) -> Selection:
    ranked = rank(attempts)
    chosen = ranked[0] if ranked else None
    return Selection(chosen, ranked, not_started or [])


def prefer(selection: Selection, number: int) -> None:
    """Put attempt `number` first (the judge's choice among tied attempts)."""
    picked = [a for a in selection.ranked if a.number == number]
    selection.ranked = picked + [a for a in selection.ranked if a.number != number]
    selection.chosen = selection.ranked[0] if selection.ranked else None
