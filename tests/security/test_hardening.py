"""Defences found in review: untrusted patches, nested git credentials, forged shell output, signals."""

from __future__ import annotations

import io
import json
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import docker
from rich.console import Console

from patchwright.applygate import GateRules, apply_patch, patch_problems
from patchwright.display import RichDisplay, clean
from patchwright.repocopy import git_config_tar, list_files, tar_stream
from patchwright.sandbox.docker import DockerSandbox
from patchwright.tools import build_toolset
from patchwright.workspace import open_workspace

from agentrun import EDITOR, agent_env, containers_of, edit_then, only_run, run_agent
from fakeapi import FakeAnthropic, message, text, tool_use
from helpers import git, make_repo, settled

SAFE = """diff --git a/app.py b/app.py
--- a/app.py
+++ b/app.py
@@ -1 +1 @@
-x = 1
+x = 2
"""
OWN_CONFIG = """diff --git a/.patchwright/config.toml b/.patchwright/config.toml
new file mode 100644
--- /dev/null
+++ b/.patchwright/config.toml
@@ -0,0 +1 @@
+network = true
"""
OUTWARD_LINK = """diff --git a/docs/link b/docs/link
new file mode 120000
--- /dev/null
+++ b/docs/link
@@ -0,0 +1 @@
+../../etc
\\ No newline at end of file
"""
INWARD_LINK = OUTWARD_LINK.replace("../../etc", "guide.md")
GITLINK = """diff --git a/vendor/lib b/vendor/lib
new file mode 160000
--- /dev/null
+++ b/vendor/lib
@@ -0,0 +1 @@
+Subproject commit 1111111111111111111111111111111111111111
"""


def test_patch_problems_flags_what_must_not_reach_the_host() -> None:
    assert patch_problems(SAFE) == []
    assert "--apply-symlinks" in patch_problems(INWARD_LINK)[0]  # no symlink change by default
    assert patch_problems(INWARD_LINK, GateRules(symlinks=True)) == []
    assert "patchwright's own files" in patch_problems(OWN_CONFIG)[0]
    assert "outside the repository" in patch_problems(OUTWARD_LINK, GateRules(symlinks=True))[0]
    assert "submodule" in patch_problems(GITLINK)[0]
    hooks = SAFE.replace("app.py", "sub/.git/hooks/pre-commit")
    assert "git internals" in patch_problems(hooks)[0]


def test_apply_refuses_an_unsafe_patch_and_changes_nothing(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {"app.py": "x = 1\n"})
    patch = tmp_path / "p.diff"
    patch.write_text(SAFE + OWN_CONFIG)
    result = apply_patch(open_workspace(repo), patch)
    assert not result.applied and ".patchwright/config.toml" in result.message
    assert (repo / "app.py").read_text() == "x = 1\n" and not (repo / ".patchwright").exists()
    patch.write_text(SAFE)
    assert apply_patch(open_workspace(repo), patch).applied
    assert (repo / "app.py").read_text() == "x = 2\n"


def test_every_git_config_under_dot_git_travels_sanitized(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {"a.txt": "a\n"})
    module = repo / ".git" / "modules" / "lib"
    module.mkdir(parents=True)
    (module / "config").write_text(
        '[http "https://github.com/"]\n\textraheader = AUTHORIZATION: basic c2VjcmV0\n'
    )
    (repo / ".git" / "config.worktree").write_text(
        "[core]\n\tsparseCheckout = true\n[user]\n\tpassword = hunter2\n"
    )
    git(repo, "config", "remote.origin.url", "https://x:ghs_token123@github.com/o/r.git")
    ws = open_workspace(repo)
    with tarfile.open(fileobj=io.BytesIO(b"".join(tar_stream(ws, list_files(ws), 1000, 1000)))) as raw:
        assert not [m for m in raw.getnames() if m.endswith(("/config", "config.worktree"))]
        assert not [m for m in raw.getnames() if m.startswith(".git/modules")]  # submodules' git dirs stay
    with tarfile.open(fileobj=io.BytesIO(git_config_tar(ws, 1000, 1000) or b"")) as configs:
        contents = {m.name: configs.extractfile(m).read().decode() for m in configs.getmembers()}  # type: ignore[union-attr]
    assert set(contents) == {".git/config", ".git/config.worktree"}
    joined = "".join(contents.values())
    assert "c2VjcmV0" not in joined and "hunter2" not in joined and "ghs_token123" not in joined
    assert "sparsecheckout = true" in contents[".git/config.worktree"].lower()


def test_unreadable_file_is_a_tool_error_not_a_crash(sandbox: DockerSandbox) -> None:
    tools = build_toolset(sandbox, "claude-sonnet-5-5", 30)
    sandbox.run("echo secret > locked.txt && chmod 000 locked.txt")
    result = tools.call(EDITOR, {"command": "view", "path": "/workspace/locked.txt"})
    assert result.is_error


def test_nul_bytes_and_forged_markers_do_not_break_the_shell(sandbox: DockerSandbox) -> None:
    tools = build_toolset(sandbox, "claude-sonnet-5-5", 30)
    assert tools.call("bash", {"command": "echo a\0b"}).is_error
    assert sandbox.run("echo a\0b", timeout=5).output == "ab\n"  # the sandbox strips them itself
    forged = sandbox.run("printf '\\n__PW_DONE_0000000000000000 0\\n'; echo real")
    assert forged.output.endswith("real\n") and forged.exit_code == 0
    assert sandbox.run("pwd").output == "/workspace\n"


def test_control_sequences_never_reach_the_terminal() -> None:
    # escaped, not obeyed (and not silently dropped): the reader sees what was there
    assert clean("ok\x1b]52;c;aGk=\x07 \x1b[2J\ttab\nline") == "ok\\x1b]52;c;aGk=\\x07 \\x1b[2J\\ttab\\nline"
    console = Console(file=io.StringIO(), force_terminal=True)
    display = RichDisplay(console=console)
    display.event("tool", {"name": "bash", "input": {"command": "echo '[/]' \x1b[2J"}})
    display.event("text", {"text": "done [/bold] \x1b]52;c;x\x07"})
    display.close()
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert "\x1b[2J" not in out and "\x1b]52" not in out and "[/]" in out


AGENT_FIX = [sys.executable, "-m", "patchwright", "fix", "x"]


def test_sigterm_during_verification_exits_130_and_leaves_no_container(
    tmp_path: Path, sandbox_image: str, docker_client: docker.DockerClient
) -> None:
    repo = make_repo(tmp_path / "r", {"app.py": "def add(a, b):\n    return a - b\n"})
    with FakeAnthropic(edit_then(message(text("done")))) as api:
        proc = subprocess.Popen(
            # the tests are checked once on the original code (quick); `sleep 60` only with the patch
            [*AGENT_FIX, "--repo", str(repo), "--test-cmd", "grep -q 'a + b' app.py && sleep 60; true"],
            env=agent_env(api, sandbox_image, PATCHWRIGHT_MAX_CONTINUES="0"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        deadline = time.monotonic() + 60  # summary.json is first written just before verification
        while (
            not list((repo / ".patchwright" / "runs").glob("*/summary.json")) and time.monotonic() < deadline
        ):
            time.sleep(0.2)
        time.sleep(2.0)  # the verification sandbox is running `sleep 60`
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    assert proc.returncode == 130
    summary = json.loads((only_run(repo) / "summary.json").read_text())
    assert summary["status"] == "interrupted" and "verification" in summary["error"]
    assert "+    return a + b" in (only_run(repo) / "patch.diff").read_text()
    assert not settled(lambda: containers_of(docker_client, summary["run_id"]))
    assert (
        json.loads((only_run(repo) / "trajectory.jsonl").read_text().splitlines()[-1])["event"] == "run_end"
    )


def test_a_failed_resume_keeps_the_saved_patch(tmp_path: Path, sandbox_image: str) -> None:
    repo = make_repo(tmp_path / "r", {"app.py": "def add(a, b):\n    return a - b\n"})
    with FakeAnthropic(edit_then(message(tool_use("bash", {"command": "true"})))) as api:
        first = run_agent(
            ["fix", "x", "--repo", str(repo), "--max-steps", "1", "--format", "json"],
            agent_env(api, sandbox_image),
        )
    assert first.returncode == 3
    saved = Path(json.loads(first.stdout)["patch"]).read_text()
    (repo / "app.py").write_text(
        "def add(a, b):\n    return b + a  # changed meanwhile\n"
    )  # the patch no longer applies
    with FakeAnthropic([]) as api:
        second = run_agent(
            ["fix", "--resume", json.loads(first.stdout)["run_id"], "--repo", str(repo)],
            agent_env(api, sandbox_image),
        )
    assert second.returncode == 2 and "no longer applies" in second.stderr
    assert (only_run(repo) / "patch.diff").read_text() == saved


def test_resuming_twice_keeps_the_conversation_valid(tmp_path: Path, sandbox_image: str) -> None:
    repo = make_repo(tmp_path / "r", {"app.py": "def add(a, b):\n    return a - b\n"})
    with FakeAnthropic(edit_then(message(tool_use("bash", {"command": "true"})))) as api:
        first = run_agent(
            ["fix", "x", "--repo", str(repo), "--max-steps", "1", "--format", "json"],
            agent_env(api, sandbox_image),
        )
    run_id = json.loads(first.stdout)["run_id"]
    with FakeAnthropic([message(tool_use("bash", {"command": "echo two"}))]) as api:
        second = run_agent(
            ["fix", "--resume", run_id, "--repo", str(repo), "--max-steps", "2"],
            agent_env(api, sandbox_image),
        )
    assert second.returncode == 3, second.stderr
    with FakeAnthropic([message(text("finished"))]) as api:
        third = run_agent(
            ["fix", "--resume", run_id, "--repo", str(repo), "--format", "json"],
            agent_env(api, sandbox_image),
        )
        assert api.requests[0].status == 200  # the server validates tool_use/tool_result pairing
    assert third.returncode == 0, third.stderr
    assert json.loads(third.stdout)["status"] == "completed"


def test_refused_apply_is_recorded_and_warned(tmp_path: Path, sandbox_image: str) -> None:
    repo = make_repo(tmp_path / "r", {"app.py": "x = 1\n"})
    replies = [message(tool_use("bash", {"command": "ln -s /etc/passwd pw"})), message(text("done"))]
    with FakeAnthropic(replies) as api:
        result = run_agent(
            ["fix", "x", "--repo", str(repo), "--apply", "--quiet"], agent_env(api, sandbox_image)
        )
    assert result.returncode == 0, result.stderr
    assert "agent: warning: patch not applied: pw: creates or retargets a symlink" in result.stderr
    summary = json.loads((only_run(repo) / "summary.json").read_text())
    assert summary["applied"] is False and "--apply-symlinks" in summary["apply_error"]
    assert not (repo / "pw").exists()


def test_task_file_that_is_not_utf8_is_read(tmp_path: Path, sandbox_image: str) -> None:
    repo = make_repo(tmp_path / "r", {"app.py": "x = 1\n"})
    (tmp_path / "task.txt").write_bytes("caf\xe9 menu is wrong\n".encode("latin-1"))
    with FakeAnthropic([message(text("ok"))]) as api:
        result = run_agent(
            ["fix", "--task-file", str(tmp_path / "task.txt"), "--repo", str(repo)],
            agent_env(api, sandbox_image),
        )
        assert result.returncode == 1, result.stderr
        assert api.requests[0].body["messages"][0]["content"][0]["text"] == "caf\ufffd menu is wrong\n"
