"""The instances file (JSONL or a JSON list, SWE-bench's field names) and where each repo comes from.

An instance's repo is a local path, a git URL, or SWE-bench's `owner/name`, which is
looked up as `REPOS/owner__name` (a local mirror) before GitHub. Every instance gets a
fresh clone checked out at its `base_commit`, so runs never share a working tree.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from patchwright.errors import UsageError

INSTANCE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,199}$")  # a safe directory name
OWNER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9._-]+$")
GIT_URL = re.compile(r"^(https?|ssh|git|file)://|^[\w.-]+@[\w.-]+:")
COMMIT = re.compile(r"^[0-9A-Za-z._/-]{1,200}$")
STRING_FIELDS = ("repo", "base_commit", "test_cmd", "setup", "image", "workspace", "agent", "model")
KNOWN_FIELDS = {"instance_id", "problem_statement", "services", *STRING_FIELDS}
CLONE_TIMEOUT = 1800.0


class CheckoutError(Exception):
    """The instance's repo cannot be cloned or its base commit checked out; the instance fails."""


@dataclass(frozen=True)
class Instance:
    """One task of a batch; the optional fields override the batch's settings for this instance."""

    instance_id: str
    problem_statement: str
    repo: str | None = None
    base_commit: str | None = None
    test_cmd: str | None = None
    setup: str | None = None
    image: str | None = None
    workspace: str | None = None  # the repo's path inside `image` (SWE-bench: /testbed); no clone then
    agent: str | None = None
    model: str | None = None
    services: list[str] = field(default_factory=list)  # --service for this instance, as `agent fix` takes it


def load_instances(path: Path) -> list[Instance]:
    """Read and check the whole file first: a bad line is a usage error before anything runs."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise UsageError(f"instances file {path}: {err.strerror}") from None
    except UnicodeDecodeError:
        raise UsageError(f"instances file {path}: not UTF-8") from None
    records = _records(text, path)
    instances = [_instance(record, f"{path}: instance {n}") for n, record in enumerate(records, 1)]
    seen: set[str] = set()
    for instance in instances:
        if instance.instance_id in seen:
            raise UsageError(f"instances file {path}: instance_id {instance.instance_id!r} appears twice")
        seen.add(instance.instance_id)
    if not instances:
        raise UsageError(f"instances file {path}: no instances")
    return instances


def _records(text: str, path: Path) -> list[Any]:
    if text.lstrip().startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise UsageError(f"instances file {path}: invalid JSON: {err}") from None
        return list(data)
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise UsageError(f"instances file {path}, line {number}: invalid JSON: {err.msg}") from None
    return records


def _instance(record: Any, where: str) -> Instance:
    if not isinstance(record, dict):
        raise UsageError(f"{where}: not a JSON object")
    instance_id = record.get("instance_id")
    if not isinstance(instance_id, str) or not INSTANCE_ID.match(instance_id) or instance_id in (".", ".."):
        raise UsageError(f"{where}: instance_id must be letters, digits and ._+- (got {instance_id!r})")
    task = record.get("problem_statement")
    if not isinstance(task, str) or not task.strip():
        raise UsageError(f"{where} ({instance_id}): problem_statement is missing or empty")
    values: dict[str, str | None] = {}
    for name in STRING_FIELDS:
        value = record.get(name)
        if value is not None and not isinstance(value, str):
            raise UsageError(f"{where} ({instance_id}): {name} must be a string")
        values[name] = value or None
    if values["repo"] is None and values["workspace"] is None:
        raise UsageError(f"{where} ({instance_id}): needs a repo (or an image with a workspace)")
    if values["workspace"] is not None and (
        values["image"] is None or not values["workspace"].startswith("/")
    ):
        raise UsageError(f"{where} ({instance_id}): workspace needs an image and an absolute path")
    if values["base_commit"] is not None and not COMMIT.match(values["base_commit"]):
        raise UsageError(f"{where} ({instance_id}): base_commit {values['base_commit']!r} is not a commit")
    services = record.get("services") or []
    if not isinstance(services, list) or not all(isinstance(item, str) for item in services):
        raise UsageError(f'{where} ({instance_id}): services must be a list of strings like "postgres:15"')
    return Instance(instance_id=instance_id, problem_statement=task, services=services, **values)


def repo_source(repo: str, repos_dir: Path | None) -> str:
    """What to clone: a local path, a URL, a mirror under --repos, or GitHub for `owner/name`."""
    if GIT_URL.match(repo):
        return repo
    if OWNER_NAME.match(repo) and not Path(repo).exists():
        if repos_dir is not None:
            mirror = repos_dir / repo.replace("/", "__")
            if mirror.exists():
                return str(mirror.resolve())
        return f"https://github.com/{repo}.git"
    return str(Path(repo).expanduser().resolve())


def checkout(instance: Instance, repos_dir: Path | None, dest: Path) -> None:
    """Clone the instance's repo into `dest` (absent or empty) and check out its base commit."""
    assert instance.repo is not None
    source = repo_source(instance.repo, repos_dir)
    if not GIT_URL.match(source) and not Path(source).is_dir():
        raise CheckoutError(f"repo {instance.repo}: no such directory")
    _git(["clone", "--quiet", "--no-checkout", source, str(dest)], None, f"cannot clone {instance.repo}")
    target = instance.base_commit or "HEAD"
    _git(
        ["checkout", "--quiet", "--detach", target],
        dest,
        f"cannot check out {target} of {instance.repo}",
    )


def placeholder_repo(dest: Path) -> None:
    """For an instance whose image holds the repo: `agent fix` still wants a host repo to point at."""
    dest.mkdir(parents=True, exist_ok=True)
    _git(["init", "--quiet"], dest, "cannot create a placeholder repo")


def _git(args: list[str], cwd: Path | None, what: str) -> None:
    env_args = ["-c", "advice.detachedHead=false", "-c", "core.hooksPath=/dev/null"]
    try:
        done = subprocess.run(
            ["git", *env_args, *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=CLONE_TIMEOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0"},
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise CheckoutError(f"{what}: {err}") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [f"git exited with {done.returncode}"])[-1]
        raise CheckoutError(f"{what}: {last[:300]}")
