"""A scripted batch over the example repos, shared by tests/test_batch*.py and benchmarks/batch_throughput.py.

Each instance's problem statement starts with `[instance_id]`, so one fake API serves
many concurrent runs: the script finds the instance in the first user message and its
turn from the number of assistant messages so far, whatever order requests arrive in.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from example_fixes import EXAMPLES, ExampleFix
from fakeapi import RecordedRequest, delay, message, text, tool_use
from helpers import git, make_repo

EDITOR = "str_replace_based_edit_tool"
MARKER = re.compile(r"^\[([A-Za-z0-9._+-]+)\]")
LATER_LINE = "\n# a later commit: not part of the base the instances start from\n"


@dataclass
class Scenario:
    instances: list[dict[str, Any]]
    plans: dict[str, list[Any]]
    repos: dict[str, Path]

    def write(self, path: Path) -> Path:
        path.write_text("".join(json.dumps(i) + "\n" for i in self.instances))
        return path


def example_git_repo(example: ExampleFix, root: Path) -> tuple[Path, str]:
    """A git repo of the example with a later commit on top; returns it and the base commit."""
    repo = root / example.name
    shutil.copytree(
        example.source_dir,
        repo,
        ignore=shutil.ignore_patterns("__pycache__", ".pytest_cache", "node_modules"),
    )
    make_repo(repo, {})
    base = git(repo, "rev-parse", "HEAD").strip()
    edited = repo / example.edits[0].file
    edited.write_text(edited.read_text() + LATER_LINE)
    git(repo, "commit", "-qam", "later")
    return repo, base


def plan(example: ExampleFix, instance_id: str, variant: int, pause: float) -> list[Any]:
    """Variant 0: the known fix. 1: the fix and a notes file. 2: looks and changes nothing (exit 1)."""
    edits = [
        message(
            tool_use(
                EDITOR,
                {
                    "command": "str_replace",
                    "path": f"/workspace/{e.file}",
                    "old_str": e.old,
                    "new_str": e.new,
                },
            )
        )
        for e in example.edits
    ]
    look = message(tool_use("bash", {"command": "git log --oneline | head -3 && ls"}))
    notes = message(
        tool_use(
            EDITOR,
            {
                "command": "create",
                "path": f"/workspace/NOTES-{instance_id}.md",
                "file_text": f"{instance_id}\n",
            },
        )
    )
    steps = {0: [*edits], 1: [*edits, notes], 2: [look]}[variant]
    steps.append(message(text(f"{instance_id}: done.")))
    return [delay(pause, s) if pause else s for s in steps]


def build(root: Path, count: int = 9, pause: float = 0.0, prefix: str = "inst") -> Scenario:
    """`count` instances over the three example repos (each with a later commit they must not see)."""
    root.mkdir(parents=True, exist_ok=True)
    repos = {e.name: example_git_repo(e, root) for e in EXAMPLES}
    instances, plans = [], {}
    for n in range(count):
        example = EXAMPLES[n % len(EXAMPLES)]
        instance_id = f"{prefix}-{n:02d}-{example.name}"
        repo, base = repos[example.name]
        instances.append(
            {
                "instance_id": instance_id,
                "problem_statement": f"[{instance_id}] {example.task}",
                "repo": str(repo),
                "base_commit": base,
            }
        )
        plans[instance_id] = plan(example, instance_id, (n // len(EXAMPLES)) % 3, pause)
    return Scenario(instances, plans, {name: repo for name, (repo, _) in repos.items()})


def script_for(plans: dict[str, list[Any]]) -> Callable[[RecordedRequest, int], Any]:
    def script(request: RecordedRequest, _: int) -> Any:
        messages = request.body["messages"]
        first = messages[0]["content"]
        first_text = first if isinstance(first, str) else first[0]["text"]
        found = MARKER.match(first_text)
        assert found, first_text[:100]
        turn = sum(1 for m in messages if m["role"] == "assistant")
        plan = plans[found.group(1)]
        # A plan that leaves the tests failing gets the self-check's nudges: it stays done.
        return plan[turn] if turn < len(plan) else plan[-1]

    return script
