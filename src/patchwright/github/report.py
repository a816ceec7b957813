"""The run in Markdown: the job summary, the pull request's body and the comment.

The patch and the model's words are untrusted: they go inside a fence longer than any run of
backticks they hold (so they cannot close it and inject Markdown or mentions), with control
characters escaped, and the patch is cut to a size a comment can carry, with a note.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from patchwright.github.event import longest_backtick_run
from patchwright.sanitize import clean_line, clean_lines

PATCH_LIMIT = 40_000  # characters of patch in a summary or comment (a comment holds 65,536)


@dataclass(frozen=True)
class RunResult:
    """The parts of summary.json the action reports on."""

    run_id: str
    status: str
    exit_code: int
    verified: bool | None
    verdict: str | None
    reason: str | None
    cost_usd: float | None
    patch_path: Path | None
    run_dir: Path
    error: str | None = None
    final_message: str | None = None

    @staticmethod
    def load(run_dir: Path, exit_code: int | None = None) -> RunResult:
        data: dict[str, Any] = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
        verification = data.get("verification") or {}
        patch = data.get("patch") or data.get("partial_patch")
        return RunResult(
            run_id=str(data.get("run_id") or run_dir.name),
            status=str(data.get("status") or "error"),
            exit_code=int(data.get("exit_code", 4) if exit_code is None else exit_code),
            verified=data.get("verified"),
            verdict=verification.get("verdict"),
            reason=verification.get("reason"),
            cost_usd=data.get("cost_usd"),
            patch_path=Path(patch) if patch else None,
            run_dir=run_dir,
            error=data.get("error"),
            final_message=data.get("final_message"),
        )

    def patch_text(self) -> str:
        if self.patch_path is None or not self.patch_path.is_file():
            return ""
        return self.patch_path.read_bytes().decode("utf-8", "replace")

    @property
    def proven(self) -> bool:
        """A patch that a test proved: exit 0 and the verdict `fixed`."""
        return self.exit_code == 0 and self.verified is True


def verification_line(result: RunResult) -> str:
    """One honest line: only the verdict `fixed` is called verified."""
    if result.verified is True:
        words = "**verified**: a test failed before the patch and passes with it"
    elif result.verdict:
        words = f"**NOT verified** (verdict `{clean_line(result.verdict, 40)}`)"
    else:
        words = "**NOT verified** (no test proved the patch)"
    if result.reason:
        words += f": {clean_line(result.reason, 300)}"
    return words


def fenced(text: str, info: str = "") -> str:
    fence = "`" * max(3, longest_backtick_run(text) + 1)
    return f"{fence}{info}\n{text.rstrip(chr(10))}\n{fence}"


def patch_block(patch: str, limit: int = PATCH_LIMIT) -> str:
    """The patch in a diff block, cut at `limit` characters with a note saying so."""
    if not patch:
        return "_No patch._"
    shown = patch if len(patch) <= limit else patch[:limit].rsplit("\n", 1)[0]
    safe = "\n".join(clean_lines(shown))
    block = fenced(safe, "diff")
    if len(shown) < len(patch):
        block += (
            f"\n\n_The patch is cut here: {len(shown):,} of {len(patch):,} characters shown; "
            "the whole patch is in the run's artifact._"
        )
    return block


def summary_markdown(result: RunResult, pr_url: str = "", comment_url: str = "") -> str:
    cost = f"${result.cost_usd:.4f}" if result.cost_usd is not None else "unknown"
    lines = [
        f"## patchwright: {clean_line(result.status, 40)} (exit code {result.exit_code})",
        "",
        f"- Verification: {verification_line(result)}",
        f"- Cost: {cost}",
        f"- Run: `{clean_line(result.run_id, 100)}` (the run record is in the job's artifact)",
    ]
    if result.error:
        lines.append(f"- Error: {clean_line(result.error, 300)}")
    if pr_url:
        lines.append(f"- Pull request: {pr_url}")
    if comment_url:
        lines.append(f"- Comment: {comment_url}")
    lines += ["", "### Patch", "", patch_block(result.patch_text())]
    return "\n".join(lines) + "\n"


def pr_body(result: RunResult, issue_number: int | None, is_issue: bool) -> str:
    lines = [
        "This pull request was opened by patchwright, an unattended coding agent.",
        "",
        f"Verification: {verification_line(result)}",
        "",
    ]
    if issue_number is not None and is_issue:
        lines += [f"Fixes #{issue_number}", ""]
    if result.final_message:
        lines += [
            "The agent's last words:",
            "",
            fenced("\n".join(clean_lines(result.final_message[:4000])), "text"),
            "",
        ]
    cost = f"${result.cost_usd:.4f}" if result.cost_usd is not None else "unknown"
    lines += [
        f"Status: {clean_line(result.status, 40)}, exit code {result.exit_code}, cost {cost}, run `{result.run_id}`."
    ]
    return "\n".join(lines) + "\n"
