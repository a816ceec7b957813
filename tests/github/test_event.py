"""The task from each event, and the events that must not start a run."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from patchwright.github.event import (
    EventOptions,
    EventRefused,
    after_trigger,
    log_tail,
    task_from_event,
)
from patchwright.github.rest import GitHubAPI

from fakegithub import FakeGitHub, Job

REPO = "octo/app"
TOKEN = "ghs_eventTestToken0123456789"


def issue(association: str = "NONE", pull: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "number": 5,
        "title": "Crash on empty input",
        "body": "Steps: run `app ''`.",
        "author_association": association,
    }
    if pull:
        data["pull_request"] = {"url": "x"}
    return data


def test_a_labeled_issue_is_the_task_whoever_wrote_it() -> None:
    found = task_from_event("issues", {"action": "labeled", "issue": issue()}, EventOptions())
    assert found.task.startswith("GitHub issue #5: Crash on empty input\n\nSteps: run `app ''`.")
    assert (found.number, found.title, found.is_issue, found.skip_reason) == (
        5,
        "Crash on empty input",
        True,
        None,
    )


def test_an_opened_issue_needs_a_trusted_author() -> None:
    with pytest.raises(EventRefused, match="not an owner, member or collaborator"):
        task_from_event(
            "issues", {"action": "opened", "issue": issue("FIRST_TIME_CONTRIBUTOR")}, EventOptions()
        )
    found = task_from_event("issues", {"action": "opened", "issue": issue("MEMBER")}, EventOptions())
    assert "Crash on empty input" in found.task


def test_the_task_input_wins_over_the_event() -> None:
    found = task_from_event("issues", {"action": "labeled", "issue": issue()}, EventOptions(task="do X"))
    assert found.task == "do X" and found.number == 5


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("/patchwright fix the parser", "fix the parser"),
        (
            "Thanks!\n/patchwright\nplease handle empty input\nand spaces",
            "please handle empty input\nand spaces",
        ),
        ("  /patchwright  trim me  ", "trim me"),
        ("see /patchwright later", None),  # not at a line's start
        ("/patchwrightly", None),
        ("nothing here", None),
    ],
)
def test_after_trigger(body: str, expected: str | None) -> None:
    assert after_trigger(body, "/patchwright") == expected


def test_a_comment_asks_with_the_trigger_phrase_and_the_issue_as_context() -> None:
    event = {
        "issue": issue(pull=True),
        "comment": {"body": "/patchwright handle ''", "author_association": "OWNER"},
    }
    found = task_from_event("issue_comment", event, EventOptions())
    assert found.task.startswith("handle ''\n\nThe request was made on:\nGitHub issue #5")
    assert found.is_issue is False  # a pull request's conversation: no "Fixes #N"


def test_a_comment_without_the_phrase_is_skipped_and_an_outsider_refused() -> None:
    event = {"issue": issue(), "comment": {"body": "+1", "author_association": "NONE"}}
    assert (
        task_from_event("issue_comment", event, EventOptions()).skip_reason
        == "no /patchwright in the comment"
    )
    event["comment"]["body"] = "/patchwright do it"
    with pytest.raises(EventRefused):
        task_from_event("issue_comment", event, EventOptions())
    custom = {"issue": issue(), "comment": {"body": "@bot fix", "author_association": "COLLABORATOR"}}
    assert task_from_event("issue_comment", custom, EventOptions(trigger_phrase="@bot")).task.startswith(
        "fix"
    )


def fork_pr(head: str) -> dict[str, Any]:
    return {
        "pull_request": {"number": 2, "title": "t", "body": "b", "head": {"repo": {"full_name": head}}},
        "repository": {"full_name": REPO},
    }


def test_fork_code_is_refused_unless_allowed() -> None:
    with pytest.raises(EventRefused, match="fork evil/app"):
        task_from_event("pull_request_target", fork_pr("evil/app"), EventOptions(task="x"))
    assert (
        task_from_event("pull_request_target", fork_pr("evil/app"), EventOptions(allow_fork_code=True)).number
        == 2
    )
    assert task_from_event("pull_request_target", fork_pr(REPO), EventOptions()).task.startswith(
        "Pull request #2"
    )
    run = {"workflow_run": {"conclusion": "failure", "head_repository": {"full_name": "evil/app"}}}
    with pytest.raises(EventRefused):
        task_from_event("workflow_run", {**run, "repository": {"full_name": REPO}}, EventOptions())


def test_an_event_without_a_task_needs_the_input() -> None:
    with pytest.raises(Exception, match="set the `task` input"):
        task_from_event("workflow_dispatch", {}, EventOptions())
    assert task_from_event("schedule", {}, EventOptions(task="nightly")).task == "nightly"


def test_log_tail_keeps_the_end_without_timestamps_or_colours() -> None:
    log = "\n".join(f"2026-01-01T00:00:00.123Z \x1b[1mline {i}\x1b[0m" for i in range(300))
    tail = log_tail(log, lines=3)
    assert tail == "line 297\nline 298\nline 299"
    assert len(log_tail("x" * 50_000, chars=100)) == 100


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub(token=TOKEN, repo=REPO) as fake:
        yield fake


def test_a_green_run_is_skipped_and_a_red_one_read_through_the_api(github: FakeGitHub) -> None:
    api = GitHubAPI(github.url, TOKEN, REPO)
    run = {
        "id": 8,
        "name": "ci",
        "head_branch": "main",
        "head_sha": "abc",
        "head_repository": {"full_name": REPO},
    }
    event = {"workflow_run": {**run, "conclusion": "success"}, "repository": {"full_name": REPO}}
    assert (
        task_from_event("workflow_run", event, EventOptions(), api).skip_reason
        == "the run's conclusion is success"
    )
    github.runs[8] = [Job(3, "build", "failure", [{"name": "make", "conclusion": "failure"}], "```\nboom\n")]
    event["workflow_run"]["conclusion"] = "failure"
    found = task_from_event("workflow_run", event, EventOptions(), api)
    assert "Failing job: build\nFailing step: make" in found.task
    assert "````\n```\nboom\n````" in found.task  # the log's own fence cannot close the block
    assert github.blob_requests and "Authorization" not in github.blob_requests[0].headers
