"""The Markdown a run becomes: honest verification words, a fence the patch cannot close,
a size cap with a note."""

from __future__ import annotations

import json
from pathlib import Path

from patchwright.github.report import RunResult, patch_block, pr_body, summary_markdown, verification_line


def result(
    tmp_path: Path, patch: str, verified: bool | None, verdict: str | None, exit_code: int = 0
) -> RunResult:
    (tmp_path / "patch.diff").write_text(patch)
    summary = {
        "run_id": "r1",
        "status": "completed",
        "exit_code": exit_code,
        "patch": str(tmp_path / "patch.diff"),
        "cost_usd": 0.5,
        "verified": verified,
        "verification": {"verdict": verdict, "reason": "why"} if verdict else None,
        "final_message": "Done. ```\n@octocat\n```",
    }
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    return RunResult.load(tmp_path)


def test_only_the_verdict_fixed_is_called_verified(tmp_path: Path) -> None:
    assert verification_line(result(tmp_path, "", True, "fixed")).startswith("**verified**")
    assert verification_line(result(tmp_path, "", False, "not_fixed")).startswith(
        "**NOT verified** (verdict `not_fixed`)"
    )
    assert (
        verification_line(result(tmp_path, "", None, None)) == "**NOT verified** (no test proved the patch)"
    )


def test_a_patch_holding_backticks_cannot_close_its_block() -> None:
    block = patch_block("+ ```\n+ ````\n+ text\x1b[31m\n")
    assert block.startswith("`````diff\n") and block.endswith("\n`````")
    assert "\\x1b" in block and "\x1b" not in block


def test_a_long_patch_is_cut_at_a_line_with_a_note() -> None:
    patch = "".join(f"+line {i}\n" for i in range(10_000))
    block = patch_block(patch, limit=1000)
    assert "+line 0\n" in block and "+line 9999" not in block
    assert f"of {len(patch):,} characters shown; the whole patch is in the run's artifact" in block
    assert len(block) < 1300
    assert patch_block("") == "_No patch._"


def test_summary_and_body(tmp_path: Path) -> None:
    run = result(tmp_path, "+x\n", True, "fixed")
    text = summary_markdown(run, pr_url="https://github.com/o/r/pull/1")
    assert "## patchwright: completed (exit code 0)" in text and "Cost: $0.5000" in text
    assert "Pull request: https://github.com/o/r/pull/1" in text and "```diff\n+x\n```" in text
    body = pr_body(run, 12, is_issue=True)
    assert "Fixes #12" in body and "**verified**" in body
    assert "````text\nDone. ```\n@octocat\n```\n````" in body  # the model's words stay inside a fence
    assert "Fixes" not in pr_body(run, 12, is_issue=False)
    assert run.proven and not result(tmp_path, "+x\n", True, "fixed", exit_code=3).proven
