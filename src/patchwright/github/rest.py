"""A small client for the GitHub REST API, on the standard library's urllib.

The token is sent to the host of GITHUB_API_URL only: a redirect elsewhere (job logs
answer with a redirect to a blob store) is followed without the Authorization header.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from http.client import HTTPMessage
from typing import IO, Any

from patchwright.errors import InfraError

API_VERSION = "2022-11-28"
TIMEOUT = 30.0
LOG_LIMIT = 5 * 1024 * 1024


class GitHubError(InfraError):
    """The GitHub API refused or failed a request."""


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme, parts.hostname or "", parts.port


class _SameOriginAuth(urllib.request.HTTPRedirectHandler):
    """Follows redirects, keeping the Authorization header only on the API's own origin."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: IO[bytes],
        code: int,
        msg: str,
        headers: HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and _origin(newurl) != _origin(req.full_url):
            new.remove_header("Authorization")
        return new


@dataclass
class GitHubAPI:
    """REST calls against `base_url` (GITHUB_API_URL) with `token`, for the repository `repo`."""

    base_url: str
    token: str
    repo: str  # owner/name

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None, limit: int = -1) -> bytes:
        url = self.base_url.rstrip("/") + path
        request = urllib.request.Request(
            url, method=method, data=None if body is None else json.dumps(body).encode()
        )
        request.add_header("Accept", "application/vnd.github+json")
        request.add_header("X-GitHub-Api-Version", API_VERSION)
        request.add_header("User-Agent", "patchwright-action")
        if body is not None:
            request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        opener = urllib.request.build_opener(_SameOriginAuth())
        try:
            with opener.open(request, timeout=TIMEOUT) as response:
                data: bytes = response.read() if limit < 0 else response.read()[-limit:]
                return data
        except urllib.error.HTTPError as err:
            try:
                message = str(json.loads(err.read()).get("message", ""))
            except (ValueError, AttributeError, OSError):
                message = ""
            raise GitHubError(f"GitHub API {method} {path}: HTTP {err.code} {message}".rstrip()) from None
        except (urllib.error.URLError, OSError) as err:
            raise GitHubError(f"GitHub API {method} {path}: {err}") from None

    def get(self, path: str) -> Any:
        return json.loads(self._request("GET", path))

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return json.loads(self._request("POST", path, body))

    def text(self, path: str, limit: int = LOG_LIMIT) -> str:
        """A text resource (a job's log), redirects followed, its last `limit` bytes."""
        return self._request("GET", path, limit=limit).decode("utf-8", "replace")

    def repo_path(self, rest: str) -> str:
        return f"/repos/{self.repo}/{rest.lstrip('/')}"
