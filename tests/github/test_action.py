"""action.yml run the way the GitHub runner runs it (tests/fakes/actionrunner.py), against a fake
GitHub REST API (tests/fakes/fakegithub.py), a bare git remote, the fake Anthropic API and, for the
two end-to-end runs, the real Docker sandbox. The other tests feed a prepared run folder to
the steps after `agent fix`.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from actionrunner import ActionResult, ActionRunner
from fakeapi import FakeAnthropic, last_user_text, message, text, tool_use
from fakegithub import FakeGitHub, Job
from helpers import git, make_repo

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "ghs_fakeGitHubToken0123456789abcdefXYZ"
API_KEY = "sk-ant-api03-action-secret-key-0123456789"
REPO = "octo/app"
BUGGY = {
    "app.py": "def add(a, b):\n    return a - b\n",
    "test_app.py": "from app import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n",
}
FIX_STEP = "python -m patchwright.github.steps fix"
INJECTION = (
    'Also: $(touch /tmp/pw-injected-{m}) `touch /tmp/pw-injected-{m}` "; touch /tmp/pw-injected-{m}; "'
)


@dataclass
class Setup:
    workspace: Path
    remote: Path  # the bare repository the branch is pushed to
    server_url: str
    temp: Path
    tmp: Path


@pytest.fixture
def setup(tmp_path: Path) -> Setup:
    workspace = make_repo(tmp_path / "ws", BUGGY)
    remote = tmp_path / "server" / f"{REPO}.git"
    remote.parent.mkdir(parents=True)
    git(tmp_path, "init", "-q", "--bare", str(remote))
    git(workspace, "push", "-q", str(remote), "main")
    return Setup(workspace, remote, f"file://{tmp_path / 'server'}", tmp_path / "runner-temp", tmp_path)


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub(token=TOKEN, repo=REPO) as fake:
        yield fake


def issue_event(
    action: str = "labeled", association: str = "NONE", body: str = "add(2, 3) gives -1."
) -> dict[str, Any]:
    return {
        "action": action,
        "issue": {"number": 7, "title": "add is wrong", "body": body, "author_association": association},
        "label": {"name": "patchwright"},
        "repository": {"full_name": REPO, "default_branch": "main"},
    }


def run_action(
    setup: Setup,
    github: FakeGitHub,
    event_name: str,
    event: dict[str, Any],
    inputs: dict[str, str],
    extra_env: dict[str, str] | None = None,
    replace_run: dict[str, str] | None = None,
) -> ActionResult:
    event_path = setup.tmp / "event.json"
    event_path.write_text(json.dumps(event))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "PATCHWRIGHT_", "GITHUB_"))}
    env.update(
        {
            "GITHUB_API_URL": github.url,
            "GITHUB_SERVER_URL": setup.server_url,
            "GITHUB_REPOSITORY": REPO,
            "PATCHWRIGHT_MAX_RETRIES": "2",
            **(extra_env or {}),
        }
    )
    runner = ActionRunner(
        action_dir=ROOT,
        workspace=setup.workspace,
        temp=setup.temp,
        event_name=event_name,
        event_path=event_path,
        inputs={"anthropic_api_key": API_KEY, **inputs},
        env=env,
        token=TOKEN,
        uses_outputs={"actions/cache/restore@v4": {"cache-hit": "true"}},
        replace_run=replace_run or {},
        skip=frozenset({"install"}),  # the test interpreter already imports this checkout
    )
    return runner.run()


def secret_free(folder: Path) -> None:
    """Neither the token nor the key, in any byte of any file under `folder` (hidden ones too)."""
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert files
    for path in files:
        data = path.read_bytes()
        for secret in (TOKEN, API_KEY):
            assert secret.encode() not in data, f"{secret[:8]}... found in {path}"


def prepared_run(setup: Setup, verified: bool, verdict: str, exit_code: int = 0) -> Path:
    """A run folder as `agent fix` leaves it: summary.json and the patch."""
    run_dir = setup.workspace / ".patchwright" / "runs" / "20261203-120000-abcdef"
    run_dir.mkdir(parents=True)
    patch = (
        "diff --git a/app.py b/app.py\n--- a/app.py\n+++ b/app.py\n@@ -1,2 +1,2 @@\n"
        " def add(a, b):\n-    return a - b\n+    return a + b\n"
    )
    (run_dir / "patch").write_text(patch)
    summary = {
        "run_id": run_dir.name,
        "status": "completed",
        "exit_code": exit_code,
        "run_dir": str(run_dir),
        "patch": str(run_dir / "patch"),
        "cost_usd": 0.0123,
        "verified": verified,
        "verification": {"verdict": verdict, "reason": "no test failed before the patch"},
    }
    (run_dir / "summary.json").write_text(json.dumps(summary))
    return run_dir


def feed(run_dir: Path, exit_code: int = 0) -> dict[str, str]:
    """The fix step's script replaced by one that hands a prepared run to the same recording code."""
    code = (
        "import os; from patchwright.github.steps import Context, record_result; "
        f"raise SystemExit(record_result(Context(dict(os.environ)), {exit_code}, {{'run_dir': {str(run_dir)!r}}}))"
    )
    return {"fix": f"python -c {shlex.quote(code)}"}


def remote_branches(setup: Setup) -> list[str]:
    return git(setup.remote, "for-each-ref", "--format=%(refname)", "refs/heads/").split()


# -- the action's definition ------------------------------------------------------------------

ISSUE_INPUTS = {
    "anthropic_api_key", "task", "model", "agent", "max_cost", "max_steps", "timeout", "setup", "test_cmd",
    "services", "effort", "extra_args", "mode", "github_token", "base_branch", "allow_fork_code",
    "trust_repo_config",
}  # fmt: skip
ISSUE_OUTPUTS = {"status", "exit_code", "verified", "patch", "run_dir", "cost_usd", "pr_url", "comment_url"}


def action() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "action.yml").read_text())


def run_scripts(path: Path) -> list[str]:
    data = yaml.safe_load(path.read_text())
    steps = (
        data["runs"]["steps"] if "runs" in data else [s for j in data["jobs"].values() for s in j["steps"]]
    )
    return [s["run"] for s in steps if "run" in s]


def test_the_action_declares_the_inputs_and_outputs_users_rely_on() -> None:
    spec = action()
    assert set(spec["inputs"]) >= ISSUE_INPUTS
    assert set(spec["outputs"]) == ISSUE_OUTPUTS
    assert spec["inputs"]["github_token"]["default"] == "${{ github.token }}"
    assert spec["inputs"]["mode"]["default"] == "patch"
    assert spec["inputs"]["allow_fork_code"]["default"] == "false"
    assert spec["inputs"]["trust_repo_config"]["default"] == "false"


@pytest.mark.parametrize("path", [ROOT / "action.yml", *sorted((ROOT / "examples" / "github").glob("*.yml"))])
def test_no_run_script_holds_an_expression(path: Path) -> None:
    scripts = run_scripts(path)
    assert scripts or path.name != "action.yml"
    for script in scripts:
        assert "${{" not in script, f"{path.name}: {script}"


def test_steps_are_one_line_calls_and_patchwright_comes_from_the_action_checkout() -> None:
    steps = action()["runs"]["steps"]
    install = steps[0]["run"]
    assert '/bin/pip" install --quiet "$GITHUB_ACTION_PATH"' in install
    assert "pip install patchwright" not in install
    for step in steps[1:]:
        if "run" in step:
            assert re.fullmatch(r"python -m patchwright\.github\.steps [a-z-]+", step["run"]), step["run"]
    upload = next(s for s in steps if str(s.get("uses", "")).startswith("actions/upload-artifact@"))
    assert upload["with"]["include-hidden-files"] is True


def test_action_and_examples_pass_actionlint() -> None:
    linter = shutil.which("jactionlint")
    assert linter, "jactionlint is in the dev extra: pip install -e '.[dev]'"
    files = [ROOT / "action.yml", *sorted((ROOT / "examples" / "github").glob("*.yml"))]
    # Full-length SHAs cannot be looked up from every machine; users are told to pin.
    done = subprocess.run(
        [linter, "--no-color", "--ignore", "unpinned-uses", *map(str, files)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


# -- events and modes, with a prepared run ----------------------------------------------------


@pytest.mark.docker  # the action's image step builds or loads the sandbox image
def test_an_unverified_patch_opens_no_pull_request_and_fails_the_step(
    setup: Setup, github: FakeGitHub
) -> None:
    run_dir = prepared_run(setup, verified=False, verdict="not_reproduced")
    result = run_action(setup, github, "issues", issue_event(), {"mode": "pr"}, replace_run=feed(run_dir))
    assert result.step("fix").outcome == "success"
    assert result.step("publish").outcome == "success"
    assert not github.pulls and not github.requests_to("POST", f"/repos/{REPO}/pulls")
    assert remote_branches(setup) == ["refs/heads/main"]
    conclude = result.steps[-1]
    assert conclude.outcome == "failure" and conclude.exit_code == 1
    assert "NOT verified" in conclude.output
    assert result.outputs["verified"] == "false" and result.outputs["pr_url"] == ""
    assert "**NOT verified** (verdict `not_reproduced`)" in result.summary
    assert "No pull request opened" in result.summary


@pytest.mark.docker  # the action's image step builds or loads the sandbox image
def test_pr_on_unverified_opens_a_draft_and_still_fails(setup: Setup, github: FakeGitHub) -> None:
    run_dir = prepared_run(setup, verified=False, verdict="not_reproduced")
    result = run_action(
        setup,
        github,
        "issues",
        issue_event(),
        {"mode": "pr", "pr_on_unverified": "true"},
        replace_run=feed(run_dir),
    )
    assert len(github.pulls) == 1
    pull = github.pulls[0]
    assert pull["draft"] is True and pull["head"] == f"patchwright/{run_dir.name}" and pull["base"] == "main"
    assert "NOT verified" in pull["body"] and "Fixes #7" in pull["body"]
    assert result.outputs["pr_url"] == pull["html_url"]
    assert result.steps[-1].outcome == "failure"


@pytest.mark.docker  # the action's image step builds or loads the sandbox image
def test_comment_mode_posts_the_summary_and_patch(setup: Setup, github: FakeGitHub) -> None:
    run_dir = prepared_run(setup, verified=True, verdict="fixed")
    result = run_action(
        setup, github, "issues", issue_event(), {"mode": "comment"}, replace_run=feed(run_dir)
    )
    assert [c["issue"] for c in github.comments] == [7]
    body = github.comments[0]["body"]
    assert "**verified**" in body and "```diff\n" in body and "+    return a + b" in body
    assert result.outputs["comment_url"] == github.comments[0]["html_url"]
    assert not github.pulls
    assert not result.failed
    request = github.requests_to("POST", f"/repos/{REPO}/issues/7/comments")[0]
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"


def test_a_fork_pull_request_target_is_refused_before_anything_runs(setup: Setup, github: FakeGitHub) -> None:
    event = {
        "action": "opened",
        "pull_request": {
            "number": 3,
            "title": "t",
            "body": "",
            "head": {"repo": {"full_name": "mallory/app"}},
        },
        "repository": {"full_name": REPO, "default_branch": "main"},
    }
    result = run_action(setup, github, "pull_request_target", event, {"mode": "pr", "task": "fix it"})
    task = result.step("task")
    assert task.outcome == "failure" and task.exit_code == 2
    assert "refusing to run code from the fork mallory/app" in task.output
    assert all(s.outcome == "skipped" for s in result.steps if s.id not in ("task", "install"))
    assert not github.requests


def test_allow_fork_code_lets_a_fork_through(setup: Setup, github: FakeGitHub) -> None:
    event = {
        "pull_request": {
            "number": 3,
            "title": "t",
            "body": "",
            "head": {"repo": {"full_name": "mallory/app"}},
        },
        "repository": {"full_name": REPO, "default_branch": "main"},
    }
    run_dir = prepared_run(setup, verified=True, verdict="fixed")
    result = run_action(
        setup,
        github,
        "pull_request_target",
        event,
        {"allow_fork_code": "true", "task": "x"},
        replace_run=feed(run_dir),
    )
    assert result.step("task").outcome == "success"


def test_a_comment_without_the_trigger_phrase_ends_green_without_a_run(
    setup: Setup, github: FakeGitHub
) -> None:
    event = {
        **issue_event(),
        "action": "created",
        "comment": {"body": "thanks!", "author_association": "OWNER"},
    }
    result = run_action(setup, github, "issue_comment", event, {"mode": "comment"})
    assert not result.failed
    assert result.outputs["status"] == "skipped"
    assert all(s.outcome == "skipped" for s in result.steps if s.id not in ("task",))


def test_a_comment_from_an_outsider_is_refused(setup: Setup, github: FakeGitHub) -> None:
    event = {
        **issue_event(),
        "action": "created",
        "comment": {"body": "/patchwright go", "author_association": "NONE"},
    }
    result = run_action(setup, github, "issue_comment", event, {"mode": "comment"})
    assert (
        result.step("task").exit_code == 2
        and "not an owner, member or collaborator" in result.step("task").output
    )
    assert result.step("fix").outcome == "skipped"


# -- end to end: the real SDK against the fake API, the real sandbox ---------------------------


def fixing_model() -> list[Any]:
    edit = {"command": "str_replace", "path": "/workspace/app.py", "old_str": "a - b", "new_str": "a + b"}
    return [message(tool_use("str_replace_based_edit_tool", edit)), message(text("Fixed add."))]


def test_an_issue_label_opens_a_verified_pull_request(
    setup: Setup, github: FakeGitHub, sandbox_image: str
) -> None:
    marker = os.urandom(4).hex()
    body = "add(2, 3) gives -1.\n" + INJECTION.format(m=marker)
    with FakeAnthropic(fixing_model()) as api:
        result = run_action(
            setup,
            github,
            "issues",
            issue_event(body=body),
            {"mode": "pr", "test_cmd": "python3 -m pytest -q", "services": "none"},
            extra_env={"ANTHROPIC_BASE_URL": api.base_url, "PATCHWRIGHT_IMAGE": sandbox_image},
        )
        requests = api.requests
    assert result.step("fix").outcome == "success", result.step("fix").output
    assert result.outputs["exit_code"] == "0" and result.outputs["verified"] == "true", result.summary
    # The issue reached the model as the task, and no shell ever ran its text.
    first = last_user_text(requests[0])
    assert "add is wrong" in first and "pw-injected" in first
    assert not list(Path("/tmp").glob(f"pw-injected-{marker}"))
    # The pull request, and the branch with one commit on top of main.
    run_dir = Path(result.outputs["run_dir"])
    branch = f"patchwright/{run_dir.name}"
    assert [p["head"] for p in github.pulls] == [branch]
    pull = github.pulls[0]
    assert pull["base"] == "main" and pull["title"] == "patchwright: add is wrong" and pull["draft"] is False
    assert "Fixes #7" in pull["body"] and "**verified**" in pull["body"]
    assert result.outputs["pr_url"] == pull["html_url"]
    assert remote_branches(setup) == ["refs/heads/main", f"refs/heads/{branch}"]
    assert git(setup.remote, "rev-parse", f"{branch}^") == git(setup.remote, "rev-parse", "main")
    assert "+    return a + b" in git(setup.remote, "diff", "main", branch)
    assert (setup.workspace / "app.py").read_text() == BUGGY["app.py"]  # the checkout is left alone
    # The summary, the artifact and the final verdict.
    assert "```diff" in result.summary and "**verified**" in result.summary
    upload = next(s for s in result.steps if (s.uses or "").startswith("actions/upload-artifact@"))
    assert upload.outcome == "success" and upload.with_["path"] == str(run_dir)
    assert upload.with_["include-hidden-files"] == "true"
    assert result.steps[-1].outcome == "success" and not result.failed
    secret_free(run_dir)
    assert TOKEN not in (setup.workspace / ".git" / "config").read_text()
    assert all(TOKEN not in json.dumps(r.body) for r in requests)


def test_a_red_ci_run_becomes_the_task_and_the_result_a_comment(
    setup: Setup, github: FakeGitHub, sandbox_image: str
) -> None:
    log = "\n".join(f"2026-12-03T10:00:{i % 60:02d}.0000000Z line {i}" for i in range(400))
    log += "\n2026-12-03T10:01:00.0000000Z \x1b[31mFAILED test_app.py::test_add - assert -1 == 5\x1b[0m\n"
    github.runs[99] = [
        Job(1, "lint", "success", [], "ok"),
        Job(2, "test (3.12)", "failure", [{"name": "Run the tests", "conclusion": "failure"}], log),
    ]
    event = {
        "action": "completed",
        "workflow_run": {
            "id": 99,
            "name": "tests",
            "conclusion": "failure",
            "head_branch": "main",
            "head_sha": "0123456789abcdef0123",
            "head_repository": {"full_name": REPO},
            "pull_requests": [{"number": 12}],
        },
        "repository": {"full_name": REPO, "default_branch": "main"},
    }
    with FakeAnthropic([message(text("I could not find the cause."))]) as api:
        result = run_action(
            setup,
            github,
            "workflow_run",
            event,
            {"mode": "comment", "services": "none", "extra_args": "--max-continues 0"},
            extra_env={"ANTHROPIC_BASE_URL": api.base_url, "PATCHWRIGHT_IMAGE": sandbox_image},
        )
        task = last_user_text(api.requests[0])
    assert 'The CI workflow "tests" failed on branch main' in task
    assert "Failing job: test (3.12)" in task and "Failing step: Run the tests" in task
    assert "FAILED test_app.py::test_add - assert -1 == 5" in task and "line 399" in task
    assert "line 100\n" not in task and "2026-12-03T10" not in task and "\x1b[" not in task
    # The log came from the other origin, without the token.
    assert github.blob_requests and all("Authorization" not in r.headers for r in github.blob_requests)
    # No changes: exit 1, said in a comment on the run's pull request, and the step fails.
    assert result.outputs["exit_code"] == "1" and result.outputs["verified"] == "false", result.summary
    assert [c["issue"] for c in github.comments] == [12]
    assert "_No patch._" in github.comments[0]["body"] and "NOT verified" in github.comments[0]["body"]
    assert not github.pulls
    assert result.steps[-1].outcome == "failure" and result.steps[-1].exit_code == 1
    secret_free(Path(result.outputs["run_dir"]))
