"""What a run leaves behind: patch, trajectory.jsonl, summary.json, all redacted.

The trajectory is appended and flushed as things happen, so a crash or a kill
loses at most the line being written. Anything shaped like a key or token, and
the values of the host's own secret variables, are replaced before writing.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

from patchwright.errors import OutputError
from patchwright.sanitize import USERINFO

REDACTED = "[REDACTED]"
MIN_SECRET = 4  # characters: a shorter value the user passes is no secret worth the name
# Each shape with the literal pieces one of which any match contains: a text holding none of them
# is not searched for that shape (a tool result is redacted on every turn; 24 regex passes over
# a 4 KB output took 2.5 ms, most of a tool turn). Hints of case-insensitive shapes are lower case.
_SECRET_SHAPES: tuple[tuple[str, tuple[str, ...]], ...] = (
    (r"\bsk-ant-[A-Za-z0-9_\-]{8,}", ("sk-ant-",)),
    (r"\bsk-[A-Za-z0-9_\-]{20,}", ("sk-",)),
    (r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{10,}", ("_live_", "_test_")),  # Stripe
    (r"\bwhsec_[A-Za-z0-9]{20,}", ("whsec_",)),
    (r"\bgh[pousr]_[A-Za-z0-9]{20,}", ("ghp_", "gho_", "ghu_", "ghs_", "ghr_")),
    (r"\bgithub_pat_[A-Za-z0-9_]{20,}", ("github_pat_",)),
    (r"\bglpat-[A-Za-z0-9_\-]{20,}", ("glpat-",)),
    (r"\bnpm_[A-Za-z0-9]{30,}", ("npm_",)),
    (r"\bpypi-[A-Za-z0-9_\-]{40,}", ("pypi-",)),
    (r"\bhf_[A-Za-z0-9]{30,}", ("hf_",)),
    (r"\b(?:AKIA|ASIA|ABIA|ACCA)[0-9A-Z]{16}\b", ("AKIA", "ASIA", "ABIA", "ACCA")),
    (r"(?i)\baws_secret_access_key\s*[=:]\s*\S+", ("aws_secret_access_key",)),
    (r"\bxox[a-z]-[A-Za-z0-9\-]{10,}", ("xox",)),  # Slack: xoxb-, xoxp-, xoxa-, xoxe-, ...
    (r"\bxapp-[A-Za-z0-9\-]{10,}", ("xapp-",)),
    (r"https://hooks\.slack\.com/services/[A-Za-z0-9/]+", ("https://hooks.slack.com/services/",)),
    (r"\bAIza[0-9A-Za-z_\-]{35}\b", ("AIza",)),
    (r"\bya29\.[A-Za-z0-9_\-]{20,}", ("ya29.",)),
    (r"\bSG\.[A-Za-z0-9_\-]{16,}\.[A-Za-z0-9_\-]{16,}", ("SG.",)),  # SendGrid
    (r"\bdop_v1_[a-f0-9]{40,}", ("dop_v1_",)),
    (r"(?i)\bbearer\s+[A-Za-z0-9._~+/=\-]{16,}", ("bearer",)),
    (r"(?i)\bbasic\s+[A-Za-z0-9+/=]{16,}", ("basic",)),
    (r"eyJ[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}\.[A-Za-z0-9_\-]{10,}", ("eyJ",)),
    (r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----", ("-----BEGIN ",)),
    (r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*", ("-----BEGIN ",)),  # cut off before its end
)
_SECRET_PATTERNS = [re.compile(pattern) for pattern, _ in _SECRET_SHAPES]
_SECRET_HINTS = [
    (hints, bool(compiled.flags & re.IGNORECASE))
    for (_, hints), compiled in zip(_SECRET_SHAPES, _SECRET_PATTERNS, strict=True)
]
# Every hint in one flat list: most texts (ids, names, short outputs) hold none, and asking each
# shape in turn took 8 us a string, with six records a turn and a dozen strings a record. (One
# regex of all the hints is as fast on a short text and four times slower on a long one.)
_EXACT_HINTS = tuple(hint for hints, folded in _SECRET_HINTS if not folded for hint in hints)
_FOLDED_HINTS = tuple(hint for hints, folded in _SECRET_HINTS if folded for hint in hints)


def _any_hint(text: str) -> bool:
    for hint in _EXACT_HINTS:
        if hint in text:
            return True
    if _FOLDED_HINTS:
        lowered = text.lower()
        for hint in _FOLDED_HINTS:
            if hint in lowered:
                return True
    return False


def _shapes_in(text: str) -> Iterator[re.Pattern[str]]:
    """The secret shapes worth searching `text` for: those with a hint in it."""
    if not _any_hint(text):
        return
    lowered: str | None = None
    for pattern, (hints, folded) in zip(_SECRET_PATTERNS, _SECRET_HINTS, strict=True):
        if folded:
            lowered = text.lower() if lowered is None else lowered
            if any(hint in lowered for hint in hints):
                yield pattern
        elif any(hint in text for hint in hints):
            yield pattern


PROXY_VARIABLES = ("http_proxy", "https_proxy", "no_proxy", "all_proxy", "ftp_proxy")


def looks_secret(text: str) -> bool:
    """Whether `text` holds something shaped like a key or token (ghp_..., AKIA..., sk_live_...)."""
    return any(p.search(text) for p in _shapes_in(text))


# Name segments (split on "_") that mark a variable as secret: ANTHROPIC_API_KEY, GH_TOKEN, ...
_SECRET_ENV_WORDS = {
    "KEY",
    "APIKEY",
    "TOKEN",
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "CREDENTIAL",
    "CREDENTIALS",
    "AUTH",
    "PAT",
}


@dataclass
class Redactor:
    """Replaces secrets in text: known shapes, and the exact values of secret-looking env vars."""

    values: list[str] = field(default_factory=list)

    @staticmethod
    def from_environment(env: dict[str, str] | None = None) -> Redactor:
        env = dict(os.environ) if env is None else env
        values = [v for k, v in env.items() if _SECRET_ENV_WORDS & set(k.upper().split("_")) and len(v) >= 8]
        for name, value in env.items():  # a proxy's user:password, whole and in parts
            if name.lower() in PROXY_VARIABLES and (found := USERINFO.search(value)):
                userinfo = found.group(0)[len(found.group(1)) : -1]
                values += [part for part in (userinfo, *userinfo.split(":", 1)[1:]) if len(part) >= 4]
        return Redactor(sorted(set(values), key=len, reverse=True))

    def with_values(self, values: Iterable[str]) -> Redactor:
        """This redactor and the exact `values` too (secrets the user passed: `--env`); values
        shorter than MIN_SECRET are left alone, or every "1" and "on" in the run would go."""
        added = [v for v in values if len(v) >= MIN_SECRET]
        return Redactor(sorted(set(self.values) | set(added), key=len, reverse=True))

    def text(self, text: str) -> str:
        for value in self.values:
            if value in text:
                text = text.replace(value, REDACTED)
        for pattern in list(_shapes_in(text)):
            text = pattern.sub(REDACTED, text)
        return USERINFO.sub(rf"\1{REDACTED}@", text) if "@" in text else text

    def data(self, value: Any) -> Any:
        """Redact every string inside a JSON-like structure."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {k: self.data(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [self.data(v) for v in value]
        return value


class TrajectoryWriter:
    """Appends one JSON object a line: requests, responses, tool calls and results, errors."""

    def __init__(self, path: Path, redactor: Redactor) -> None:
        self.path = path
        self.redactor = redactor
        self._fh: IO[str] | None = None
        self._lock = threading.Lock()  # the sandbox's start records its setup from a thread of its own

    def write(self, event: str, **data: Any) -> None:
        record = {"ts": round(time.time(), 3), "event": event, **self.redactor.data(data)}
        with self._lock:
            self._write(record)

    def _write(self, record: dict[str, Any]) -> None:
        try:
            if self._fh is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._fh = self.path.open("a", encoding="utf-8")
            self._fh.write(json_text(record, default=str) + "\n")
            self._fh.flush()
        except OSError as err:
            raise OutputError(f"cannot write the trajectory {self.path}: {err.strerror}") from None

    def close(self) -> None:
        if self._fh is not None:
            with contextlib.suppress(OSError):
                self._fh.close()
            self._fh = None


def read_trajectory(path: Path) -> list[dict[str, Any]]:
    """All complete records of a trajectory; a half-written last line is skipped."""
    records: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return records


@dataclass
class RunSummary:
    """summary.json and the `--format json` output: the run's result at a glance."""

    run_id: str
    status: str
    exit_code: int
    repo: str
    run_dir: str
    model: str
    agent: str
    task: str
    patch: str | None = None
    files_changed: list[str] = field(default_factory=list)  # of the partial patch, when there is one
    # Past the patch limits: the files that fit, whole, in path order; never applied
    partial_patch: str | None = None
    files_left_out: int = 0
    files_left_out_first: list[str] = field(default_factory=list)  # escaped (sanitize.clean_line)
    # changed after the model's last command, by a process left running; escaped; --apply refuses them
    late_changes: list[str] = field(default_factory=list)
    steps: int = 0
    tokens: dict[str, int] = field(default_factory=dict)
    cost_usd: float | None = None
    duration_s: float = 0.0
    verified: bool | None = None  # true only for the verdict `fixed`
    # verdict, reason, FAIL_TO_PASS, PASS_TO_PASS, PASS_TO_FAIL (verdict.py); None: not verified
    verification: dict[str, Any] | None = None
    tests: dict[str, Any] | None = None
    applied: bool = False
    apply_error: str | None = None  # why --apply left the repo alone (the patch is still written)
    error: str | None = None
    final_message: str | None = None
    ignored_repo_settings: list[str] = field(default_factory=list)  # untrusted repo config left out
    # where setup and the test command came from (environment/report.py); can the tests run, why
    # not, the setup recipe and the repair's steps and cost (environment/phase.py)
    environment: dict[str, Any] | None = None
    services: list[dict[str, Any]] = field(default_factory=list)  # services: what ran beside
    # declared by the repo but of a kind patchwright cannot run: name, kind, image, source
    services_unsupported: list[dict[str, str]] = field(default_factory=list)
    # variables the repo's compose file and CI set in the sandbox: name and source, never the value
    environment_variables: list[dict[str, str]] = field(default_factory=list)
    # --attempts N (attempts.py): each attempt's status, verdict and cost; which was chosen and why
    attempts: list[dict[str, Any]] = field(default_factory=list)
    chosen_attempt: int | None = None
    selection: str | None = None  # the path of selection.json

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def is_utf8(text: str) -> bool:
    """Whether `text` came from valid UTF-8 (no byte was kept as a surrogate escape)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def json_text(data: Any, **options: Any) -> str:
    """JSON that is valid UTF-8 whatever `data` holds: readable text stays as it is, and a string
    carrying bytes that were not UTF-8 (surrogate escapes) makes the whole value ASCII-escaped."""
    text = json.dumps(data, ensure_ascii=False, **options)
    return text if is_utf8(text) else json.dumps(data, ensure_ascii=True, **options)


def write_text_file(path: Path, text: str) -> None:
    """Write atomically (temp file + rename) so a full disk never leaves half a file behind."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(text.encode("utf-8", "surrogateescape"))
        os.replace(tmp, path)
    except OSError as err:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write {path}: {err.strerror or err}") from None


def move_file(source: Path, path: Path) -> None:
    """Rename a finished file into place (same folder: atomic)."""
    try:
        os.replace(source, path)
    except OSError as err:
        raise OutputError(f"cannot write {path}: {err.strerror or err}") from None


def copy_file(source: Path, path: Path) -> None:
    """Copy a patch file to `path` in pieces, atomically (temp file + rename), as write_text_file."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, tmp)
        os.replace(tmp, path)
    except OSError as err:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write {path}: {err.strerror or err}") from None


def write_summary(path: Path, summary: RunSummary, redactor: Redactor) -> None:
    write_text_file(path, json.dumps(redactor.data(summary.as_dict()), indent=2) + "\n")


def files_in_patch(patch: str) -> list[str]:
    """The paths a unified git patch touches (new side, or old side for deletions)."""
    files: list[str] = []
    for line in patch.splitlines():
        if line.startswith("diff --git "):
            paths = diff_header_paths(line)
            if paths:
                files.append(paths[-1])
    return files


HEADER_MAX = 64 * 1024  # a `diff --git` line holds two paths, each at most PATH_MAX, quoted


def patch_headers(path: Path) -> Iterator[str]:
    """The `diff --git` lines of a patch file, read a bounded line at a time: a patch of one
    huge line costs no more memory than one of many short ones."""
    with path.open("rb") as fh:
        at_start = True
        while line := fh.readline(HEADER_MAX):
            if at_start and line.startswith(b"diff --git "):
                yield line.rstrip(b"\n").decode("utf-8", "surrogateescape")
            at_start = line.endswith(b"\n")


def files_in_patch_file(path: Path) -> list[str]:
    """files_in_patch for a patch on disk, without reading it into memory."""
    return [paths[-1] for paths in map(diff_header_paths, patch_headers(path)) if paths]


def diff_header_paths(header: str) -> list[str]:
    """The old and new path of a `diff --git a/X b/Y` line; [] when it cannot tell."""
    rest = header[len("diff --git ") :]
    if rest.endswith('"'):  # git quotes a path with special characters: "b/caf\303\251.py"
        new = rest[rest.rindex(' "', 0, len(rest) - 1) + 1 :]
        old = rest[: len(rest) - len(new) - 1]
        return [_unquote(old)[2:], _unquote(new)[2:]]
    # Unquoted paths may hold spaces: prefer the split where both sides name the same path.
    splits = [i for i in range(len(rest)) if rest.startswith(" b/", i)]
    if not splits or not rest.startswith("a/"):
        return []
    same = [i for i in splits if rest[2:i] == rest[i + 3 :]]
    at = (same or splits)[-1]
    return [rest[2:at], rest[at + 3 :]]


def _unquote(path: str) -> str:
    """Undo git's C-style quoting ("b/caf\\303\\251.py") into the real path."""
    if not (path.startswith('"') and path.endswith('"')):
        return path
    raw = path[1:-1].encode("latin-1", "backslashreplace").decode("unicode_escape").encode("latin-1")
    return raw.decode("utf-8", "surrogateescape")
