"""The environment variables a repository declares for its own code and tests.

Read from the same files service detection reads (detect.py), with the same care (no symlink
followed, size-capped, safe YAML):
- the compose file's application services (those with `build:`): `environment:` and
  `env_file:` (committed `.env` files; paths inside the repository only);
- the workflows: the top-level `env:` and the `env:` of every job that runs tests.

Values that depend on what only CI has (`${{ secrets.X }}`, an unset compose variable) are
left out, and named. Variables that steer patchwright's own processes in the sandbox (PATH,
HOME, LD_*, PYTHON*, proxies, CA bundles...) are never taken from a repository. They go into
setup, the tests and the model's shell, below the user's `--env`; the run lists their names
and sources, never their values, and secret-looking ones are redacted from every file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

import yaml

from patchwright.services.detect import (
    COMPOSE_FILES,
    WORKFLOW_DIR,
    _environment,
    list_workflows,
    load_yaml,
    read_repo_file,
)

MAX_VARIABLES = 200
MAX_VALUE = 4096
_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_TEST_WORDS = re.compile(r"\b(test|tests|pytest|tox|nox|jest|vitest|mocha|rspec|phpunit)\b", re.IGNORECASE)
# Never from a repository: they steer the shell, the loader, the interpreters and the network of
# patchwright's own processes in the sandbox.
RESERVED = frozenset(
    {
        "PATH",
        "HOME",
        "USER",
        "SHELL",
        "ENV",
        "BASH_ENV",
        "IFS",
        "PS4",
        "SHELLOPTS",
        "BASHOPTS",
        "TERM",
        "LANG",
        "PAGER",
        "GIT_PAGER",
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "REQUESTS_CA_BUNDLE",
        "CURL_CA_BUNDLE",
        "NODE_EXTRA_CA_CERTS",
        "GIT_SSL_CAINFO",
        "PIP_CERT",
        "NPM_CONFIG_CAFILE",
    }
)
_RESERVED_PREFIXES = ("LD_", "PYTHON", "PATCHWRIGHT_", "DOCKER_", "GIT_CONFIG", "GIT_EXEC")
_PROXY = frozenset({"HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "FTP_PROXY"})


@dataclass(frozen=True)
class RepoVariables:
    """What the repository's files set, and what they asked for that the run cannot give."""

    values: dict[str, str] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)  # name -> the file it came from
    unavailable: list[str] = field(default_factory=list)  # "NAME (file)": CI secrets, unset variables
    notes: list[str] = field(default_factory=list)  # files not read

    def describe(self) -> list[dict[str, str]]:
        """For summary.json: names and sources, never values."""
        return [{"name": name, "source": self.sources[name]} for name in self.values]


def reserved(name: str) -> bool:
    upper = name.upper()
    return upper in RESERVED or upper in _PROXY or upper.startswith(_RESERVED_PREFIXES)


def repo_variables(root: Any) -> RepoVariables:
    """The variables `root`'s compose file and workflows declare (workflows first, compose over them)."""
    values: dict[str, str] = {}
    sources: dict[str, str] = {}
    unavailable: list[str] = []
    notes: list[str] = []

    def add(raw: Any, source: str) -> None:
        for name, value in _environment(raw).items():
            _take(name, value, source)
        if isinstance(raw, dict):  # `KEY: ${{ secrets.X }}`: _environment drops it; name it
            for name, value in raw.items():
                named = isinstance(name, str) and bool(_KEY.fullmatch(name)) and not reserved(name)
                if named and name not in values and isinstance(value, str) and "${{" in value:
                    unavailable.append(f"{name} ({source})")

    def _take(name: str, value: str | None, source: str) -> None:
        if not _KEY.fullmatch(name) or reserved(name) or len(values) >= MAX_VARIABLES:
            return
        if value is None or len(value) > MAX_VALUE or "\0" in value:
            unavailable.append(f"{name} ({source})")
            return
        values[name] = value
        sources[name] = source

    for name in list_workflows(root):
        label = f"{'/'.join(WORKFLOW_DIR)}/{name}"
        document = _load(root, (*WORKFLOW_DIR, name), label, notes)
        if not isinstance(document, dict):
            continue
        add(document.get("env"), label)
        jobs = document.get("jobs")
        for job in (jobs or {}).values() if isinstance(jobs, dict) else ():
            if isinstance(job, dict) and _runs_tests(job):
                add(job.get("env"), label)
    for name in COMPOSE_FILES:
        document = _load(root, (name,), name, notes)
        if document is None:
            continue
        services = document.get("services") if isinstance(document, dict) else None
        for body in (services or {}).values() if isinstance(services, dict) else ():
            if not isinstance(body, dict) or "build" not in body:
                continue  # a database's own settings are the service's, not the application's
            for env_file in _env_files(body.get("env_file")):
                data = _read(root, env_file, notes)
                if data is not None:
                    for name_, value in parse_env_file(data).items():
                        _take(name_, value, env_file)
            add(body.get("environment"), name)
        break  # compose reads the first of its file names only
    return RepoVariables(values, sources, list(dict.fromkeys(unavailable)), notes)


def _runs_tests(job: dict[str, Any]) -> bool:
    steps = job.get("steps")
    if not isinstance(steps, list):
        return False
    return any(
        isinstance(s, dict) and isinstance(s.get("run"), str) and _TEST_WORDS.search(s["run"]) for s in steps
    )


def _env_files(raw: Any) -> list[str]:
    """`env_file:` as relative paths inside the repository (a string, a list, or {path: ...})."""
    items = raw if isinstance(raw, list) else [raw]
    paths = []
    for item in items[:20]:
        path = item.get("path") if isinstance(item, dict) else item
        if not isinstance(path, str):
            continue
        parts = PurePosixPath(path).parts
        if not parts or PurePosixPath(path).is_absolute() or ".." in parts:
            continue
        paths.append("/".join(p for p in parts if p != "."))
    return paths


def _read(root: Any, path: str, notes: list[str]) -> bytes | None:
    try:
        return read_repo_file(root, tuple(path.split("/")))
    except OSError as err:
        notes.append(f"{path}: not read ({err.strerror or err})")
        return None


def _load(root: Any, parts: tuple[str, ...], label: str, notes: list[str]) -> Any:
    data = _read(root, "/".join(parts), notes)
    if data is None:
        return None
    try:
        return load_yaml(data.decode("utf-8", "replace"))
    except (yaml.YAMLError, RecursionError, ValueError):
        return None  # detect.py already says so


def parse_env_file(data: bytes) -> dict[str, str]:
    """KEY=VALUE lines as compose reads them: comments and blanks skipped, `export ` allowed,
    one level of matching quotes removed."""
    values: dict[str, str] = {}
    for line in data.decode("utf-8", "replace").splitlines()[:1000]:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.removeprefix("export ").partition("=")
        key, value = key.strip(), value.strip()
        if not sep or not _KEY.fullmatch(key):
            continue
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        values[key] = value
    return values
