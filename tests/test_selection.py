"""Choosing among attempts: verdict first, then cross-validation, regressions, patch size."""

from __future__ import annotations

from patchwright.selection import AttemptResult, cross_pairs, select


def attempt(number: int, verdict: str | None, patch_bytes: int = 100, **kw: object) -> AttemptResult:
    return AttemptResult(number, f"attempt-{number}", "completed", 0, verdict, patch_bytes=patch_bytes, **kw)  # type: ignore[arg-type]


def test_fixed_wins_over_a_smaller_unproven_patch() -> None:
    chosen = select([attempt(1, "not_reproduced", 10), attempt(2, "fixed", 900), attempt(3, "regressed", 5)])
    assert chosen.chosen is not None and chosen.chosen.number == 2
    assert [a.number for a in chosen.ranked] == [2, 1, 3]


def test_unverified_attempts_rank_last_and_an_empty_patch_below_a_patch() -> None:
    ranked = select([attempt(1, None, 0), attempt(2, None, 50), attempt(3, "not_fixed")]).ranked
    assert [a.number for a in ranked] == [3, 2, 1]


def test_cross_validation_beats_patch_size_among_fixed() -> None:
    small = attempt(1, "fixed", 10, cross_failed=[2])
    large = attempt(2, "fixed", 500, cross_passed=[1])
    assert select([small, large]).chosen is large


def test_fewer_regressions_then_smaller_patch_then_earlier() -> None:
    a = attempt(1, "fixed", 50, pass_to_fail=[])
    b = attempt(2, "fixed", 10, pass_to_fail=[])
    c = attempt(3, "fixed", 10, pass_to_fail=[])
    assert [x.number for x in select([a, b, c]).ranked] == [2, 3, 1]


def test_cross_pairs_are_each_fixed_candidate_against_each_other_attempts_bug_showing_tests() -> None:
    attempts = [
        attempt(1, "fixed", shows_bug=True),
        attempt(2, "fixed", shows_bug=True),
        attempt(3, "not_reproduced", shows_bug=False),  # its test passes on the original code
        attempt(4, "regressed", shows_bug=True),
    ]
    assert cross_pairs(attempts) == [(1, 2), (1, 4), (2, 1), (2, 4)]


def test_selection_json_names_the_rules_and_the_order() -> None:
    data = select([attempt(1, "not_fixed", cost_usd=0.5), attempt(2, "fixed", cost_usd=0.25)]).as_dict()
    assert data["chosen"] == 2 and data["order"] == [2, 1] and data["total_cost_usd"] == 0.75
    assert data["rules"][0].startswith("verdict") and [a["attempt"] for a in data["attempts"]] == [1, 2]
