"""The REST client: the token goes to the API's origin only; errors are one line."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from patchwright.github.rest import GitHubAPI, GitHubError

from fakegithub import FakeGitHub, Job

TOKEN = "ghs_restTestToken0123456789"


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    with FakeGitHub(token=TOKEN, repo="o/r") as fake:
        yield fake


def test_a_redirect_to_another_origin_drops_the_token(github: FakeGitHub) -> None:
    github.runs[1] = [Job(9, "j", "failure", [], "the log")]
    api = GitHubAPI(github.url, TOKEN, "o/r")
    assert api.text(api.repo_path("actions/jobs/9/logs")) == "the log"
    assert github.requests[0].headers["Authorization"] == f"Bearer {TOKEN}"
    assert len(github.blob_requests) == 1 and "Authorization" not in github.blob_requests[0].headers


def test_text_keeps_the_last_bytes(github: FakeGitHub) -> None:
    github.runs[1] = [Job(9, "j", "failure", [], "0123456789")]
    api = GitHubAPI(github.url, TOKEN, "o/r")
    assert api.text(api.repo_path("actions/jobs/9/logs"), limit=4) == "6789"


def test_errors_are_one_line_with_the_status(github: FakeGitHub) -> None:
    with pytest.raises(GitHubError, match=r"^GitHub API GET /repos/o/r/nothing: HTTP 404 Not Found$"):
        GitHubAPI(github.url, TOKEN, "o/r").get("/repos/o/r/nothing")
    with pytest.raises(GitHubError, match="HTTP 401 Bad credentials"):
        GitHubAPI(github.url, "wrong", "o/r").post("/repos/o/r/pulls", {})
    with pytest.raises(GitHubError, match="GitHub API GET /x"):
        GitHubAPI("http://127.0.0.1:9", TOKEN, "o/r").get("/x")
