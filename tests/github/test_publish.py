"""The branch pushed over HTTP with the token in a header given through the environment:
the server sees it, git's argv and the repository's config never do; the checkout is
left as it was."""

from __future__ import annotations

import base64
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from patchwright.github.publish import PublishError, Target, auth_env, commit_patch, pr_title, push_branch
from patchwright.hostgit import git_env

from helpers import git, make_repo, repo_state

TOKEN = "ghs_publishTestToken0123456789"
CREDENTIALS = base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
PATCH = b"diff --git a/a.txt b/a.txt\n--- a/a.txt\n+++ b/a.txt\n@@ -1 +1 @@\n-one\n+two\n"


@dataclass
class GitServer:
    """`git http-backend` behind a small HTTP server; records each request's Authorization."""

    root: Path
    authorizations: list[str | None] = field(default_factory=list)

    def __post_init__(self) -> None:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _cgi(self) -> None:
                server.authorizations.append(self.headers.get("Authorization"))
                scheme, _, credentials = (self.headers.get("Authorization") or "").partition(" ")
                if scheme.lower() != "basic" or credentials != CREDENTIALS:
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="git"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                path, _, query = self.path.partition("?")
                length = int(self.headers.get("Content-Length") or 0)
                env = {
                    "GIT_PROJECT_ROOT": str(server.root),
                    "GIT_HTTP_EXPORT_ALL": "1",
                    "PATH_INFO": path,
                    "QUERY_STRING": query,
                    "REQUEST_METHOD": self.command,
                    "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                    "REMOTE_USER": "x-access-token",
                    "PATH": "/usr/bin:/bin",
                }
                if self.headers.get("Content-Encoding"):
                    env["HTTP_CONTENT_ENCODING"] = self.headers["Content-Encoding"]
                body = self.rfile.read(length) if length else b""
                done = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True)
                head, _, payload = done.stdout.partition(b"\r\n\r\n")
                status = 200
                headers = []
                for line in head.decode().split("\r\n"):
                    name, _, value = line.partition(": ")
                    if name.lower() == "status":
                        status = int(value.split()[0])
                    elif name:
                        headers.append((name, value))
                self.send_response(status)
                for name, value in headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = _cgi
            do_POST = _cgi

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[GitServer]:
    root = tmp_path / "srv"
    bare = root / "octo" / "app.git"
    bare.parent.mkdir(parents=True)
    git(tmp_path, "init", "-q", "--bare", str(bare))
    git(bare, "config", "http.receivepack", "true")
    served = GitServer(root)
    threading.Thread(target=served.httpd.serve_forever, daemon=True).start()
    yield served
    served.httpd.shutdown()
    served.httpd.server_close()


def test_commit_patch_makes_one_commit_on_head_without_touching_the_checkout(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {"a.txt": "one\n"})
    before = repo_state(repo)
    head = git(repo, "rev-parse", "HEAD").strip()
    commit = commit_patch(repo, PATCH, "patchwright: a title\n\nbody")
    assert git(repo, "rev-parse", f"{commit}^").strip() == head
    assert git(repo, "show", f"{commit}:a.txt") == "two\n"
    assert (
        git(repo, "log", "-1", "--format=%an|%s", commit).strip()
        == "github-actions[bot]|patchwright: a title"
    )
    assert repo_state(repo) == before and git(repo, "rev-parse", "HEAD").strip() == head


def test_a_patch_that_does_not_apply_is_one_line(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "r", {"a.txt": "other\n"})
    with pytest.raises(PublishError, match=r"^git apply failed: "):
        commit_patch(repo, PATCH, "m")


def test_the_push_carries_the_token_in_a_header_and_nowhere_else(tmp_path: Path, server: GitServer) -> None:
    repo = make_repo(tmp_path / "r", {"a.txt": "one\n"})
    commit = commit_patch(repo, PATCH, "m")
    target = Target(server.url, "octo/app", "main", TOKEN)
    push_branch(repo, commit, "patchwright/r1", target)
    bare = server.root / "octo" / "app.git"
    assert git(bare, "rev-parse", "refs/heads/patchwright/r1").strip() == commit
    assert any(a and a.lower().startswith("basic ") for a in server.authorizations)
    assert TOKEN not in (repo / ".git" / "config").read_text()
    with pytest.raises(PublishError, match="git push failed"):
        push_branch(repo, commit, "patchwright/r2", Target(server.url, "octo/app", "main", "wrong"))


def test_the_header_is_scoped_to_the_server_and_absent_for_other_schemes() -> None:
    env = auth_env(git_env(), Target("https://github.com", "o/r", "main", TOKEN))
    at = int(env["GIT_CONFIG_COUNT"]) - 1
    assert env[f"GIT_CONFIG_KEY_{at}"] == "http.https://github.com/.extraheader"
    assert TOKEN not in env[f"GIT_CONFIG_VALUE_{at}"]  # base64, as git sends it
    assert "GIT_CONFIG_COUNT" not in auth_env({}, Target("file:///srv", "o/r", "main", TOKEN))


def test_pr_title() -> None:
    assert pr_title("Crash\x1b[2J on start", "") == "patchwright: Crash\\x1b[2J on start"
    assert pr_title("", "\n\nfix the parser\nmore") == "patchwright: fix the parser"
    assert len(pr_title("x" * 500, "")) == 120
