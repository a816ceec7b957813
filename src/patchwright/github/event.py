"""The task from the event that started the workflow, and whether the action may run at all.

Every byte of an event (titles, bodies, comments, logs) is written by someone else: it only
ever becomes the text of the task file handed to `agent fix --task-file`, never part of a
command line or a shell script.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from patchwright.errors import UsageError
from patchwright.github.rest import GitHubAPI

DEFAULT_TRIGGER = "/patchwright"
# Who may start a paid run by opening an issue or commenting (GitHub's author_association).
TRUSTED_ASSOCIATIONS = frozenset({"OWNER", "MEMBER", "COLLABORATOR"})
LOG_TAIL_LINES = 150
LOG_TAIL_CHARS = 12_000
_TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z ")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


class EventRefused(UsageError):
    """The event must not start a run (fork code, an untrusted commenter, nothing to do)."""


@dataclass(frozen=True)
class EventTask:
    """What the event asks for: the task text, and the issue or pull request to answer on."""

    task: str
    number: int | None = None  # issue or pull request number
    title: str = ""  # a short title for a pull request
    is_issue: bool = False  # "Fixes #N" belongs in the PR body
    skip_reason: str | None = None  # set: nothing to do, the action ends green without a run


@dataclass(frozen=True)
class EventOptions:
    trigger_phrase: str = DEFAULT_TRIGGER
    allow_fork_code: bool = False
    task: str = ""  # the `task` input; wins over the event's text


def read_event(path: str | None) -> dict[str, Any]:
    if not path:
        return {}
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise UsageError(f"cannot read the event payload {path}: {err}") from None
    return data if isinstance(data, dict) else {}


def check_fork(event_name: str, event: dict[str, Any], allow_fork_code: bool) -> None:
    """Refuse to run code from a fork with this repository's secrets, unless told to."""
    if allow_fork_code:
        return
    repo = str((event.get("repository") or {}).get("full_name") or "")
    head_repo = ""
    if event_name == "pull_request_target":
        head_repo = str(
            (((event.get("pull_request") or {}).get("head") or {}).get("repo") or {}).get("full_name") or ""
        )
    elif event_name == "workflow_run":
        head_repo = str(
            ((event.get("workflow_run") or {}).get("head_repository") or {}).get("full_name") or ""
        )
    else:
        return
    if head_repo != repo:
        raise EventRefused(
            f"refusing to run code from the fork {head_repo or '(unknown)'} on {event_name} "
            "(set allow_fork_code: true to allow it)"
        )


def _trusted(association: object) -> bool:
    return str(association or "").upper() in TRUSTED_ASSOCIATIONS


def _issue_text(issue: dict[str, Any]) -> str:
    title, body = str(issue.get("title") or ""), str(issue.get("body") or "")
    return f"GitHub issue #{issue.get('number')}: {title}\n\n{body}".strip() + "\n"


def after_trigger(body: str, phrase: str) -> str | None:
    """The comment's text after the first line that starts with `phrase`; None: not asked."""
    lines = body.replace("\r\n", "\n").split("\n")
    for at, line in enumerate(lines):
        stripped = line.strip()
        if stripped == phrase or stripped.startswith(phrase + " "):
            rest = [stripped[len(phrase) :].strip(), *lines[at + 1 :]]
            return "\n".join(rest).strip()
    return None


def task_from_event(
    event_name: str, event: dict[str, Any], options: EventOptions, api: GitHubAPI | None = None
) -> EventTask:
    """The task for this event; EventRefused when the event must not start a run."""
    check_fork(event_name, event, options.allow_fork_code)
    if event_name in ("issues", "issue_comment"):
        issue = event.get("issue") or {}
        number, title = issue.get("number"), str(issue.get("title") or "")
        is_issue = "pull_request" not in issue
        if event_name == "issue_comment":
            comment = event.get("comment") or {}
            asked = after_trigger(str(comment.get("body") or ""), options.trigger_phrase)
            if asked is None and not options.task:
                return EventTask(
                    "", number, title, is_issue, skip_reason=f"no {options.trigger_phrase} in the comment"
                )
            if not _trusted(comment.get("author_association")):
                raise EventRefused(
                    f"the comment's author ({comment.get('author_association') or 'unknown'}) is not an owner, "
                    "member or collaborator of the repository"
                )
            if options.task:
                task = options.task
            elif asked:
                task = f"{asked}\n\nThe request was made on:\n{_issue_text(issue)}"
            else:  # the phrase alone: the issue itself is the task
                task = _issue_text(issue)
            return EventTask(task, number, title, is_issue)
        if event.get("action") == "opened" and not _trusted(issue.get("author_association")):
            raise EventRefused(
                f"the issue's author ({issue.get('author_association') or 'unknown'}) is not an owner, member "
                "or collaborator; a maintainer can add the label instead"
            )
        return EventTask(options.task or _issue_text(issue), number, title, is_issue)
    if event_name in ("pull_request", "pull_request_target"):
        pr = event.get("pull_request") or {}
        text = f"Pull request #{pr.get('number')}: {pr.get('title') or ''}\n\n{pr.get('body') or ''}".strip()
        return EventTask(options.task or text + "\n", pr.get("number"), str(pr.get("title") or ""))
    if event_name == "workflow_run":
        run = event.get("workflow_run") or {}
        prs = run.get("pull_requests") or []
        number = prs[0].get("number") if prs else None
        title = f"fix the failing {run.get('name') or 'workflow'} run"
        if options.task:
            return EventTask(options.task, number, title)
        if run.get("conclusion") != "failure":
            return EventTask(
                "", number, title, skip_reason=f"the run's conclusion is {run.get('conclusion')}"
            )
        if api is None:
            raise UsageError("a workflow_run task needs the GitHub API (github_token)")
        return EventTask(failed_run_task(api, run), number, title)
    if options.task:
        return EventTask(options.task)
    raise UsageError(f"no task: the {event_name or 'unknown'} event carries none; set the `task` input")


def log_tail(log: str, lines: int = LOG_TAIL_LINES, chars: int = LOG_TAIL_CHARS) -> str:
    """The end of a job log, without its timestamps and colour codes."""
    kept = [_ANSI.sub("", _TIMESTAMP.sub("", line)) for line in log.replace("\r\n", "\n").split("\n")]
    text = "\n".join(kept[-lines:]).strip("\n")
    return text[-chars:]


def failed_run_task(api: GitHubAPI, run: dict[str, Any]) -> str:
    """The task for a red run: its failing job, the failing step and the tail of the job's log."""
    jobs = api.get(api.repo_path(f"actions/runs/{run.get('id')}/jobs?filter=latest&per_page=100"))
    failed = [j for j in jobs.get("jobs", []) if j.get("conclusion") == "failure"]
    lines = [
        f'The CI workflow "{run.get("name")}" failed on branch {run.get("head_branch")} '
        f"(commit {str(run.get('head_sha') or '')[:12]}). Find the cause and fix it so the run passes, "
        "without weakening or skipping the tests."
    ]
    for job in failed[:1]:
        steps = [s.get("name") for s in job.get("steps") or [] if s.get("conclusion") == "failure"]
        lines.append(f"\nFailing job: {job.get('name')}")
        if steps:
            lines.append(f"Failing step: {steps[0]}")
        log = log_tail(api.text(api.repo_path(f"actions/jobs/{job.get('id')}/logs")))
        fence = "`" * max(3, longest_backtick_run(log) + 1)
        lines.append(f"\nThe end of the job's log:\n{fence}\n{log}\n{fence}")
    if not failed:
        lines.append("\n(No failed job was found in the run.)")
    return "\n".join(lines) + "\n"


def longest_backtick_run(text: str) -> int:
    return max((len(m) for m in re.findall(r"`+", text)), default=0)
