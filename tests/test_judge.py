"""--judge: which attempts are tied, and one real SDK request (fake API) that names one of them."""

from __future__ import annotations

from pathlib import Path

import anthropic

from patchwright.judge import judge, prompt, tied
from patchwright.model import ModelClient
from patchwright.selection import AttemptResult, rank

from fakeapi import FakeAnthropic, message, text


def attempt(tmp_path: Path, number: int, verdict: str | None, patch: str, **kw: object) -> AttemptResult:
    folder = tmp_path / f"attempt-{number}"
    folder.mkdir()
    (folder / "patch.diff").write_text(patch)
    return AttemptResult(number, str(folder), "completed", 0, verdict, patch_bytes=len(patch), **kw)  # type: ignore[arg-type]


def test_only_fixed_attempts_equal_on_every_rule_are_tied(tmp_path: Path) -> None:
    a = attempt(tmp_path, 1, "fixed", "a" * 10, cross_passed=[2])
    b = attempt(tmp_path, 2, "fixed", "b" * 50, cross_passed=[1])
    c = attempt(tmp_path, 3, "fixed", "c" * 5)  # passes none of the others' tests
    d = attempt(tmp_path, 4, "not_reproduced", "d")
    assert [x.number for x in tied(rank([a, b, c, d]))] == [1, 2]
    assert tied(rank([a, c, d])) == []  # one leader: nothing to judge
    assert tied(rank([d])) == []  # nothing fixed: nothing to judge


def test_the_judge_reads_the_task_and_patches_and_names_one(tmp_path: Path) -> None:
    a = attempt(tmp_path, 1, "fixed", "diff --git a/x b/x\n+first\n")
    b = attempt(tmp_path, 2, "fixed", "diff --git a/x b/x\n+second\n")
    reply = "Attempt 2 fixes the root cause.\nCHOICE: 2\n"
    with FakeAnthropic([message(text(reply))]) as api:
        client = ModelClient(
            anthropic.Anthropic(base_url=api.base_url, api_key="sk-ant-test"), "claude-sonnet-5-5", 4000
        )
        result = judge(client, "add is wrong", [a, b])
        sent = api.requests[0].body["messages"][0]["content"]
    assert result.choice == 2 and "root cause" in result.reasoning and result.usage.output_tokens > 0
    assert "<task>\nadd is wrong\n</task>" in sent and "+first" in sent and "+second" in sent


def test_an_answer_that_names_no_candidate_changes_nothing(tmp_path: Path) -> None:
    a = attempt(tmp_path, 1, "fixed", "p1")
    b = attempt(tmp_path, 2, "fixed", "p2")
    with FakeAnthropic([message(text("Both fine.\nCHOICE: 7"))]) as api:
        client = ModelClient(
            anthropic.Anthropic(base_url=api.base_url, api_key="sk-ant-test"), "claude-sonnet-5-5", 4000
        )
        assert judge(client, "t", [a, b]).choice is None


def test_a_long_patch_is_cut_in_the_prompt(tmp_path: Path) -> None:
    a = attempt(tmp_path, 1, "fixed", "x" * 50_000)
    assert "characters cut" in prompt("t", [a]) and len(prompt("t", [a])) < 45_000
