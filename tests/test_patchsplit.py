"""Cutting a patch into its test files and its code files, each part applying on its own."""

from __future__ import annotations

from pathlib import Path

import pytest

from patchwright.patchsplit import is_test_path, split_patch

from helpers import git, make_repo


@pytest.mark.parametrize(
    "path",
    [
        "tests/test_app.py",
        "test_app.py",
        "pkg/app_test.py",
        "pkg/conftest.py",
        "cmd/add_test.go",
        "src/add.test.ts",
        "src/add.spec.js",
        "src/__tests__/add.js",
        "spec/models/user_spec.rb",
        "test/fixtures/data.json",
        "src/test/java/AppTest.java",
    ],
)
def test_test_paths_by_convention(path: str) -> None:
    assert is_test_path(path)


@pytest.mark.parametrize(
    "path",
    ["app.py", "src/testing_utils.py", "pkg/contest.py", "src/add.ts", "attest.go", "latest/app.py", "tests"],
)
def test_code_paths(path: str) -> None:
    assert not is_test_path(path)


def test_the_two_parts_apply_alone_and_together(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {"app.py": "x = 1\n", "tests/test_app.py": "def test(): pass\n"})
    (repo / "app.py").write_text("x = 2\n")
    (repo / "tests" / "test_app.py").write_text("def test():\n    assert 1\n")
    (repo / "test_new.py").write_bytes(b"\x00binary\xff")
    git(repo, "add", "-A")
    patch = tmp_path / "p.diff"
    patch.write_text(git(repo, "diff", "--cached", "--binary", "HEAD"))
    git(repo, "reset", "-q", "--hard")
    tests, code = tmp_path / "tests.diff", tmp_path / "code.diff"
    found = split_patch(patch, tests, code)
    assert found.tests == ["test_new.py", "tests/test_app.py"] and found.code == ["app.py"]
    git(repo, "apply", "--binary", str(tests))
    assert (repo / "app.py").read_text() == "x = 1\n" and (repo / "test_new.py").exists()
    git(repo, "apply", "--binary", str(code))
    assert (repo / "app.py").read_text() == "x = 2\n"
    assert tests.stat().st_size + code.stat().st_size == patch.stat().st_size


def test_a_patch_without_tests_leaves_the_tests_part_empty(tmp_path: Path) -> None:
    patch = tmp_path / "p.diff"
    patch.write_text("diff --git a/app.py b/app.py\n--- a/app.py\n+++ b/app.py\n@@ -1 +1 @@\n-x\n+y\n")
    found = split_patch(patch, tmp_path / "t", tmp_path / "c")
    assert found.tests == [] and (tmp_path / "t").read_bytes() == b""
    assert (tmp_path / "c").read_bytes() == patch.read_bytes()
