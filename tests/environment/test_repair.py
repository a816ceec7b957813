"""The setup repair's tool and the recipe cut from what it ran."""

from __future__ import annotations

from pathlib import Path

import pytest

from patchwright.environment.repair import Attempted, SetupTool, changes_something, problem_text, recipe_of
from patchwright.sandbox.local import LocalSandbox
from patchwright.tools.base import CommandTime, ToolError
from patchwright.workspace import open_workspace

from helpers import make_repo


@pytest.mark.parametrize(
    "command",
    [
        "cat README.md",
        "ls -la && grep -r pytest .github",
        "python3 --version",
        "git log -3",
        "cd backend && ls",
    ],
)
def test_reads_are_not_changes(command: str) -> None:
    assert not changes_something(command)


@pytest.mark.parametrize(
    "command",
    [
        "pip install -r requirements.txt",
        "cd backend && npm ci",
        "sed -i s/psycopg2/psycopg2-binary/ requirements.txt",
        "echo 'x' > .env",
        "cat a | tee b",
        "uv sync",
    ],
)
def test_installs_and_writes_are_changes(command: str) -> None:
    assert changes_something(command)


def test_the_recipe_keeps_what_worked_and_changed_in_order() -> None:
    attempted = [
        Attempted("cat .github/workflows/ci.yml", 0),
        Attempted("pip install -r requirements.txt", 1),  # failed: not kept
        Attempted("sed -i s/psycopg2/psycopg2-binary/ requirements.txt", 0),
        Attempted("pip install -r requirements.txt", 0),
        Attempted("pip install -r requirements.txt", 0),  # a repeat of the one before
        Attempted("python -m pytest -q", 1),
        Attempted("python -m pytest -q", 0),  # the test command itself
        Attempted("npm ci", None, timed_out=True),
    ]
    assert recipe_of(attempted, "python -m pytest -q") == [
        "sed -i s/psycopg2/psycopg2-binary/ requirements.txt",
        "pip install -r requirements.txt",
    ]


def test_the_tool_runs_in_the_setup_window_and_logs(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"a.txt": "a\n"})
    box = LocalSandbox(open_workspace(repo), tmp_path / "root", setup_repairable=True)
    box.start()
    try:
        tool = SetupTool(box, CommandTime(20))
        assert tool.definition()["input_schema"]["required"] == ["command"]
        done = tool.run({"command": "echo made > b.txt; cat a.txt"})
        failed = tool.run({"command": "exit 3"})
        assert done.content == "a\n" and "[exit code: 3]" in failed.content
        assert tool.log == [Attempted("echo made > b.txt; cat a.txt", 0), Attempted("exit 3", 3)]
        with pytest.raises(ToolError):
            tool.run({"command": "  "})
    finally:
        box.stop()


def test_the_problem_quotes_the_error_as_data() -> None:
    text = problem_text("npm ci", "command not found: jest", ["sh: 1: jest: not found"], "tail")
    assert "`npm ci`" in text and "```\nsh: 1: jest: not found\n```" in text and "Do not change" in text
