"""verify_patch on the local-folder sandbox (the same contract as Docker's, in milliseconds):
the patch's tests run alone on the original code, then the whole patch, in a second sandbox or,
without one, in the first with the tests part taken back out."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from patchwright.patchsplit import split_patch
from patchwright.sandbox.local import LocalSandbox
from patchwright.verdict import VerdictKind
from patchwright.verify import cross_check, verify_patch
from patchwright.workspace import open_workspace

from helpers import git, make_repo

TEST_CMD = f"PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 {sys.executable} -m pytest -q -p no:cacheprovider"  # no plugins: 0.3 s a run


def patched_repo(tmp_path: Path, test_body: str) -> tuple[Path, Path]:
    """add() subtracts and no test covers it; the patch fixes it and adds `test_body` as a test."""
    repo = make_repo(
        tmp_path / "r",
        {
            "calc.py": "def add(a, b):\n    return a - b\n",
            "tests/test_ok.py": "def test_ok():\n    assert True\n",
        },
    )
    (repo / "calc.py").write_text("def add(a, b):\n    return a + b\n")
    (repo / "tests" / "test_add.py").write_text(
        f"from calc import add\n\n\ndef test_add():\n    {test_body}\n"
    )
    git(repo, "add", "-A")
    patch = tmp_path / "patch.diff"
    patch.write_text(git(repo, "diff", "--cached", "--binary", "HEAD"))
    git(repo, "reset", "-q", "--hard")
    return repo, patch


@pytest.mark.parametrize("fresh", [True, False], ids=["second-sandbox", "same-sandbox"])
def test_a_patch_whose_own_test_fails_on_the_original_code_is_fixed(tmp_path: Path, fresh: bool) -> None:
    repo, patch = patched_repo(tmp_path, "assert add(2, 3) == 5")
    ws = open_workspace(repo)
    parts = split_patch(patch, tmp_path / "tests.diff", tmp_path / "code.diff")
    second = (lambda: LocalSandbox(ws, tmp_path / "box2")) if fresh else None
    result = verify_patch(LocalSandbox(ws, tmp_path / "box1"), patch, TEST_CMD, 60, parts, second)
    assert result.before.passed and result.tests_only is not None and not result.tests_only.passed
    assert result.after is not None and result.after.passed
    verdict = result.verdict
    assert verdict.kind == VerdictKind.FIXED and result.verified
    assert verdict.fail_to_pass == ["tests/test_add.py::test_add"]
    assert verdict.pass_to_pass == ["tests/test_ok.py::test_ok"]
    assert result.as_dict()["test_files"] == ["tests/test_add.py"]


def test_a_patch_whose_own_test_passes_on_the_original_code_proves_nothing(tmp_path: Path) -> None:
    repo, patch = patched_repo(tmp_path, "assert add(2, 0) == 2")
    ws = open_workspace(repo)
    parts = split_patch(patch, tmp_path / "tests.diff", tmp_path / "code.diff")
    result = verify_patch(LocalSandbox(ws, tmp_path / "box1"), patch, TEST_CMD, 60, parts)
    assert result.tests_only is not None and result.tests_only.passed
    assert result.verdict.kind == VerdictKind.NOT_REPRODUCED and not result.verified


def test_cross_check_runs_one_patchs_tests_against_another_patchs_code(tmp_path: Path) -> None:
    repo, patch = patched_repo(tmp_path, "assert add(2, 3) == 5")
    ws = open_workspace(repo)
    parts = split_patch(patch, tmp_path / "tests.diff", tmp_path / "code.diff")
    with_code = cross_check(
        LocalSandbox(ws, tmp_path / "b1"), parts.tests_file, parts.code_file, TEST_CMD, 60
    )
    assert with_code is not None and with_code.passed
    empty = tmp_path / "empty.diff"
    empty.write_text("")
    without = cross_check(LocalSandbox(ws, tmp_path / "b2"), parts.tests_file, empty, TEST_CMD, 60)
    assert without is not None and not without.passed
    assert "tests/test_add.py::test_add" in without.results.failed()
