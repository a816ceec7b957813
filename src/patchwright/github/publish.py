"""The patch as a pull request (a branch with one commit) or as a comment.

git runs on the host with the checkout's own objects, through a throwaway index: no working
tree is written, no hook or filter of the repository runs (hostgit's pins), and nothing
follows a symlink. The token reaches git only as an http.extraheader given in the
environment (GIT_CONFIG_KEY_n), scoped to the server's URL: never an argument, never
written to .git/config.
"""

from __future__ import annotations

import base64
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from patchwright.errors import InfraError
from patchwright.github.report import RunResult, pr_body, summary_markdown
from patchwright.github.rest import GitHubAPI
from patchwright.hostgit import git_env, host_git
from patchwright.sanitize import clean_line

BOT_NAME = "github-actions[bot]"
BOT_EMAIL = "41898282+github-actions[bot]@users.noreply.github.com"


class PublishError(InfraError):
    """The branch could not be pushed or the pull request opened."""


@dataclass(frozen=True)
class Target:
    """Where the result goes: the repository on the server, and the base branch."""

    server_url: str  # GITHUB_SERVER_URL, e.g. https://github.com
    repo: str  # owner/name
    base_branch: str
    token: str

    @property
    def push_url(self) -> str:
        return f"{self.server_url.rstrip('/')}/{self.repo}.git"


def _git(root: Path, *args: str, env: dict[str, str], input: bytes | None = None) -> str:
    done = subprocess.run(host_git(root, *args), env=env, capture_output=True, input=input, check=False)
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise PublishError(f"git {args[0]} failed: {clean_line(message[-1] if message else '', 300)}")
    return done.stdout.decode("utf-8", "replace").strip()


def auth_env(base: dict[str, str], target: Target) -> dict[str, str]:
    """git_env plus the token as an extra header for the server's URL only."""
    env = dict(base)
    if target.token and target.server_url.startswith(("https://", "http://")):
        basic = base64.b64encode(f"x-access-token:{target.token}".encode()).decode()
        at = int(env.get("GIT_CONFIG_COUNT", "0"))
        env[f"GIT_CONFIG_KEY_{at}"] = f"http.{target.server_url.rstrip('/')}/.extraheader"
        env[f"GIT_CONFIG_VALUE_{at}"] = f"AUTHORIZATION: basic {basic}"
        env["GIT_CONFIG_COUNT"] = str(at + 1)
    return env


def commit_patch(repo_root: Path, patch: bytes, message: str) -> str:
    """One commit on top of HEAD holding the patch; its id. The working tree is not touched."""
    env = git_env(repo_root)
    with tempfile.TemporaryDirectory(prefix="patchwright-index-") as scratch:
        env["GIT_INDEX_FILE"] = str(Path(scratch) / "index")
        env.update(
            {
                "GIT_AUTHOR_NAME": BOT_NAME,
                "GIT_AUTHOR_EMAIL": BOT_EMAIL,
                "GIT_COMMITTER_NAME": BOT_NAME,
                "GIT_COMMITTER_EMAIL": BOT_EMAIL,
            }
        )
        _git(repo_root, "read-tree", "HEAD", env=env)
        _git(repo_root, "apply", "--cached", "--whitespace=nowarn", "-", env=env, input=patch)
        tree = _git(repo_root, "write-tree", env=env)
        return _git(repo_root, "commit-tree", tree, "-p", "HEAD", "-F", "-", env=env, input=message.encode())


def push_branch(repo_root: Path, commit: str, branch: str, target: Target) -> None:
    env = auth_env(git_env(repo_root), target)
    _git(repo_root, "push", "--no-verify", target.push_url, f"{commit}:refs/heads/{branch}", env=env)


def pr_title(title: str, task: str) -> str:
    first = title or next((line for line in task.splitlines() if line.strip()), "a fix")
    return clean_line(f"patchwright: {first.strip()}", 120)


def open_pull_request(
    api: GitHubAPI,
    repo_root: Path,
    result: RunResult,
    target: Target,
    title: str,
    issue_number: int | None,
    is_issue: bool,
) -> tuple[str, str]:
    """Push `patchwright/<run id>` with the patch and open the PR; (url, branch)."""
    patch = result.patch_path.read_bytes() if result.patch_path and result.patch_path.is_file() else b""
    if not patch.strip():
        raise PublishError("there is no patch to open a pull request with")
    branch = f"patchwright/{result.run_id}"
    message = f"{title}\n\n{pr_body(result, issue_number, is_issue)}"
    commit = commit_patch(repo_root, patch, message)
    push_branch(repo_root, commit, branch, target)
    created = api.post(
        api.repo_path("pulls"),
        {
            "title": title,
            "head": branch,
            "base": target.base_branch,
            "body": pr_body(result, issue_number, is_issue),
            "draft": not result.proven,
            "maintainer_can_modify": True,
        },
    )
    return str(created.get("html_url") or ""), branch


def post_comment(api: GitHubAPI, number: int, result: RunResult) -> str:
    created = api.post(api.repo_path(f"issues/{number}/comments"), {"body": summary_markdown(result)})
    return str(created.get("html_url") or "")


def environment_target(env: dict[str, str] | None = None) -> tuple[str, str]:
    """(server URL, repository) from the runner's variables."""
    env = dict(os.environ) if env is None else env
    return env.get("GITHUB_SERVER_URL", "https://github.com"), env.get("GITHUB_REPOSITORY", "")
