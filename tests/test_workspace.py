"""The host-side repository helpers, against real git repositories in temp folders."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

from patchwright.applygate import apply_patch
from patchwright.errors import WorkspaceError
from patchwright.repocopy import list_files, sanitize_git_config, tar_stream
from patchwright.testcommand import detect_test_command
from patchwright.workspace import EXCLUDE_LINE, hide_run_dir, open_workspace

from helpers import git, make_repo, repo_state

# -- open_workspace ---------------------------------------------------------------------------


def _one_line_error(path: Path) -> str:
    with pytest.raises(WorkspaceError) as info:
        open_workspace(path)
    message = str(info.value)
    assert message.strip(), "the error needs a message"
    assert "\n" not in message, f"not one line: {message!r}"
    assert "Traceback" not in message
    return message


def test_open_workspace_missing_directory(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    message = _one_line_error(missing)
    assert str(missing) in message
    assert "no such directory" in message


def test_open_workspace_on_a_file(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"a.txt": "a\n"})
    message = _one_line_error(repo / "a.txt")
    assert "not a directory" in message


def test_open_workspace_not_a_repository(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "file.txt").write_text("x\n")
    message = _one_line_error(plain)
    assert "not inside a git repository" in message


def test_open_workspace_bare_repository(tmp_path: Path) -> None:
    bare = tmp_path / "bare.git"
    subprocess.run(["git", "init", "-q", "--bare", str(bare)], check=True)
    message = _one_line_error(bare)
    assert "bare" in message


def test_open_workspace_errors_are_usage_errors(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError) as info:
        open_workspace(tmp_path / "missing")
    assert int(info.value.exit_code) == 2


def test_open_workspace_from_subdirectory_finds_root(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"pkg/deep/mod.py": "x = 1\n", "top.txt": "t\n"})
    ws = open_workspace(repo / "pkg" / "deep")
    assert ws.root == repo.resolve()
    assert ws.git_dir == (repo / ".git").resolve()
    assert ws.git_dir_is_local is True
    assert ws.run_dir("r1") == repo.resolve() / ".patchwright" / "runs" / "r1"


# -- list_files -------------------------------------------------------------------------------


def test_list_files_sees_what_git_sees(tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path / "repo",
        {
            "kept.py": "a = 1\n",
            "edited.py": "b = 1\n",
            "gone.py": "c = 1\n",
            "sub/dir/nested.txt": "n\n",
            ".gitignore": "*.log\nbuild/\n",
        },
    )
    (repo / "edited.py").write_text("b = 2  # uncommitted\n")
    (repo / "gone.py").unlink()
    (repo / "new_untracked.py").write_text("d = 1\n")
    (repo / "sub" / "fresh.txt").write_text("f\n")
    (repo / "debug.log").write_text("ignored\n")
    (repo / "build").mkdir()
    (repo / "build" / "out.bin").write_text("ignored\n")

    files = list_files(open_workspace(repo))

    assert "kept.py" in files
    assert "edited.py" in files  # tracked with an uncommitted edit
    assert "sub/dir/nested.txt" in files
    assert "new_untracked.py" in files
    assert "sub/fresh.txt" in files
    assert ".gitignore" in files
    assert "gone.py" not in files  # deleted in the working tree
    assert "debug.log" not in files
    assert not any(f.startswith("build/") for f in files)
    assert not any(f.startswith(".git/") for f in files)
    assert files == sorted(set(files))


# -- sanitize_git_config ----------------------------------------------------------------------

CHECKOUT_CONFIG = """\
[core]
\trepositoryformatversion = 0
\tfilemode = true
\tbare = false
[remote "origin"]
\turl = https://x-access-token:ghs_SECRETTOKEN123@github.com/owner/repo.git
\tfetch = +refs/heads/*:refs/remotes/origin/*
[remote "mirror"]
\turl = https://bob@gitlab.example.com/group/repo.git
[http "https://github.com/"]
\textraheader = AUTHORIZATION: basic eC1hY2Nlc3MtdG9rZW46Z2hzX1NFQ1JFVA==
[credential]
\thelper = store --file /home/runner/.git-credentials
[credential "https://example.com"]
\tusername = alice
[branch "main"]
\tremote = origin
\tmerge = refs/heads/main
[user]
\tname = Some One
"""


def test_sanitize_git_config_removes_credentials() -> None:
    clean = sanitize_git_config(CHECKOUT_CONFIG)
    assert "ghs_SECRETTOKEN123" not in clean
    assert "x-access-token" not in clean
    assert "bob@" not in clean
    assert "extraheader" not in clean.lower()
    assert "AUTHORIZATION" not in clean
    assert "[credential" not in clean
    assert "helper = store" not in clean
    assert ".git-credentials" not in clean
    assert "alice" not in clean


def test_sanitize_git_config_keeps_the_rest() -> None:
    clean = sanitize_git_config(CHECKOUT_CONFIG)
    lines = clean.splitlines()
    for kept in (
        "[core]",
        "\trepositoryformatversion = 0",
        "\tfilemode = true",
        '[remote "origin"]',
        "\turl = https://github.com/owner/repo.git",
        "\tfetch = +refs/heads/*:refs/remotes/origin/*",
        "\turl = https://gitlab.example.com/group/repo.git",
        '[branch "main"]',
        "\tremote = origin",
        "\tmerge = refs/heads/main",
        "[user]",
        "\tname = Some One",
    ):
        assert kept in lines, f"lost {kept!r}"
    # The sections after a dropped [credential] section come back in full.
    assert lines.index('[branch "main"]') < lines.index("[user]")
    assert clean.endswith("\n")


def test_sanitized_config_is_still_valid_for_git(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text(sanitize_git_config(CHECKOUT_CONFIG))
    out = subprocess.run(
        ["git", "config", "--file", str(config), "--list"], capture_output=True, text=True, check=True
    ).stdout
    assert "remote.origin.url=https://github.com/owner/repo.git" in out
    assert "credential" not in out
    assert "extraheader" not in out


def test_sanitize_git_config_without_secrets_is_unchanged() -> None:
    text = '[core]\n\tbare = false\n[remote "origin"]\n\turl = git@github.com:o/r.git\n'
    assert sanitize_git_config(text) == text


# -- tar_stream -------------------------------------------------------------------------------


def _tar_of(repo: Path) -> tarfile.TarFile:
    ws = open_workspace(repo)
    data = b"".join(tar_stream(ws, list_files(ws), 1000, 1000))
    return tarfile.open(fileobj=io.BytesIO(data), mode="r:")


def test_tar_stream_is_a_valid_tar_with_the_right_members(tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path / "repo",
        {"app.py": "print('hi')\n", "pkg/mod.py": "x = 1\n", ".gitignore": "*.log\n"},
    )
    (repo / "run.sh").write_text("#!/bin/sh\necho run\n")
    (repo / "run.sh").chmod(0o755)
    (repo / "noise.log").write_text("ignored\n")
    git(repo, "config", "remote.origin.url", "https://user:tok@example.com/r.git")

    with _tar_of(repo) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert {"app.py", "pkg/mod.py", ".gitignore", "run.sh"} <= set(members)
        assert "noise.log" not in members
        assert ".git/HEAD" in members
        assert any(name.startswith(".git/objects/") for name in members)
        # .git/config travels separately, sanitized
        assert ".git/config" not in members
        assert members["app.py"].isfile()
        extracted = tar.extractfile("app.py")
        assert extracted is not None and extracted.read() == b"print('hi')\n"
        assert members["run.sh"].mode & 0o111, "executable bit lost"
        for member in members.values():
            assert (member.uid, member.gid) == (1000, 1000), member.name


def test_tar_stream_keeps_symlinks_as_symlinks(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"app.py": "a = 1\n", "pkg/mod.py": "m = 1\n"})
    outside = tmp_path / "outside-secret.txt"
    outside.write_text("HOST SECRET\n")
    os.symlink("app.py", repo / "rel_link.py")
    os.symlink(str(outside), repo / "abs_link.txt")
    os.symlink("pkg", repo / "dir_link")

    with _tar_of(repo) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert members["rel_link.py"].issym()
        assert members["rel_link.py"].linkname == "app.py"
        assert members["abs_link.txt"].issym()
        assert members["abs_link.txt"].linkname == str(outside)
        assert members["dir_link"].issym()
        assert members["dir_link"].linkname == "pkg"
        # nothing reached through the links
        assert not any(name.startswith("dir_link/") for name in members)
        for member in members.values():
            if member.isfile():
                handle = tar.extractfile(member)
                assert handle is not None
                assert b"HOST SECRET" not in handle.read()


# -- hide_run_dir -----------------------------------------------------------------------------


def test_hide_run_dir_is_idempotent_and_leaves_gitignore_alone(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"a.txt": "a\n", ".gitignore": "*.log\n"})
    exclude = repo / ".git" / "info" / "exclude"
    exclude.write_text("# existing rule without newline\n*.tmp")
    gitignore_before = (repo / ".gitignore").read_bytes()
    ws = open_workspace(repo)

    hide_run_dir(ws)
    hide_run_dir(ws)
    hide_run_dir(ws)

    lines = exclude.read_text().splitlines()
    assert lines.count(EXCLUDE_LINE) == 1
    assert EXCLUDE_LINE == "/.patchwright/runs/"
    assert "*.tmp" in lines  # the previous last line is kept whole, not glued to ours
    assert (repo / ".gitignore").read_bytes() == gitignore_before
    run_dir = ws.run_dir("run-1")
    run_dir.mkdir(parents=True)
    (run_dir / "patch.diff").write_text("x\n")
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""


def test_hide_run_dir_creates_a_missing_exclude_file(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"a.txt": "a\n"})
    info_dir = repo / ".git" / "info"
    for child in info_dir.iterdir():
        child.unlink()
    info_dir.rmdir()
    hide_run_dir(open_workspace(repo))
    assert (info_dir / "exclude").read_text().splitlines().count(EXCLUDE_LINE) == 1
    assert not (repo / ".gitignore").exists()


# -- apply_patch ------------------------------------------------------------------------------


def _make_patch(repo: Path, edits: dict[str, str]) -> str:
    """The patch for `edits` on top of HEAD; the working tree goes back to HEAD."""
    for name, text in edits.items():
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(text)
    git(repo, "add", "-A")
    patch = git(repo, "diff", "--cached", "--binary")
    git(repo, "reset", "-q", "--hard", "HEAD")
    return patch


def test_apply_patch_applies_a_good_patch(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"app.py": "def add(a, b):\n    return a - b\n"})
    patch = _make_patch(repo, {"app.py": "def add(a, b):\n    return a + b\n", "new/file.txt": "brand new\n"})
    patch_file = tmp_path / "fix.patch"
    patch_file.write_text(patch)

    result = apply_patch(open_workspace(repo), patch_file)

    assert result.applied, result.message
    assert (repo / "app.py").read_text() == "def add(a, b):\n    return a + b\n"
    assert (repo / "new" / "file.txt").read_text() == "brand new\n"
    assert "app.py" in result.message


def test_apply_patch_refuses_a_patch_that_does_not_apply(tmp_path: Path) -> None:
    repo = make_repo(
        tmp_path / "repo",
        {"a.txt": "one\ntwo\nthree\n", "b.txt": "alpha\nbeta\ngamma\n"},
    )
    patch = _make_patch(repo, {"a.txt": "one\nTWO\nthree\n", "b.txt": "alpha\nBETA\ngamma\n"})
    # b.txt moves on, so its hunk no longer applies; a.txt's hunk still would.
    (repo / "b.txt").write_text("alpha\nsomething else\ngamma\n")
    git(repo, "commit", "-qam", "diverge")
    (repo / "untracked.txt").write_text("keep me\n")
    patch_file = tmp_path / "stale.patch"
    patch_file.write_text(patch)
    before = repo_state(repo)
    a_before = (repo / "a.txt").read_bytes()

    result = apply_patch(open_workspace(repo), patch_file)

    assert not result.applied
    assert "does not apply" in result.message
    assert "b.txt" in result.message
    assert (repo / "a.txt").read_bytes() == a_before, "partially applied"
    assert repo_state(repo) == before
    assert not list(repo.glob("*.rej")) and not list(repo.glob("*.orig"))


def test_apply_patch_refusal_message_is_plain_text(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"a.txt": "a\n"})
    patch_file = tmp_path / "bad.patch"
    patch_file.write_text("--- a/a.txt\n+++ b/a.txt\n@@ -1 +1 @@\n-zzz\n+b\n")
    result = apply_patch(open_workspace(repo), patch_file)
    assert not result.applied
    assert result.message == "patch does not apply cleanly: error: patch failed: a.txt:1"


# -- detect_test_command ----------------------------------------------------------------------


def test_detect_package_json_with_test_script(tmp_path: Path) -> None:
    (tmp_path / "package.json").write_text(json.dumps({"scripts": {"test": "jest"}}))
    assert detect_test_command(tmp_path) == "npm test"


def test_detect_package_json_placeholder_script_is_not_a_test_command(tmp_path: Path) -> None:
    placeholder = 'echo "Error: no test specified" && exit 1'
    (tmp_path / "package.json").write_text(json.dumps({"scripts": {"test": placeholder}}))
    assert detect_test_command(tmp_path) is None
    (tmp_path / "package.json").write_text("{not json")
    assert detect_test_command(tmp_path) is None


def test_detect_pyproject_means_pytest(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert detect_test_command(tmp_path) == "python3 -m pytest -q"


def test_detect_tests_dir_with_pytest_files(tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text("def test_x():\n    pass\n")
    assert detect_test_command(tmp_path) == "python3 -m pytest -q"


def test_detect_go_mod(tmp_path: Path) -> None:
    (tmp_path / "go.mod").write_text("module example.com/x\n\ngo 1.22\n")
    assert detect_test_command(tmp_path) == "go test ./..."


def test_detect_makefile_with_test_target(tmp_path: Path) -> None:
    (tmp_path / "Makefile").write_text("build:\n\tcc -o x x.c\n\ntest: build\n\t./x --selftest\n")
    assert detect_test_command(tmp_path) == "make test"


def test_detect_makefile_without_test_target(tmp_path: Path) -> None:
    (tmp_path / "Makefile").write_text("build:\n\tcc x.c\ntest-unit:\n\t./u\ntests:\n\t./t\n")
    assert detect_test_command(tmp_path) is None


def test_detect_nothing(tmp_path: Path) -> None:
    (tmp_path / "README.md").write_text("hello\n")
    (tmp_path / "main.c").write_text("int main(void) { return 0; }\n")
    assert detect_test_command(tmp_path) is None
