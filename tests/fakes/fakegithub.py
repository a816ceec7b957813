"""A fake GitHub REST API on 127.0.0.1: issues' comments, pull requests, a workflow run's
jobs and their logs, every request recorded.

Job logs answer the way GitHub's do, with a redirect to another origin (a second server
standing in for the blob store), so a test can check the token never travels there::

    with FakeGitHub(token="ghs_...", repo="octo/app") as gh:
        env = {"GITHUB_API_URL": gh.url}
        ...
        assert gh.requests_to("POST", "/repos/octo/app/pulls")
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class Job:
    id: int
    name: str
    conclusion: str
    steps: list[dict[str, Any]]
    log: str


@dataclass
class FakeGitHub:
    token: str
    repo: str
    runs: dict[int, list[Job]] = field(default_factory=dict)  # run id -> its jobs
    requests: list[Recorded] = field(default_factory=list)
    blob_requests: list[Recorded] = field(default_factory=list)
    comments: list[dict[str, Any]] = field(default_factory=list)
    pulls: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._api = ThreadingHTTPServer(("127.0.0.1", 0), self._handler(api=True))
        self._blob = ThreadingHTTPServer(("127.0.0.1", 0), self._handler(api=False))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._api.server_address[1]}"

    @property
    def blob_url(self) -> str:
        return f"http://127.0.0.1:{self._blob.server_address[1]}"

    def __enter__(self) -> FakeGitHub:
        for server in (self._api, self._blob):
            threading.Thread(target=server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        for server in (self._api, self._blob):
            server.shutdown()
            server.server_close()

    def requests_to(self, method: str, path: str) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.method == method and r.path.split("?")[0] == path]

    # -- the routes

    def _route(self, method: str, path: str, body: Any) -> tuple[int, Any, dict[str, str]]:
        prefix = f"/repos/{self.repo}/"
        if not path.startswith(prefix):
            return 404, {"message": "Not Found"}, {}
        rest = path[len(prefix) :].split("?")[0]
        if method == "GET" and (m := re.fullmatch(r"actions/runs/(\d+)/jobs", rest)):
            jobs = self.runs.get(int(m.group(1)), [])
            return 200, {"total_count": len(jobs), "jobs": [self._job_json(j) for j in jobs]}, {}
        if method == "GET" and (m := re.fullmatch(r"actions/jobs/(\d+)/logs", rest)):
            return 302, None, {"Location": f"{self.blob_url}/logs/{m.group(1)}?sig=abc"}
        if method == "POST" and (m := re.fullmatch(r"issues/(\d+)/comments", rest)):
            if not isinstance(body, dict) or not isinstance(body.get("body"), str):
                return 422, {"message": "body is missing"}, {}
            number = len(self.comments) + 1
            url = f"https://github.com/{self.repo}/issues/{m.group(1)}#issuecomment-{number}"
            comment = {"id": number, "issue": int(m.group(1)), "body": body["body"], "html_url": url}
            self.comments.append(comment)
            return 201, comment, {}
        if method == "POST" and rest == "pulls":
            if not isinstance(body, dict) or not all(
                isinstance(body.get(k), str) for k in ("title", "head", "base")
            ):
                return 422, {"message": "title, head and base are required"}, {}
            number = 100 + len(self.pulls)
            pull = {**body, "number": number, "html_url": f"https://github.com/{self.repo}/pull/{number}"}
            self.pulls.append(pull)
            return 201, pull, {}
        return 404, {"message": "Not Found"}, {}

    def _job_json(self, job: Job) -> dict[str, Any]:
        return {"id": job.id, "name": job.name, "conclusion": job.conclusion, "steps": job.steps}

    def _log_of(self, job_id: int) -> str | None:
        for jobs in self.runs.values():
            for job in jobs:
                if job.id == job_id:
                    return job.log
        return None

    def _handler(self, api: bool) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _serve(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode("utf-8", "replace")
                recorded = Recorded(method, self.path, dict(self.headers.items()), body)
                with fake._lock:
                    (fake.requests if api else fake.blob_requests).append(recorded)
                    if not api:
                        m = re.fullmatch(r"/logs/(\d+)\?sig=abc", self.path)
                        log = fake._log_of(int(m.group(1))) if m else None
                        status, payload, headers = (200, log, {}) if log is not None else (404, "", {})
                    elif self.headers.get("Authorization") != f"Bearer {fake.token}":
                        status, payload, headers = 401, {"message": "Bad credentials"}, {}
                    else:
                        status, payload, headers = fake._route(method, self.path, body)
                data = (
                    b""
                    if payload is None
                    else (payload.encode() if isinstance(payload, str) else json.dumps(payload).encode())
                )
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header(
                    "Content-Type", "text/plain" if isinstance(payload, str) else "application/json"
                )
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

        return Handler
